//! Named maxima of the node: pool sizes, batch sizes, pages, channels.

/// Transactions waiting in the pool.
pub const POOL_TXS_MAX: usize = 200_000;
/// Pending transactions of one sender.
pub const POOL_TXS_PER_SENDER_MAX: usize = 1_024;
/// How far past an account's next nonce a pooled transaction may be.
pub const POOL_NONCES_AHEAD_MAX: u64 = 1_024;
/// Dropped transactions remembered for status queries.
pub const DROPPED_REMEMBERED_MAX: usize = 10_000;
/// Signatures checked in one batch.
pub const VERIFY_BATCH_MAX: usize = 4_096;
/// Submissions waiting for their signature check.
pub const VERIFY_QUEUE_MAX: usize = 65_536;
/// Entries in one page of a list.
pub const PAGE_LIMIT_MAX: u32 = 500;
/// Blocks and event sets buffered for each slow subscriber before it misses some.
pub const SUBSCRIPTION_BUFFER: usize = 256;
/// RPC connections served at once.
pub const RPC_CONNECTIONS_MAX: u32 = 1_000;
