//! Connections to a route's backends: each backend in round-robin turn, one that does not accept
//! within the connect time-out skipped for the next. A route with `netns` is reached from inside
//! that network namespace: a short-lived thread enters it, connects and hands the socket back, so
//! no thread of the runtime ever changes namespace and none needs restoring.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use tokio::net::TcpStream;

use crate::limits::BACKEND_CONNECT_TIMEOUT;
use crate::table::Served;

/// Every backend of a route failed to connect.
#[derive(Debug, thiserror::Error)]
#[error("no backend of {fqdn} answered: {}", Failures(.failures))]
pub struct NoBackend {
    pub fqdn: String,
    /// Each backend as the route names it, and why it failed.
    pub failures: Vec<(String, io::Error)>,
}

struct Failures<'a>(&'a [(String, io::Error)]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (backend, error)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{backend}: {error}")?;
        }
        Ok(())
    }
}

/// A connection to the first backend of `served`, in its turn, that accepts one; the backend as
/// the route names it.
pub async fn connect_any(served: &Served) -> Result<(String, TcpStream), NoBackend> {
    let mut failures = Vec::new();
    for (backend, addr) in served.backends_in_turn() {
        match connect(*addr, served.route.netns.as_deref()).await {
            Ok(stream) => return Ok((backend.clone(), stream)),
            Err(error) => {
                tracing::debug!(fqdn = served.route.fqdn, backend, %error, "backend did not answer");
                failures.push((backend.clone(), error));
            }
        }
    }
    Err(NoBackend {
        fqdn: served.route.fqdn.clone(),
        failures,
    })
}

/// A connection to `addr`, from the network namespace `netns` names, or from the gateway's own.
pub async fn connect(addr: SocketAddr, netns: Option<&Path>) -> io::Result<TcpStream> {
    let stream = match netns {
        None => tokio::time::timeout(BACKEND_CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out())??,
        Some(netns) => connect_in(netns.to_path_buf(), addr).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn connect_in(netns: PathBuf, addr: SocketAddr) -> io::Result<TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("zgw-netns".to_string())
        .spawn(move || {
            // The receiver is gone only if the request was dropped: nobody wants the socket.
            let _ = tx.send(connect_from(&netns, addr));
        })?;
    let stream = rx
        .await
        .map_err(|_| io::Error::other("the namespace thread ended without a connection"))??;
    TcpStream::from_std(stream)
}

/// Runs on a thread of its own, which it moves into `netns` for good.
fn connect_from(netns: &Path, addr: SocketAddr) -> io::Result<std::net::TcpStream> {
    let in_netns = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", netns.display()))
    };
    let file = std::fs::File::open(netns).map_err(|e| in_netns("opening", e))?;
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| in_netns("entering", e.into()))?;
    let stream = std::net::TcpStream::connect_timeout(&addr, BACKEND_CONNECT_TIMEOUT).map_err(
        |e| match e.kind() {
            io::ErrorKind::TimedOut => timed_out(),
            _ => e,
        },
    )?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "no connection within {} s",
            BACKEND_CONNECT_TIMEOUT.as_secs()
        ),
    )
}

#[cfg(test)]
mod tests {
    use crate::route::Route;

    use super::*;

    #[tokio::test]
    async fn skips_a_refusing_backend_and_names_every_failure() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let backends = vec![
            format!("http://{dead_addr}"),
            format!("http://{}", live.local_addr().unwrap()),
        ];
        let route = Route::new("a.example.com", false, backends.clone(), None);
        let served = Served::new(route, PathBuf::new());
        for _ in 0..3 {
            let (backend, _stream) = connect_any(&served).await.unwrap();
            assert_eq!(backend, backends[1]);
        }
        drop(live);
        let err = connect_any(&served).await.unwrap_err().to_string();
        assert!(
            err.starts_with("no backend of a.example.com answered: http://127.0.0.1:"),
            "{err}"
        );
        assert_eq!(err.matches("refused").count(), 2, "{err}");
        assert_eq!(err.matches("; ").count(), 1, "{err}");
    }

    #[tokio::test]
    async fn a_missing_namespace_is_named() {
        let err = connect(
            "127.0.0.1:1".parse().unwrap(),
            Some(Path::new("/nonexistent/netns/n-0")),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("opening /nonexistent/netns/n-0: "), "{err}");
    }
}
