//! The `zmachine` primitive in VM mode, for images that hold a kernel: `boot/vmlinuz`, and
//! `boot/initrd.img` if there is one. QEMU boots that kernel with the machine's CPUs and memory
//! (the VM's own limits), under KVM where the CPU has hardware virtualization and QEMU's software
//! emulation (TCG) otherwise; the machine's network namespace holds a bridge joining its veth to the
//! VM's TAP device, so the guest itself takes its address.
//!
//! The guest's side of the contract (what the image's init must do; `guest/init.sh` does it):
//! - the 9p share `root` is the machine's root file system (the image under its sized writable
//!   layer, as containers have), to mount read-write and switch to;
//! - the 9p share `zos` (read-only) holds `config`, shell assignments of `ZOS_HOSTNAME`, `ZOS_IP`
//!   (address with prefix), `ZOS_GATEWAY`, `ZOS_ENTRYPOINT` and `ZOS_MOUNTS` (`tag:mountpoint`
//!   words, each tag a 9p share of a volume), and `env`, the environment as `export` lines;
//! - the first network interface is the machine's private network; the console is `ttyS0`, kept in
//!   the machine's `output.log`.
//!
//! When the entrypoint ends the kernel panics and QEMU exits (`-no-reboot`), so the agent sees a
//! stopped machine and restarts it, as it does a container. Pausing stops the VM's CPUs (QMP
//! `stop`); removing kills QEMU and deletes everything the machine used.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tfgrid_types::deployment::{MIB, Secret, Zmachine};

use super::{MachineNet, MachineRuntime, alive, recorded_pid, rootfs, run, run_within};
use crate::limits::{VM_QMP_TIMEOUT, VM_START_TIMEOUT, VM_STOP_TIMEOUT};

/// The QEMU binary.
const QEMU: &str = "qemu-system-x86_64";

/// Whether `path` is a regular file below `image` reached through no symbolic link (QEMU, as root,
/// opens it on the host: a link could point anywhere, the node's key included).
fn plain_file(image: &Path, relative: &str) -> bool {
    let mut path = image.to_path_buf();
    let parts: Vec<&str> = relative.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return false;
        };
        let last = i + 1 == parts.len();
        if (last && !meta.file_type().is_file()) || (!last && !meta.file_type().is_dir()) {
            return false;
        }
    }
    true
}

/// Whether an unpacked image boots as a VM (it holds a kernel) rather than running as a container.
pub fn is_vm_image(image: &Path) -> bool {
    plain_file(image, "boot/vmlinuz")
}

#[derive(Debug, Clone)]
pub struct Vms {
    /// One directory per VM: root file system, config share, QMP socket, PID, logs.
    dir: PathBuf,
}

/// Whether this CPU virtualizes in hardware (and the kernel offers it): else QEMU emulates.
fn kvm() -> bool {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hardware = flags
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    hardware && Path::new("/dev/kvm").exists()
}

