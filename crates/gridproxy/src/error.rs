//! The one error type of the library: what failed, named by the step (store, chain, request).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A query parameter is malformed, unknown or out of range.
    #[error("bad parameter {name}: {reason}")]
    BadParam { name: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("store: {0}")]
    Store(String),
    /// A value from the chain does not fit the store's integer columns.
    #[error("{what} does not fit a 64-bit signed integer: {value}")]
    Overflow { what: &'static str, value: String },
    #[error("chain: {0}")]
    Chain(String),
    /// The store indexes another chain than the one it is pointed at.
    #[error("the store indexes the chain with genesis {stored}, but the chain has genesis {chain}")]
    OtherChain { stored: String, chain: String },
    /// A block arrived out of order: applying it would skip blocks.
    #[error("block {got} does not follow the last indexed block {last}")]
    Gap { last: i64, got: u64 },
}

impl Error {
    pub fn bad_param(name: &str, reason: impl Into<String>) -> Error {
        Error::BadParam {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(e.to_string())
    }
}

impl From<tfchain_client::ClientError> for Error {
    fn from(e: tfchain_client::ClientError) -> Self {
        Error::Chain(e.to_string())
    }
}

impl From<tfchain_client::RpcClientError> for Error {
    fn from(e: tfchain_client::RpcClientError) -> Self {
        Error::Chain(e.to_string())
    }
}
