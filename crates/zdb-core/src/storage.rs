//! The engine's storage layer: every file the engine touches goes through here. An [`AppendFile`]
//! keeps appended bytes in memory until [`AppendFile::flush`] hands them to the OS in one `pwrite`,
//! and keeps a bounded window of the most recent bytes after that, so reads of recent entries need
//! no system call.

use crate::error::{IoStep, Result};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An append-only file with a write-behind buffer and a read window over its tail.
///
/// `buf` holds the bytes `[buf_start, len)`: first already-flushed bytes kept for reads (at most
/// `cache_max` of them after a flush), then the pending bytes `[flushed_len, len)`.
#[derive(Debug)]
pub struct AppendFile {
    file: Arc<File>,
    buf_start: u64,
    flushed_len: u64,
    buf: Vec<u8>,
    cache_max: usize,
}

impl AppendFile {
    /// Creates a new file (truncating any leftover) holding `header`, synced to disk with its directory.
    pub fn create(path: &Path, header: &[u8]) -> Result<AppendFile> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .step("create file")?;
        file.write_all(header).step("write file header")?;
        file.sync_all().step("sync new file")?;
        sync_dir(path)?;
        let len = header.len() as u64;
        Ok(AppendFile {
            file: Arc::new(file),
            buf_start: len,
            flushed_len: len,
            buf: Vec::new(),
            cache_max: 0,
        })
    }

    /// Opens an existing file for appending at its current end.
    pub fn open(path: &Path) -> Result<AppendFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .step("open file")?;
        let len = file.metadata().step("stat file")?.len();
        Ok(AppendFile {
            file: Arc::new(file),
            buf_start: len,
            flushed_len: len,
            buf: Vec::new(),
            cache_max: 0,
        })
    }

    /// Keeps up to `bytes` of the most recently flushed bytes in memory for reads.
    pub fn set_cache_max(&mut self, bytes: usize) {
        self.cache_max = bytes;
    }

    /// Logical length: flushed bytes plus pending bytes.
    pub fn len(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    /// Whether the file holds nothing at all (not even a header).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes appended but not yet handed to the OS.
    pub fn pending_len(&self) -> usize {
        (self.len() - self.flushed_len) as usize
    }

    /// The buffer whose end is the end of the file: encoders append to it in place.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Reads exactly `out.len()` bytes at `offset`, from memory when it can.
    pub fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        let end = offset + out.len() as u64;
        assert!(end <= self.len(), "read beyond the end of an append file");
        if offset >= self.buf_start {
            let start = (offset - self.buf_start) as usize;
            out.copy_from_slice(&self.buf[start..start + out.len()]);
            return Ok(());
        }
        if end <= self.buf_start {
            return self.file.read_exact_at(out, offset).step("read file");
        }
        let split = (self.buf_start - offset) as usize;
        self.file
            .read_exact_at(&mut out[..split], offset)
            .step("read file")?;
        let rest = out.len() - split;
        out[split..].copy_from_slice(&self.buf[..rest]);
        Ok(())
    }

    /// Hands the pending bytes to the OS. Returns whether anything was written.
    pub fn flush(&mut self) -> Result<bool> {
        let pending_at = (self.flushed_len - self.buf_start) as usize;
        if pending_at == self.buf.len() {
            return Ok(false);
        }
        self.file
            .write_all_at(&self.buf[pending_at..], self.flushed_len)
            .step("append to file")?;
        self.flushed_len = self.len();
        if self.buf.len() > self.cache_max {
            // Keep the newest half of the window, so trimming happens once per half window written.
            let keep = self.cache_max / 2;
            let drop = self.buf.len() - keep;
            self.buf.drain(..drop);
            self.buf_start += drop as u64;
            // Give back memory only after an unusually large batch, not on every trim.
            let keep_capacity = self.cache_max.max(PENDING_KEEP_BYTES);
            if self.buf.capacity() > 2 * keep_capacity {
                self.buf.shrink_to(keep_capacity);
            }
        }
        Ok(true)
    }

    /// Flushes, then waits for the data to reach the disk.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.file.sync_data().step("sync file")
    }

    /// Drops everything after `len` (pending bytes first, then the file itself).
    pub fn truncate(&mut self, len: u64) -> Result<()> {
        if len < self.flushed_len {
            self.file.set_len(len).step("truncate file")?;
            self.file.sync_all().step("sync truncated file")?;
            self.flushed_len = len;
        }
        if len >= self.buf_start {
            self.buf.truncate((len - self.buf_start) as usize);
        } else {
            self.buf.clear();
            self.buf_start = len;
        }
        Ok(())
    }

    /// A handle that can `sync_data` outside the engine's lock.
    pub fn handle(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }
}