/// A value as a single-quoted shell word.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Whether `name` may be exported by a shell.
fn shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The VM's MAC address: stable for its id, locally administered.
fn mac(id: &str) -> String {
    let h = blake3::hash(id.as_bytes());
    let b = h.as_bytes();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// One QMP command to the VM's monitor; its answer.
fn qmp(socket: &Path, command: &str) -> Result<serde_json::Value> {
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to the VM's monitor {}", socket.display()))?;
    stream.set_read_timeout(Some(VM_QMP_TIMEOUT))?;
    stream.set_write_timeout(Some(VM_QMP_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut answer = |writer: &mut UnixStream, execute: &str| -> Result<serde_json::Value> {
        writeln!(writer, "{}", serde_json::json!({ "execute": execute }))?;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                bail!("the VM's monitor closed");
            }
            let reply: serde_json::Value = serde_json::from_str(&line)?;
            if let Some(error) = reply.get("error") {
                bail!("the VM's monitor refused {execute}: {error}");
            }
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            // A greeting or an event: not the answer yet.
        }
    };
    answer(&mut writer, "qmp_capabilities")?;
    answer(&mut writer, command)
}

impl Vms {
    pub fn new(dir: PathBuf) -> Vms {
        Vms { dir }
    }

    /// Whether machine `id` is a VM of this node (its directory exists, whatever state it is in).
    pub fn exists(&self, id: &str) -> bool {
        self.dir.join(id).is_dir()
    }

    /// The running QEMU of machine `id`, if it runs.
    fn pid(&self, id: &str) -> Option<u32> {
        let dir = self.dir.join(id);
        recorded_pid(&dir.join("pid")).filter(|pid| alive(*pid, &dir))
    }

    /// Kills machine `id`'s QEMU, if it runs, and waits until it is gone.
    fn kill(&self, id: &str) -> Result<()> {
        let Some(pid) = self.pid(id) else {
            return Ok(());
        };
        run(Command::new("kill").args(["-KILL", &pid.to_string()]))?;
        let deadline = Instant::now() + VM_STOP_TIMEOUT;
        while self.pid(id).is_some() {
            if Instant::now() > deadline {
                bail!("QEMU of {id} (pid {pid}) did not stop");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The `zos` share's two files, `config` and `env`; refuses what the guest's init could not
    /// read back (an environment name that is no shell name, a mountpoint with blanks, quotes or
    /// pattern characters).
    fn render_config(
        hostname: &str,
        machine: &Zmachine,
        net: &MachineNet,
        mounts: &[(String, String)],
    ) -> Result<(String, String)> {
        let mut env = String::new();
        for (key, value) in &machine.env {
            let Secret::Plain(value) = value else {
                bail!("environment variable {key} is still sealed")
            };
            if !shell_name(key) {
                bail!("environment variable {key:?} of a VM must be a shell name");
            }
            env.push_str(&format!("export {key}={}\n", quoted(value)));
        }
        for (_, path) in mounts {
            let plain = path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c));
            if !plain {
                bail!("mountpoint {path:?} of a VM may only hold letters, digits and /._-+@");
            }
        }
        let tags: Vec<String> = mounts
            .iter()
            .map(|(tag, path)| format!("{tag}:{path}"))
            .collect();
        let config = format!(
            "ZOS_HOSTNAME={}\nZOS_IP={}\nZOS_GATEWAY={}\nZOS_ENTRYPOINT={}\nZOS_MOUNTS={}\n",
            quoted(hostname),
            quoted(&net.cidr),
            quoted(&net.gateway),
            quoted(&machine.entrypoint),
            quoted(&tags.join(" ")),
        );
        Ok((config, env))
    }

    /// Writes the `zos` share, readable by root alone (the environment holds opened secrets).
    fn write_config(dir: &Path, config: &str, env: &str) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let share = dir.join("config");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&share)?;
        for (name, text) in [("config", config), ("env", env)] {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(share.join(name))?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
        }
        Ok(())
    }
}

