//! zstor: dispersed storage over 0-db. A file is cut into chunks; each chunk is compressed (zstd),
//! sealed (AES-256-GCM or ChaCha20-Poly1305) and Reed-Solomon coded into `data + parity` pieces,
//! one per backend, written to sequential 0-db namespaces; the metadata (where every piece lives,
//! checksums, sizes) is sealed and copied to the metadata backends. A file survives the loss of any
//! `parity` backends; `check` finds missing or corrupt pieces, `rebuild` regenerates them, and the
//! daemon's repair loop rebuilds files whose backend stays down.
//!
//! Pure parts: `chunk` (the codec), `meta` (the record), `placement`. `config` reads the TOML file;
//! the rest talks to backends: `zdb` (the client), `metastore`, and the operations in `store`,
//! `retrieve`, `check`, `status` and `repair`.

#![forbid(unsafe_code)]

pub mod check;
pub mod chunk;
pub mod config;
pub mod crypto;
pub mod error;
pub mod limits;
pub mod meta;
pub mod metastore;
pub mod placement;
pub mod repair;
pub mod retrieve;
pub mod status;
pub mod store;
pub mod zdb;

pub use check::{CheckReport, RebuildReport, ShardReport};
pub use config::{BackendId, Config};
pub use error::Error;
pub use meta::FileMeta;
pub use store::StoreOutcome;

use chunk::{Checksum, ChunkCodec};
use config::BackendConfig;
use crypto::Keys;
use futures::future::join_all;
use metastore::MetaStore;
use rand::seq::SliceRandom;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::Mutex;
use zdb::{Conn, ZdbError};

/// A configured zstor: the entry point of every operation.
#[derive(Debug, Clone)]
pub struct Zstor {
    config: Arc<Config>,
    keys: Arc<Keys>,
}

/// A connected backend, shared by the tasks of one operation (one command at a time).
#[derive(Debug)]
pub(crate) struct Link {
    pub id: BackendId,
    pub conn: Mutex<Conn>,
}

impl Link {
    /// Fetches a piece and checks it against its checksum, if given.
    pub async fn fetch(&self, key: u64, checksum: Option<&Checksum>) -> PieceRead {
        match self.conn.lock().await.get_seq(key).await {
            Ok(Some(bytes)) if checksum.is_none_or(|c| chunk::checksum(&bytes) == *c) => {
                PieceRead::Intact(bytes)
            }
            Ok(Some(_)) => PieceRead::Corrupt,
            Ok(None) => PieceRead::Missing,
            Err(e) => PieceRead::Failed(e),
        }
    }

    /// Stores a piece; returns its new key.
    pub async fn store(&self, piece: &[u8]) -> Result<u64, Error> {
        self.conn
            .lock()
            .await
            .set_seq(piece)
            .await
            .map_err(|source| Error::Write {
                backend: self.id.clone(),
                source,
            })
    }
}

/// The outcome of reading one piece.
#[derive(Debug)]
pub(crate) enum PieceRead {
    Intact(bytes::Bytes),
    Corrupt,
    Missing,
    Failed(ZdbError),
}

