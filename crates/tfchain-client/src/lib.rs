//! The chain's JSON-RPC 2.0 API, defined once: `tfchain` implements the server side, and `zos`,
//! `gridproxy` and `tfgrid` use the typed client, which connects through a comma-separated list of
//! a chain's endpoints, makes a lost connection again through it, and also signs, submits and
//! follows transactions.

pub mod api;
mod client;
pub mod endpoints;
pub mod limits;

pub use api::*;
pub use client::{Client, ClientError, INCLUSION_TIMEOUT, Included};
pub use endpoints::{Attempt, Backoff};
/// The error of a raw API call: `Call` carries the node's error code and message.
pub use jsonrpsee::core::client::Error as RpcClientError;
/// A connection, as [`Client::rpc`] gives the one of the moment.
pub use jsonrpsee::ws_client::WsClient;
