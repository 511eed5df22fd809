//! The engine's one error type: each variant names the step or the rule that failed, so the server
//! can map it to 0-db's reply strings in one place.

use std::io;

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("corrupt {what}")]
    Corrupt { what: String },
    #[error("key too large")]
    KeyTooLarge,
    #[error("value too large")]
    ValueTooLarge,
    #[error("key needed")]
    KeyNeeded,
    #[error("only update authorized in sequential mode")]
    OnlyUpdate,
    #[error("overwrite refused by worm mode")]
    Worm,
    #[error("delete refused by worm mode")]
    WormDelete,
    #[error("no space left on this namespace")]
    NoSpace,
    #[error("key not found")]
    KeyNotFound,
    #[error("namespace not found")]
    NamespaceNotFound,
    #[error("namespace already exists")]
    NamespaceExists,
    #[error("namespace name not allowed")]
    NameNotAllowed,
    #[error("namespace was created in {found:?} mode, the server runs in {running:?} mode")]
    ModeMismatch {
        found: crate::Mode,
        running: crate::Mode,
    },
    #[error("cannot change the mode of a namespace holding data")]
    ModeInUse,
    #[error("no more data")]
    NoMoreData,
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("no more history")]
    NoMoreHistory,
    #[error("history key does not belong to this key")]
    InvalidHistoryKey,
    #[error("offset beyond the end of the data file")]
    Eof,
    #[error("no valid entry at this offset")]
    InvalidEntry,
}

/// Adds the failing step to an `io::Error`.
pub(crate) trait IoStep<T> {
    fn step(self, step: &'static str) -> Result<T>;
}

impl<T> IoStep<T> for io::Result<T> {
    fn step(self, step: &'static str) -> Result<T> {
        self.map_err(|source| Error::Io { step, source })
    }
}
