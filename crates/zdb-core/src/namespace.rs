//! One namespace: its data and index files, its key index, and every operation on them (set, get,
//! delete, scan, history, jump, flush), plus recovery when it is opened: a torn data tail is cut and
//! an index that is missing or behind its data file is rebuilt from the data.

use crate::error::{Error, IoStep, Result};
use crate::format::{
    DATA_HEADER_SIZE, DATA_MAGIC, DataHeader, FILE_HEADER_SIZE, FLAG_DELETED, FileHeader,
    INDEX_HEADER_SIZE, INDEX_MAGIC, IndexHeader, Mode, NONE_U32, crc,
};
use crate::keys::{Keys, Loc};
use crate::settings::Settings;
use crate::storage::{self, AppendFile};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest key, as in 0-db (the length is stored in one byte).
pub const KEY_MAX: usize = 255;
/// Largest payload the engine stores (0-db's 8 MiB request limit).
pub const VALUE_MAX: usize = 8 * 1024 * 1024;
/// Length of a scan cursor (as 0-db's): key length, file id, payload length, index offset, crc.
pub const CURSOR_LEN: usize = 17;
/// Length of a history key: file id and data offset.
pub const HISTORY_KEY_LEN: usize = 8;
/// Index bytes kept in memory before they are handed to the OS (the index is rebuilt from data after a crash).
const INDEX_PENDING_MAX: usize = 64 * 1024;
/// Closed data files kept open for reads.
const READERS_MAX: usize = 64;
/// Index entries a scan call may visit before it returns what it has.
const SCAN_VISIT_MAX: usize = 100_000;
/// Bytes read from an index file per chunk while scanning.
const SCAN_CHUNK_BYTES: u64 = 64 * 1024;

/// Name of the descriptor file in the namespace's index directory.
pub const DESCRIPTOR_FILE: &str = "zdb-namespace";

/// What a SET did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    /// A new version was appended; the key (the allocated id in sequential mode).
    Written(Vec<u8>),
    /// The value is byte-identical to the live one: nothing written.
    Unchanged,
}

/// One entry of a scan page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEntry {
    pub key: Vec<u8>,
    pub len: u32,
    pub ts: u32,
}

/// A scan page: the cursor of the last visited entry and the live entries found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    pub cursor: Vec<u8>,
    pub entries: Vec<ScanEntry>,
}

/// One version of a key, as HISTORY returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// History key of the previous version, if any.
    pub previous: Option<[u8; HISTORY_KEY_LEN]>,
    pub ts: u32,
    pub payload: Vec<u8>,
}

/// A raw data entry, as DATA RAW returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub key: Vec<u8>,
    pub previous_offset: u32,
    pub crc: u32,
    pub flags: u8,
    pub ts: u32,
    /// `None` for a deletion marker.
    pub payload: Option<Vec<u8>>,
}

/// Counters and sizes reported by NSINFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsStats {
    pub entries: u64,
    pub next_id: u64,
    pub live_bytes: u64,
    pub data_disk_bytes: u64,
    pub index_disk_bytes: u64,
    pub index_memory_bytes: u64,
    pub current_file: u32,
    pub current_offset: u64,
    pub recovered_bytes_cut: u64,
    pub recovered_index_entries: u64,
}

#[derive(Debug, Clone, Copy)]
struct ClosedFile {
    data_len: u64,
    index_len: u64,
    index_last: u32,
}

/// Options the engine passes to each namespace.
#[derive(Debug, Clone)]
pub struct NsOptions {
    pub datasize: u64,
    pub sync_on_rotate: bool,
    /// Bytes of the current data file's tail kept in memory for reads.
    pub read_cache_bytes: usize,
}

/// An open namespace.
#[derive(Debug)]
pub struct Namespace {
    name: String,
    settings: Settings,
    /// Read-only until unlocked (runtime only).
    pub locked: bool,
    /// No reads or writes until unfrozen (runtime only).
    pub frozen: bool,
    index_dir: PathBuf,
    data_dir: PathBuf,
    options: NsOptions,
    current: u32,
    data: AppendFile,
    index: AppendFile,
    last_entry: u32,
    closed: BTreeMap<u32, ClosedFile>,
    readers: HashMap<u32, File>,
    keys: Keys,
    live_bytes: u64,
    dirty_index: BTreeSet<u32>,
    recovered_bytes_cut: u64,
    recovered_index_entries: u64,
}

impl Namespace {
    /// Creates a new namespace on disk with `settings`.
    pub fn create(
        name: &str,
        index_root: &Path,
        data_root: &Path,
        settings: Settings,
        options: NsOptions,
    ) -> Result<Namespace> {
        let index_dir = index_root.join(name);
        let data_dir = data_root.join(name);
        storage::create_dir(&index_dir)?;
        storage::create_dir(&data_dir)?;
        storage::write_atomic(&index_dir.join(DESCRIPTOR_FILE), &settings.encode(name))?;
        Self::open(name, index_root, data_root, options)
    }

