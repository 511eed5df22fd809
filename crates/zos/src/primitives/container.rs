//! The `zmachine` primitive in container mode: its root file system (`rootfs`: the image under a
//! sized writable layer) run by an OCI runtime (`runc`) with the requested CPU and memory as cgroup
//! limits, its environment and entrypoint, in a network namespace of its own, its output kept in a
//! log. Pausing freezes it; removing kills it and unmounts and deletes everything it used.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{MachineNet, MachineRuntime, rootfs, run};
use tfgrid_types::deployment::{Secret, Zmachine};

#[derive(Debug, Clone)]
pub struct Containers {
    /// One directory per container: layer image, mounts, bundle, log.
    dir: PathBuf,
    /// runc's state directory.
    state: PathBuf,
    runtime: String,
}

impl Containers {
    pub fn new(dir: PathBuf, runtime: String) -> Containers {
        let state = dir.join(".runc");
        Containers {
            dir,
            state,
            runtime,
        }
    }

    fn runc(&self) -> Command {
        let mut cmd = Command::new(&self.runtime);
        cmd.arg("--root").arg(&self.state);
        cmd
    }
}

impl MachineRuntime for Containers {
    fn kind(&self) -> &'static str {
        "container"
    }

    /// Whether the OCI runtime is there and this process may run containers (root).
    fn available(&self) -> Result<()> {
        run(Command::new(&self.runtime).arg("--version"))
            .with_context(|| format!("the OCI runtime {:?} is not installed", self.runtime))?;
        let uid = run(Command::new("id").arg("-u"))?;
        if uid.trim() != "0" {
            bail!("running containers needs root");
        }
        Ok(())
    }

    /// The container's status as the runtime sees it (`running`, `paused`, `stopped`), if it exists.
    fn status(&self, id: &str) -> Option<String> {
        let out = self.runc().args(["state", id]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        state["status"].as_str().map(str::to_owned)
    }

    /// Starts (or restarts) a container of `machine` (its secrets open) over the image root `image`.
    /// `mounts` are (host directory, mountpoint) pairs bound into the container; it joins the
    /// network namespace of `net`, where its address is already.
    fn start(
        &self,
        id: &str,
        hostname: &str,
        machine: &Zmachine,
        image: &Path,
        mounts: &[(PathBuf, String)],
        net: &MachineNet,
    ) -> Result<()> {
        let netns = &net.netns;
        let dir = self.dir.join(id);
        std::fs::create_dir_all(&self.state)?;
        if self.status(id).is_some() {
            run(self.runc().args(["delete", "--force", id]))?;
        }
        let rootfs = rootfs::prepare(&dir, image, machine.root_size())?;
        let mut env =
            vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
        for (key, value) in &machine.env {
            let Secret::Plain(value) = value else {
                bail!("environment variable {key} is still sealed")
            };
            env.push(format!("{key}={value}"));
        }
        let args = if machine.entrypoint.is_empty() {
            vec!["/sbin/init".to_string()]
        } else {
            vec!["/bin/sh".into(), "-c".into(), machine.entrypoint.clone()]
        };
        if let Some(why) = missing_program(&rootfs, &args[0], machine.entrypoint.is_empty()) {
            bail!("{why}");
        }
        let caps = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
        ];
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": { "uid": 0, "gid": 0 },
                "args": args,
                "env": env,
                "cwd": "/",
                "noNewPrivileges": true,
                "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
                "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }]
            },
            "root": { "path": rootfs, "readonly": false },
            "hostname": hostname,
            "mounts": [
                { "destination": "/proc", "type": "proc", "source": "proc" },
                { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
                { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
                { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
                { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] }
            ],
            "linux": {
                "cgroupsPath": format!("/zos/{id}"),
                "resources": {
                    "memory": { "limit": machine.compute_capacity.memory },
                    "cpu": { "quota": machine.compute_capacity.cpu as i64 * 100_000, "period": 100_000 },
                    "devices": [{ "allow": false, "access": "rwm" }]
                },
                "namespaces": [{ "type": "pid" }, { "type": "network", "path": netns }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }],
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        let mut config = config;
        for (source, destination) in mounts {
            config["mounts"].as_array_mut().expect("mounts is a list").push(json!({
                "destination": destination, "type": "bind", "source": source, "options": ["rbind", "rw"]
            }));
        }
        std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("output.log"))?;
        let status = self
            .runc()
            .args(["run", "--detach", "--bundle"])
            .arg(&dir)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("running runc")?;
        if !status.success() {
            let log = std::fs::read_to_string(dir.join("output.log")).unwrap_or_default();
            bail!(
                "the container did not start: {}",
                log.lines().last().unwrap_or("runc failed")
            );
        }
        Ok(())
    }

    fn pause(&self, id: &str, pause: bool) -> Result<()> {
        run(self
            .runc()
            .args([if pause { "pause" } else { "resume" }, id]))?;
        Ok(())
    }

    /// Kills the container and removes everything it used: runtime state, mounts, files.
    fn remove(&self, id: &str) -> Result<()> {
        if self.status(id).is_some() {
            run(self.runc().args(["delete", "--force", id]))?;
        }
        rootfs::remove(&self.dir.join(id))
    }

    /// The directory holding a container's files (for its log and tests).
    fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }
}

/// Why the container cannot start `program` from its root file system `rootfs`, if it cannot (a
/// link is taken as there: it resolves inside the container). `init`: the machine gave no
/// entrypoint, so the image's own init was to run.
fn missing_program(rootfs: &Path, program: &str, init: bool) -> Option<String> {
    let path = rootfs.join(program.trim_start_matches('/'));
    if std::fs::symlink_metadata(&path).is_ok() {
        return None;
    }
    Some(match init {
        true => format!(
            "the machine has no entrypoint and its image has no {program} to start instead: give \
             it an entrypoint (the command to run)"
        ),
        false => format!("the image has no {program} to run the entrypoint with"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_said_before_the_runtime_runs() {
        let root = tempfile::tempdir().unwrap();
        let message = missing_program(root.path(), "/sbin/init", true).unwrap();
        assert!(message.contains("has no entrypoint"), "{message}");
        let message = missing_program(root.path(), "/bin/sh", false).unwrap();
        assert_eq!(
            message,
            "the image has no /bin/sh to run the entrypoint with"
        );
        std::fs::create_dir_all(root.path().join("bin")).unwrap();
        std::os::unix::fs::symlink("busybox", root.path().join("bin/sh")).unwrap();
        assert_eq!(missing_program(root.path(), "/bin/sh", false), None);
    }
}
