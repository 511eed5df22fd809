//! What the tests share: the real `zgw` process on loopback with temporary route and certificate
//! directories, `curl` as the client, small HTTP (and HTTPS) backends on loopback, and waiting for a
//! condition with a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use zgw::route::Route;

pub const DEADLINE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(20);

/// Waits until `check` gives a value, polling every 20 ms, for at most [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// The route and certificate directories a gateway will use, filled before or after its start.
#[derive(Debug)]
pub struct Dirs {
    pub tmp: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        Dirs {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn routes(&self) -> PathBuf {
        self.tmp.path().join("routes")
    }

    pub fn certs(&self) -> PathBuf {
        self.tmp.path().join("certs")
    }

    /// Writes the route of workload `id`.
    pub fn route(&self, id: &str, route: &Route) {
        route.write(&self.routes(), id).unwrap();
    }

    pub fn remove_route(&self, id: &str) {
        Route::remove(&self.routes(), id).unwrap();
    }
}

/// A route to plain HTTP backends.
pub fn http_route(fqdn: &str, backends: &[SocketAddr]) -> Route {
    let backends = backends.iter().map(|b| format!("http://{b}")).collect();
    Route::new(fqdn, false, backends, None)
}

/// A running `zgw` process, killed when dropped.
#[derive(Debug)]
pub struct Zgw {
    pub dirs: Dirs,
    child: Child,
    pub http: u16,
    pub https: u16,
}

impl Zgw {
    /// Starts `zgw` on loopback (ports chosen by the system) and waits for its line.
    pub async fn start(dirs: Dirs) -> Zgw {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/it-xxx -> target/<profile>/zgw
        let bin = exe.parent().and_then(Path::parent).unwrap().join("zgw");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build -p zgw --bins` first",
            bin.display()
        );
        std::fs::create_dir_all(dirs.tmp.path()).unwrap();
        let log = std::fs::File::create(dirs.tmp.path().join("zgw.log")).unwrap();
        let mut child = Command::new(bin)
            .arg("--routes")
            .arg(dirs.routes())
            .arg("--certs")
            .arg(dirs.certs())
            .args(["--http", "127.0.0.1:0", "--https", "127.0.0.1:0"])
            .env("RUST_LOG", "zgw=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        tokio::time::timeout(DEADLINE, stdout.read_line(&mut line))
            .await
            .expect("zgw printed its line in time")
            .unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let port = |word: &str| word.parse::<SocketAddr>().unwrap().port();
        match words.as_slice() {
            ["zgw:", "listening", "on", "http", http, "https", https] => Zgw {
                http: port(http),
                https: port(https),
                dirs,
                child,
            },
            _ => panic!("unexpected first line {line:?}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("zgw is running")
    }

    /// Sends `signal` (`HUP`, `TERM`) to the process.
    pub async fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end; its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("zgw exited in time")
            .unwrap()
            .code()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dirs.tmp.path().join("zgw.log")).unwrap()
    }

    /// `curl` to `http://fqdn:<http port>path`.
    pub async fn http(&self, fqdn: &str, path: &str, extra: &[&str]) -> Reply {
        self.curl("http", self.http, fqdn, path, extra).await
    }

    /// `curl` to `https://fqdn:<https port>path`; `extra` holds `-k` or `--cacert`.
    pub async fn https(&self, fqdn: &str, path: &str, extra: &[&str]) -> Reply {
        self.curl("https", self.https, fqdn, path, extra).await
    }

    async fn curl(&self, scheme: &str, port: u16, fqdn: &str, path: &str, extra: &[&str]) -> Reply {
        let output = Command::new("curl")
            .args(["-s", "-S", "--max-time", "10", "-w", "\n%{http_code}"])
            .arg("--resolve")
            .arg(format!("{fqdn}:{port}:127.0.0.1"))
            .args(extra)
            .arg(format!("{scheme}://{fqdn}:{port}{path}"))
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = stdout.rsplit_once('\n').expect("curl wrote the status");
        Reply {
            status: code.parse().expect("curl's status code"),
            body: body.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Polls `http://fqdn` until it answers `status`.
    pub async fn http_until(&self, fqdn: &str, path: &str, status: u16) -> Reply {
        eventually(&format!("{fqdn}{path} to answer {status}"), || async {
            let reply = self.http(fqdn, path, &[]).await;
            (reply.status == status).then_some(reply)
        })
        .await
    }
}

/// What curl got: the status (0 when no HTTP answer came), the body and curl's own messages.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub stderr: String,
}

/// An HTTP backend on loopback answering every request with its name, the request line and the
/// headers the gateway sets. `/slow` waits until [`Backend::release`].
#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    /// Requests to `/slow` seen so far.
    pub slow_seen: Arc<AtomicUsize>,
    release: Arc<Semaphore>,
    accept: tokio::task::JoinHandle<()>,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Backend::serve(name, listener, None)
    }

    /// A backend terminating TLS itself with `config`.
    pub async fn start_tls(name: &str, config: rustls::ServerConfig) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Backend::serve(
            name,
            listener,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    fn serve(name: &str, listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) -> Backend {
        let addr = listener.local_addr().unwrap();
        let slow_seen = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Semaphore::new(0));
        let state = (name.to_string(), slow_seen.clone(), release.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(echo(req, state).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => {
                                http.serve_connection(TokioIo::new(stream), service).await
                            }
                            Err(_) => return,
                        },
                    };
                });
            }
        });
        Backend {
            addr,
            slow_seen,
            release,
            accept,
        }
    }

    /// Lets one waiting `/slow` request answer.
    pub fn release(&self) {
        self.release.add_permits(1);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn echo(
    req: Request<Incoming>,
    (name, slow_seen, release): (String, Arc<AtomicUsize>, Arc<Semaphore>),
) -> Response<Full<Bytes>> {
    if req.uri().path() == "/slow" {
        slow_seen.fetch_add(1, Ordering::SeqCst);
        release.acquire().await.unwrap().forget();
    }
    let mut text = format!("{name} {} {}\n", req.method(), req.uri());
    for header in [
        "host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "connection",
        "upgrade",
    ] {
        if let Some(value) = req.headers().get(header) {
            text += &format!("{header}: {}\n", value.to_str().unwrap());
        }
    }
    Response::new(Full::new(Bytes::from(text)))
}

/// A self-signed certificate for `fqdn` whose subject is `CN=<common_name>`: its PEM, its key's
/// PEM and a rustls server configuration using it.
pub fn certificate(fqdn: &str, common_name: &str) -> (String, String, rustls::ServerConfig) {
    let mut params = rcgen::CertificateParams::new(vec![fqdn.to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der_key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], der_key)
    .unwrap();
    (cert.pem(), key.serialize_pem(), config)
}

/// The subject and the subject alternative names of the PEM certificate at `path`, as openssl
/// prints them.
pub async fn subject_and_names(path: &Path) -> String {
    let output = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-in",
        ])
        .arg(path)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "openssl: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}
