//! zdb-core: the 0-db engine without sockets or clock. It owns append-only data files and index
//! files per namespace, the in-memory key index, namespace settings, per-key history and crash
//! recovery. Time comes in as a value (unix seconds); all file access goes through [`storage`].
#![forbid(unsafe_code)]

pub mod engine;
pub mod error;
pub mod format;
pub mod keys;
pub mod namespace;
pub mod settings;
pub mod storage;

pub use engine::{DEFAULT_NAMESPACE, Engine, EngineConfig, NAMESPACE_NAME_MAX, Slot};
pub use error::{Error, Result};
pub use format::{FORMAT_VERSION, Mode};
pub use namespace::{
    CURSOR_LEN, HISTORY_KEY_LEN, HistoryItem, KEY_MAX, Namespace, NsStats, RawEntry, ScanEntry,
    ScanPage, SetOutcome, VALUE_MAX,
};
pub use settings::Settings;