    /// Opens an existing namespace, recovering its files.
    pub fn open(
        name: &str,
        index_root: &Path,
        data_root: &Path,
        options: NsOptions,
    ) -> Result<Namespace> {
        let index_dir = index_root.join(name);
        let data_dir = data_root.join(name);
        storage::create_dir(&data_dir)?;
        let (_, settings) =
            Settings::decode(&storage::read_all(&index_dir.join(DESCRIPTOR_FILE))?)?;
        let mode = settings.mode;
        let keys = match mode {
            Mode::User => Keys::user(),
            Mode::Seq => Keys::seq(),
        };
        let data_ids = storage::list_ids(&data_dir, 'd')?;
        let index_ids = storage::list_ids(&index_dir, 'i')?;
        let last = data_ids
            .keys()
            .chain(index_ids.keys())
            .max()
            .copied()
            .unwrap_or(0);
        // Placeholder files, replaced below once recovery has run.
        let data_path = data_dir.join(format!("d{last}"));
        let index_path = index_dir.join(format!("i{last}"));
        if !data_ids.contains_key(&last) {
            AppendFile::create(&data_path, &data_header(last, mode))?;
        }
        if !index_ids.contains_key(&last) {
            AppendFile::create(&index_path, &index_header(last, mode))?;
        }
        let mut ns = Namespace {
            name: name.to_owned(),
            settings,
            locked: false,
            frozen: false,
            index_dir,
            data_dir,
            options,
            current: last,
            data: AppendFile::open(&data_path)?,
            index: AppendFile::open(&index_path)?,
            last_entry: NONE_U32,
            closed: BTreeMap::new(),
            readers: HashMap::new(),
            keys,
            live_bytes: 0,
            dirty_index: BTreeSet::new(),
            recovered_bytes_cut: 0,
            recovered_index_entries: 0,
        };
        let ids: BTreeSet<u32> = data_ids.keys().chain(index_ids.keys()).copied().collect();
        for id in ids {
            ns.recover_file(id)?;
        }
        ns.data = AppendFile::open(&ns.data_path(last))?;
        ns.data.set_cache_max(ns.options.read_cache_bytes);
        ns.index = AppendFile::open(&ns.index_path(last))?;
        ns.closed.remove(&last);
        Ok(ns)
    }

