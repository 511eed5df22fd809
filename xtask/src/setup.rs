//! Installing what a fresh machine lacks: Debian packages through `apt-get` (when root) without
//! removing anything the machine already has, and running child commands with their failure
//! reported by name.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Debian packages the test suite (`cargo xtask test`) and `cargo xtask demo` need: (package, what
/// tells it is installed: a command it provides, or a path prefix such as `/boot/vmlinuz-` that
/// one of its files starts with).
pub const TEST_PACKAGES: &[(&str, &str)] = &[
    // What a slim Debian lacks: network namespaces and veth pairs (ip), process tools (ps, pkill
    // by PID file), and the scripts some tests run.
    ("iproute2", "ip"),
    ("procps", "ps"),
    ("python3", "python3"),
    // Containers on nodes: the OCI runtime, a static busybox for the test image, mkfs for layers.
    ("runc", "runc"),
    ("busybox-static", "busybox"),
    ("e2fsprogs", "mkfs.ext4"),
    // Fetching from inside test network namespaces, and through the gateway (curl); checking the
    // gateway's certificates (openssl).
    ("curl", "curl"),
    ("openssl", "openssl"),
    // The explorer's tests: its dashboard in a headless browser, and its PostgreSQL store.
    ("chromium", "chromium"),
    ("postgresql", "pg_ctlcluster"),
    // VMs on nodes: the hypervisor, and a kernel (with its modules) for the test's VM image.
    ("qemu-system-x86", "qemu-system-x86_64"),
    ("linux-image-amd64", "/boot/vmlinuz-"),
    // The user's laptop in `tfgrid network access`'s test: a real WireGuard client, userspace
    // (these kernels have no WireGuard module), configured with `wg`.
    ("wireguard-go", "wireguard-go"),
    ("wireguard-tools", "wg"),
    // NAT: the router in front of a hidden node (`hostnet`'s hidden hosts, as `tfgrid up`'s last
    // node is), and each node's outbound NAT of its networks' traffic (zos).
    ("nftables", "nft"),
];

/// Debian packages `cargo xtask bench zdb` needs: the peer server and its load generator.
pub const BENCH_ZDB_PACKAGES: &[(&str, &str)] = &[
    ("redis-server", "redis-server"),
    ("redis-tools", "redis-benchmark"),
];

/// Debian packages `cargo xtask bench overlay` needs: namespaces and links (ip, nsenter comes with
/// util-linux, which Debian always has), the load generator, the peer implementation and its
/// configuration tool, and ping.
pub const BENCH_OVERLAY_PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "ip"),
    ("iperf3", "iperf3"),
    ("wireguard-go", "wireguard-go"),
    ("wireguard-tools", "wg"),
    ("busybox-static", "busybox"),
];

/// Installs every package whose probe command is missing, with one `apt-get update` first.
///
/// The machine is the user's: nothing installed is removed. apt's plan is simulated first; a
/// package whose plan would remove something (Debian's QEMU removing a newer `qemu-utils` from
/// backports, say) is taken from the release's backports instead, and when that too would remove
/// something the install stops and names what it would remove.
pub fn ensure_debian_packages(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, probe)| !installed(probe))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages {missing:?}: install them with `sudo apt-get install {}`",
            missing.join(" ")
        );
    }
    eprintln!("installing Debian packages: {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-q"]))?;
    if removals(&[], &missing)?.is_empty() {
        return apt_install(&[], &missing);
    }
    let mut plain = Vec::new();
    let mut removing = Vec::new();
    for package in &missing {
        if removals(&[], &[package])?.is_empty() {
            plain.push(*package);
        } else {
            removing.push(*package);
        }
    }
    apt_install(&[], &plain)?;
    let backports = Backports::add()?;
    let options = backports.options();
    let removed = removals(&options, &removing)?;
    if !removed.is_empty() {
        bail!(
            "installing {removing:?} would remove {removed:?} from this machine, from its release \
             and from its backports alike; install them by hand if that is what you want"
        );
    }
    eprintln!(
        "taking {removing:?} from backports: the release's own would remove installed packages"
    );
    apt_install(&options, &removing)
}

