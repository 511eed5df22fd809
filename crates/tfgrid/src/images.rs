//! Building images from what a Debian machine has: a container image (a busybox root file system,
//! from Debian's `busybox-static`), and a VM image, the same root with `boot/vmlinuz` (a kernel,
//! from Debian's `linux-image-amd64`) and `boot/initrd.img`: busybox, the kernel's virtio and 9p
//! modules (in load order, from its `modules.dep`) and the guest init of the node agent's VM
//! contract (`crates/zos/guest/init.sh`), as an uncompressed cpio archive, which Linux unpacks as
//! it is. `tfgrid up` names them `demo` and `demo-vm` in its hub; `tfgrid image vm` writes one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const BUSYBOX: &str = "/usr/bin/busybox";
/// The guest side of the VM contract.
const GUEST_INIT: &str = include_str!("../../zos/guest/init.sh");
/// The modules a VM needs from its kernel: its network card and the 9p shares.
const VM_MODULES: &[&str] = &["virtio_pci", "virtio_net", "9pnet_virtio", "9p"];
/// The tools linked to busybox in an image's root.
const TOOLS: &[&str] = &["sh", "sleep", "cat", "echo", "ls", "httpd", "ping", "wget"];

/// Writes a busybox root file system into `root`; `None` when busybox is not installed.
fn busybox_root(root: &Path) -> Result<Option<()>> {
    if !Path::new(BUSYBOX).exists() {
        return Ok(None);
    }
    for sub in ["bin", "tmp", "proc", "dev", "sys", "etc"] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox"))?;
    for tool in TOOLS {
        let link = root.join("bin").join(tool);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    Ok(Some(()))
}

fn pack(root: &Path, archive: &Path) -> Result<()> {
    let status = Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-cf")
        .arg(archive)
        .arg(".")
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar failed to pack {}", root.display());
    }
    Ok(())
}

/// A busybox container image as `<dir>/demo.tar`; `None` when busybox is not installed.
pub fn container_image(dir: &Path) -> Result<Option<PathBuf>> {
    let root = dir.join("demo-rootfs");
    if busybox_root(&root)?.is_none() {
        return Ok(None);
    }
    let archive = dir.join("demo.tar");
    pack(&root, &archive)?;
    Ok(Some(archive))
}

/// The newest kernel in `/boot`, if one is installed.
pub fn newest_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels.pop()
}

/// The modules directory of a kernel `/boot/vmlinuz-<version>`: `/lib/modules/<version>`.
fn modules_dir(kernel: &Path) -> Result<PathBuf> {
    let name = kernel.file_name().unwrap_or_default().to_string_lossy();
    let version = name
        .strip_prefix("vmlinuz-")
        .with_context(|| format!("{} is not named vmlinuz-<version>", kernel.display()))?;
    Ok(PathBuf::from("/lib/modules").join(version))
}

/// The files of `wanted` modules and of everything they need, each after what it needs; a module
/// built into the kernel (`modules.builtin`) needs no file.
fn module_files(modules: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>> {
    let builtin = std::fs::read_to_string(modules.join("modules.builtin")).unwrap_or_default();
    let built_in = |name: &str| {
        builtin.lines().any(|l| {
            Path::new(l)
                .file_name()
                .is_some_and(|f| f.to_string_lossy() == format!("{name}.ko"))
        })
    };
    let dep_path = modules.join("modules.dep");
    let deps_text = std::fs::read_to_string(&dep_path)
        .with_context(|| format!("reading {}", dep_path.display()))?;
    let deps: BTreeMap<&str, Vec<&str>> = deps_text
        .lines()
        .filter_map(|l| {
            let (module, needs) = l.split_once(':')?;
            Some((module, needs.split_whitespace().collect()))
        })
        .collect();
    let by_name = |name: &str| {
        deps.keys()
            .find(|path| {
                Path::new(path)
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy() == format!("{name}.ko"))
            })
            .copied()
    };
    let mut order: Vec<&str> = Vec::new();
    fn visit<'a>(
        module: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a str>>,
        order: &mut Vec<&'a str>,
    ) {
        if order.contains(&module) {
            return;
        }
        for need in deps.get(module).into_iter().flatten() {
            visit(need, deps, order);
        }
        order.push(module);
    }
    for name in wanted.iter().filter(|n| !built_in(n)) {
        let Some(module) = by_name(name) else {
            bail!(
                "the kernel has no module {name}.ko in {} (compressed modules are not supported)",
                dep_path.display()
            );
        };
        visit(module, &deps, &mut order);
    }
    Ok(order.into_iter().map(|m| modules.join(m)).collect())
}