    /// Recovers one file pair: validates headers, loads the index, cuts entries that point past the
    /// data, rebuilds missing index entries from the data tail, cuts a torn data tail, replays into memory.
    fn recover_file(&mut self, id: u32) -> Result<()> {
        let mode = self.settings.mode;
        let data_path = self.data_path(id);
        let index_path = self.index_path(id);
        if !data_path.exists() {
            AppendFile::create(&data_path, &data_header(id, mode))?;
        }
        let data_bytes_len = std::fs::metadata(&data_path).step("stat data file")?.len();
        let mut head = [0u8; FILE_HEADER_SIZE as usize];
        let data_file = storage::open_read(&data_path)?;
        let header_ok = data_bytes_len >= u64::from(FILE_HEADER_SIZE)
            && data_file.read_exact_at(&mut head, 0).is_ok()
            && FileHeader::decode(&head).is_some_and(|h| h.magic == DATA_MAGIC && h.file_id == id);
        if !header_ok {
            if data_bytes_len <= u64::from(FILE_HEADER_SIZE) {
                // Torn while being created: start the file again.
                AppendFile::create(&data_path, &data_header(id, mode))?;
                AppendFile::create(&index_path, &index_header(id, mode))?;
                self.closed.insert(
                    id,
                    ClosedFile {
                        data_len: u64::from(FILE_HEADER_SIZE),
                        index_len: u64::from(FILE_HEADER_SIZE),
                        index_last: NONE_U32,
                    },
                );
                return Ok(());
            }
            return Err(Error::Corrupt {
                what: format!("data file header of {}", data_path.display()),
            });
        }
        let found_mode = FileHeader::decode(&head).map(|h| h.mode);
        if found_mode != Some(mode) {
            return Err(Error::Corrupt {
                what: format!("mode in {}", data_path.display()),
            });
        }
        // Load the index entries that are valid and point inside the data file.
        let index_bytes = if index_path.exists() {
            storage::read_all(&index_path)?
        } else {
            Vec::new()
        };
        let index_valid = FileHeader::decode(&index_bytes)
            .is_some_and(|h| h.magic == INDEX_MAGIC && h.file_id == id && h.mode == mode);
        let mut pos = FILE_HEADER_SIZE as usize;
        let mut data_end = u64::from(FILE_HEADER_SIZE);
        let mut last_entry = NONE_U32;
        let mut replay: Vec<(Vec<u8>, Loc, bool)> = Vec::new();
        if index_valid {
            while let Some((h, key)) = IndexHeader::decode(&index_bytes[pos..]) {
                let entry_end = u64::from(h.data_offset)
                    + u64::from(DATA_HEADER_SIZE)
                    + key.len() as u64
                    + u64::from(h.payload_len);
                if u64::from(h.data_offset) != data_end || entry_end > data_bytes_len {
                    break;
                }
                replay.push((
                    key.to_vec(),
                    Loc {
                        file_id: id,
                        data_off: h.data_offset,
                        len: h.payload_len,
                        ts: h.timestamp,
                    },
                    h.flags & FLAG_DELETED != 0,
                ));
                last_entry = pos as u32;
                data_end = entry_end;
                pos += h.entry_size() as usize;
            }
        }
        let index_end = pos as u64;
        // Rewrite the index file if it was missing, foreign, or carries a torn or stale tail.
        if !index_valid {
            AppendFile::create(&index_path, &index_header(id, mode))?;
        } else if index_end < index_bytes.len() as u64 {
            storage::truncate_file(&index_path, index_end)?;
        }
        // Rebuild index entries for the data written after the last indexed entry.
        let mut index = AppendFile::open(&index_path)?;
        let mut reader = BufReader::with_capacity(256 * 1024, data_file);
        reader
            .seek(SeekFrom::Start(data_end))
            .step("seek data file")?;
        let mut offset = data_end;
        while let Some((h, key)) = read_data_entry(&mut reader, data_bytes_len - offset)? {
            let size = h.entry_size();
            let idx_off = index.len() as u32;
            IndexHeader {
                key_len: h.key_len,
                flags: h.flags,
                data_offset: offset as u32,
                payload_len: h.payload_len,
                payload_crc: h.payload_crc,
                timestamp: h.timestamp,
                prev_entry: last_entry,
            }
            .encode_with_key(&key, index.buffer());
            last_entry = idx_off;
            replay.push((
                key,
                Loc {
                    file_id: id,
                    data_off: offset as u32,
                    len: h.payload_len,
                    ts: h.timestamp,
                },
                h.flags & FLAG_DELETED != 0,
            ));
            self.recovered_index_entries += 1;
            offset += size;
        }
        index.sync()?;
        if offset < data_bytes_len {
            self.recovered_bytes_cut += data_bytes_len - offset;
            storage::truncate_file(&data_path, offset)?;
        }
        for (key, loc, deleted) in replay {
            self.apply(&key, loc, deleted);
        }
        self.closed.insert(
            id,
            ClosedFile {
                data_len: offset,
                index_len: index.len(),
                index_last: last_entry,
            },
        );
        if id == self.current {
            self.last_entry = last_entry;
        }
        Ok(())
    }

    fn data_path(&self, id: u32) -> PathBuf {
        self.data_dir.join(format!("d{id}"))
    }

    fn index_path(&self, id: u32) -> PathBuf {
        self.index_dir.join(format!("i{id}"))
    }

