//! The client's named limits: how many endpoints a list holds, how long one endpoint may take to
//! answer, how a silent connection is noticed, how reconnection backs off, and how many submitted
//! transactions are kept to submit again.

use std::time::Duration;

/// The most endpoints one list may name.
pub const ENDPOINTS_MAX: usize = 16;
/// How long one endpoint may take to accept the WebSocket and answer `chain_status`; one that
/// accepts TCP and never answers is given up after this and the next is tried.
pub const ENDPOINT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may wait for its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the client pings the node over an open connection.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A connection from which nothing (not even a pong) came for this long is closed, so a node that
/// stopped answering is left like one that died.
pub const SILENCE_MAX: Duration = Duration::from_secs(15);
/// The first pause before connecting again after a lost connection; it doubles up to
/// [`RECONNECT_DELAY_MAX`].
pub const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(50);
pub const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(2);
/// How many submitted transactions a client keeps to submit again on a new connection until they
/// are waited for; beyond it the oldest is forgotten.
pub const UNCONFIRMED_MAX: usize = 4096;