/// An uncompressed cpio archive in the "newc" format, as Linux unpacks an initramfs.
struct Cpio {
    out: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn new() -> Cpio {
        Cpio {
            out: Vec::new(),
            inode: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        let fields = [
            self.inode,
            mode,
            0,
            0,
            1,
            0,
            u32::try_from(data.len()).expect("an initrd file under 4 GiB"),
            0,
            0,
            0,
            0,
            u32::try_from(name.len() + 1).expect("a short name"),
            0,
        ];
        self.inode += 1;
        self.out.extend_from_slice(b"070701");
        for field in fields {
            self.out
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[]);
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

/// The initrd of a VM image: busybox, the modules and the guest init.
fn initrd(kernel: &Path) -> Result<Vec<u8>> {
    let modules = module_files(&modules_dir(kernel)?, VM_MODULES)?;
    let mut cpio = Cpio::new();
    for dir in [
        "bin", "lib", "lib/zos", "proc", "sys", "dev", "newroot", "zos",
    ] {
        cpio.dir(dir);
    }
    cpio.file(
        "bin/busybox",
        0o755,
        &std::fs::read(BUSYBOX).context("reading busybox")?,
    );
    cpio.file("init", 0o755, GUEST_INIT.as_bytes());
    let mut order = String::new();
    for path in &modules {
        let name = path
            .file_name()
            .expect("a module file")
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the module {}", path.display()))?;
        cpio.file(&format!("lib/zos/{name}"), 0o644, &bytes);
        order.push_str(&name);
        order.push('\n');
    }
    cpio.file("lib/zos/modules", 0o644, order.as_bytes());
    Ok(cpio.finish())
}

/// A busybox VM image booting `kernel`, written to `archive`.
pub fn vm_image(kernel: &Path, work: &Path, archive: &Path) -> Result<()> {
    let root = work.join("vm-rootfs");
    if busybox_root(&root)?.is_none() {
        bail!("a VM image needs busybox: install busybox-static");
    }
    let boot = root.join("boot");
    std::fs::create_dir_all(&boot)?;
    std::fs::copy(kernel, boot.join("vmlinuz"))
        .with_context(|| format!("copying the kernel {}", kernel.display()))?;
    let mut file = std::fs::File::create(boot.join("initrd.img"))?;
    file.write_all(&initrd(kernel)?)?;
    pack(&root, archive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_come_after_what_they_need() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("modules.dep"),
            "kernel/a/virtio.ko: kernel/a/ring.ko\nkernel/a/ring.ko:\n\
             kernel/b/virtio_net.ko: kernel/c/failover.ko kernel/a/virtio.ko kernel/a/ring.ko\n\
             kernel/c/failover.ko:\n",
        )
        .unwrap();
        let files = module_files(dir.path(), &["virtio_net", "virtio"]).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["failover.ko", "ring.ko", "virtio.ko", "virtio_net.ko"]
        );
        let missing = module_files(dir.path(), &["9p"]).unwrap_err().to_string();
        assert!(missing.contains("no module 9p.ko"), "{missing}");
        std::fs::write(dir.path().join("modules.builtin"), "kernel/fs/9p/9p.ko\n").unwrap();
        assert_eq!(
            module_files(dir.path(), &["9p"]).unwrap(),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn cpio_entries_are_aligned_and_end_with_the_trailer() {
        let mut cpio = Cpio::new();
        cpio.dir("bin");
        cpio.file("init", 0o755, b"#!/bin/sh\n");
        let out = cpio.finish();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("init\0") && text.contains("#!/bin/sh\n"));
        assert!(text.contains("TRAILER!!!\0"));
        // The mode field of "bin" (the second of the header) says a directory.
        assert_eq!(&out[14..22], b"000041ed");
    }
}
