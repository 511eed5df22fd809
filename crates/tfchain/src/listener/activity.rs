//! What the connection table learns from a running connection: an RPC middleware that marks each
//! request in flight and counts the subscriptions it opens and closes, and a socket wrapper that
//! removes the connection from the table when the socket is dropped (for a WebSocket, that is when
//! jsonrpsee's session task ends, long after the HTTP upgrade).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use jsonrpsee::server::middleware::rpc::{Batch, Notification, Request, RpcServiceT};
use jsonrpsee::server::{MethodCallback, MethodResponse, Methods, ServerHandle};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::policy::{ConnId, ConnectionTable};

/// The table, shared by the accept loop and every connection; each entry holds the handle that
/// stops its connection.
pub(super) type Table = Arc<Mutex<ConnectionTable<ServerHandle>>>;

/// The table's lock. Every critical section is a few map operations that cannot leave it
/// inconsistent halfway, so a panic elsewhere while it was held does not poison the counts.
pub(super) fn lock(table: &Table) -> MutexGuard<'_, ConnectionTable<ServerHandle>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a call changes its connection's subscriptions.
fn subscriptions_delta(methods: &Methods, method: &str) -> i32 {
    match methods.method(method) {
        Some(MethodCallback::Subscription(_)) => 1,
        Some(MethodCallback::Unsubscription(_)) => -1,
        _ => 0,
    }
}

/// Whether an unsubscription call closed a subscription (it answers `false` for an unknown id).
fn unsubscribed(response: &MethodResponse) -> bool {
    #[derive(serde::Deserialize)]
    struct Reply {
        result: bool,
    }
    serde_json::from_str::<Reply>(response.as_json().get()).is_ok_and(|r| r.result)
}

/// A request in flight on a connection, for as long as it lives (a cancelled call ends too).
struct InFlight {
    table: Table,
    conn: ConnId,
    subscriptions: i32,
}

impl InFlight {
    fn start(table: &Table, conn: ConnId) -> InFlight {
        lock(table).request_started(conn, Instant::now());
        InFlight {
            table: table.clone(),
            conn,
            subscriptions: 0,
        }
    }

    /// The request was answered, opening (`+n`) or closing (`-n`) subscriptions.
    fn end(mut self, subscriptions: i32) {
        self.subscriptions = subscriptions;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.table).request_ended(self.conn, Instant::now(), self.subscriptions);
    }
}

/// The RPC middleware of one connection.
#[derive(Debug, Clone)]
pub(super) struct Activity<S> {
    pub service: S,
    pub conn: ConnId,
    pub table: Table,
    pub methods: Methods,
}

impl<S> RpcServiceT for Activity<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let delta = subscriptions_delta(&self.methods, request.method_name());
        let in_flight = InFlight::start(&self.table, self.conn);
        let service = self.service.clone();
        async move {
            let response = service.call(request).await;
            let opened = delta > 0 && response.is_subscription() && response.is_success();
            let closed = delta < 0 && response.is_success() && unsubscribed(&response);
            in_flight.end(i32::from(opened) - i32::from(closed));
            response
        }
    }

    /// A batch's entries count by their method, as if each succeeded: jsonrpsee answers them
    /// inside its own service, past this middleware.
    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let delta = batch
            .iter()
            .filter_map(|entry| entry.as_ref().ok())
            .map(|entry| subscriptions_delta(&self.methods, entry.method_name()))
            .sum();
        let in_flight = InFlight::start(&self.table, self.conn);
        let service = self.service.clone();
        async move {
            let response = service.batch(batch).await;
            in_flight.end(delta);
            response
        }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        let in_flight = InFlight::start(&self.table, self.conn);
        let service = self.service.clone();
        async move {
            let response = service.notification(notification).await;
            in_flight.end(0);
            response
        }
    }
}

/// A connection's socket; dropping it removes the connection from the table. It also holds a
/// sender of the accept loop's drain channel, so the loop knows when every socket is gone.
#[derive(Debug)]
pub(super) struct Tracked {
    pub socket: TcpStream,
    pub conn: ConnId,
    pub table: Table,
    pub _open: mpsc::Sender<()>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Evicted and expired connections left the table already; the handle, if any, is
        // dropped only after the lock is released.
        let handle = lock(&self.table).close(self.conn);
        drop(handle);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}
