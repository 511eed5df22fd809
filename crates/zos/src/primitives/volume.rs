//! The `zmount` and `volume` primitives: storage of the requested size, an ext4 file system on a loop
//! device (so the size is enforced by the file system), mounted where containers bind it, and
//! removed with everything it held when its contract ends.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::run;

#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

pub(crate) fn mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let target = path.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&*target))
}

impl Volumes {
    pub fn new(dir: PathBuf) -> Volumes {
        Volumes { dir }
    }

    /// Where a volume's files are, once it exists.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("mnt")
    }

    /// Creates the volume (or mounts it again after a restart); a larger size grows it.
    pub fn ensure(&self, id: &str, size: u64) -> Result<PathBuf> {
        let dir = self.dir.join(id);
        let (image, mnt) = (dir.join("disk.img"), dir.join("mnt"));
        std::fs::create_dir_all(&mnt)?;
        let fresh = !image.exists();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&image)?;
        let old = file.metadata()?.len();
        if size < old {
            bail!("a volume cannot shrink ({old} to {size} bytes)");
        }
        file.set_len(size)?;
        if fresh {
            run(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0"])
                .arg(&image))?;
        }
        if !mounted(&mnt) {
            run(Command::new("mount")
                .args(["-o", "loop,nodev,nosuid"])
                .arg(&image)
                .arg(&mnt))?;
        }
        if size > old && !fresh {
            // Grow the file system to the file's new size (online, while mounted).
            let device = std::fs::read_to_string("/proc/mounts")?
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(&*mnt.to_string_lossy()))
                .and_then(|l| l.split_whitespace().next().map(str::to_owned))
                .context("the volume's loop device")?;
            run(Command::new("losetup").args(["-c", &device]))?;
            run(Command::new("resize2fs").arg(&device))?;
        }
        Ok(mnt)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir.join(id);
        let mnt = dir.join("mnt");
        if mounted(&mnt) {
            run(Command::new("umount").arg(&mnt))?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }
}
