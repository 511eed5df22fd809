//! Identifiers of ledger entities. They are sequential counters on the ledger, starting at 1.

/// A twin: the on-chain identity of an account (one per account).
pub type TwinId = u32;
/// A farm: a group of nodes owned by one twin.
pub type FarmId = u32;
/// A node (3Node) registered by Zero-OS.
pub type NodeId = u32;
/// A contract between a twin and the grid (node, name or rent contract).
pub type ContractId = u64;
/// A pricing or farming policy.
pub type PolicyId = u32;