    /// Applies one entry to the in-memory index.
    fn apply(&mut self, key: &[u8], loc: Loc, deleted: bool) {
        if deleted {
            if let Some(old) = self.keys.remove(key) {
                self.live_bytes -= u64::from(old.len);
            }
            return;
        }
        if self.settings.mode == Mode::Seq && key.len() != 8 {
            return;
        }
        let old = self.keys.insert(key, loc);
        self.live_bytes += u64::from(loc.len);
        if let Some(old) = old {
            self.live_bytes -= u64::from(old.len);
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn mode(&self) -> Mode {
        self.settings.mode
    }

    /// Replaces the persistent settings and saves the descriptor. A mode change needs an empty namespace.
    pub fn update_settings(&mut self, settings: Settings) -> Result<()> {
        if settings.mode != self.settings.mode {
            if self.keys.next_id() > 0 || self.data.len() > u64::from(FILE_HEADER_SIZE) {
                return Err(Error::ModeInUse);
            }
            self.settings = settings;
            return self.reset_files();
        }
        storage::write_atomic(
            &self.index_dir.join(DESCRIPTOR_FILE),
            &settings.encode(&self.name),
        )?;
        self.settings = settings;
        Ok(())
    }

    /// Id of the data file being appended to.
    pub fn current_file(&self) -> u32 {
        self.current
    }

    /// Looks up the live version of `key`.
    pub fn lookup(&self, key: &[u8]) -> Option<Loc> {
        self.keys.get(key)
    }

    /// Number of live keys.
    pub fn len(&self) -> u64 {
        self.keys.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Value of `key`, or `None` if missing or deleted.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(loc) = self.keys.get(key) else {
            return Ok(None);
        };
        self.read_payload(loc, key.len()).map(Some)
    }

    /// Stores `value` under `key` (an empty key allocates an id in sequential mode).
    pub fn set(&mut self, key: &[u8], value: &[u8], ts: u32) -> Result<SetOutcome> {
        self.set_inner(key, value, ts, false)
    }

    /// Like [`Namespace::set`], but in sequential mode also accepts ids not allocated yet (gaps
    /// stay vacant): used by replication, which replays the master's ids.
    pub fn set_replicated(&mut self, key: &[u8], value: &[u8], ts: u32) -> Result<SetOutcome> {
        self.set_inner(key, value, ts, true)
    }

    fn set_inner(
        &mut self,
        key: &[u8],
        value: &[u8],
        ts: u32,
        create_seq: bool,
    ) -> Result<SetOutcome> {
        if key.len() > KEY_MAX {
            return Err(Error::KeyTooLarge);
        }
        if value.len() > VALUE_MAX {
            return Err(Error::ValueTooLarge);
        }
        let id_key;
        let (key, existing) = match self.settings.mode {
            Mode::User => {
                if key.is_empty() {
                    return Err(Error::KeyNeeded);
                }
                (key, self.keys.get(key))
            }
            Mode::Seq if key.is_empty() => {
                id_key = self.keys.allocate_id().to_le_bytes();
                (&id_key[..], None)
            }
            Mode::Seq => {
                let existing = self.keys.get(key);
                let next = crate::keys::seq_id(key).is_some_and(|id| id >= self.keys.next_id());
                if existing.is_none() && !(create_seq && next) {
                    return Err(Error::OnlyUpdate);
                }
                (key, existing)
            }
        };
        if let Some(old) = existing {
            if old.len as usize == value.len() && self.read_payload(old, key.len())? == value {
                return Ok(SetOutcome::Unchanged);
            }
            if self.settings.worm {
                return Err(Error::Worm);
            }
        }
        let old_len = existing.map_or(0, |l| u64::from(l.len));
        if self.settings.maxsize > 0
            && self.live_bytes - old_len + value.len() as u64 > self.settings.maxsize
        {
            return Err(Error::NoSpace);
        }
        let prev = existing.map_or((NONE_U32, NONE_U32), |l| (l.file_id, l.data_off));
        let loc = self.append(key, value, crc(value), 0, ts, prev)?;
        self.apply(key, loc, false);
        Ok(SetOutcome::Written(key.to_vec()))
    }

    /// Deletes `key`: appends a deletion marker and drops the key from memory.
    pub fn delete(&mut self, key: &[u8], ts: u32) -> Result<()> {
        if self.settings.worm {
            return Err(Error::WormDelete);
        }
        if key.len() > KEY_MAX {
            return Err(Error::KeyTooLarge);
        }
        let Some(old) = self.keys.get(key) else {
            return Err(Error::KeyNotFound);
        };
        let loc = self.append(key, b"", 0, FLAG_DELETED, ts, (old.file_id, old.data_off))?;
        self.apply(key, loc, true);
        Ok(())
    }

    /// Appends one data entry and its index entry, rotating first if the data file would pass `datasize`.
    fn append(
        &mut self,
        key: &[u8],
        payload: &[u8],
        payload_crc: u32,
        flags: u8,
        ts: u32,
        prev: (u32, u32),
    ) -> Result<Loc> {
        let size = u64::from(DATA_HEADER_SIZE) + key.len() as u64 + payload.len() as u64;
        if self.data.len() + size > self.options.datasize
            && self.data.len() > u64::from(FILE_HEADER_SIZE)
        {
            self.jump()?;
        }
        let data_off = u32::try_from(self.data.len()).expect("datasize keeps offsets in 32 bits");
        let key_len = u8::try_from(key.len()).expect("key length checked");
        let payload_len = u32::try_from(payload.len()).expect("payload length checked");
        let buffer = self.data.buffer();
        DataHeader {
            key_len,
            flags,
            payload_len,
            payload_crc,
            timestamp: ts,
            prev_file: prev.0,
            prev_offset: prev.1,
        }
        .encode_with_key(key, buffer);
        buffer.extend_from_slice(payload);
        let idx_off = u32::try_from(self.index.len()).expect("index offsets fit in 32 bits");
        IndexHeader {
            key_len,
            flags,
            data_offset: data_off,
            payload_len,
            payload_crc,
            timestamp: ts,
            prev_entry: self.last_entry,
        }
        .encode_with_key(key, self.index.buffer());
        self.last_entry = idx_off;
        self.dirty_index.insert(self.current);
        Ok(Loc {
            file_id: self.current,
            data_off,
            len: payload_len,
            ts,
        })
    }

    /// Hands pending data to the OS (and the index once enough of it piled up). Returns the data
    /// file to `sync_data` if anything was written.
    pub fn commit(&mut self) -> Result<Option<Arc<File>>> {
        let wrote = self.data.flush()?;
        if self.index.pending_len() >= INDEX_PENDING_MAX {
            self.index.flush()?;
        }
        Ok(wrote.then(|| self.data.handle()))
    }

    /// Sets how many bytes of the current data file's tail stay in memory for reads.
    pub fn set_read_cache(&mut self, bytes: usize) {
        self.options.read_cache_bytes = bytes;
        self.data.set_cache_max(bytes);
    }

    /// Whether appends wait to be handed to the OS.
    pub fn has_pending(&self) -> bool {
        self.data.pending_len() > 0
    }

    /// Flushes data and index and syncs both to disk.
    pub fn sync_all(&mut self) -> Result<()> {
        self.data.sync()?;
        self.index.sync()
    }

    /// Closes the current file pair and opens the next id. Returns (old id, new id).
    pub fn jump(&mut self) -> Result<(u32, u32)> {
        if self.options.sync_on_rotate {
            self.sync_all()?;
        } else {
            self.data.flush()?;
            self.index.flush()?;
        }
        let old = self.current;
        let new = old.checked_add(1).ok_or_else(|| Error::Corrupt {
            what: "file id space exhausted".into(),
        })?;
        let mode = self.settings.mode;
        let mut data = AppendFile::create(&self.data_path(new), &data_header(new, mode))?;
        data.set_cache_max(self.options.read_cache_bytes);
        let index = AppendFile::create(&self.index_path(new), &index_header(new, mode))?;
        self.closed.insert(
            old,
            ClosedFile {
                data_len: self.data.len(),
                index_len: self.index.len(),
                index_last: self.last_entry,
            },
        );
        self.data = data;
        self.index = index;
        self.current = new;
        self.last_entry = NONE_U32;
        Ok((old, new))
    }

    /// Removes every entry and file, leaving an empty namespace (FLUSH, or a mode change).
    pub fn reset_files(&mut self) -> Result<()> {
        storage::remove_dir(&self.data_dir)?;
        for id in self.closed.keys().copied().chain([self.current]) {
            storage::remove_file(&self.index_path(id))?;
        }
        storage::create_dir(&self.data_dir)?;
        storage::write_atomic(
            &self.index_dir.join(DESCRIPTOR_FILE),
            &self.settings.encode(&self.name),
        )?;
        let mode = self.settings.mode;
        self.data = AppendFile::create(&self.data_path(0), &data_header(0, mode))?;
        self.data.set_cache_max(self.options.read_cache_bytes);
        self.index = AppendFile::create(&self.index_path(0), &index_header(0, mode))?;
        self.current = 0;
        self.last_entry = NONE_U32;
        self.closed.clear();
        self.readers.clear();
        self.keys = match mode {
            Mode::User => Keys::user(),
            Mode::Seq => Keys::seq(),
        };
        self.live_bytes = 0;
        self.dirty_index.clear();
        Ok(())
    }

    /// Whether the payload on disk still matches its CRC; `None` if the key is missing.
    pub fn check(&mut self, key: &[u8]) -> Result<Option<bool>> {
        let Some(loc) = self.keys.get(key) else {
            return Ok(None);
        };
        let mut head = [0u8; DATA_HEADER_SIZE as usize];
        self.read_data(loc.file_id, u64::from(loc.data_off), &mut head)?;
        let Some((header, _)) = DataHeader::decode(&head) else {
            return Ok(Some(false));
        };
        let payload = self.read_payload(loc, key.len())?;
        Ok(Some(header.payload_crc == crc(&payload)))
    }

    fn read_payload(&mut self, loc: Loc, key_len: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; loc.len as usize];
        self.read_value(loc, key_len, &mut out)?;
        Ok(out)
    }

    /// Reads the payload at `loc` (of a key `key_len` bytes long) into `out`, which must be
    /// exactly `loc.len` bytes: lets the server copy a value straight into its reply buffer.
    pub fn read_value(&mut self, loc: Loc, key_len: usize, out: &mut [u8]) -> Result<()> {
        assert_eq!(
            out.len(),
            loc.len as usize,
            "value buffer of the wrong size"
        );
        let offset = u64::from(loc.data_off) + u64::from(DATA_HEADER_SIZE) + key_len as u64;
        self.read_data(loc.file_id, offset, out)
    }

    fn read_data(&mut self, file_id: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        if file_id == self.current {
            return self.data.read_at(offset, buf);
        }
        if !self.readers.contains_key(&file_id) {
            if self.readers.len() >= READERS_MAX {
                self.readers.clear();
            }
            let file = storage::open_read(&self.data_path(file_id))?;
            self.readers.insert(file_id, file);
        }
        self.readers[&file_id]
            .read_exact_at(buf, offset)
            .step("read data file")
    }

    fn data_len(&self, file_id: u32) -> Option<u64> {
        if file_id == self.current {
            Some(self.data.len())
        } else {
            self.closed.get(&file_id).map(|c| c.data_len)
        }
    }

    fn index_info(&self, file_id: u32) -> Option<(u64, u32)> {
        if file_id == self.current {
            Some((self.index.len(), self.last_entry))
        } else {
            self.closed
                .get(&file_id)
                .map(|c| (c.index_len, c.index_last))
        }
    }

    fn read_index(&self, file_id: u32, offset: u64, len: u64) -> Result<Vec<u8>> {
        let (index_len, _) = self.index_info(file_id).ok_or(Error::InvalidCursor)?;
        let len = len.min(index_len.saturating_sub(offset));
        let mut out = vec![0u8; len as usize];
        if file_id == self.current {
            self.index.read_at(offset, &mut out)?;
        } else {
            storage::open_read(&self.index_path(file_id))?
                .read_exact_at(&mut out, offset)
                .step("read index file")?;
        }
        Ok(out)
    }

    /// Reads the index entry at (`file_id`, `offset`).
    fn index_entry_at(&self, file_id: u32, offset: u32) -> Result<(IndexHeader, Vec<u8>)> {
        let bytes = self.read_index(
            file_id,
            u64::from(offset),
            u64::from(INDEX_HEADER_SIZE) + KEY_MAX as u64,
        )?;
        let (header, key) = IndexHeader::decode(&bytes).ok_or(Error::InvalidCursor)?;
        Ok((header, key.to_vec()))
    }

    fn is_live(&self, file_id: u32, header: &IndexHeader, key: &[u8]) -> bool {
        header.flags & FLAG_DELETED == 0
            && self
                .keys
                .get(key)
                .is_some_and(|l| l.file_id == file_id && l.data_off == header.data_offset)
    }

    /// The scan cursor pointing at the live entry of `key` (KEYCUR).
    pub fn key_cursor(&self, key: &[u8]) -> Result<Vec<u8>> {
        let loc = self.keys.get(key).ok_or(Error::KeyNotFound)?;
        let (index_len, _) = self.index_info(loc.file_id).ok_or(Error::KeyNotFound)?;
        let mut offset = u64::from(FILE_HEADER_SIZE);
        while offset < index_len {
            let chunk = self.read_index(loc.file_id, offset, SCAN_CHUNK_BYTES)?;
            let mut pos = 0;
            while let Some((h, k)) = IndexHeader::decode(&chunk[pos..]) {
                if h.data_offset == loc.data_off && k == key {
                    return Ok(encode_cursor(loc.file_id, (offset + pos as u64) as u32, &h));
                }
                pos += h.entry_size() as usize;
            }
            if pos == 0 {
                break;
            }
            offset += pos as u64;
        }
        Err(Error::KeyNotFound)
    }

    /// One page of a forward (SCAN) or backward (RSCAN) walk in insertion order, starting after
    /// `cursor` or at the first (last) entry.
    pub fn scan(&self, cursor: Option<&[u8]>, forward: bool, max: usize) -> Result<ScanPage> {
        let start = match cursor {
            Some(c) => Some(decode_cursor(c)?),
            None => None,
        };
        if forward {
            self.scan_forward(start, max)
        } else {
            self.scan_backward(start, max)
        }
    }

    fn file_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.closed.keys().copied().collect();
        ids.push(self.current);
        ids
    }

