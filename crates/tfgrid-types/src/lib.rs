//! Grid-wide types shared by the ledger, the node agent, the explorer and the CLI: ids and amounts,
//! account keys and addresses, hashes, and the canonical binary codec. Pure: no IO, no clock.

#![forbid(unsafe_code)]

pub mod amount;
pub mod capacity;
pub mod codec;
pub mod deployment;
pub mod hash;
pub mod ids;
pub mod keys;

pub use amount::{Balance, UNITS_PER_TFT, format_tft, parse_tft};
pub use hash::{Hash32, merkle_root};
pub use ids::{ContractId, FarmId, NodeId, PolicyId, TwinId};
pub use keys::{AccountId, KeyError, Keypair, Signature};
