//! The gateway's state (the route table and the certificates) and its accept loop: both listeners,
//! a bound on connections at once, and the drain on shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::certs::Certs;
use crate::limits::{ACCEPT_ERROR_PAUSE, SHUTDOWN_DRAIN};
use crate::proxy::{self, Client};
use crate::table::RouteTable;
use crate::tls;

/// What every connection reads: the routes in force and the certificates.
#[derive(Debug)]
pub struct Gateway {
    routes_dir: PathBuf,
    table: RwLock<Arc<RouteTable>>,
    pub certs: Certs,
}

impl Gateway {
    /// A gateway serving no route until [`Gateway::reload`].
    pub fn new(routes_dir: PathBuf, certs_dir: PathBuf) -> Gateway {
        Gateway {
            routes_dir,
            table: RwLock::new(Arc::new(RouteTable::default())),
            certs: Certs::new(certs_dir),
        }
    }

    /// Reads the routes directory again and makes the certificates of the routes whose TLS the
    /// gateway terminates; problems are logged. An unreadable directory keeps the routes in force.
    /// Blocking file IO.
    pub fn reload(&self) {
        let table = match RouteTable::load(&self.routes_dir) {
            Ok(table) => table,
            Err(error) => {
                tracing::error!(%error, "keeping the routes in force");
                return;
            }
        };
        let terminated = |fqdn: &str| table.get(fqdn).is_some_and(|s| !s.route.tls_passthrough);
        self.certs.retain(terminated);
        for served in table.iter().filter(|s| !s.route.tls_passthrough) {
            if let Err(error) = self.certs.prepare(&served.route.fqdn) {
                tracing::error!(%error, "{} is served without tls", served.route.fqdn);
            }
        }
        tracing::info!(routes = table.len(), "routes loaded");
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
    }

    /// The routes in force.
    pub fn routes(&self) -> Arc<RouteTable> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Serves both listeners, at most `connections_max` connections at once (the binary passes
/// [`CONNECTIONS_MAX`](crate::limits::CONNECTIONS_MAX)), until `shutdown` completes; then stops
/// accepting and gives the connections in flight [`SHUTDOWN_DRAIN`] to finish.
pub async fn serve(
    gateway: Arc<Gateway>,
    http: TcpListener,
    https: TcpListener,
    connections_max: usize,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(connections_max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (accepted, is_tls) = tokio::select! {
            () = &mut shutdown => break,
            accepted = http.accept() => (accepted, false),
            accepted = https.accept() => (accepted, true),
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "{connections_max} connections open: closed");
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "setting TCP_NODELAY");
        }
        let gateway = gateway.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            if is_tls {
                tls::serve(stream, peer, gateway, stop).await;
            } else {
                let client = Client {
                    addr: peer,
                    tls_fqdn: None,
                };
                proxy::serve_http(stream, gateway, client, stop).await;
            }
            drop(permit);
        });
    }
    drop((http, https));
    // Nobody may be listening any more: every connection may have ended already.
    let _ = stop_tx.send(true);
    let open = connections_max - connections.available_permits();
    tracing::info!(open, "stopped accepting, draining connections");
    let all = u32::try_from(connections_max).expect("the connection limit fits a u32");
    match tokio::time::timeout(SHUTDOWN_DRAIN, connections.acquire_many(all)).await {
        Ok(_) => tracing::info!("every connection finished"),
        Err(_) => tracing::warn!(
            open = connections_max - connections.available_permits(),
            "connections cut after {} s of draining",
            SHUTDOWN_DRAIN.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    #[tokio::test]
    async fn the_connection_past_the_limit_is_closed_and_shutdown_drains() {
        let dir = tempfile::tempdir().unwrap();
        let gateway = Arc::new(Gateway::new(
            dir.path().join("routes"),
            dir.path().join("certs"),
        ));
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = http.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(gateway, http, https, 1, async {
            let _ = stopped.await;
        }));
        // The first connection is served (no route: 404) and kept alive...
        let mut first = TcpStream::connect(addr).await.unwrap();
        first
            .write_all(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        while !reply.ends_with(b"on this node\n") {
            assert_ne!(first.read_buf(&mut reply).await.unwrap(), 0, "{reply:?}");
        }
        assert!(reply.starts_with(b"HTTP/1.1 404"), "{reply:?}");
        // ...so the second is closed unread.
        let mut second = TcpStream::connect(addr).await.unwrap();
        assert_eq!(second.read_buf(&mut reply).await.unwrap(), 0);
        // Shutdown closes the idle keep-alive connection and ends the server.
        stop.send(()).unwrap();
        assert_eq!(first.read_buf(&mut reply).await.unwrap(), 0);
        tokio::time::timeout(SHUTDOWN_DRAIN, server)
            .await
            .unwrap()
            .unwrap();
    }
}