/// The buffer keeps this much capacity between batches when no read window is configured.
const PENDING_KEEP_BYTES: usize = 1 << 20;

/// Opens a closed file for reading.
pub fn open_read(path: &Path) -> Result<File> {
    File::open(path).step("open file for reading")
}

/// Ids of the files named `<prefix><decimal id>` in `dir`, with their lengths.
pub fn list_ids(dir: &Path, prefix: char) -> Result<BTreeMap<u32, u64>> {
    let mut ids = BTreeMap::new();
    for entry in fs::read_dir(dir).step("list directory")? {
        let entry = entry.step("list directory")?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(digits) = name.strip_prefix(prefix) else {
            continue;
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(id) = digits.parse::<u32>() else {
            continue;
        };
        ids.insert(id, entry.metadata().step("stat file")?.len());
    }
    Ok(ids)
}

/// Subdirectories of `dir`.
pub fn list_dirs(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).step("list directory")? {
        let entry = entry.step("list directory")?;
        if entry.file_type().step("stat directory entry")?.is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a whole file.
pub fn read_all(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).step("read file")
}

/// Whether `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Creates a directory and its parents.
pub fn create_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).step("create directory")
}

/// Removes a directory and everything below it (no error if absent).
pub fn remove_dir(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.step("remove directory"),
    }
}

/// Removes one file (no error if absent).
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.step("remove file"),
    }
}

/// Truncates a closed file to `len`.
pub fn truncate_file(path: &Path, len: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .step("open file to truncate")?;
    file.set_len(len).step("truncate file")?;
    file.sync_all().step("sync truncated file")
}

/// Writes a small file atomically: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp: PathBuf = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp).step("create temporary file")?;
        file.write_all(bytes).step("write temporary file")?;
        file.sync_all().step("sync temporary file")?;
    }
    fs::rename(&tmp, path).step("rename temporary file")?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .step("sync directory")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_span_file_and_pending_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = AppendFile::create(&path, b"HEAD").unwrap();
        file.buffer().extend_from_slice(b"abc");
        file.flush().unwrap();
        file.buffer().extend_from_slice(b"def");
        let mut buf = [0u8; 4];
        file.read_at(5, &mut buf).unwrap();
        assert_eq!(&buf, b"bcde");
        assert_eq!(file.len(), 10);
        file.truncate(6).unwrap();
        assert_eq!(file.len(), 6);
        file.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"HEADab");
    }

    #[test]
    fn read_window_keeps_recent_bytes_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = AppendFile::create(&path, b"HEAD").unwrap();
        file.set_cache_max(8);
        for chunk in [&b"0123"[..], b"4567", b"89ab", b"cdef"] {
            file.buffer().extend_from_slice(chunk);
            file.flush().unwrap();
            assert!(file.buf.len() <= 8);
        }
        for offset in 0..20u64 {
            let mut byte = [0u8; 1];
            file.read_at(offset, &mut byte).unwrap();
            assert_eq!(byte[0], b"HEAD0123456789abcdef"[offset as usize]);
        }
        let mut span = [0u8; 10];
        file.read_at(8, &mut span).unwrap();
        assert_eq!(&span, b"456789abcd");
        file.truncate(10).unwrap();
        file.buffer().extend_from_slice(b"XY");
        file.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"HEAD012345XY");
        file.truncate(2).unwrap();
        assert_eq!(file.len(), 2);
    }
}