    fn scan_forward(&self, start: Option<(u32, u32)>, max: usize) -> Result<ScanPage> {
        let ids = self.file_ids();
        let (first_file, mut offset) = match start {
            None => (ids[0], u64::from(FILE_HEADER_SIZE)),
            Some((file, off)) => {
                let (h, _) = self.index_entry_at(file, off)?;
                (file, u64::from(off) + u64::from(h.entry_size()))
            }
        };
        let mut page = ScanPage {
            cursor: Vec::new(),
            entries: Vec::new(),
        };
        let mut visited = 0;
        for &file in ids.iter().filter(|&&id| id >= first_file) {
            if file != first_file {
                offset = u64::from(FILE_HEADER_SIZE);
            }
            let (index_len, _) = self.index_info(file).ok_or(Error::InvalidCursor)?;
            while offset < index_len {
                let chunk = self.read_index(file, offset, SCAN_CHUNK_BYTES)?;
                let mut pos = 0;
                while let Some((h, key)) = IndexHeader::decode(&chunk[pos..]) {
                    let at = (offset + pos as u64) as u32;
                    pos += h.entry_size() as usize;
                    visited += 1;
                    page.cursor = encode_cursor(file, at, &h);
                    if self.is_live(file, &h, key) {
                        page.entries.push(ScanEntry {
                            key: key.to_vec(),
                            len: h.payload_len,
                            ts: h.timestamp,
                        });
                    }
                    if page.entries.len() >= max || visited >= SCAN_VISIT_MAX {
                        return Ok(page);
                    }
                }
                if pos == 0 {
                    return Err(Error::Corrupt {
                        what: format!("index file {file} at {offset}"),
                    });
                }
                offset += pos as u64;
            }
        }
        if page.entries.is_empty() {
            return Err(Error::NoMoreData);
        }
        Ok(page)
    }

