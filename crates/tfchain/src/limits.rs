//! Named maxima of the node: pool sizes, batch sizes, pages, channels, RPC connections and their
//! idle time-out.

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
/// Node reports buffered for each slow subscriber of pending reports before it misses some.
pub const REPORTS_BUFFER: usize = 1_024;
/// Transactions in one batch submission.
pub const SUBMIT_BATCH_MAX: usize = 4_096;
/// Entries in one page of a list.
pub const PAGE_LIMIT_MAX: u32 = 500;
/// Blocks and event sets buffered for each slow subscriber before it misses some.
pub const SUBSCRIPTION_BUFFER: usize = 256;
/// RPC connections open at once (HTTP and WebSocket alike).
pub const RPC_CONNECTIONS_MAX: u32 = 1_000;
/// RPC connections kept for clients holding few: past `RPC_CONNECTIONS_MAX` less these, a newcomer
/// first takes the place of an idle connection of the client holding the most.
pub const RPC_CONNECTIONS_RESERVE: u32 = 100;
/// RPC connections one client (an IPv4 address, an IPv6 /64) holds at once; past it, a newcomer
/// replaces the client's longest-idle connection.
pub const RPC_CONNECTIONS_PER_CLIENT_MAX: u32 = 64;
/// RPC connections a client may hold and still be given one of the reserve.
pub const RPC_RESERVE_PER_CLIENT_MAX: u32 = 8;
/// Seconds an RPC connection with no request in flight and no subscription stays open.
pub const RPC_IDLE_TIMEOUT_S: u64 = 120;
/// HTTP requests in flight on one RPC connection (HTTP/2 carries several); more are answered 429.
pub const RPC_REQUESTS_PER_CONNECTION_MAX: u32 = 128;
/// Batches of admitted transactions waiting for the relay; a target further behind skips ahead.
pub const RELAY_BUFFER: usize = 1024;
