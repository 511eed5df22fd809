//! Named bounds: chunk and shard sizes, how much work is in flight, what a reply from a backend may
//! carry, and the time-outs of backend operations. Every queue and buffer of the crate is sized
//! here.

use std::time::Duration;

/// Plaintext bytes per chunk: a file is cut into chunks of this size (the last one is shorter), and
/// each chunk is compressed, sealed and erasure-coded on its own.
pub const CHUNK_BYTES: u32 = 4 << 20;

/// Chunks read ahead of the encoders while storing.
pub const READ_AHEAD_CHUNKS: usize = 1;

/// Chunks being compressed, sealed and encoded at once (at most: one per core).
pub const ENCODE_PARALLEL_MAX: usize = 8;

/// Chunks whose shards are being written to (or read from) the backends at once.
pub const CHUNKS_IN_FLIGHT: usize = 2;

/// Chunks decoded and waiting for the output writer while retrieving.
pub const WRITE_BEHIND_CHUNKS: usize = 2;

/// Data plus parity shards. reed-solomon-simd allows far more, but every shard costs a connection,
/// and a metadata entry per chunk.
pub const SHARDS_MAX: usize = 64;

/// Room in a metadata record for everything but the per-chunk entries (names, addresses, sizes).
pub const META_FIXED_BYTES_MAX: usize = 256 << 10;

/// Chunks in one file of `shards` shards: each chunk costs 4 bytes plus 24 per piece (key and
/// checksum) of metadata, which must fit in one 0-db value. For 4+2 that is 55,000 chunks, 214 GiB.
pub const fn chunks_per_file_max(shards: usize) -> u64 {
    ((META_BYTES_MAX - META_FIXED_BYTES_MAX) / (4 + 24 * shards)) as u64
}

/// Sealed metadata record, as stored on a metadata backend (0-db's largest value).
pub const META_BYTES_MAX: usize = 8 << 20;

/// Largest bulk string accepted from a backend (0-db's largest value).
pub const VALUE_BYTES_MAX: usize = 8 << 20;

/// Longest status, error or length line accepted from a backend.
pub const LINE_BYTES_MAX: u64 = 64 << 10;

/// Elements of one array reply (SCAN pages), and nesting depth of arrays.
pub const ARRAY_LEN_MAX: usize = 4096;
pub const ARRAY_DEPTH_MAX: usize = 4;

/// Length of the metadata key prefix from the config.
pub const PREFIX_BYTES_MAX: usize = 64;

/// Connecting to a backend (TCP, then SELECT of the namespace).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Any single command on a backend, including transferring a value.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// SCAN pages read from one metadata backend while listing stored files.
pub const SCAN_PAGES_MAX: usize = 1 << 20;