    fn scan_backward(&self, start: Option<(u32, u32)>, max: usize) -> Result<ScanPage> {
        let ids = self.file_ids();
        let mut position = match start {
            None => {
                let last = *ids.last().expect("at least the current file");
                Some((last, self.index_info(last).map_or(NONE_U32, |i| i.1)))
            }
            Some((file, off)) => {
                let (h, _) = self.index_entry_at(file, off)?;
                Some((file, h.prev_entry))
            }
        };
        let mut page = ScanPage {
            cursor: Vec::new(),
            entries: Vec::new(),
        };
        let mut visited = 0;
        while let Some((file, off)) = position {
            if off == NONE_U32 {
                position = ids
                    .iter()
                    .rev()
                    .find(|&&id| id < file)
                    .map(|&id| (id, self.index_info(id).map_or(NONE_U32, |i| i.1)));
                continue;
            }
            let (h, key) = self.index_entry_at(file, off)?;
            visited += 1;
            page.cursor = encode_cursor(file, off, &h);
            if self.is_live(file, &h, &key) {
                page.entries.push(ScanEntry {
                    key,
                    len: h.payload_len,
                    ts: h.timestamp,
                });
            }
            if page.entries.len() >= max || visited >= SCAN_VISIT_MAX {
                return Ok(page);
            }
            position = Some((file, h.prev_entry));
        }
        if page.entries.is_empty() {
            return Err(Error::NoMoreData);
        }
        Ok(page)
    }

