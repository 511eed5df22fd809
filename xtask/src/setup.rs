//! Installing what a fresh machine lacks: Debian packages through `apt-get` (when root), and running
//! child commands with their failure reported by name.

use anyhow::{Context, Result, bail};
use std::process::Command;

/// Debian packages the test suite needs: (package, what tells it is installed: a command it
/// provides, or a path prefix such as `/boot/vmlinuz-` that one of its files starts with).
pub const TEST_PACKAGES: &[(&str, &str)] = &[
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
];

/// Debian packages `cargo xtask bench zdb` needs: the peer server and its load generator.
pub const BENCH_ZDB_PACKAGES: &[(&str, &str)] = &[
    ("redis-server", "redis-server"),
    ("redis-tools", "redis-benchmark"),
];

/// Installs every package whose probe command is missing, with one `apt-get update` first.
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
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
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
