//! Every bound on what a client may send or make the server hold, in one place.

/// Arguments in one request, command name included (0-db: 1024).
pub const ARGS_MAX: usize = 1024;
/// Bytes in one argument (0-db's REDIS_MAX_PAYLOAD, 8 MiB).
pub const ARG_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Digits in a RESP length header; longer headers are malformed.
pub const HEADER_DIGITS_MAX: usize = 12;
/// Bytes one request may occupy in total: a full-size value plus a full argument list of keys.
pub const REQUEST_BYTES_MAX: usize = ARG_BYTES_MAX + ARGS_MAX * 300;
/// Concurrent client connections; the next one is told so and closed.
pub const CLIENTS_MAX: usize = 1024;
/// Bytes read from a socket per read call.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Replies buffered before they are written out even if the batch is not finished.
pub const REPLY_BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Longest key (0-db: 255).
pub const KEY_MAX: usize = zdb_core::KEY_MAX;
/// Longest namespace name (0-db: 128).
pub const NAMESPACE_NAME_MAX: usize = zdb_core::NAMESPACE_NAME_MAX;
/// Longest password (0-db: 128).
pub const PASSWORD_MAX: usize = 128;
/// Keys in one MGET (argc ≤ 1024).
pub const MGET_KEYS_MAX: usize = ARGS_MAX - 1;
/// Entries in one SCAN or RSCAN page.
pub const SCAN_PAGE_MAX: usize = 256;
/// WAIT timeout bounds and default, milliseconds (0-db: 100 ms to 30 min, default 5 s).
pub const WAIT_TIMEOUT_MIN_MS: u64 = 100;
pub const WAIT_TIMEOUT_MAX_MS: u64 = 30 * 60 * 1000;
pub const WAIT_TIMEOUT_DEFAULT_MS: u64 = 5000;
/// Command notifications buffered for WAIT clients; a slower waiter skips ahead.
pub const WAIT_EVENTS_MAX: usize = 1024;
/// Namespace changes buffered for replicas; a replica further behind is resynchronised.
pub const REPLICATION_BACKLOG_MAX: usize = 65_536;
/// Entries read per step of a replica's initial snapshot (the engine is unlocked between steps).
pub const REPLICATION_SNAPSHOT_STEP: usize = 256;
/// Hook runs remembered for the HOOKS command.
pub const HOOKS_REMEMBERED_MAX: usize = 256;
/// Seconds a finished hook stays listed by HOOKS.
pub const HOOKS_LISTED_SECS: u64 = 60;
/// Bytes of a replication frame from the master (one value plus its arguments).
pub const REPLICATION_FRAME_BYTES_MAX: usize = REQUEST_BYTES_MAX;
