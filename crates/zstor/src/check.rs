//! Checking and rebuilding a stored file. `check` reads every piece of every shard and reports,
//! shard by shard, what is intact, missing, corrupt or unreadable. `rebuild` regenerates what is
//! not intact from any `data` intact pieces: a shard whose backend is unreachable (or no longer in the
//! config) moves whole to another backend, placed as a store would; a damaged piece on a reachable
//! backend is written again there. The metadata is saved with the next generation, and copies
//! missing from metadata backends are written again even when the shards are whole.

use crate::chunk::{self, ChunkError};
use crate::config::BackendId;
use crate::error::Error;
use crate::{Link, PieceRead, Zstor, limits, now_micros};
use futures::future::{join_all, try_join_all};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// The state of one shard of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardReport {
    pub index: usize,
    pub backend: BackendId,
    /// Why the backend could not be reached, if it could not.
    pub unreachable: Option<String>,
    pub intact: usize,
    pub missing: usize,
    pub corrupt: usize,
    pub unreadable: usize,
}

impl ShardReport {
    pub fn is_healthy(&self) -> bool {
        self.unreachable.is_none() && self.missing + self.corrupt + self.unreadable == 0
    }
}

/// What reading one piece found, without its bytes.
enum Found {
    Intact,
    Missing,
    Corrupt,
    Unreadable,
}

/// What `check` found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub key: String,
    pub size_bytes: u64,
    pub checksum: [u8; 32],
    pub data_shards: usize,
    pub chunks: usize,
    pub shards: Vec<ShardReport>,
    /// Chunks with fewer than `data_shards` intact pieces: their content is lost.
    pub unrecoverable_chunks: usize,
    /// Metadata backends holding the current record, of how many.
    pub meta_copies: usize,
    pub meta_backends: usize,
}

impl CheckReport {
    pub fn is_healthy(&self) -> bool {
        self.shards.iter().all(ShardReport::is_healthy) && self.meta_copies == self.meta_backends
    }

    pub fn is_recoverable(&self) -> bool {
        self.unrecoverable_chunks == 0
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key: {}", self.key)?;
        writeln!(
            f,
            "size: {} bytes in {} chunks",
            self.size_bytes, self.chunks
        )?;
        writeln!(f, "checksum: {}", hex::encode(self.checksum))?;
        writeln!(
            f,
            "metadata: {} of {} backends hold the current record",
            self.meta_copies, self.meta_backends
        )?;
        for s in &self.shards {
            let state = match &s.unreachable {
                Some(reason) => format!("unreachable ({reason})"),
                None if s.is_healthy() => format!("ok ({} pieces)", s.intact),
                None => format!(
                    "damaged: {} intact, {} missing, {} corrupt, {} unreadable",
                    s.intact, s.missing, s.corrupt, s.unreadable
                ),
            };
            writeln!(f, "shard {} on {}: {state}", s.index, s.backend)?;
        }
        let verdict = if self.is_healthy() {
            "healthy".to_owned()
        } else if self.is_recoverable() {
            "degraded: recoverable, run rebuild".to_owned()
        } else {
            format!(
                "lost: {} chunks have fewer than {} intact shards",
                self.unrecoverable_chunks, self.data_shards
            )
        };
        write!(f, "status: {verdict}")
    }
}

/// What `rebuild` did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub key: String,
    /// Shards moved to another backend: (shard index, from, to).
    pub moved: Vec<(usize, BackendId, BackendId)>,
    /// Pieces regenerated and written.
    pub pieces_written: usize,
    /// Metadata backends holding the record afterwards.
    pub meta_copies: usize,
}

