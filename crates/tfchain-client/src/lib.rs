//! The chain's JSON-RPC 2.0 API, defined once: `tfchain` implements the server side, and `zos`,
//! `gridproxy` and `tfgrid` use the typed client, which also signs, submits and follows transactions.

pub mod api;
mod client;

pub use api::*;
pub use client::{Client, ClientError, INCLUSION_TIMEOUT, Included};
/// The error of a raw API call: `Call` carries the node's error code and message.
pub use jsonrpsee::core::client::Error as RpcClientError;
