//! The chunk codec, pure: one chunk of plaintext becomes `data + parity` equal pieces (compress
//! with zstd, or keep it raw when a sample of it does not compress or the whole is not smaller;
//! seal with the file's cipher; Reed-Solomon encode), each with a checksum; and back from any
//! `data` intact pieces. No IO, no clock.
//!
//! Sealed chunk: `payload ‖ codec byte (0 raw, 1 zstd) ‖ 16-byte tag`, encrypted under the nonce
//! `file nonce prefix (8 bytes) ‖ chunk index (u32 LE)`. It is padded with zeros to `data` pieces of
//! an even length (reed-solomon-simd's rule), followed by the `parity` recovery pieces.

use crate::config::{CipherKind, CompressionKind};
use crate::crypto::{Keys, NONCE_BYTES, TAG_BYTES};
use bytes::Bytes;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use std::cell::RefCell;
use std::sync::Arc;

/// Bytes of a piece checksum (blake3, truncated).
pub const CHECKSUM_BYTES: usize = 16;
pub type Checksum = [u8; CHECKSUM_BYTES];

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;
const AAD: &[u8] = b"zstor chunk v1";

/// Chunks larger than this are probed before compression: `PROBE_SLICES` slices of
/// `PROBE_SLICE_BYTES` spread over the chunk are compressed first, and a chunk whose sample does
/// not shrink by at least 1/`PROBE_GAIN_MIN` is kept raw without compressing the rest
/// (incompressible data, already compressed or encrypted, costs zstd a third of the pipeline).
const PROBE_ABOVE_BYTES: usize = 256 * 1024;
const PROBE_SLICES: usize = 4;
const PROBE_SLICE_BYTES: usize = 16 * 1024;
const PROBE_GAIN_MIN: usize = 32;

/// The checksum of a piece, as recorded in metadata.
pub fn checksum(piece: &[u8]) -> Checksum {
    blake3::hash(piece).as_bytes()[..CHECKSUM_BYTES]
        .try_into()
        .expect("16 bytes")
}

/// Length of each piece for a sealed chunk of `sealed_len` bytes over `data` shards.
pub fn piece_len(sealed_len: usize, data: usize) -> usize {
    let per = sealed_len.div_ceil(data).max(1);
    per + (per & 1)
}

/// What the codec needs to know of a file: shard counts, cipher, compression and nonce prefix.
#[derive(Debug, Clone)]
pub struct ChunkCodec {
    pub keys: Arc<Keys>,
    pub data: usize,
    pub parity: usize,
    pub cipher: CipherKind,
    pub compression: CompressionKind,
    /// zstd level for encoding (decoding does not need it).
    pub level: i32,
    pub nonce_prefix: [u8; 8],
}

/// One encoded chunk: the pieces (slices of one buffer) and their checksums, by shard index.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    pub sealed_len: u32,
    pub pieces: Vec<Bytes>,
    pub checksums: Vec<Checksum>,
}

/// Why a chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("{good} of the {needed} needed shards are intact")]
    TooFewShards { good: usize, needed: usize },
    #[error("a shard is {got} bytes, {expected} expected")]
    PieceSize { expected: usize, got: usize },
    #[error("the decoded chunk failed authentication")]
    Authentication,
    #[error("unknown codec byte {0}")]
    Codec(u8),
    #[error("decoded {got} bytes, {expected} expected")]
    Length { expected: usize, got: usize },
    #[error("decompression failed: {0}")]
    Decompress(String),
    #[error("erasure decoding failed: {0}")]
    Erasure(String),
}

