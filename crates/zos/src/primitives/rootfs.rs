//! A machine's root file system: the image's root (shared, read-only) as the lower layer of an
//! overlay whose writable layer is a file system of the machine's root size (an ext4 image on a loop
//! device, so the size is enforced), both mounted `nodev,nosuid`: a device node or a set-uid file a
//! machine makes there opens nothing on the host. Containers run on it; VMs get it over 9p.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::run;
use super::volume::mounted;

/// Mounts (or finds mounted) the root file system of the machine whose directory is `dir`, over
/// the image root `image`, with a writable layer of `size_bytes`; returns the merged root.
pub fn prepare(dir: &Path, image: &Path, size_bytes: u64) -> Result<PathBuf> {
    let (layer_img, layer, rootfs) = (dir.join("layer.img"), dir.join("layer"), dir.join("rootfs"));
    std::fs::create_dir_all(&layer)?;
    std::fs::create_dir_all(&rootfs)?;
    if !mounted(&layer) {
        if !layer_img.exists() {
            let file = std::fs::File::create(&layer_img)?;
            file.set_len(size_bytes)?;
            run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&layer_img))?;
        }
        run(Command::new("mount")
            .args(["-o", "loop,nodev,nosuid"])
            .arg(&layer_img)
            .arg(&layer))?;
    }
    std::fs::create_dir_all(layer.join("upper"))?;
    std::fs::create_dir_all(layer.join("work"))?;
    if !mounted(&rootfs) {
        let options = format!(
            "nodev,nosuid,lowerdir={},upperdir={},workdir={}",
            image.display(),
            layer.join("upper").display(),
            layer.join("work").display()
        );
        run(Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&rootfs))?;
    }
    Ok(rootfs)
}

/// Unmounts the root file system of the machine whose directory is `dir` and deletes the
/// directory with everything in it.
pub fn remove(dir: &Path) -> Result<()> {
    for mount in [dir.join("rootfs"), dir.join("layer")] {
        if mounted(&mount) {
            run(Command::new("umount").arg(&mount))?;
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}
