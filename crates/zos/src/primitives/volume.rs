//! The `zmount` and `volume` primitives: storage of the requested size, an ext4 file system on a loop
//! device (so the size is enforced by the file system), mounted where containers bind it, and
//! removed with everything it held when its contract ends. A larger size grows the file system while
//! it is mounted (ext4's online resize), or, on a kernel that refuses that (as this project's CI
//! machines do), unmounted when no machine has it mounted; a volume that a running machine holds
//! there keeps its size and its result says why. The size the file system really has is recorded
//! only once it has grown, so a growth that failed is tried again, and said, at the next apply.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use tfgrid_types::deployment::{ResultData, Volume, Workload, WorkloadData, Zmount};

use super::run;

#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
    /// The tool that grows a mounted file system.
    resize: PathBuf,
}

pub(crate) fn mounted(path: &Path) -> bool {
    mount_source(path).is_some()
}

/// The device mounted at `path`, if something is.
fn mount_source(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let target = path.to_string_lossy();
    mounts.lines().find_map(|l| {
        let mut fields = l.split_whitespace();
        let source = fields.next()?;
        (fields.next() == Some(&*target)).then(|| source.to_owned())
    })
}

impl Volumes {
    pub fn new(dir: PathBuf) -> Volumes {
        Volumes {
            dir,
            resize: "resize2fs".into(),
        }
    }

    /// Where a volume's files are, once it exists.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("mnt")
    }

    /// Creates the volume (or mounts it again after a restart); a larger size grows it.
    pub fn ensure(&self, id: &str, size: u64) -> Result<PathBuf> {
        let dir = self.dir.join(id);
        let (image, mnt, recorded) = (dir.join("disk.img"), dir.join("mnt"), dir.join("size"));
        std::fs::create_dir_all(&mnt)?;
        if !image.exists() {
            let file = std::fs::File::create_new(&image)?;
            file.set_len(size)?;
            run(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0"])
                .arg(&image))?;
            std::fs::write(&recorded, size.to_string())?;
        }
        // Volumes made before sizes were recorded: their file's length is their size.
        let current = match std::fs::read_to_string(&recorded) {
            Ok(text) => text.trim().parse().context("the volume's recorded size")?,
            Err(_) => std::fs::metadata(&image)?.len(),
        };
        if size < current {
            bail!("a volume cannot shrink ({current} to {size} bytes)");
        }
        if !mounted(&mnt) {
            run(Command::new("mount")
                .args(["-o", "loop,nodev,nosuid"])
                .arg(&image)
                .arg(&mnt))?;
        }
        if size > current {
            self.grow(&image, &mnt, size).with_context(|| {
                format!(
                    "growing the volume from {current} to {size} bytes failed; it keeps its old \
                     size and its data, and the next update tries again"
                )
            })?;
            std::fs::write(&recorded, size.to_string())?;
        }
        Ok(mnt)
    }

    /// Grows the file system of `image`, mounted at `mnt`, to `size` bytes: online while mounted,
    /// and where the kernel refuses that, offline when no machine has it mounted.
    fn grow(&self, image: &Path, mnt: &Path, size: u64) -> Result<()> {
        let file = std::fs::OpenOptions::new().write(true).open(image)?;
        if file.metadata()?.len() < size {
            file.set_len(size)?;
        }
        let device = mount_source(mnt).context("the volume's loop device")?;
        run(Command::new("losetup").args(["-c", &device]))?;
        let Err(online) = run(Command::new(&self.resize).arg(&device)) else {
            return Ok(());
        };
        // Offline: unmounted here, the loop device goes away unless a machine's mount holds it.
        run(Command::new("umount").arg(mnt))?;
        let held = Path::new("/sys/block")
            .join(device.trim_start_matches("/dev/"))
            .join("loop/backing_file")
            .exists();
        let offline = match held {
            true => Err(anyhow::anyhow!(
                "a machine has it mounted: remove the machines that mount it, or apply the new \
                 size with them stopped"
            )),
            false => run(Command::new("e2fsck").args(["-f", "-p"]).arg(image))
                .and_then(|_| run(Command::new(&self.resize).arg(image))),
        };
        run(Command::new("mount")
            .args(["-o", "loop,nodev,nosuid"])
            .arg(image)
            .arg(mnt))?;
        offline.map(drop).with_context(|| {
            format!("this kernel refuses to grow a mounted file system ({online:#}), and offline")
        })
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

impl super::Primitive for Volumes {
    fn install<'a>(
        &'a mut self,
        at: super::Target<'a>,
        w: &'a Workload,
    ) -> super::Op<'a, ResultData> {
        Box::pin(async move {
            let size = match &w.data {
                WorkloadData::Zmount(Zmount { size }) | WorkloadData::Volume(Volume { size }) => {
                    *size
                }
                _ => bail!("{} is not a volume", w.name),
            };
            let (volumes, id) = (self.clone(), at.id(&w.name));
            let moved = id.clone();
            tokio::task::spawn_blocking(move || volumes.ensure(&moved, size))
                .await
                .context("the volume task")??;
            Ok(match w.data {
                WorkloadData::Zmount(_) => ResultData::Zmount { volume_id: id },
                _ => ResultData::Volume { id },
            })
        })
    }

    fn remove<'a>(&'a mut self, at: super::Target<'a>, w: &'a Workload) -> super::Op<'a, ()> {
        let (volumes, id) = (self.clone(), at.id(&w.name));
        Box::pin(async move { tokio::task::spawn_blocking(move || volumes.remove(&id)).await? })
    }

    fn pause<'a>(
        &'a mut self,
        _: super::Target<'a>,
        _: &'a Workload,
        _: bool,
    ) -> super::Op<'a, ()> {
        super::nothing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the file system mounted at `mnt`, in bytes.
    fn fs_size(mnt: &Path) -> u64 {
        let out = run(Command::new("df").args(["-B1", "--output=size"]).arg(mnt)).unwrap();
        out.lines().nth(1).unwrap().trim().parse().unwrap()
    }

    /// Needs root (loop mounts).
    #[test]
    fn a_failed_growth_is_said_and_tried_again() {
        const MIB: u64 = 1024 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let volumes = Volumes::new(dir.path().to_path_buf());
        let mnt = volumes.ensure("v", 64 * MIB).unwrap();
        let small = fs_size(&mnt);
        assert!(small < 64 * MIB, "{small}");

        // The growth fails: the apply says so, and the volume keeps its size.
        let failing = Volumes {
            resize: "false".into(),
            ..volumes.clone()
        };
        let error = format!("{:#}", failing.ensure("v", 256 * MIB).unwrap_err());
        assert!(
            error.contains("growing the volume from 67108864 to 268435456 bytes failed"),
            "{error}"
        );
        assert!(
            error.contains("refuses to grow a mounted file system"),
            "{error}"
        );
        assert!(mounted(&mnt));
        assert_eq!(fs_size(&mnt), small);

        // The next apply grows it.
        volumes.ensure("v", 256 * MIB).unwrap();
        assert!(fs_size(&mnt) > 200 * MIB, "{}", fs_size(&mnt));
        // Shrinking is refused.
        assert!(volumes.ensure("v", 64 * MIB).is_err());
        volumes.remove("v").unwrap();
        assert!(!mounted(&mnt));
    }
}
