//! The TFChain ledger node: chain specs, the redb store, the transaction pool, the chain core that
//! proposes, judges and commits blocks, the consensus trait with its single-validator engine and its
//! BFT engine (Malachite), batched signature checks, and the JSON-RPC server with the connection
//! policy of its listener.

pub mod bft;
pub mod chain;
pub mod consensus;
pub mod limits;
pub mod listener;
pub mod mempool;
pub mod node;
pub mod relay;
pub mod rpc;
pub mod spec;
pub mod store;
pub mod verify;