impl MachineRuntime for Vms {
    fn kind(&self) -> &'static str {
        "VM"
    }

    /// Whether QEMU is there and this process may make TAP devices (root).
    fn available(&self) -> Result<()> {
        run(Command::new(QEMU).arg("--version"))
            .with_context(|| format!("{QEMU} is not installed (Debian: qemu-system-x86)"))?;
        let uid = run(Command::new("id").arg("-u"))?;
        if uid.trim() != "0" {
            bail!("running VMs needs root");
        }
        Ok(())
    }

    fn start(
        &self,
        id: &str,
        hostname: &str,
        machine: &Zmachine,
        image: &Path,
        mounts: &[(PathBuf, String)],
        net: &MachineNet,
    ) -> Result<()> {
        let dir = self.dir.join(id);
        let tags: Vec<(String, String)> = mounts
            .iter()
            .enumerate()
            .map(|(i, (_, mountpoint))| (format!("vol{i}"), mountpoint.clone()))
            .collect();
        // Refused before anything is made for it.
        let (config, env) = Vms::render_config(hostname, machine, net, &tags)?;
        self.kill(id)?;
        std::fs::create_dir_all(&dir)?;
        let root = rootfs::prepare(&dir, image, machine.root_size())?;
        Vms::write_config(&dir, &config, &env)?;
        let netns = Path::new(&net.netns)
            .file_name()
            .context("the machine's network namespace has no name")?
            .to_string_lossy()
            .into_owned();
        let share = |path: &Path, tag: &str, readonly: bool| {
            let mut spec = format!(
                "local,path={},mount_tag={tag},security_model=passthrough",
                path.display()
            );
            if readonly {
                spec.push_str(",readonly=on");
            }
            spec
        };
        let mut qemu = Command::new("ip");
        qemu.args(["netns", "exec", &netns, QEMU]);
        qemu.args([
            "-name",
            id,
            "-machine",
            "q35",
            "-nodefaults",
            "-no-user-config",
        ]);
        match kvm() {
            true => qemu.args(["-accel", "kvm", "-cpu", "host"]),
            false => qemu.args(["-accel", "tcg", "-cpu", "max"]),
        };
        qemu.args(["-smp", &machine.compute_capacity.cpu.to_string()])
            .args(["-m", &format!("{}M", machine.compute_capacity.memory / MIB)])
            .arg("-kernel")
            .arg(image.join("boot/vmlinuz"));
        let initrd = image.join("boot/initrd.img");
        if plain_file(image, "boot/initrd.img") {
            qemu.arg("-initrd").arg(&initrd);
        } else if std::fs::symlink_metadata(&initrd).is_ok() {
            bail!("the image's boot/initrd.img is not a plain file of the image");
        }
        qemu.args(["-append", "console=ttyS0 quiet panic=-1", "-no-reboot"])
            // A seccomp filter on QEMU itself; it still daemonizes (spawn) and its 9p server
            // switches credentials (elevateprivileges), so those stay allowed.
            .args(["-sandbox", "on,obsolete=deny,resourcecontrol=deny"])
            .args(["-display", "none", "-chardev"])
            .arg(format!(
                "file,id=console,path={},append=on",
                dir.join("output.log").display()
            ))
            .args(["-serial", "chardev:console"])
            .args([
                "-netdev",
                "tap,id=net0,ifname=tap0,script=no,downscript=no",
                "-device",
                &format!("virtio-net-pci,netdev=net0,mac={},romfile=", mac(id)),
            ])
            .arg("-virtfs")
            .arg(share(&root, "root", false))
            .arg("-virtfs")
            .arg(share(&dir.join("config"), "zos", true));
        for ((path, _), (tag, _)) in mounts.iter().zip(&tags) {
            qemu.arg("-virtfs").arg(share(path, tag, false));
        }
        qemu.arg("-qmp")
            .arg(format!(
                "unix:{},server=on,wait=off",
                dir.join("qmp.sock").display()
            ))
            .arg("-daemonize")
            .arg("-pidfile")
            .arg(dir.join("pid"));
        run_within(&mut qemu, VM_START_TIMEOUT).context("the VM did not start")?;
        Ok(())
    }

    fn status(&self, id: &str) -> Option<String> {
        if !self.exists(id) {
            return None;
        }
        if self.pid(id).is_none() {
            return Some("stopped".into());
        }
        // QEMU runs: a monitor that does not answer in time does not make it stopped.
        let status = qmp(&self.dir.join(id).join("qmp.sock"), "query-status");
        Some(
            match status.ok().as_ref().and_then(|s| s["status"].as_str()) {
                Some("paused") => "paused".into(),
                _ => "running".into(),
            },
        )
    }

    fn pause(&self, id: &str, pause: bool) -> Result<()> {
        qmp(
            &self.dir.join(id).join("qmp.sock"),
            if pause { "stop" } else { "cont" },
        )
        .map(drop)
    }

    fn remove(&self, id: &str) -> Result<()> {
        self.kill(id)?;
        rootfs::remove(&self.dir.join(id))
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_and_names() {
        assert_eq!(quoted("it's"), r"'it'\''s'");
        assert_eq!(quoted(""), "''");
        assert!(shell_name("GREETING_2") && shell_name("_x"));
        assert!(!shell_name("2X") && !shell_name("A-B") && !shell_name(""));
        assert_eq!(mac("2-7-vm"), mac("2-7-vm"));
        assert_ne!(mac("2-7-vm"), mac("2-8-vm"));
    }
}
