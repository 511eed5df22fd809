//! Power loss. zdb's directories live on ext4 over a loop device whose image is a file on a
//! second, private ext4 (itself over a loop device). Freezing that lower file system is the power
//! cut: from that instant no write reaches the image any more, while the upper file system keeps
//! whatever it had not flushed in the page cache. A copy of the image taken while frozen is
//! exactly what the disk held at the cut; the test mounts that copy (replaying ext4's journal, as
//! a machine does when it boots again), starts zdb on it and reads back what zdb acknowledged.
//! Under `--sync` every acknowledged write must be there; without it, writes acknowledged after
//! the last flush are gone, which shows the cut really drops what was not flushed. Needs root.

use super::{Acked, DEADLINE, Server, Writers, assert_all_kept, bulk, ok};
use redis::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Size of the lower file system's image and of the disk image on it (both sparse).
const LOWER_BYTES: u64 = 256 << 20;
const DISK_BYTES: u64 = 128 << 20;

/// Runs a system command; panics with its output if it fails. Returns its standard output.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// An ext4 file system made on a fresh image file of `bytes`, mounted over a loop device.
struct Mounted {
    device: String,
    point: PathBuf,
}

impl Mounted {
    fn make(image: &Path, bytes: u64, point: PathBuf) -> Mounted {
        std::fs::File::create(image)
            .unwrap()
            .set_len(bytes)
            .unwrap();
        run("mkfs.ext4", &["-q", "-F", text(image)]);
        Mounted::mount(image, point)
    }

    /// Mounts the file system in `image` at `point` (ext4 replays its journal first).
    fn mount(image: &Path, point: PathBuf) -> Mounted {
        std::fs::create_dir_all(&point).unwrap();
        let device = run("losetup", &["--find", "--show", text(image)]);
        let mounted = Mounted { device, point };
        run(
            "mount",
            &["-t", "ext4", &mounted.device, text(&mounted.point)],
        );
        mounted
    }
}

impl Drop for Mounted {
    /// Unmounts and detaches, waiting until the loop device let go of its image: until then the
    /// file system holding the image is busy (udev may still be probing the device, say).
    fn drop(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        while !Command::new("umount")
            .arg(&self.point)
            .status()
            .is_ok_and(|s| s.success())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
        let name = self.device.trim_start_matches("/dev/");
        let backing = PathBuf::from(format!("/sys/block/{name}/loop/backing_file"));
        while backing.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The disk zdb runs on, and the file system holding its image.
struct Disk {
    // Fields drop in order: the disk before the file system it lives on.
    upper: Mounted,
    lower: Mounted,
    image: PathBuf,
}

impl Disk {
    fn new(dir: &Path) -> Disk {
        let lower = Mounted::make(&dir.join("lower.img"), LOWER_BYTES, dir.join("lower"));
        let image = lower.point.join("disk.img");
        let upper = Mounted::make(&image, DISK_BYTES, dir.join("disk"));
        Disk {
            upper,
            lower,
            image,
        }
    }
}

/// The lower file system frozen: the power is off. Undone when dropped, so that the disk can be
/// unmounted (what reaches the image then no longer matters: the image was copied at the cut).
struct PowerCut {
    lower: PathBuf,
}

impl Drop for PowerCut {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze")
            .args(["--unfreeze", text(&self.lower)])
            .status();
    }
}

/// zdb running on a disk whose power can be cut.
struct Rig {
    // Fields drop in order: zdb before the disk it runs on.
    server: Server,
    disk: Disk,
    dir: PathBuf,
    flags: Vec<String>,
}

/// Where zdb keeps its directories on the disk.
const ZDB_DIR: &str = "zdb";

impl Rig {
    fn start(dir: &Path, flags: &[&str]) -> Rig {
        let disk = Disk::new(dir);
        let root = disk.upper.point.join(ZDB_DIR);
        std::fs::create_dir_all(&root).unwrap();
        Rig {
            server: Server::start_at(&root, flags),
            disk,
            dir: dir.to_owned(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// Cuts the power: from now on nothing written reaches the disk's image.
    fn cut_power(&self) -> PowerCut {
        let lower = self.disk.lower.point.clone();
        run("fsfreeze", &["--freeze", text(&lower)]);
        PowerCut { lower }
    }

    /// The machine as it boots again after `cut`: zdb killed, the disk as the cut left it
    /// mounted anew, a new zdb started on it.
    fn boot_after(self, cut: PowerCut) -> Booted {
        let copy = self.dir.join("after-the-cut.img");
        run(
            "cp",
            &["--sparse=always", text(&self.disk.image), text(&copy)],
        );
        let Rig {
            mut server,
            disk,
            dir,
            flags,
        } = self;
        // Killed while the disk is frozen: a zdb waiting on the disk dies once it is thawed.
        server.child.kill().unwrap();
        drop(cut);
        server.child.wait().unwrap();
        drop(server);
        drop(disk);
        let restored = Mounted::mount(&copy, dir.join("restored"));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let server = Server::start_at(&restored.point.join(ZDB_DIR), &flags);
        Booted {
            server,
            _disk: restored,
        }
    }
}

/// zdb started again on the disk as a power cut left it.
struct Booted {
    // Fields drop in order: zdb before the disk it runs on.
    server: Server,
    _disk: Mounted,
}

/// Under `--sync` (with group commit on two threads, and data files rotating), every write zdb
/// acknowledged is on the disk after a power cut that came while clients were writing.
#[test]
fn acknowledged_writes_survive_power_loss_with_sync() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--mode",
        "user",
        "--sync",
        "--threads",
        "2",
        "--datasize",
        "512k",
    ];
    let rig = Rig::start(dir.path(), &flags);
    let mut writers = Writers::start(&rig.server, false, 2048);
    writers.wait_for(600);
    let cut = rig.cut_power();
    let booted = rig.boot_after(cut);
    // The writers stop once zdb is gone; what they were told was written is on the disk.
    let acked: Acked = writers.finish();
    assert!(acked.len() >= 600);
    let mut con = booted.server.tcp();
    let info = super::text(ok(&mut con, &[b"NSINFO", b"default"]));
    assert!(
        !info.contains("data_current_id: 0\n"),
        "no rotation: {info}"
    );
    assert_all_kept(&mut con, &acked);
}

/// Without `--sync`, zdb acknowledges a write once the OS has it. A write flushed before the
/// cut (by a `sync` of the disk) survives it; writes zdb acknowledged while the disk was already
/// cut, held only in the page cache, are gone: the cut drops what was not flushed.
#[test]
fn unflushed_writes_are_lost_at_power_loss_without_sync() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start(dir.path(), &["--mode", "user"]);
    let mut con = rig.server.tcp();
    ok(&mut con, &[b"SET", b"flushed", b"before the cut"]);
    run("sync", &["--file-system", text(&rig.disk.upper.point)]);
    let cut = rig.cut_power();
    let unflushed: Vec<String> = (0..200).map(|i| format!("unflushed-{i}")).collect();
    for key in &unflushed {
        assert_eq!(
            ok(&mut con, &[b"SET", key.as_bytes(), b"v"]),
            bulk(key.as_bytes())
        );
    }
    let booted = rig.boot_after(cut);
    let mut con = booted.server.tcp();
    assert_eq!(ok(&mut con, &[b"GET", b"flushed"]), bulk(b"before the cut"));
    for key in &unflushed {
        assert_eq!(
            ok(&mut con, &[b"GET", key.as_bytes()]),
            Value::Nil,
            "{key} survived"
        );
    }
}
