//! A connection on the TLS listener: read the ClientHello (bounded in bytes and time), route by its
//! server name, then either pass the stream through to a backend untouched (`tls_passthrough`) or
//! terminate TLS with the host's certificate and serve HTTP as the plain listener does. A client
//! without a server name, or naming no route or a paused one, is closed.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;

use crate::limits::{CLIENT_HELLO_BUFFER_BYTES_MAX, CLIENT_HELLO_TIMEOUT, TLS_HANDSHAKE_TIMEOUT};
use crate::proxy::{self, Client};
use crate::server::Gateway;
use crate::sni::{self, ClientHello};
use crate::table::Served;

/// Why a TLS client was closed before its hello was read.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    #[error("reading the client hello: {0}")]
    Io(#[from] io::Error),
    #[error("closed before its client hello was whole")]
    Closed,
    #[error("no client hello within {} s", CLIENT_HELLO_TIMEOUT.as_secs())]
    TimedOut,
    #[error("not a tls handshake")]
    NotTls,
    #[error("malformed client hello: {0}")]
    Malformed(&'static str),
    #[error("client hello longer than {CLIENT_HELLO_BUFFER_BYTES_MAX} bytes")]
    TooLarge,
}

/// Serves one connection of the TLS listener to its end.
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    gateway: Arc<Gateway>,
    stop: watch::Receiver<bool>,
) {
    let hello = timeout(CLIENT_HELLO_TIMEOUT, read_hello(&mut stream))
        .await
        .unwrap_or(Err(HelloError::TimedOut));
    let (hello, sni) = match hello {
        Ok(read) => read,
        Err(error) => {
            tracing::debug!(%peer, %error, "tls client closed");
            return;
        }
    };
    let Some(fqdn) = sni else {
        tracing::debug!(%peer, "tls client named no server: closed");
        return;
    };
    let Some(served) = gateway.routes().get(&fqdn).cloned() else {
        tracing::debug!(%peer, fqdn, "no route for the tls server name: closed");
        return;
    };
    if served.route.paused {
        tracing::debug!(%peer, fqdn, "route paused: tls client closed");
        return;
    }
    if served.route.tls_passthrough {
        return passthrough(stream, peer, hello, &served).await;
    }
    let Some(config) = gateway.certs.get(&fqdn) else {
        tracing::warn!(%peer, fqdn, "no certificate for the route (see the reload's log): closed");
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls = match timeout(
        TLS_HANDSHAKE_TIMEOUT,
        acceptor.accept(Replay::new(hello, stream)),
    )
    .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, fqdn, %error, "tls handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, fqdn, "tls handshake timed out");
            return;
        }
    };
    let client = Client {
        addr: peer,
        tls_fqdn: Some(fqdn),
    };
    proxy::serve_http(tls, gateway, client, stop).await;
}

/// Reads until the bytes hold a whole ClientHello: the bytes read, and its server name.
async fn read_hello(stream: &mut TcpStream) -> Result<(Vec<u8>, Option<String>), HelloError> {
    let mut buf = Vec::with_capacity(2048);
    loop {
        match sni::parse(&buf) {
            ClientHello::Incomplete => {}
            ClientHello::NotTls => return Err(HelloError::NotTls),
            ClientHello::Malformed(reason) => return Err(HelloError::Malformed(reason)),
            ClientHello::Hello { sni } => return Ok((buf, sni)),
        }
        if buf.len() == CLIENT_HELLO_BUFFER_BYTES_MAX {
            return Err(HelloError::TooLarge);
        }
        let read = (&mut *stream)
            .take((CLIENT_HELLO_BUFFER_BYTES_MAX - buf.len()) as u64)
            .read_buf(&mut buf)
            .await?;
        if read == 0 {
            return Err(HelloError::Closed);
        }
    }
}

/// Joins the client to a backend that terminates TLS itself, starting with the bytes already read.
async fn passthrough(mut client: TcpStream, peer: SocketAddr, hello: Vec<u8>, served: &Served) {
    let fqdn = &served.route.fqdn;
    let (backend, mut upstream) = match crate::backend::connect_any(served).await {
        Ok(connected) => connected,
        Err(error) => {
            tracing::info!(%peer, %error, "tls passthrough: closed");
            return;
        }
    };
    let result = match upstream.write_all(&hello).await {
        Ok(()) => tokio::io::copy_bidirectional(&mut client, &mut upstream)
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    if let Err(error) = result {
        tracing::debug!(%peer, fqdn, backend, %error, "tls passthrough ended");
    }
}

/// A stream that first yields bytes already read from it, then reads on; writes go straight through.
#[derive(Debug)]
pub struct Replay<S> {
    read: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Replay<S> {
    pub fn new(read: Vec<u8>, inner: S) -> Replay<S> {
        Replay { read, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = &this.read[this.at..];
        if left.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = left.len().min(buf.remaining());
        buf.put_slice(&left[..n]);
        this.at += n;
        if this.at == this.read.len() {
            this.read = Vec::new();
            this.at = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replay_yields_the_read_bytes_first() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut replay = Replay::new(b"hello ".to_vec(), b);
        a.write_all(b"world").await.unwrap();
        drop(a);
        let mut out = String::new();
        replay.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }

    #[tokio::test]
    async fn hello_reading_stops_at_its_limits() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A hello declaring the largest length, sent one byte per record: the buffer fills first.
        let mut dribble = Vec::new();
        for byte in [1, 0, 0x40, 0]
            .into_iter()
            .chain(std::iter::repeat_n(0, 16 * 1024))
        {
            dribble.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x01, byte]);
        }
        let cases: [(Vec<u8>, &str); 4] = [
            (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "not a tls handshake"),
            (b"\x16\x03\x01\x00\x10\x01".to_vec(), "closed before"),
            (
                b"\x16\x03\x01\x00\x00".to_vec(),
                "malformed client hello: handshake record",
            ),
            (dribble, "client hello longer than"),
        ];
        for (bytes, expect) in cases {
            let mut client = TcpStream::connect(addr).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let writer = tokio::spawn(async move {
                let _ = client.write_all(&bytes).await;
                let _ = client.shutdown().await;
                client
            });
            let err = read_hello(&mut server).await.unwrap_err().to_string();
            assert!(err.contains(expect), "{err}");
            writer.abort();
        }
    }
}
