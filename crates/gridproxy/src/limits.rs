//! Named maxima of the explorer: pages, lists in parameters, connections.

/// Page size when the request names none (as the grid proxy).
pub const PAGE_SIZE_DEFAULT: u64 = 50;
/// The largest page a request may ask for.
pub const PAGE_SIZE_MAX: u64 = 1000;
/// The highest page number accepted (bounds the OFFSET a request can make the store skip).
pub const PAGE_MAX: u64 = 1_000_000;
/// Values in one comma-separated list parameter (`farm_ids=1,2,3`).
pub const LIST_PARAM_VALUES_MAX: usize = 100;
/// Bytes of one string parameter.
pub const STRING_PARAM_BYTES_MAX: usize = 256;
/// Query parameters in one request.
pub const QUERY_PARAMS_MAX: usize = 64;
/// Read connections to the store; requests beyond wait for one.
pub const READ_CONNECTIONS: usize = 4;
/// HTTP requests served at once; more wait in the listener's backlog.
pub const CONCURRENT_REQUESTS_MAX: usize = 256;
/// Block requests in flight while catching up.
pub const BLOCKS_FETCHED_AHEAD: usize = 16;
/// Prepared statements kept per PostgreSQL connection (the cache is emptied when full).
pub const STATEMENTS_CACHED_MAX: usize = 256;
/// `/stats` answers kept for the current indexed height and second (one per distinct query).
pub const STATS_CACHED_MAX: usize = 8;