impl Zstor {
    /// Reads every piece of the file stored under `key` and reports what is intact.
    pub async fn check(&self, key: &str) -> Result<CheckReport, Error> {
        let loaded = self.metastore().load(key).await?;
        let meta = &loaded.meta;
        let links = self.open_shards(meta).await;
        let mut shards: Vec<ShardReport> = meta
            .shards
            .iter()
            .zip(&links)
            .enumerate()
            .map(|(index, (shard, link))| ShardReport {
                index,
                backend: shard.backend.clone(),
                unreachable: link.as_ref().err().cloned(),
                intact: 0,
                missing: 0,
                corrupt: 0,
                unreadable: 0,
            })
            .collect();
        let reachable: Vec<(usize, &Arc<Link>)> = links
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.as_ref().ok().map(|l| (i, l)))
            .collect();
        let per_chunk: Vec<Vec<(usize, Found)>> = futures::stream::iter(0..meta.chunk_count())
            .map(|c| {
                join_all(reachable.iter().map(|&(i, link)| async move {
                    let piece = &meta.shards[i].pieces[c];
                    let found = match link.fetch(piece.key, Some(&piece.checksum)).await {
                        PieceRead::Intact(_) => Found::Intact,
                        PieceRead::Missing => Found::Missing,
                        PieceRead::Corrupt => Found::Corrupt,
                        PieceRead::Failed(_) => Found::Unreadable,
                    };
                    (i, found)
                }))
            })
            .buffered(limits::CHUNKS_IN_FLIGHT)
            .collect()
            .await;
        let mut unrecoverable_chunks = 0;
        for chunk in per_chunk {
            let mut intact = 0;
            for (i, found) in chunk {
                let s = &mut shards[i];
                match found {
                    Found::Intact => {
                        s.intact += 1;
                        intact += 1;
                    }
                    Found::Missing => s.missing += 1,
                    Found::Corrupt => s.corrupt += 1,
                    Found::Unreadable => s.unreadable += 1,
                }
            }
            if intact < meta.data() {
                unrecoverable_chunks += 1;
            }
        }
        Ok(CheckReport {
            key: meta.key.clone(),
            size_bytes: meta.size_bytes,
            checksum: meta.checksum,
            data_shards: meta.data(),
            chunks: meta.chunk_count(),
            shards,
            unrecoverable_chunks,
            meta_copies: loaded.copies,
            meta_backends: self.config.meta.config.backends.len(),
        })
    }

    /// Regenerates every piece of `key` that is not intact, moving shards off unreachable backends.
    pub async fn rebuild(&self, key: &str) -> Result<RebuildReport, Error> {
        let store = self.metastore();
        let loaded = store.load(key).await?;
        let mut meta = loaded.meta.clone();
        let links = self.open_shards(&meta).await;
        let mut lost = Vec::new();
        let mut used = vec![0; self.config.groups.len()];
        let mut exclude = BTreeSet::new();
        for (i, shard) in meta.shards.iter().enumerate() {
            exclude.insert(shard.backend.clone());
            match (&links[i], self.config.data_backend(&shard.backend)) {
                (Ok(_), Some((group, _))) => used[group] += 1,
                _ => lost.push(i),
            }
        }
        let mut targets: Vec<Option<Arc<Link>>> = links
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.ok().filter(|_| !lost.contains(&i)))
            .collect();
        if !lost.is_empty() {
            let placed = self
                .place(&format!("rebuild {key:?}"), lost.len(), &exclude, used)
                .await?;
            for (&i, link) in lost.iter().zip(placed) {
                targets[i] = Some(link);
            }
        }
        let targets: Vec<Arc<Link>> = targets
            .into_iter()
            .map(|t| t.expect("every shard has a target"))
            .collect();

        let codec = Arc::new(self.codec_for(&meta));
        let (meta_ref, lost_ref, targets_ref) = (&meta, &lost, &targets);
        let rewritten: Vec<Vec<(usize, usize, u64)>> = futures::stream::iter(0..meta.chunk_count())
            .map(|c| {
                let codec = codec.clone();
                async move {
                    let reads = join_all(meta_ref.shards.iter().enumerate().map(
                        |(i, shard)| async move {
                            if lost_ref.contains(&i) {
                                return None;
                            }
                            let piece = &shard.pieces[c];
                            match targets_ref[i].fetch(piece.key, Some(&piece.checksum)).await {
                                PieceRead::Intact(bytes) => Some(bytes),
                                _ => None,
                            }
                        },
                    ))
                    .await;
                    let bad: Vec<usize> =
                        (0..reads.len()).filter(|&i| reads[i].is_none()).collect();
                    if bad.is_empty() {
                        return Ok(Vec::new());
                    }
                    let sealed_len = meta_ref.sealed_lens[c];
                    let chunk_error = |source| Error::Chunk {
                        key: meta_ref.key.clone(),
                        chunk: c,
                        source,
                    };
                    let all =
                        tokio::task::spawn_blocking(move || codec.reconstruct(sealed_len, &reads))
                            .await
                            .expect("decoder thread")
                            .map_err(chunk_error)?;
                    for &i in &bad {
                        if chunk::checksum(&all[i]) != meta_ref.shards[i].pieces[c].checksum {
                            return Err(chunk_error(ChunkError::Erasure(format!(
                                "regenerated shard {i} does not match its checksum"
                            ))));
                        }
                    }
                    let keys =
                        try_join_all(bad.iter().map(|&i| targets_ref[i].store(&all[i]))).await?;
                    Ok(bad
                        .into_iter()
                        .zip(keys)
                        .map(|(i, key)| (i, c, key))
                        .collect())
                }
            })
            .buffered(limits::CHUNKS_IN_FLIGHT)
            .try_collect()
            .await?;

        let mut pieces_written = 0;
        for (shard, chunk, key) in rewritten.into_iter().flatten() {
            meta.shards[shard].pieces[chunk].key = key;
            pieces_written += 1;
        }
        let mut moved = Vec::new();
        for &i in &lost {
            let to = targets[i].id.clone();
            let from = std::mem::replace(&mut meta.shards[i].backend, to.clone());
            moved.push((i, from, to));
        }
        let meta_copies = if pieces_written > 0 || !moved.is_empty() {
            meta.generation = (meta.generation + 1).max(now_micros());
            store.save(&meta).await?
        } else if loaded.copies < store.backends.len() {
            store.save(&meta).await?
        } else {
            loaded.copies
        };
        Ok(RebuildReport {
            key: meta.key,
            moved,
            pieces_written,
            meta_copies,
        })
    }
}
