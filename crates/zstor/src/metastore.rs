//! Metadata on the metadata backends: every record is written whole to each of them and counts as
//! saved once a majority holds it; a read asks all reachable ones and takes the highest generation
//! that opens, so one lost or corrupt copy changes nothing. Keys are listed with SCAN.

use crate::config::{BackendConfig, CipherKind};
use crate::crypto::Keys;
use crate::error::Error;
use crate::meta::{self, FileMeta, MetaError};
use crate::zdb::{Conn, ZdbError};
use futures::future::join_all;
use std::collections::BTreeSet;

/// The metadata backends of a config, with the key to seal records.
#[derive(Debug, Clone, Copy)]
pub struct MetaStore<'a> {
    pub backends: &'a [BackendConfig],
    pub prefix: &'a str,
    pub keys: &'a Keys,
    pub cipher: CipherKind,
}

/// A record as read: the winning copy, and how many backends hold it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub meta: FileMeta,
    /// The 0-db key it lives under.
    pub meta_key: String,
    /// Backends holding this generation.
    pub copies: usize,
    /// Backends that answered.
    pub reachable: usize,
}

impl MetaStore<'_> {
    /// Copies needed for a write to count, and to be sure a record is absent.
    pub fn majority(&self) -> usize {
        self.backends.len() / 2 + 1
    }

    async fn connect_all(&self) -> (Vec<Conn>, Vec<String>) {
        let results = join_all(self.backends.iter().map(Conn::connect)).await;
        let mut conns = Vec::new();
        let mut errors = Vec::new();
        for (backend, result) in self.backends.iter().zip(results) {
            match result {
                Ok(conn) => conns.push(conn),
                Err(e) => errors.push(format!("{}: {e}", backend.id())),
            }
        }
        (conns, errors)
    }

    /// The metadata of the file stored under `file_key`.
    pub async fn load(&self, file_key: &str) -> Result<Loaded, Error> {
        let loaded = self
            .load_record(&meta::meta_key(self.prefix, file_key))
            .await;
        match loaded {
            Err(Error::NotFound(_)) => Err(Error::NotFound(file_key.into())),
            Err(Error::WrongKey { .. }) => Err(Error::WrongKey {
                key: file_key.into(),
            }),
            Err(Error::CorruptMetadata { reason, .. }) => Err(Error::CorruptMetadata {
                key: file_key.into(),
                reason,
            }),
            other => other,
        }
    }

    /// The record under the 0-db key `meta_key` (as listed by [`MetaStore::list`]).
    pub async fn load_record(&self, meta_key: &str) -> Result<Loaded, Error> {
        let (mut conns, unreachable) = self.connect_all().await;
        let reachable = conns.len();
        let reads = join_all(conns.iter_mut().map(|c| c.get(meta_key.as_bytes()))).await;
        let mut best: Option<FileMeta> = None;
        let mut generations = Vec::new();
        let mut wrong_key = false;
        let mut corrupt = None;
        let mut failed = unreachable.clone();
        for read in reads {
            match read {
                Ok(Some(record)) => match meta::open(self.keys, meta_key, &record) {
                    Ok(found) => {
                        generations.push(found.generation);
                        if best
                            .as_ref()
                            .is_none_or(|b| found.generation > b.generation)
                        {
                            best = Some(found);
                        }
                    }
                    Err(MetaError::WrongKey) => wrong_key = true,
                    Err(MetaError::Corrupt(reason)) => corrupt = Some(reason),
                },
                Ok(None) => {}
                Err(e) => failed.push(e.to_string()),
            }
        }
        match best {
            Some(meta) => Ok(Loaded {
                copies: generations
                    .iter()
                    .filter(|&&g| g == meta.generation)
                    .count(),
                meta,
                meta_key: meta_key.into(),
                reachable,
            }),
            None if wrong_key => Err(Error::WrongKey {
                key: meta_key.into(),
            }),
            None if corrupt.is_some() => Err(Error::CorruptMetadata {
                key: meta_key.into(),
                reason: corrupt.expect("checked"),
            }),
            None if reachable - (failed.len() - unreachable.len()) < self.majority() => {
                Err(Error::TooFewMetaBackends {
                    op: "look up metadata".into(),
                    needed: self.majority(),
                    reachable,
                    unreachable: failed,
                })
            }
            None => Err(Error::NotFound(meta_key.into())),
        }
    }

    /// Writes `meta` to every reachable metadata backend; returns how many hold it.
    pub async fn save(&self, meta: &FileMeta) -> Result<usize, Error> {
        let meta_key = meta::meta_key(self.prefix, &meta.key);
        let (mut conns, mut failed) = self.connect_all().await;
        let too_few = |reachable, unreachable| Error::TooFewMetaBackends {
            op: "save metadata".into(),
            needed: self.majority(),
            reachable,
            unreachable,
        };
        if conns.len() < self.majority() {
            return Err(too_few(conns.len(), failed));
        }
        let record = meta::seal(self.keys, self.cipher, &meta_key, meta, rand::random());
        let writes = join_all(
            conns
                .iter_mut()
                .map(|c| c.set(meta_key.as_bytes(), &record)),
        )
        .await;
        let mut copies = 0;
        for write in writes {
            match write {
                Ok(()) => copies += 1,
                Err(e) => failed.push(e.to_string()),
            }
        }
        if copies < self.majority() {
            return Err(too_few(copies, failed));
        }
        Ok(copies)
    }

    /// Every metadata key (one per stored file), from all reachable backends.
    pub async fn list(&self) -> Result<BTreeSet<String>, Error> {
        let (mut conns, mut failed) = self.connect_all().await;
        let prefix = meta::meta_key_prefix(self.prefix);
        let mut keys = BTreeSet::new();
        let mut scanned = 0;
        for conn in &mut conns {
            match scan_all(conn, &prefix, &mut keys).await {
                Ok(()) => scanned += 1,
                Err(e) => failed.push(e.to_string()),
            }
        }
        if scanned < self.majority() {
            return Err(Error::TooFewMetaBackends {
                op: "list files".into(),
                needed: self.majority(),
                reachable: scanned,
                unreachable: failed,
            });
        }
        Ok(keys)
    }
}

/// Adds the keys of one backend starting with `prefix` to `keys`.
async fn scan_all(
    conn: &mut Conn,
    prefix: &str,
    keys: &mut BTreeSet<String>,
) -> Result<(), ZdbError> {
    let mut cursor: Option<Vec<u8>> = None;
    for _ in 0..crate::limits::SCAN_PAGES_MAX {
        let Some((next, page)) = conn.scan(cursor.as_deref()).await? else {
            return Ok(());
        };
        keys.extend(
            page.iter()
                .filter_map(|k| std::str::from_utf8(k).ok())
                .filter(|k| k.starts_with(prefix))
                .map(str::to_owned),
        );
        cursor = Some(next.to_vec());
    }
    Err(ZdbError::Protocol("SCAN did not end".into()))
}
