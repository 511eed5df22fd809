//! Storing a file: a reader thread cuts it into chunks (hashing the whole content as it goes), the
//! chunks are encoded on blocking threads in parallel, and each chunk's pieces are written to their
//! backends concurrently, a bounded number of chunks at a time, so memory stays the same whatever
//! the file size. The metadata is saved last: a file is stored once its record is.

use crate::chunk::{ChunkCodec, EncodedChunk};
use crate::error::{Error, io};
use crate::meta::{FileMeta, Piece, ShardMeta};
use crate::{Link, Zstor, limits, now_micros};
use futures::{StreamExt, TryStreamExt, future::try_join_all};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// What a store did.
#[derive(Debug, Clone)]
pub enum StoreOutcome {
    Stored(FileMeta),
    /// The same content was already stored under the key (0-stor's deduplication).
    Unchanged(FileMeta),
}

impl StoreOutcome {
    pub fn meta(&self) -> &FileMeta {
        match self {
            StoreOutcome::Stored(meta) | StoreOutcome::Unchanged(meta) => meta,
        }
    }
}

impl Zstor {
    /// Stores the file at `path` under `key`, replacing what was stored there.
    pub async fn store_file(&self, key: &str, path: &Path) -> Result<StoreOutcome, Error> {
        let open = || std::fs::File::open(path).map_err(io(format!("opening {}", path.display())));
        let size = open()?
            .metadata()
            .map_err(io(format!("reading {}", path.display())))?
            .len();
        let chunk_bytes = u64::from(limits::CHUNK_BYTES);
        let max_bytes = limits::chunks_per_file_max(self.config.shards()) * chunk_bytes;
        if size > max_bytes {
            return Err(Error::TooLarge {
                size_bytes: size,
                max_bytes,
            });
        }
        let previous = match self.metastore().load(key).await {
            Ok(loaded) => Some(loaded.meta),
            Err(Error::NotFound(_) | Error::CorruptMetadata { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(previous) = previous.as_ref().filter(|p| p.size_bytes == size) {
            let file = open()?;
            let hash = tokio::task::spawn_blocking(move || {
                blake3::Hasher::new()
                    .update_reader(file)
                    .map(|h| h.finalize())
            })
            .await
            .expect("hashing thread")
            .map_err(io(format!("reading {}", path.display())))?;
            if *hash.as_bytes() == previous.checksum {
                return Ok(StoreOutcome::Unchanged(previous.clone()));
            }
        }
        let generation = previous.map_or(0, |p| p.generation + 1).max(now_micros());
        let meta = self.upload(key, open()?, generation).await?;
        if meta.size_bytes > max_bytes {
            // The file grew while it was read.
            return Err(Error::TooLarge {
                size_bytes: meta.size_bytes,
                max_bytes,
            });
        }
        self.metastore().save(&meta).await?;
        Ok(StoreOutcome::Stored(meta))
    }

    /// Writes the content of `reader` to freshly placed backends; returns its metadata (not saved).
    async fn upload(
        &self,
        key: &str,
        reader: impl Read + Send + 'static,
        generation: u64,
    ) -> Result<FileMeta, Error> {
        let config = &self.config;
        let n = config.shards();
        let links = self
            .place("store", n, &BTreeSet::new(), vec![0; config.groups.len()])
            .await?;
        let codec = Arc::new(ChunkCodec {
            keys: self.keys.clone(),
            data: config.data_shards,
            parity: config.parity_shards,
            cipher: config.encryption.algorithm,
            compression: config.compression.algorithm,
            level: config.compression.level,
            nonce_prefix: rand::random(),
        });

        let (tx, rx) = tokio::sync::mpsc::channel(limits::READ_AHEAD_CHUNKS);
        let reader = tokio::task::spawn_blocking(move || read_chunks(reader, &tx));
        let chunks =
            futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|c| (c, rx)) });
        let parallel = std::thread::available_parallelism()
            .map_or(1, |p| p.get())
            .min(limits::ENCODE_PARALLEL_MAX);
        let written: Vec<(u32, Vec<Piece>)> = chunks
            .enumerate()
            .map(|(index, plain)| {
                let codec = codec.clone();
                async move {
                    let index = u32::try_from(index).expect("chunk count bounded");
                    tokio::task::spawn_blocking(move || codec.encode(index, &plain))
                        .await
                        .expect("encoder thread")
                }
            })
            .buffered(parallel)
            .map(|encoded| write_chunk(&links, encoded))
            .buffered(limits::CHUNKS_IN_FLIGHT)
            .try_collect()
            .await?;
        let (checksum, size_bytes) = reader
            .await
            .expect("reader thread")
            .map_err(io(format!("reading the content of {key:?}")))?;

        let mut shards: Vec<ShardMeta> = links
            .iter()
            .map(|link| ShardMeta {
                backend: link.id.clone(),
                pieces: Vec::with_capacity(written.len()),
            })
            .collect();
        let mut sealed_lens = Vec::with_capacity(written.len());
        for (sealed_len, pieces) in written {
            sealed_lens.push(sealed_len);
            for (shard, piece) in shards.iter_mut().zip(pieces) {
                shard.pieces.push(piece);
            }
        }
        Ok(FileMeta {
            key: key.into(),
            generation,
            stored_at_secs: now_micros() / 1_000_000,
            size_bytes,
            checksum,
            data_shards: u16::try_from(config.data_shards).expect("validated"),
            parity_shards: u16::try_from(config.parity_shards).expect("validated"),
            chunk_bytes: limits::CHUNK_BYTES,
            cipher: config.encryption.algorithm as u8,
            compression: config.compression.algorithm as u8,
            nonce_prefix: codec.nonce_prefix,
            sealed_lens,
            shards,
        })
    }
}

/// Writes each piece of a chunk to its backend, all at once.
async fn write_chunk(
    links: &[Arc<Link>],
    encoded: EncodedChunk,
) -> Result<(u32, Vec<Piece>), Error> {
    let keys = try_join_all(
        links
            .iter()
            .zip(&encoded.pieces)
            .map(|(link, piece)| link.store(piece)),
    )
    .await?;
    let pieces = keys
        .into_iter()
        .zip(&encoded.checksums)
        .map(|(key, checksum)| Piece {
            key,
            checksum: *checksum,
        })
        .collect();
    Ok((encoded.sealed_len, pieces))
}

/// Reads `reader` in chunks into `tx`; returns the blake3 of everything read and its length. Stops
/// early, without error, if the receiver is gone (the store failed elsewhere).
fn read_chunks(
    mut reader: impl Read,
    tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
) -> std::io::Result<([u8; 32], u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    loop {
        let mut chunk = Vec::with_capacity(limits::CHUNK_BYTES as usize);
        let got = (&mut reader)
            .take(u64::from(limits::CHUNK_BYTES))
            .read_to_end(&mut chunk)?;
        if got == 0 {
            break;
        }
        hasher.update(&chunk);
        total += got as u64;
        if tx.blocking_send(chunk).is_err() {
            break;
        }
        if got < limits::CHUNK_BYTES as usize {
            break;
        }
    }
    Ok((*hasher.finalize().as_bytes(), total))
}