    /// One version of `key`: the live one, or the one `history_key` names.
    pub fn history(&mut self, key: &[u8], history_key: Option<&[u8]>) -> Result<HistoryItem> {
        let (file_id, offset) = match history_key {
            None => {
                let loc = self.keys.get(key).ok_or(Error::KeyNotFound)?;
                (loc.file_id, loc.data_off)
            }
            Some(hk) => {
                let hk: [u8; HISTORY_KEY_LEN] =
                    hk.try_into().map_err(|_| Error::InvalidHistoryKey)?;
                let file = u32::from_le_bytes([hk[0], hk[1], hk[2], hk[3]]);
                let off = u32::from_le_bytes([hk[4], hk[5], hk[6], hk[7]]);
                if self.data_len(file).is_none() {
                    return Err(Error::NoMoreHistory);
                }
                (file, off)
            }
        };
        let raw = self
            .raw_entry(file_id, offset)
            .map_err(|_| Error::InvalidHistoryKey)?;
        if raw.0.key != key {
            return Err(Error::InvalidHistoryKey);
        }
        let (entry, prev_file) = raw;
        let previous = (prev_file != NONE_U32).then(|| {
            let mut hk = [0u8; HISTORY_KEY_LEN];
            hk[..4].copy_from_slice(&prev_file.to_le_bytes());
            hk[4..].copy_from_slice(&entry.previous_offset.to_le_bytes());
            hk
        });
        Ok(HistoryItem {
            previous,
            ts: entry.ts,
            payload: entry.payload.unwrap_or_default(),
        })
    }

    /// The data entry at (`file_id`, `offset`) with its CRC checked (DATA RAW).
    pub fn data_raw(&mut self, file_id: u32, offset: u32) -> Result<RawEntry> {
        self.raw_entry(file_id, offset).map(|(entry, _)| entry)
    }

