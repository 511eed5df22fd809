//! The library's one error type: each variant names the step that failed and carries what a user
//! needs to act (how many backends were needed and reachable, which key, which chunk).

use crate::chunk::ChunkError;
use crate::config::{BackendId, ConfigError};
use crate::zdb::ZdbError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    #[error(
        "too few backends reachable to {op}: {needed} needed, {reachable} reachable{}",
        reasons(.unreachable)
    )]
    TooFewBackends {
        op: String,
        needed: usize,
        reachable: usize,
        unreachable: Vec<String>,
    },
    #[error(
        "too few metadata backends reachable to {op}: {needed} needed, {reachable} reachable{}",
        reasons(.unreachable)
    )]
    TooFewMetaBackends {
        op: String,
        needed: usize,
        reachable: usize,
        unreachable: Vec<String>,
    },
    #[error(
        "metadata of {key:?} was written with another encryption key: check [encryption] key in the config"
    )]
    WrongKey { key: String },
    #[error("corrupt metadata for {key:?}: {reason}")]
    CorruptMetadata { key: String, reason: String },
    #[error("nothing is stored under key {0:?}")]
    NotFound(String),
    #[error("chunk {chunk} of {key:?}: {source}")]
    Chunk {
        key: String,
        chunk: usize,
        #[source]
        source: ChunkError,
    },
    #[error("writing to backend {backend}: {source}")]
    Write {
        backend: BackendId,
        #[source]
        source: ZdbError,
    },
    #[error(
        "{size_bytes} bytes is too large: at most {max_bytes} bytes per file with these shard counts"
    )]
    TooLarge { size_bytes: u64, max_bytes: u64 },
    #[error("retrieved content of {key:?} does not match its checksum")]
    Checksum { key: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn reasons(unreachable: &[String]) -> String {
    if unreachable.is_empty() {
        String::new()
    } else {
        format!(" ({})", unreachable.join("; "))
    }
}

/// Wraps an IO error with what was being done.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
