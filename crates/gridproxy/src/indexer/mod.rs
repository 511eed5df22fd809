//! The indexer: follows the chain's finalized blocks and applies each one's events to the store in
//! one transaction with the height it reached ([`apply`]), catching up by height after a start or a
//! lost connection ([`follow`]).

pub mod apply;
pub mod follow;

pub use apply::{Indexed, apply_block, bind_chain, indexed, prices, seed_tft_price};
pub use follow::{Progress, run};