impl Zstor {
    /// Checks the config and derives the keys.
    pub fn new(config: Config) -> Result<Zstor, Error> {
        config.validate()?;
        let keys = Keys::new(&config.key()?);
        Ok(Zstor {
            config: Arc::new(config),
            keys: Arc::new(keys),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn metastore(&self) -> MetaStore<'_> {
        MetaStore {
            backends: &self.config.meta.config.backends,
            prefix: &self.config.meta.config.prefix,
            keys: &self.keys,
            cipher: self.config.encryption.algorithm,
        }
    }

    /// The metadata of a stored file.
    pub async fn metadata(&self, key: &str) -> Result<FileMeta, Error> {
        Ok(self.metastore().load(key).await?.meta)
    }

    /// The keys of every stored file. A record that cannot be read is skipped with a warning
    /// naming it and why.
    pub async fn list(&self) -> Result<Vec<String>, Error> {
        let store = self.metastore();
        let mut keys = Vec::new();
        for meta_key in store.list().await? {
            match store.load_record(&meta_key).await {
                Ok(loaded) => keys.push(loaded.meta.key),
                Err(e) => tracing::warn!("skipping metadata record {meta_key}: {e}"),
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// The codec that reads (or rebuilds) a stored file.
    pub(crate) fn codec_for(&self, meta: &FileMeta) -> ChunkCodec {
        ChunkCodec {
            keys: self.keys.clone(),
            data: meta.data(),
            parity: usize::from(meta.parity_shards),
            cipher: meta.cipher(),
            compression: meta.compression(),
            level: self.config.compression.level,
            nonce_prefix: meta.nonce_prefix,
        }
    }

    /// Connects to the backend `id` with the password from the config (none if it is no longer
    /// configured).
    async fn connect(&self, id: &BackendId) -> Result<Conn, ZdbError> {
        let backend = match self.config.data_backend(id) {
            Some((_, backend)) => backend.clone(),
            None => BackendConfig {
                address: id.address.clone(),
                namespace: id.namespace.clone(),
                password: None,
            },
        };
        Conn::connect(&backend).await
    }

    /// Connects to the backend of every shard of `meta`, in shard order (a failure with its reason).
    pub(crate) async fn open_shards(&self, meta: &FileMeta) -> Vec<Result<Arc<Link>, String>> {
        join_all(meta.shards.iter().map(|shard| async move {
            match self.connect(&shard.backend).await {
                Ok(conn) => Ok(Arc::new(Link {
                    id: shard.backend.clone(),
                    conn: Mutex::new(conn),
                })),
                Err(e) => Err(format!("{}: {e}", shard.backend)),
            }
        }))
        .await
    }

    /// Chooses `count` writable data backends for new shards, spread over the groups, leaving out
    /// `exclude`; `used` counts the shards a file already has in each group.
    pub(crate) async fn place(
        &self,
        op: &str,
        count: usize,
        exclude: &BTreeSet<BackendId>,
        used: Vec<usize>,
    ) -> Result<Vec<Arc<Link>>, Error> {
        let candidates: Vec<(usize, &BackendConfig)> = self
            .config
            .groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| group.backends.iter().map(move |b| (g, b)))
            .filter(|(_, b)| !exclude.contains(&b.id()))
            .collect();
        let results = join_all(candidates.iter().map(|(_, b)| writable(b))).await;
        let mut groups: Vec<Vec<Arc<Link>>> = vec![Vec::new(); self.config.groups.len()];
        let mut unreachable = Vec::new();
        for ((g, backend), result) in candidates.iter().zip(results) {
            match result {
                Ok(conn) => groups[*g].push(Arc::new(Link {
                    id: backend.id(),
                    conn: Mutex::new(conn),
                })),
                Err(e) => unreachable.push(format!("{}: {e}", backend.id())),
            }
        }
        let reachable = groups.iter().map(Vec::len).sum();
        let mut rng = rand::thread_rng();
        for group in &mut groups {
            group.shuffle(&mut rng);
        }
        placement::spread(groups, used, count).ok_or(Error::TooFewBackends {
            op: op.into(),
            needed: count,
            reachable,
            unreachable,
        })
    }
}

/// Connects to a data backend and checks that its namespace is sequential.
async fn writable(backend: &BackendConfig) -> Result<Conn, String> {
    let mut conn = Conn::connect(backend).await.map_err(|e| e.to_string())?;
    let info = conn
        .nsinfo(&backend.namespace)
        .await
        .map_err(|e| e.to_string())?;
    match info.get("mode").map(String::as_str) {
        Some("sequential") => Ok(conn),
        other => Err(format!(
            "namespace mode is {}, sequential needed",
            other.unwrap_or("unknown")
        )),
    }
}

/// Seconds and microseconds since the epoch, from the system clock.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
