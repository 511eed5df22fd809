//! Every bound on what a client or a route file may make the gateway hold, in one place.

use std::time::Duration;

/// Bytes of one route file; a larger one is refused.
pub const ROUTE_FILE_BYTES_MAX: u64 = 64 * 1024;
/// Backends of one route.
pub const BACKENDS_MAX: usize = 16;
/// Bytes of a host name (DNS: 253).
pub const FQDN_BYTES_MAX: usize = 253;
/// Route files loaded from the routes directory; the files past it (in name order) are skipped.
pub const ROUTES_MAX: usize = 10_000;

/// Client connections served at once, over both listeners; the next one is closed at once.
pub const CONNECTIONS_MAX: usize = 4096;
/// Bytes of a TLS ClientHello message (one full record's worth; real ones are under 2 KiB).
pub const CLIENT_HELLO_BYTES_MAX: usize = 16 * 1024;
/// Bytes read from a TLS client before its hello must be whole: the largest hello, its handshake
/// header and the headers of the records it may be spread over.
pub const CLIENT_HELLO_BUFFER_BYTES_MAX: usize = CLIENT_HELLO_BYTES_MAX + 1024;
/// Time a TLS client has to send its whole ClientHello.
pub const CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a TLS client has to finish the handshake once its hello is read.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a connection to one backend may take before the next backend is tried.
pub const BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time an HTTP client has to send a request's headers (also bounds an idle keep-alive connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time in-flight connections get to finish after SIGTERM or SIGINT before the process exits.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (out of file descriptors, say) before accepting again.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
