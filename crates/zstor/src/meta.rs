//! File metadata, pure: what a stored file is (size, checksum, codec parameters), where each of its
//! shards lives and the 0-db key and checksum of every piece; and the sealed record it is stored as
//! on the metadata backends. Encoding is borsh inside a versioned, encrypted envelope.
//!
//! Record: magic `ZSTM`, u8 format version (1), u8 cipher, 8-byte key check value, 12-byte nonce,
//! then the sealed borsh encoding of [`FileMeta`] and its tag. The authenticated data is the header
//! and the record's key, so a record copied under another key does not open.

use crate::config::{BackendId, CipherKind, CompressionKind};
use crate::crypto::{self, Keys, NONCE_BYTES, TAG_BYTES};
use crate::limits;
use borsh::{BorshDeserialize, BorshSerialize};

pub const MAGIC: &[u8; 4] = b"ZSTM";
pub const FORMAT_VERSION: u8 = 1;
const HEADER_BYTES: usize = 4 + 1 + 1 + 8 + NONCE_BYTES;

/// Everything needed to read a file back.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FileMeta {
    /// The key the file is stored under (its path below the virtual root, or one given).
    pub key: String,
    /// Grows with every rewrite of the record; the highest one found wins.
    pub generation: u64,
    pub stored_at_secs: u64,
    pub size_bytes: u64,
    /// blake3 of the whole content.
    pub checksum: [u8; 32],
    pub data_shards: u16,
    pub parity_shards: u16,
    /// Plaintext bytes per chunk (the last chunk holds the rest).
    pub chunk_bytes: u32,
    /// [`CipherKind`] discriminant.
    pub cipher: u8,
    /// [`CompressionKind`] discriminant.
    pub compression: u8,
    /// First 8 bytes of every chunk nonce; random per stored version of a file.
    pub nonce_prefix: [u8; 8],
    /// Length of each sealed chunk, by chunk index.
    pub sealed_lens: Vec<u32>,
    /// One per shard index (`data_shards` originals, then the parity shards).
    pub shards: Vec<ShardMeta>,
}

/// One shard of a file: its backend and one piece per chunk.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ShardMeta {
    pub backend: BackendId,
    pub pieces: Vec<Piece>,
}

/// A piece: the sequential 0-db key it was stored under and the checksum of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Piece {
    pub key: u64,
    pub checksum: [u8; 16],
}

/// Why a metadata record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("it was written with another encryption key")]
    WrongKey,
    #[error("{0}")]
    Corrupt(String),
}

impl FileMeta {
    pub fn chunk_count(&self) -> usize {
        self.sealed_lens.len()
    }

    /// Plaintext bytes of chunk `index`.
    pub fn plain_len(&self, index: usize) -> usize {
        let start = index as u64 * u64::from(self.chunk_bytes);
        (self.size_bytes - start).min(u64::from(self.chunk_bytes)) as usize
    }

    pub fn cipher(&self) -> CipherKind {
        crypto::cipher_from_u8(self.cipher).expect("checked when opened")
    }

    pub fn compression(&self) -> CompressionKind {
        compression_from_u8(self.compression).expect("checked when opened")
    }

    pub fn data(&self) -> usize {
        usize::from(self.data_shards)
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The rules every reader relies on; a record breaking one is corrupt.
    fn check(&self) -> Result<(), String> {
        let k = self.data();
        let n = k + usize::from(self.parity_shards);
        if k == 0 || self.parity_shards == 0 || n > limits::SHARDS_MAX {
            return Err(format!("bad shard counts {k}+{}", self.parity_shards));
        }
        if self.shards.len() != n {
            return Err(format!("{} shards listed, {n} expected", self.shards.len()));
        }
        if self.chunk_bytes == 0 {
            return Err("chunk size 0".into());
        }
        let chunks = self.size_bytes.div_ceil(u64::from(self.chunk_bytes));
        if chunks != self.sealed_lens.len() as u64 {
            return Err(format!(
                "{} chunks listed, {chunks} expected for {} bytes",
                self.sealed_lens.len(),
                self.size_bytes
            ));
        }
        if let Some(shard) = self.shards.iter().find(|s| s.pieces.len() as u64 != chunks) {
            return Err(format!(
                "shard on {} lists {} pieces, {chunks} expected",
                shard.backend,
                shard.pieces.len()
            ));
        }
        if crypto::cipher_from_u8(self.cipher).is_none() {
            return Err(format!("unknown cipher {}", self.cipher));
        }
        if compression_from_u8(self.compression).is_none() {
            return Err(format!("unknown compression {}", self.compression));
        }
        Ok(())
    }
}

fn compression_from_u8(value: u8) -> Option<CompressionKind> {
    match value {
        0 => Some(CompressionKind::Zstd),
        1 => Some(CompressionKind::None),
        _ => None,
    }
}

/// The 0-db key of a file's metadata: `/{prefix}/meta/{hex of 16 bytes of blake3(file key)}`.
pub fn meta_key(prefix: &str, file_key: &str) -> String {
    let hash = blake3::hash(file_key.as_bytes());
    format!("/{prefix}/meta/{}", hex::encode(&hash.as_bytes()[..16]))
}

/// The prefix shared by every metadata key of `prefix`.
pub fn meta_key_prefix(prefix: &str) -> String {
    format!("/{prefix}/meta/")
}

/// Seals `meta` into a record stored under `key`, with the caller's random `nonce`.
pub fn seal(
    keys: &Keys,
    kind: CipherKind,
    key: &str,
    meta: &FileMeta,
    nonce: [u8; NONCE_BYTES],
) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER_BYTES + 1024);
    record.extend_from_slice(MAGIC);
    record.push(FORMAT_VERSION);
    record.push(kind as u8);
    record.extend_from_slice(&keys.check());
    record.extend_from_slice(&nonce);
    let aad = [&record[..], key.as_bytes()].concat();
    let mut body = borsh::to_vec(meta).expect("encoding to memory");
    let tag = keys.seal(kind, nonce, &aad, &mut body);
    record.extend_from_slice(&body);
    record.extend_from_slice(&tag);
    record
}

