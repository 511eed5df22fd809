//! Integration tests of the runtime through its public API: properties over random transaction
//! sequences (supply conservation, no negative balance, failed calls change nothing).

mod supply;