    fn raw_entry(&mut self, file_id: u32, offset: u32) -> Result<(RawEntry, u32)> {
        let len = self.data_len(file_id).ok_or(Error::Eof)?;
        if u64::from(offset) + u64::from(DATA_HEADER_SIZE) > len || offset < FILE_HEADER_SIZE {
            return Err(Error::Eof);
        }
        let mut head = vec![0u8; DATA_HEADER_SIZE as usize];
        self.read_data(file_id, u64::from(offset), &mut head)?;
        let (header, stored) = DataHeader::decode(&head).ok_or(Error::InvalidEntry)?;
        if u64::from(offset) + header.entry_size() > len {
            return Err(Error::InvalidEntry);
        }
        let mut key = vec![0u8; usize::from(header.key_len)];
        self.read_data(
            file_id,
            u64::from(offset) + u64::from(DATA_HEADER_SIZE),
            &mut key,
        )?;
        head.extend_from_slice(&key);
        if !DataHeader::check(&head, stored) {
            return Err(Error::InvalidEntry);
        }
        let payload = if header.flags & FLAG_DELETED != 0 {
            None
        } else {
            let mut payload = vec![0u8; header.payload_len as usize];
            self.read_data(
                file_id,
                u64::from(offset) + u64::from(DATA_HEADER_SIZE) + key.len() as u64,
                &mut payload,
            )?;
            Some(payload)
        };
        Ok((
            RawEntry {
                key,
                previous_offset: header.prev_offset,
                crc: header.payload_crc,
                flags: header.flags,
                ts: header.timestamp,
                payload,
            },
            header.prev_file,
        ))
    }

    /// Index file ids appended to since the last reset (INDEX DIRTY).
    pub fn dirty_indexes(&self) -> Vec<u32> {
        self.dirty_index.iter().copied().collect()
    }

    pub fn reset_dirty(&mut self) {
        self.dirty_index.clear();
    }

    /// Sizes and counters for NSINFO.
    pub fn stats(&self) -> NsStats {
        let closed_data: u64 = self.closed.values().map(|c| c.data_len).sum();
        let closed_index: u64 = self.closed.values().map(|c| c.index_len).sum();
        NsStats {
            entries: self.keys.len() as u64,
            next_id: self.keys.next_id(),
            live_bytes: self.live_bytes,
            data_disk_bytes: closed_data + self.data.len(),
            index_disk_bytes: closed_index + self.index.len(),
            index_memory_bytes: self.keys.memory_bytes() as u64,
            current_file: self.current,
            current_offset: self.data.len(),
            recovered_bytes_cut: self.recovered_bytes_cut,
            recovered_index_entries: self.recovered_index_entries,
        }
    }

    pub fn index_dir(&self) -> &Path {
        &self.index_dir
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Reads one whole data entry if it is complete and both its CRCs hold; returns header and key.
fn read_data_entry(
    reader: &mut impl Read,
    remaining: u64,
) -> Result<Option<(DataHeader, Vec<u8>)>> {
    if remaining < u64::from(DATA_HEADER_SIZE) {
        return Ok(None);
    }
    let mut head = vec![0u8; DATA_HEADER_SIZE as usize];
    reader.read_exact(&mut head).step("read data entry")?;
    let Some((header, stored)) = DataHeader::decode(&head) else {
        return Ok(None);
    };
    if header.entry_size() > remaining || header.payload_len as usize > VALUE_MAX {
        return Ok(None);
    }
    let mut key = vec![0u8; usize::from(header.key_len)];
    reader.read_exact(&mut key).step("read data entry")?;
    head.extend_from_slice(&key);
    if !DataHeader::check(&head, stored) {
        return Ok(None);
    }
    let mut payload = vec![0u8; header.payload_len as usize];
    reader.read_exact(&mut payload).step("read data entry")?;
    if crc(&payload) != header.payload_crc {
        return Ok(None);
    }
    Ok(Some((header, key)))
}

fn data_header(id: u32, mode: Mode) -> [u8; FILE_HEADER_SIZE as usize] {
    FileHeader {
        magic: DATA_MAGIC,
        file_id: id,
        mode,
    }
    .encode()
}

fn index_header(id: u32, mode: Mode) -> [u8; FILE_HEADER_SIZE as usize] {
    FileHeader {
        magic: INDEX_MAGIC,
        file_id: id,
        mode,
    }
    .encode()
}

fn encode_cursor(file_id: u32, index_offset: u32, header: &IndexHeader) -> Vec<u8> {
    let mut out = Vec::with_capacity(CURSOR_LEN);
    out.push(header.key_len);
    out.extend_from_slice(&file_id.to_le_bytes());
    out.extend_from_slice(&header.payload_len.to_le_bytes());
    out.extend_from_slice(&index_offset.to_le_bytes());
    out.extend_from_slice(&header.payload_crc.to_le_bytes());
    out
}

fn decode_cursor(cursor: &[u8]) -> Result<(u32, u32)> {
    if cursor.len() != CURSOR_LEN {
        return Err(Error::InvalidCursor);
    }
    let file = u32::from_le_bytes(cursor[1..5].try_into().map_err(|_| Error::InvalidCursor)?);
    let offset = u32::from_le_bytes(cursor[9..13].try_into().map_err(|_| Error::InvalidCursor)?);
    if offset < FILE_HEADER_SIZE {
        return Err(Error::InvalidCursor);
    }
    Ok((file, offset))
}
