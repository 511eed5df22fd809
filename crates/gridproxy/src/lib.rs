//! The grid's explorer: an indexer that follows the chain's finalized blocks into SQL tables (twins,
//! farms, public IPs, nodes with capacity and status, contracts, workload states, bills,
//! consumption), and the grid proxy's REST API over them, with each contract's cost per hour.

pub mod api;
pub mod cost;
pub mod dashboard;
pub mod error;
pub mod indexer;
pub mod limits;
pub mod schema;
pub mod store;

pub use error::Error;
