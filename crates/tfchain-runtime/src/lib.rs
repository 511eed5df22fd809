//! The TFChain ledger as a deterministic state machine. It owns the state (typed tables), the modules
//! mirroring TFChain's pallets (balances, tfgrid, council, kvstore, smart-contract with billing,
//! validator set), transactions, blocks and events.
//! No IO, no clock, no randomness: time comes with each block, storage is whoever loads the tables.

#![forbid(unsafe_code)]

pub mod balances;
pub mod block;
pub mod council;
pub mod error;
pub mod event;
pub mod genesis;
pub mod kvstore;
pub mod limits;
mod lthash;
pub mod runtime;
pub mod smart_contract;
pub mod state;
pub mod table;
pub mod tfgrid;
pub mod tx;
pub mod types;
pub mod validators;

#[cfg(test)]
mod testing;

pub use block::{Block, Commit, EventRecord, Header};
pub use error::{DispatchError, TxInvalid};
pub use event::Event;
pub use genesis::Genesis;
pub use runtime::{BlockOutcome, Receipt, Runtime};
pub use state::State;
pub use tx::{Call, SignedTransaction, Transaction};
