//! On-disk format, version 1: file headers, data entries and index entries, each guarded by a CRC32C.
//! Everything is little-endian. This module only encodes and decodes bytes; it never touches a file.

/// Version written into every data and index file header; bumped on any layout change.
pub const FORMAT_VERSION: u32 = 1;
/// Magic at the start of a data file.
pub const DATA_MAGIC: [u8; 4] = *b"ZDBD";
/// Magic at the start of an index file.
pub const INDEX_MAGIC: [u8; 4] = *b"ZDBI";
/// Size of a data or index file header.
pub const FILE_HEADER_SIZE: u32 = 16;
/// Size of a data entry header, before the key and the payload.
pub const DATA_HEADER_SIZE: u32 = 26;
/// Size of an index entry header, before the key.
pub const INDEX_HEADER_SIZE: u32 = 26;
/// Entry flag: this entry records a deletion (its payload is empty).
pub const FLAG_DELETED: u8 = 1;
/// Marks "no previous entry" in the 32-bit link fields.
pub const NONE_U32: u32 = u32::MAX;

/// CRC32C (Castagnoli) of `bytes`.
pub fn crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// Runtime mode of a namespace, recorded in every file header and in the namespace descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Key-value: the client names the key.
    User,
    /// Sequential: the server allocates 8-byte little-endian ids.
    Seq,
}

impl Mode {
    /// The byte stored on disk.
    pub fn to_byte(self) -> u8 {
        match self {
            Mode::User => 0,
            Mode::Seq => 1,
        }
    }

    /// Decodes the on-disk byte.
    pub fn from_byte(byte: u8) -> Option<Mode> {
        match byte {
            0 => Some(Mode::User),
            1 => Some(Mode::Seq),
            _ => None,
        }
    }
}

/// Header of a data (`d<N>`) or index (`i<N>`) file: magic, version, file id, mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub magic: [u8; 4],
    pub file_id: u32,
    pub mode: Mode,
}

impl FileHeader {
    pub fn encode(&self) -> [u8; FILE_HEADER_SIZE as usize] {
        let mut out = [0u8; FILE_HEADER_SIZE as usize];
        out[0..4].copy_from_slice(&self.magic);
        out[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[8..12].copy_from_slice(&self.file_id.to_le_bytes());
        out[12] = self.mode.to_byte();
        out
    }

    /// Decodes a header; `None` if the magic, version or mode is not ours.
    pub fn decode(bytes: &[u8]) -> Option<FileHeader> {
        if bytes.len() < FILE_HEADER_SIZE as usize {
            return None;
        }
        let magic: [u8; 4] = bytes[0..4].try_into().ok()?;
        if magic != DATA_MAGIC && magic != INDEX_MAGIC {
            return None;
        }
        if u32_at(bytes, 4) != FORMAT_VERSION {
            return None;
        }
        Some(FileHeader {
            magic,
            file_id: u32_at(bytes, 8),
            mode: Mode::from_byte(bytes[12])?,
        })
    }
}

/// Header of one data entry. On disk: header CRC (over the rest of the header and the key), key
/// length, flags, payload length, payload CRC, timestamp, link to the previous version of the key
/// (file id and offset, `NONE_U32` when none); then the key, then the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    pub key_len: u8,
    pub flags: u8,
    pub payload_len: u32,
    pub payload_crc: u32,
    pub timestamp: u32,
    pub prev_file: u32,
    pub prev_offset: u32,
}

impl DataHeader {
    /// Total size on disk of the entry this header starts.
    pub fn entry_size(&self) -> u64 {
        u64::from(DATA_HEADER_SIZE) + u64::from(self.key_len) + u64::from(self.payload_len)
    }

    /// Appends header and key (not the payload) to `out`.
    pub fn encode_with_key(&self, key: &[u8], out: &mut Vec<u8>) {
        assert_eq!(key.len(), usize::from(self.key_len), "key length mismatch");
        let start = out.len();
        out.extend_from_slice(&[0u8; 4]);
        out.push(self.key_len);
        out.push(self.flags);
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        out.extend_from_slice(&self.payload_crc.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&self.prev_file.to_le_bytes());
        out.extend_from_slice(&self.prev_offset.to_le_bytes());
        out.extend_from_slice(key);
        let sum = crc(&out[start + 4..]);
        out[start..start + 4].copy_from_slice(&sum.to_le_bytes());
    }

