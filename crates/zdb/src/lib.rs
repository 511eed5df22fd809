//! zdb: a 0-db compatible server on top of `zdb-core`. This library holds the RESP codec, the
//! commands, the connection loop, replication and hooks; `main.rs` only parses flags and runs it.

pub mod cmd;
pub mod config;
pub mod connection;
pub mod error;
pub mod hooks;
pub mod limits;
pub mod replication;
pub mod resp;
pub mod server;
pub mod session;