/// Opens a record read from key `key`, telling a wrong key from corrupt bytes.
pub fn open(keys: &Keys, key: &str, record: &[u8]) -> Result<FileMeta, MetaError> {
    let corrupt = |m: String| Err(MetaError::Corrupt(m));
    if record.len() > limits::META_BYTES_MAX {
        return corrupt(format!(
            "record of {} bytes is over the limit",
            record.len()
        ));
    }
    if record.len() < HEADER_BYTES + TAG_BYTES || &record[..4] != MAGIC {
        return corrupt("not a zstor metadata record".into());
    }
    if record[4] != FORMAT_VERSION {
        return corrupt(format!(
            "format version {}, this build reads {FORMAT_VERSION}",
            record[4]
        ));
    }
    let Some(kind) = crypto::cipher_from_u8(record[5]) else {
        return corrupt(format!("unknown cipher {}", record[5]));
    };
    if record[6..14] != keys.check() {
        return Err(MetaError::WrongKey);
    }
    let nonce: [u8; NONCE_BYTES] = record[14..HEADER_BYTES].try_into().expect("12 bytes");
    let aad = [&record[..HEADER_BYTES], key.as_bytes()].concat();
    let mut body = record[HEADER_BYTES..].to_vec();
    let Ok(len) = keys.open(kind, nonce, &aad, &mut body) else {
        return corrupt("authentication failed".into());
    };
    let meta = FileMeta::try_from_slice(&body[..len])
        .map_err(|e| MetaError::Corrupt(format!("undecodable: {e}")))?;
    meta.check().map_err(MetaError::Corrupt)?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileMeta {
        FileMeta {
            key: "photos/cat.jpg".into(),
            generation: 7,
            stored_at_secs: 1_700_000_000,
            size_bytes: 10,
            checksum: [1; 32],
            data_shards: 1,
            parity_shards: 1,
            chunk_bytes: 8,
            cipher: CipherKind::ChaCha20Poly1305 as u8,
            compression: CompressionKind::Zstd as u8,
            nonce_prefix: [2; 8],
            sealed_lens: vec![30, 20],
            shards: (0..2)
                .map(|i| ShardMeta {
                    backend: BackendId {
                        address: format!("10.0.0.{i}:9900"),
                        namespace: "ns".into(),
                    },
                    pieces: vec![
                        Piece {
                            key: 0,
                            checksum: [3; 16],
                        },
                        Piece {
                            key: 1,
                            checksum: [4; 16],
                        },
                    ],
                })
                .collect(),
        }
    }

    #[test]
    fn roundtrip_and_failures() {
        let keys = Keys::new(&[5; 32]);
        let key = meta_key("zstor", "photos/cat.jpg");
        assert_eq!(key.len(), "/zstor/meta/".len() + 32);
        let record = seal(&keys, CipherKind::Aes256Gcm, &key, &sample(), [6; 12]);
        assert_eq!(open(&keys, &key, &record), Ok(sample()));
        assert_eq!(sample().plain_len(1), 2);

        assert_eq!(
            open(&Keys::new(&[6; 32]), &key, &record),
            Err(MetaError::WrongKey)
        );
        let other = meta_key("zstor", "photos/dog.jpg");
        assert_eq!(
            open(&keys, &other, &record),
            Err(MetaError::Corrupt("authentication failed".into()))
        );
        let mut flipped = record.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(&keys, &key, &flipped),
            Err(MetaError::Corrupt("authentication failed".into()))
        );
        assert_eq!(
            open(&keys, &key, b"garbage"),
            Err(MetaError::Corrupt("not a zstor metadata record".into()))
        );
        let mut future = record.clone();
        future[4] = 2;
        assert_eq!(
            open(&keys, &key, &future),
            Err(MetaError::Corrupt(
                "format version 2, this build reads 1".into()
            ))
        );
        let mut inconsistent = sample();
        inconsistent.sealed_lens.pop();
        let record = seal(&keys, CipherKind::Aes256Gcm, &key, &inconsistent, [6; 12]);
        assert_eq!(
            open(&keys, &key, &record),
            Err(MetaError::Corrupt(
                "1 chunks listed, 2 expected for 10 bytes".into()
            ))
        );
    }
}