/// The packages apt would remove to install `packages`, from a simulated run.
fn removals(options: &[String], packages: &[&str]) -> Result<Vec<String>> {
    let out = Command::new("apt-get")
        .args(options)
        .args(["install", "-s", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .output()
        .context("simulating apt-get install")?;
    if !out.status.success() {
        bail!(
            "apt-get cannot install {packages:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(removed_packages(&String::from_utf8_lossy(&out.stdout)))
}

/// The names on the `Remv` lines of apt's simulated plan.
fn removed_packages(plan: &str) -> Vec<String> {
    plan.lines()
        .filter_map(|line| line.strip_prefix("Remv "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn apt_install(options: &[String], packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    run(Command::new("apt-get")
        .args(options)
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// The release's backports as an extra apt source for the length of one install: a source list
/// of its own in a temporary file, so the machine's configuration is not changed.
struct Backports {
    list: tempfile::NamedTempFile,
    release: String,
}

impl Backports {
    fn add() -> Result<Self> {
        let os = std::fs::read_to_string("/etc/os-release").context("reading /etc/os-release")?;
        let Some(codename) = os_codename(&os) else {
            bail!(
                "/etc/os-release names no VERSION_CODENAME: cannot find this release's backports"
            );
        };
        let release = format!("{codename}-backports");
        let mut list = tempfile::NamedTempFile::new()?;
        // The machine's own main list goes on being read, alongside the parts directory.
        let own = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
        std::io::Write::write_all(
            &mut list,
            format!("{own}\ndeb http://deb.debian.org/debian {release} main\n").as_bytes(),
        )?;
        let backports = Self { list, release };
        run(Command::new("apt-get")
            .args(backports.source())
            .args(["update", "-q"]))?;
        Ok(backports)
    }

    fn source(&self) -> [String; 2] {
        [
            "-o".into(),
            format!("Dir::Etc::SourceList={}", self.list.path().display()),
        ]
    }

    /// apt options reading the backports list and preferring backports for what is installed.
    fn options(&self) -> Vec<String> {
        let mut options = self.source().to_vec();
        options.extend(["-t".into(), self.release.clone()]);
        options
    }
}

fn os_codename(os_release: &str) -> Option<&str> {
    os_release
        .lines()
        .find_map(|line| line.strip_prefix("VERSION_CODENAME="))
        .map(|value| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Installs cargo-nextest through cargo when it is missing.
pub fn ensure_nextest() -> Result<()> {
    let present = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("installing cargo-nextest");
    run(Command::new("cargo").args(["install", "cargo-nextest", "--locked"]))
}

/// Whether a package's probe is there: a file starting with it (when it is a path), or a command
/// on the PATH.
fn installed(probe: &str) -> bool {
    let path = std::path::Path::new(probe);
    match (path.is_absolute(), path.parent(), path.file_name()) {
        (true, Some(dir), Some(prefix)) => std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.filter_map(|e| e.ok()).any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&*prefix.to_string_lossy())
            })
        }),
        _ => on_path(probe),
    }
}

fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// The workspace's target directory, where `cargo build` puts the binaries.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// Stops a child started here, by its PID: TERM, then KILL if it has not exited within 10 s.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs a command to completion; a non-zero exit is an error naming the command.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_are_read_off_apt_plan() {
        let plan = "Inst qemu-system-common (1:7.2 Debian:12.15/oldstable [amd64])\n\
                    Remv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\n\
                    Conf qemu-system-x86 (1:7.2 Debian:12.15/oldstable [amd64])\n";
        assert_eq!(removed_packages(plan), ["qemu-utils"]);
        assert!(removed_packages("Inst runc (1.1.5 Debian)\n").is_empty());
    }

    #[test]
    fn the_codename_names_the_backports() {
        let os = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\n";
        assert_eq!(os_codename(os), Some("bookworm"));
        assert_eq!(os_codename("ID=debian\n"), None);
    }
}