    /// Decodes the fixed header; the caller checks the CRC with [`DataHeader::check`] once the key is read.
    pub fn decode(bytes: &[u8]) -> Option<(DataHeader, u32)> {
        if bytes.len() < DATA_HEADER_SIZE as usize {
            return None;
        }
        Some((
            DataHeader {
                key_len: bytes[4],
                flags: bytes[5],
                payload_len: u32_at(bytes, 6),
                payload_crc: u32_at(bytes, 10),
                timestamp: u32_at(bytes, 14),
                prev_file: u32_at(bytes, 18),
                prev_offset: u32_at(bytes, 22),
            },
            u32_at(bytes, 0),
        ))
    }

    /// Checks the header CRC given the raw header-and-key bytes.
    pub fn check(header_and_key: &[u8], stored_crc: u32) -> bool {
        header_and_key.len() >= DATA_HEADER_SIZE as usize && crc(&header_and_key[4..]) == stored_crc
    }
}

/// One index entry: a compact copy of a data entry's metadata plus its key, and the offset of the
/// previous index entry in the same file (for backward scans). Guarded by its own CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHeader {
    pub key_len: u8,
    pub flags: u8,
    pub data_offset: u32,
    pub payload_len: u32,
    pub payload_crc: u32,
    pub timestamp: u32,
    pub prev_entry: u32,
}

impl IndexHeader {
    pub fn entry_size(&self) -> u32 {
        INDEX_HEADER_SIZE + u32::from(self.key_len)
    }

    pub fn encode_with_key(&self, key: &[u8], out: &mut Vec<u8>) {
        assert_eq!(key.len(), usize::from(self.key_len), "key length mismatch");
        let start = out.len();
        out.extend_from_slice(&[0u8; 4]);
        out.push(self.key_len);
        out.push(self.flags);
        out.extend_from_slice(&self.data_offset.to_le_bytes());
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        out.extend_from_slice(&self.payload_crc.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&self.prev_entry.to_le_bytes());
        out.extend_from_slice(key);
        let sum = crc(&out[start + 4..]);
        out[start..start + 4].copy_from_slice(&sum.to_le_bytes());
    }

    /// Decodes a whole entry (header and key) from `bytes`; `None` if short or the CRC fails.
    pub fn decode(bytes: &[u8]) -> Option<(IndexHeader, &[u8])> {
        if bytes.len() < INDEX_HEADER_SIZE as usize {
            return None;
        }
        let header = IndexHeader {
            key_len: bytes[4],
            flags: bytes[5],
            data_offset: u32_at(bytes, 6),
            payload_len: u32_at(bytes, 10),
            payload_crc: u32_at(bytes, 14),
            timestamp: u32_at(bytes, 18),
            prev_entry: u32_at(bytes, 22),
        };
        let end = header.entry_size() as usize;
        if bytes.len() < end || crc(&bytes[4..end]) != u32_at(bytes, 0) {
            return None;
        }
        Some((header, &bytes[INDEX_HEADER_SIZE as usize..end]))
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_header_roundtrip_and_crc() {
        let header = DataHeader {
            key_len: 3,
            flags: FLAG_DELETED,
            payload_len: 7,
            payload_crc: 42,
            timestamp: 1_700_000_000,
            prev_file: 2,
            prev_offset: 99,
        };
        let mut out = Vec::new();
        header.encode_with_key(b"abc", &mut out);
        assert_eq!(out.len(), DATA_HEADER_SIZE as usize + 3);
        let (decoded, stored) = DataHeader::decode(&out).unwrap();
        assert_eq!(decoded, header);
        assert!(DataHeader::check(&out, stored));
        out[7] ^= 1;
        assert!(!DataHeader::check(&out, stored));
    }

    #[test]
    fn index_header_roundtrip_and_crc() {
        let header = IndexHeader {
            key_len: 2,
            flags: 0,
            data_offset: 16,
            payload_len: 5,
            payload_crc: 7,
            timestamp: 9,
            prev_entry: NONE_U32,
        };
        let mut out = Vec::new();
        header.encode_with_key(b"xy", &mut out);
        let (decoded, key) = IndexHeader::decode(&out).unwrap();
        assert_eq!((decoded, key), (header, &b"xy"[..]));
        let last = out.len() - 1;
        out[last] = b'z';
        assert!(IndexHeader::decode(&out).is_none());
        assert!(IndexHeader::decode(&out[..10]).is_none());
    }

    #[test]
    fn file_header_rejects_foreign_bytes() {
        let header = FileHeader {
            magic: DATA_MAGIC,
            file_id: 3,
            mode: Mode::Seq,
        };
        assert_eq!(FileHeader::decode(&header.encode()), Some(header));
        assert_eq!(FileHeader::decode(b"DAT0\x03\0\0\0\0\0\0\0\0\0\0\0"), None);
    }
}
