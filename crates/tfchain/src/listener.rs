//! The RPC endpoint's own accept loop (HTTP and WebSocket on one port, served by jsonrpsee's
//! service), so that who holds connections is decided by [`policy`]: per-client caps, an idle
//! time-out, and a reserve near the maximum. Each connection gets its own stop handle, so the loop
//! can close one (replaced, or idle too long) as gracefully as it closes all of them when the server
//! stops: requests in flight are answered first.
//!
//! `TFCHAIN_RPC_IDLE_TIMEOUT_S` sets the idle time-out in seconds (default
//! [`RPC_IDLE_TIMEOUT_S`](crate::limits::RPC_IDLE_TIMEOUT_S)).

mod activity;
pub mod policy;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{
    Methods, PingConfig, Server, ServerConfig, ServerHandle, StopHandle,
    serve_with_graceful_shutdown, stop_channel,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::limits::RPC_REQUESTS_PER_CONNECTION_MAX;
use activity::{Activity, Table, Tracked, lock};
pub use policy::{ClientKey, ConnectionLimits, Refusal};

/// The environment variable that sets the idle time-out in seconds.
pub const IDLE_TIMEOUT_ENV: &str = "TFCHAIN_RPC_IDLE_TIMEOUT_S";
/// Idle connections are looked for this many times per idle time-out.
const SWEEPS_PER_IDLE_TIMEOUT: u32 = 4;
/// Pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

impl ConnectionLimits {
    /// The default limits, with the idle time-out from [`IDLE_TIMEOUT_ENV`] if it is set.
    pub fn from_env() -> anyhow::Result<ConnectionLimits> {
        let mut limits = ConnectionLimits::default();
        if let Ok(text) = std::env::var(IDLE_TIMEOUT_ENV) {
            let seconds: u64 = text.parse().ok().filter(|s| *s > 0).with_context(|| {
                format!("{IDLE_TIMEOUT_ENV}={text:?} is not a number of seconds")
            })?;
            limits.idle_timeout = Duration::from_secs(seconds);
        }
        Ok(limits)
    }
}

/// Listens on `addr` and serves `methods` to the connections `limits` admit; the address it is
/// bound to, and the handle that stops it (`stopped` resolves once every connection has closed).
pub async fn start(
    addr: SocketAddr,
    methods: impl Into<Methods>,
    limits: ConnectionLimits,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (stop, handle) = stop_channel();
    let (open, drained) = mpsc::channel(1);
    let shared = Shared {
        table: Table::new(policy::ConnectionTable::new(limits).into()),
        methods: methods.into(),
        config: ServerConfig::builder()
            .max_connections(RPC_REQUESTS_PER_CONNECTION_MAX)
            .enable_ws_ping(PingConfig::new())
            .build(),
        open,
    };
    tokio::spawn(accept_loop(listener, shared, stop, drained));
    Ok((local_addr, handle))
}

/// What every connection is served with.
struct Shared {
    table: Table,
    methods: Methods,
    /// jsonrpsee's configuration; its `max_connections` counts, per connection, the WebSocket
    /// session or the HTTP requests in flight (HTTP/2 carries several at once).
    config: ServerConfig,
    /// Each open socket holds a clone; the loop's drain waits until none is left.
    open: mpsc::Sender<()>,
}

async fn accept_loop(
    listener: TcpListener,
    shared: Shared,
    stop: StopHandle,
    mut drained: mpsc::Receiver<()>,
) {
    let idle_timeout = lock(&shared.table).limits().idle_timeout;
    let mut sweep = tokio::time::interval(idle_timeout / SWEEPS_PER_IDLE_TIMEOUT);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = stop.clone().shutdown();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = sweep.tick() => {
                let expired = lock(&shared.table).expire(Instant::now());
                if !expired.is_empty() {
                    tracing::debug!(closed = expired.len(), "idle RPC connections closed");
                }
                stop_all(expired);
            }
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => serve(&shared, socket, peer),
                Err(e) => {
                    tracing::warn!("accepting an RPC connection: {e}");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                }
            },
        }
    }
    drop(listener);
    let open = lock(&shared.table).drain();
    stop_all(open);
    drop(shared);
    // Every socket holds a sender: `None` once the last one is dropped.
    while drained.recv().await.is_some() {}
    drop(stop);
}

fn stop_all(handles: Vec<ServerHandle>) {
    for handle in handles {
        // A connection that already finished has no one listening: nothing to stop.
        let _ = handle.stop();
    }
}

/// Admits or refuses a new connection, and serves it on its own task.
fn serve(shared: &Shared, socket: TcpStream, peer: SocketAddr) {
    let client = ClientKey::of(peer.ip());
    let (conn_stop, conn_handle) = stop_channel();
    let opened = lock(&shared.table).open(client, Instant::now(), conn_handle);
    let (conn, replaced) = match opened {
        Ok(opened) => opened,
        Err(refusal) => {
            tracing::debug!(%peer, "RPC connection refused: {refusal}");
            // Best effort, never waiting: the reply fits in an empty socket buffer.
            let _ = socket.try_write(refusal_reply(refusal).as_bytes());
            return;
        }
    };
    stop_all(replaced.into_iter().collect());
    if let Err(e) = socket.set_nodelay(true) {
        tracing::debug!(%peer, "setting TCP_NODELAY: {e}");
    }
    let socket = Tracked {
        socket,
        conn,
        table: shared.table.clone(),
        _open: shared.open.clone(),
    };
    let (table, methods) = (shared.table.clone(), shared.methods.clone());
    let service = Server::builder()
        .set_config(shared.config.clone())
        .to_service_builder()
        // jsonrpsee's connection ids are 32 bits and wrap, as its own server's do.
        .connection_id(conn.0 as u32)
        .set_rpc_middleware(RpcServiceBuilder::new().layer_fn(move |service| Activity {
            service,
            conn,
            table: table.clone(),
            methods: methods.clone(),
        }))
        .build(shared.methods.clone(), conn_stop.clone());
    tokio::spawn(async move {
        if let Err(e) = serve_with_graceful_shutdown(socket, service, conn_stop.shutdown()).await {
            tracing::debug!(%peer, "RPC connection ended: {e}");
        }
    });
}

/// The HTTP answer to a refused connection: 429 when the client holds too many, 503 when the node
/// does.
fn refusal_reply(refusal: Refusal) -> String {
    let status = match refusal {
        Refusal::ClientFull => "429 Too Many Requests",
        Refusal::ServerFull => "503 Service Unavailable",
    };
    let body = format!("{refusal}\n");
    format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}