thread_local! {
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

impl ChunkCodec {
    fn shards(&self) -> usize {
        self.data + self.parity
    }

    fn nonce(&self, index: u32) -> [u8; NONCE_BYTES] {
        let mut nonce = [0; NONCE_BYTES];
        nonce[..8].copy_from_slice(&self.nonce_prefix);
        nonce[8..].copy_from_slice(&index.to_le_bytes());
        nonce
    }

    /// Compresses, seals and erasure-codes chunk number `index`.
    pub fn encode(&self, index: u32, plain: &[u8]) -> EncodedChunk {
        let (k, n) = (self.data, self.shards());
        let worst = zstd::zstd_safe::compress_bound(plain.len()).max(plain.len()) + 1 + TAG_BYTES;
        let mut buf = Vec::with_capacity(piece_len(worst, k) * n);
        let codec = if self.compression == CompressionKind::Zstd
            && !plain.is_empty()
            && self.sample_compresses(plain, &mut buf)
        {
            compress(self.level, plain, &mut buf);
            if buf.len() < plain.len() {
                CODEC_ZSTD
            } else {
                buf.clear();
                buf.extend_from_slice(plain);
                CODEC_RAW
            }
        } else {
            buf.extend_from_slice(plain);
            CODEC_RAW
        };
        buf.push(codec);
        let tag = self
            .keys
            .seal(self.cipher, self.nonce(index), AAD, &mut buf);
        buf.extend_from_slice(&tag);
        let sealed_len = buf.len();
        let s = piece_len(sealed_len, k);
        // Zero padding: nothing of a discarded compression attempt may remain.
        buf.resize(s * k, 0);
        ENCODER.with_borrow_mut(|slot| {
            let encoder = reset_encoder(slot, k, self.parity, s);
            for piece in buf.chunks_exact(s) {
                encoder
                    .add_original_shard(piece)
                    .expect("shard of the set size");
            }
            let result = encoder.encode().expect("every original shard added");
            for recovery in result.recovery_iter() {
                buf.extend_from_slice(recovery);
            }
        });
        debug_assert_eq!(buf.len(), s * n);
        let checksums = buf.chunks_exact(s).map(checksum).collect();
        let all = Bytes::from(buf);
        EncodedChunk {
            sealed_len: u32::try_from(sealed_len).expect("chunk under 4 GiB"),
            pieces: (0..n).map(|i| all.slice(i * s..(i + 1) * s)).collect(),
            checksums,
        }
    }

    /// Whether a sample of a large chunk compresses well enough to compress the whole; small
    /// chunks are always tried whole. `scratch` is left empty.
    fn sample_compresses(&self, plain: &[u8], scratch: &mut Vec<u8>) -> bool {
        if plain.len() <= PROBE_ABOVE_BYTES {
            return true;
        }
        let step = plain.len() / PROBE_SLICES;
        let sample: Vec<u8> = (0..PROBE_SLICES)
            .flat_map(|i| &plain[i * step..i * step + PROBE_SLICE_BYTES])
            .copied()
            .collect();
        compress(self.level, &sample, scratch);
        let compresses = scratch.len() + sample.len() / PROBE_GAIN_MIN <= sample.len();
        scratch.clear();
        compresses
    }

    /// The sealed chunk from any `data` intact pieces (`None` for missing ones); the originals are
    /// used as they are when all present, so the fast path does no erasure decoding.
    fn assemble(&self, sealed_len: usize, pieces: &[Option<Bytes>]) -> Result<Vec<u8>, ChunkError> {
        let k = self.data;
        assert_eq!(pieces.len(), self.shards(), "one slot per shard");
        let s = piece_len(sealed_len, k);
        let good = pieces.iter().flatten().count();
        if good < k {
            return Err(ChunkError::TooFewShards { good, needed: k });
        }
        if let Some(bad) = pieces.iter().flatten().find(|p| p.len() != s) {
            return Err(ChunkError::PieceSize {
                expected: s,
                got: bad.len(),
            });
        }
        let mut sealed = Vec::with_capacity(s * k);
        if pieces[..k].iter().all(Option::is_some) {
            for piece in pieces[..k].iter().flatten() {
                sealed.extend_from_slice(piece);
            }
        } else {
            DECODER.with_borrow_mut(|slot| -> Result<(), ChunkError> {
                let decoder = match slot {
                    Some(decoder) => {
                        decoder
                            .reset(k, self.parity, s)
                            .map_err(|e| ChunkError::Erasure(e.to_string()))?;
                        decoder
                    }
                    None => slot.insert(
                        ReedSolomonDecoder::new(k, self.parity, s)
                            .map_err(|e| ChunkError::Erasure(e.to_string()))?,
                    ),
                };
                for (i, piece) in pieces.iter().enumerate() {
                    if let Some(piece) = piece {
                        let added = if i < k {
                            decoder.add_original_shard(i, piece)
                        } else {
                            decoder.add_recovery_shard(i - k, piece)
                        };
                        added.map_err(|e| ChunkError::Erasure(e.to_string()))?;
                    }
                }
                let result = decoder
                    .decode()
                    .map_err(|e| ChunkError::Erasure(e.to_string()))?;
                for (i, piece) in pieces[..k].iter().enumerate() {
                    match piece {
                        Some(piece) => sealed.extend_from_slice(piece),
                        None => sealed.extend_from_slice(result.restored_original(i).ok_or_else(
                            || ChunkError::Erasure(format!("shard {i} not restored")),
                        )?),
                    }
                }
                Ok(())
            })?;
        }
        sealed.truncate(sealed_len);
        Ok(sealed)
    }

    /// The plaintext of chunk `index` (`plain_len` bytes) from its pieces.
    pub fn decode(
        &self,
        index: u32,
        sealed_len: u32,
        plain_len: usize,
        pieces: &[Option<Bytes>],
    ) -> Result<Vec<u8>, ChunkError> {
        let mut sealed = self.assemble(sealed_len as usize, pieces)?;
        let body = self
            .keys
            .open(self.cipher, self.nonce(index), AAD, &mut sealed)
            .map_err(|_| ChunkError::Authentication)?;
        let Some(payload) = body.checked_sub(1) else {
            return Err(ChunkError::Authentication);
        };
        match sealed[payload] {
            CODEC_RAW => {
                sealed.truncate(payload);
                if sealed.len() != plain_len {
                    return Err(ChunkError::Length {
                        expected: plain_len,
                        got: sealed.len(),
                    });
                }
                Ok(sealed)
            }
            CODEC_ZSTD => {
                let mut out = Vec::with_capacity(plain_len);
                let got = DECOMPRESSOR.with_borrow_mut(|slot| {
                    let decompressor = match slot {
                        Some(d) => d,
                        None => slot.insert(
                            zstd::bulk::Decompressor::new()
                                .map_err(|e| ChunkError::Decompress(e.to_string()))?,
                        ),
                    };
                    decompressor
                        .decompress_to_buffer(&sealed[..payload], &mut out)
                        .map_err(|e| ChunkError::Decompress(e.to_string()))
                })?;
                if got != plain_len {
                    return Err(ChunkError::Length {
                        expected: plain_len,
                        got,
                    });
                }
                Ok(out)
            }
            other => Err(ChunkError::Codec(other)),
        }
    }

    /// Every piece of a chunk, regenerated from any `data` intact ones (for rebuilds). The result is
    /// what `encode` produced: Reed-Solomon is deterministic.
    pub fn reconstruct(
        &self,
        sealed_len: u32,
        pieces: &[Option<Bytes>],
    ) -> Result<Vec<Bytes>, ChunkError> {
        let (k, n) = (self.data, self.shards());
        let s = piece_len(sealed_len as usize, k);
        let mut all = self.assemble(sealed_len as usize, pieces)?;
        // The padding is zeros, as `encode` wrote it.
        all.resize(s * k, 0);
        ENCODER.with_borrow_mut(|slot| {
            let encoder = reset_encoder(slot, k, self.parity, s);
            for piece in all[..s * k].chunks_exact(s) {
                encoder
                    .add_original_shard(piece)
                    .expect("shard of the set size");
            }
            let result = encoder.encode().expect("every original shard added");
            let recovery: Vec<u8> = result.recovery_iter().flatten().copied().collect();
            all.extend_from_slice(&recovery);
        });
        let all = Bytes::from(all);
        Ok((0..n).map(|i| all.slice(i * s..(i + 1) * s)).collect())
    }
}

fn reset_encoder(
    slot: &mut Option<ReedSolomonEncoder>,
    k: usize,
    parity: usize,
    s: usize,
) -> &mut ReedSolomonEncoder {
    match slot {
        Some(encoder) => {
            encoder.reset(k, parity, s).expect("shard counts validated");
            encoder
        }
        None => slot.insert(ReedSolomonEncoder::new(k, parity, s).expect("shard counts validated")),
    }
}

fn compress(level: i32, plain: &[u8], out: &mut Vec<u8>) {
    COMPRESSOR.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((
                level,
                zstd::bulk::Compressor::new(level).expect("level validated"),
            ));
        }
        let (_, compressor) = slot.as_mut().expect("set above");
        compressor
            .compress_to_buffer(plain, out)
            .expect("buffer of compress_bound bytes");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(data: usize, parity: usize, compression: CompressionKind) -> ChunkCodec {
        ChunkCodec {
            keys: Arc::new(Keys::new(&[3; 32])),
            data,
            parity,
            cipher: CipherKind::Aes256Gcm,
            compression,
            level: 1,
            nonce_prefix: [9; 8],
        }
    }

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Encodes `plain`, drops the pieces in `lose`, and checks the chunk comes back.
    fn check(codec: &ChunkCodec, plain: &[u8], lose: &[usize]) {
        let encoded = codec.encode(5, plain);
        let n = codec.data + codec.parity;
        assert_eq!(encoded.pieces.len(), n);
        for (piece, sum) in encoded.pieces.iter().zip(&encoded.checksums) {
            assert_eq!(checksum(piece), *sum);
        }
        let mut pieces: Vec<Option<Bytes>> = encoded.pieces.iter().cloned().map(Some).collect();
        for &i in lose {
            pieces[i] = None;
        }
        let back = codec
            .decode(5, encoded.sealed_len, plain.len(), &pieces)
            .unwrap();
        assert_eq!(back, plain);
        let all = codec.reconstruct(encoded.sealed_len, &pieces).unwrap();
        assert_eq!(
            all, encoded.pieces,
            "regenerated pieces equal the stored ones"
        );
    }

    #[test]
    fn roundtrips_with_lost_pieces() {
        let text: Vec<u8> = b"the grid stores files on many zdbs; ".repeat(3000);
        for compression in [CompressionKind::Zstd, CompressionKind::None] {
            let c = codec(4, 2, compression);
            for plain in [
                vec![],
                vec![1],
                noise(4095, 1),
                noise(100_001, 2),
                text.clone(),
            ] {
                check(&c, &plain, &[]);
                check(&c, &plain, &[0]);
                check(&c, &plain, &[1, 3]);
                check(&c, &plain, &[4, 5]);
                check(&c, &plain, &[0, 5]);
            }
        }
        check(&codec(1, 1, CompressionKind::Zstd), &noise(999, 3), &[0]);
        check(&codec(10, 4, CompressionKind::Zstd), &text, &[0, 2, 9, 13]);
    }

    #[test]
    fn compressible_chunks_are_smaller_and_random_ones_not_larger() {
        let c = codec(4, 2, CompressionKind::Zstd);
        let text = b"abcdefgh".repeat(10_000);
        assert!((c.encode(0, &text).sealed_len as usize) < text.len() / 10);
        let random = noise(80_000, 4);
        assert_eq!(
            c.encode(0, &random).sealed_len as usize,
            random.len() + 1 + TAG_BYTES
        );
    }

    #[test]
    fn large_chunks_are_compressed_only_when_a_sample_shrinks() {
        let c = codec(4, 2, CompressionKind::Zstd);
        let raw_len = |plain: &[u8]| plain.len() + 1 + TAG_BYTES;
        let random = noise(4 << 20, 6);
        assert_eq!(c.encode(0, &random).sealed_len as usize, raw_len(&random));
        let text = b"the grid stores files on many zdbs; ".repeat(120_000);
        assert!((c.encode(0, &text).sealed_len as usize) < text.len() / 10);
        // Random except a compressible quarter: the sample (a slice of each quarter) still shrinks.
        let mut mixed = noise(4 << 20, 7);
        mixed[..1 << 20].fill(b'a');
        assert!((c.encode(0, &mixed).sealed_len as usize) < mixed.len() * 9 / 10);
        check(&c, &mixed, &[1, 4]);
    }

    #[test]
    fn failures_are_named() {
        let c = codec(4, 2, CompressionKind::Zstd);
        let plain = noise(10_000, 5);
        let encoded = c.encode(1, &plain);
        let mut pieces: Vec<Option<Bytes>> = encoded.pieces.iter().cloned().map(Some).collect();
        pieces[0] = None;
        pieces[1] = None;
        pieces[2] = None;
        assert_eq!(
            c.decode(1, encoded.sealed_len, plain.len(), &pieces),
            Err(ChunkError::TooFewShards { good: 3, needed: 4 })
        );
        let all: Vec<Option<Bytes>> = encoded.pieces.iter().cloned().map(Some).collect();
        assert_eq!(
            c.decode(2, encoded.sealed_len, plain.len(), &all),
            Err(ChunkError::Authentication),
            "a chunk moved to another index does not open"
        );
        let other_key = ChunkCodec {
            keys: Arc::new(Keys::new(&[4; 32])),
            ..c.clone()
        };
        assert_eq!(
            other_key.decode(1, encoded.sealed_len, plain.len(), &all),
            Err(ChunkError::Authentication)
        );
        let mut flipped = encoded.pieces[0].to_vec();
        flipped[7] ^= 1;
        let mut bad = all.clone();
        bad[0] = Some(Bytes::from(flipped));
        assert_eq!(
            c.decode(1, encoded.sealed_len, plain.len(), &bad),
            Err(ChunkError::Authentication)
        );
    }
}
