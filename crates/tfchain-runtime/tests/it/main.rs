//! Integration tests of the runtime through its public API: properties over random transaction
//! sequences: supply conservation, no negative balance, failed calls change nothing, contracts
//! billed exactly once per period, no public IP held by a deleted contract.

mod contracts;
mod supply;
