//! Retrieving a file: connect to every shard's backend, rank them by the round trip of a PING
//! (whole milliseconds; originals first among equals, since they need no erasure decoding), and
//! read each chunk from the fastest `data` of them, falling back to the next ones for a piece that
//! is missing or unreadable. A chunk that then fails authentication is read again with every
//! piece checked against its checksum, so a corrupt piece is replaced by another shard's. Chunks
//! are decoded in parallel and written in order to a temporary file beside the target, which
//! replaces the target only once the content's checksum matches.

use crate::chunk::{ChunkCodec, ChunkError};
use crate::error::{Error, io};
use crate::meta::FileMeta;
use crate::{Link, PieceRead, Zstor, limits};
use futures::future::join_all;
use futures::{StreamExt, TryStreamExt};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl Zstor {
    /// Reads the file stored under `key` into `out`; returns its metadata.
    pub async fn retrieve_file(&self, key: &str, out: &Path) -> Result<FileMeta, Error> {
        let meta = self.metastore().load(key).await?.meta;
        let links = self.open_shards(&meta).await;
        let k = meta.data();
        let mut ranked: Vec<(usize, Arc<Link>, u128)> = Vec::new();
        let mut unreachable = Vec::new();
        for (i, link) in links.into_iter().enumerate() {
            match link {
                Ok(link) => {
                    let rtt_ms = link.conn.lock().await.rtt.as_millis();
                    ranked.push((i, link, rtt_ms));
                }
                Err(e) => unreachable.push(e),
            }
        }
        if ranked.len() < k {
            return Err(Error::TooFewBackends {
                op: format!("retrieve {key:?}"),
                needed: k,
                reachable: ranked.len(),
                unreachable,
            });
        }
        ranked.sort_by_key(|(i, _, rtt_ms)| (*rtt_ms, *i >= k, *i));
        let ranked: Vec<(usize, Arc<Link>)> = ranked.into_iter().map(|(i, l, _)| (i, l)).collect();

        let temp = temp_path(out);
        let file =
            std::fs::File::create(&temp).map_err(io(format!("creating {}", temp.display())))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(limits::WRITE_BEHIND_CHUNKS);
        let writer = tokio::task::spawn_blocking(move || write_chunks(file, &mut rx));
        let codec = Arc::new(self.codec_for(&meta));
        let meta = Arc::new(meta);
        let result = futures::stream::iter(0..meta.chunk_count())
            .map(|index| {
                let (meta, codec, ranked) = (meta.clone(), codec.clone(), &ranked);
                async move {
                    // Fast path: pieces unverified, since the chunk's authentication covers every
                    // byte; checksums are needed only to find which piece spoiled it.
                    let pieces = read_fastest(&meta, ranked, index, false).await;
                    match decode(&codec, &meta, index, pieces).await {
                        Err(ChunkError::Authentication | ChunkError::PieceSize { .. }) => {
                            tracing::warn!(
                                "chunk {index} of {:?} failed authentication: reading it again with checksums",
                                meta.key
                            );
                            let pieces = read_fastest(&meta, ranked, index, true).await;
                            decode(&codec, &meta, index, pieces).await
                        }
                        other => other,
                    }
                    .map_err(|source| Error::Chunk {
                        key: meta.key.clone(),
                        chunk: index,
                        source,
                    })
                }
            })
            .buffered(limits::CHUNKS_IN_FLIGHT)
            .try_for_each(|plain| {
                let tx = &tx;
                async move {
                    tx.send(plain).await.map_err(|_| Error::Io {
                        what: "writing the retrieved file".into(),
                        source: std::io::Error::other("writer stopped"),
                    })
                }
            })
            .await;
        drop(tx);
        let written = writer.await.expect("writer thread");
        let outcome = match (result, written) {
            (_, Err(e)) => Err(io(format!("writing {}", temp.display()))(e)),
            (Err(e), Ok(_)) => Err(e),
            (Ok(()), Ok(hash)) if hash != meta.checksum => Err(Error::Checksum { key: key.into() }),
            (Ok(()), Ok(_)) => std::fs::rename(&temp, out).map_err(io(format!(
                "renaming {} to {}",
                temp.display(),
                out.display()
            ))),
        };
        if outcome.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        outcome.map(|()| Arc::unwrap_or_clone(meta))
    }
}

/// Decodes chunk `index` on a blocking thread.
async fn decode(
    codec: &Arc<ChunkCodec>,
    meta: &FileMeta,
    index: usize,
    pieces: Vec<Option<bytes::Bytes>>,
) -> Result<Vec<u8>, ChunkError> {
    let codec = codec.clone();
    let (sealed_len, plain_len) = (meta.sealed_lens[index], meta.plain_len(index));
    tokio::task::spawn_blocking(move || codec.decode(index as u32, sealed_len, plain_len, &pieces))
        .await
        .expect("decoder thread")
}

/// The pieces of chunk `index`: from the first `data` backends of `ranked`, then from the next
/// ones in turn for each piece that did not come back (intact, if `verify`).
async fn read_fastest(
    meta: &FileMeta,
    ranked: &[(usize, Arc<Link>)],
    index: usize,
    verify: bool,
) -> Vec<Option<bytes::Bytes>> {
    let k = meta.data();
    let mut pieces = vec![None; meta.shard_count()];
    let (mut good, mut next) = (0, 0);
    while good < k && next < ranked.len() {
        let batch = &ranked[next..ranked.len().min(next + k - good)];
        next += batch.len();
        let reads = join_all(batch.iter().map(|(shard, link)| {
            let piece = &meta.shards[*shard].pieces[index];
            link.fetch(piece.key, verify.then_some(&piece.checksum))
        }))
        .await;
        for ((shard, link), read) in batch.iter().zip(reads) {
            match read {
                PieceRead::Intact(bytes) => {
                    pieces[*shard] = Some(bytes);
                    good += 1;
                }
                other => tracing::warn!(
                    "chunk {index} of {:?}: shard {shard} on {} is {}",
                    meta.key,
                    link.id,
                    describe(&other)
                ),
            }
        }
    }
    pieces
}

pub(crate) fn describe(read: &PieceRead) -> String {
    match read {
        PieceRead::Intact(_) => "intact".into(),
        PieceRead::Corrupt => "corrupt (checksum mismatch)".into(),
        PieceRead::Missing => "missing".into(),
        PieceRead::Failed(e) => format!("unreadable: {e}"),
    }
}

/// Writes chunks as they come; returns the blake3 of the whole.
fn write_chunks(
    file: std::fs::File,
    rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<[u8; 32]> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = blake3::Hasher::new();
    while let Some(chunk) = rx.blocking_recv() {
        hasher.update(&chunk);
        out.write_all(&chunk)?;
    }
    // Not synced, like cp: the rename makes the whole file appear at once, and a caller that needs
    // it on disk syncs it.
    out.flush()?;
    Ok(*hasher.finalize().as_bytes())
}

fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or("zstor".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.zstor-{:016x}", rand::random::<u64>()))
}
