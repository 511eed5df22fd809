//! The image cache: a zmachine's image is a tar archive fetched by URL once, checked against the
//! blake3 hash its deployment names before anything uses it, and unpacked into a read-only root that
//! every container of that image shares (as the lower layer of its overlay).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::limits::IMAGE_BYTES_MAX;

#[derive(Debug, Clone)]
pub struct Images {
    dir: PathBuf,
}

/// A writer that hashes what passes through it.
struct Hashing<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Images {
    pub fn new(dir: PathBuf) -> Images {
        Images { dir }
    }

    /// The unpacked root of the image at `url` with blake3 `hash`, fetched and checked on first use.
    /// Blocking: run it off the async threads.
    pub fn root(&self, url: &str, hash: &str) -> Result<PathBuf> {
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!("flist_hash must be the 64 hex digits of the image's blake3 hash");
        }
        let hash = hash.to_ascii_lowercase();
        let root = self.dir.join(&hash).join("rootfs");
        if root.is_dir() {
            return Ok(root);
        }
        std::fs::create_dir_all(self.dir.join(&hash))?;
        let archive = self.dir.join(&hash).join("image.tar");
        self.fetch(url, &hash, &archive)?;
        let unpacking = self.dir.join(&hash).join("rootfs.part");
        if unpacking.exists() {
            std::fs::remove_dir_all(&unpacking)?;
        }
        let mut tar = tar::Archive::new(std::fs::File::open(&archive)?);
        tar.set_preserve_permissions(true);
        tar.unpack(&unpacking)
            .with_context(|| format!("unpacking the image {url}"))?;
        std::fs::rename(&unpacking, &root)?;
        std::fs::remove_file(&archive)?;
        Ok(root)
    }

    fn fetch(&self, url: &str, hash: &str, to: &Path) -> Result<()> {
        let mut body: Box<dyn Read> = match url.strip_prefix("file://") {
            Some(path) => {
                Box::new(std::fs::File::open(path).with_context(|| format!("opening {path}"))?)
            }
            None => {
                let response = ureq::get(url)
                    .call()
                    .with_context(|| format!("fetching the image {url}"))?;
                Box::new(response.into_body().into_reader())
            }
        };
        let part = to.with_extension("part");
        let mut out = Hashing {
            inner: std::fs::File::create(&part)?,
            hasher: blake3::Hasher::new(),
        };
        let copied = std::io::copy(&mut (&mut body).take(IMAGE_BYTES_MAX + 1), &mut out)?;
        if copied > IMAGE_BYTES_MAX {
            bail!("the image {url} is larger than {IMAGE_BYTES_MAX} bytes");
        }
        let got = out.hasher.finalize().to_hex().to_string();
        if got != hash {
            let _ = std::fs::remove_file(&part);
            bail!(
                "the image at {url} has blake3 hash {got}, the deployment expects {hash}: refused"
            );
        }
        out.inner.sync_all()?;
        std::fs::rename(&part, to)?;
        Ok(())
    }
}
