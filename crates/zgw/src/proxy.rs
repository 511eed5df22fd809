//! HTTP/1.1 on a client connection (plain, or TLS the gateway terminated): each request is routed
//! by its host to its route's backends over a new upstream connection, in origin form, with the
//! client's Host kept, `X-Forwarded-For/Proto/Host` added and hop-by-hop headers removed both
//! ways; the response body is streamed back, never buffered whole. Everything the gateway itself
//! answers is one [`Refusal`], mapped to a status and text by [`reply`]: one table to audit.
//! WebSocket and other upgrades are not supported: `Upgrade` is a hop-by-hop header and is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::backend::{self, NoBackend};
use crate::limits::HEADER_READ_TIMEOUT;
use crate::server::Gateway;

/// A reply's body: the gateway's own text or the backend's stream.
pub type Body = Either<Full<Bytes>, Incoming>;

/// Who is on the other end of a client connection.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    /// The host name the TLS handshake named, when the gateway terminated TLS.
    pub tls_fqdn: Option<String>,
}

/// What the gateway answers itself instead of a backend.
#[derive(Debug)]
pub enum Refusal {
    NoHost,
    NoRoute {
        host: String,
    },
    Misdirected {
        host: String,
        fqdn: String,
    },
    Paused {
        fqdn: String,
    },
    PassthroughOnly {
        fqdn: String,
    },
    NoBackend(NoBackend),
    BackendFailed {
        fqdn: String,
        backend: String,
        error: hyper::Error,
    },
}

/// The status and text of every refusal.
pub fn reply(refusal: &Refusal) -> (StatusCode, String) {
    match refusal {
        Refusal::NoHost => (StatusCode::BAD_REQUEST, "the request names no host".into()),
        Refusal::NoRoute { host } => (
            StatusCode::NOT_FOUND,
            format!("no gateway serves {host} on this node"),
        ),
        Refusal::Misdirected { host, fqdn } => (
            StatusCode::MISDIRECTED_REQUEST,
            format!("{host} is not served on this connection, which is for {fqdn}"),
        ),
        Refusal::Paused { fqdn } => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{fqdn} is paused: its contract is in its grace period"),
        ),
        Refusal::PassthroughOnly { fqdn } => (
            StatusCode::BAD_REQUEST,
            format!("{fqdn} is served over TLS only (passthrough): use https://"),
        ),
        Refusal::NoBackend(no_backend) => (StatusCode::BAD_GATEWAY, no_backend.to_string()),
        Refusal::BackendFailed {
            fqdn,
            backend,
            error,
        } => (
            StatusCode::BAD_GATEWAY,
            format!("backend {backend} of {fqdn} failed: {error}"),
        ),
    }
}

/// Serves HTTP/1.1 on `io` until the client closes, or until `stop` turns true and the request in
/// flight is answered.
pub async fn serve_http<I>(
    io: I,
    gateway: Arc<Gateway>,
    client: Client,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client = Arc::new(client);
    let service = {
        let client = client.clone();
        service_fn(move |req| {
            let gateway = gateway.clone();
            let client = client.clone();
            async move { Ok::<_, Infallible>(handle(req, &gateway, &client).await) }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopping(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(client = %client.addr, %error, "http connection ended");
    }
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

async fn handle(req: Request<Incoming>, gateway: &Gateway, client: &Client) -> Response<Body> {
    match forward(req, gateway, client).await {
        Ok(response) => response,
        Err(refusal) => {
            let (status, text) = reply(&refusal);
            tracing::debug!(client = %client.addr, %status, text, "refused");
            let mut response = Response::new(Either::Left(Full::new(Bytes::from(text + "\n"))));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
    }
}

async fn forward(
    req: Request<Incoming>,
    gateway: &Gateway,
    client: &Client,
) -> Result<Response<Body>, Refusal> {
    let host = request_host(&req).ok_or(Refusal::NoHost)?;
    if let Some(fqdn) = &client.tls_fqdn
        && host != *fqdn
    {
        return Err(Refusal::Misdirected {
            host,
            fqdn: fqdn.clone(),
        });
    }
    let served = gateway
        .routes()
        .get(&host)
        .cloned()
        .ok_or(Refusal::NoRoute { host })?;
    let fqdn = &served.route.fqdn;
    if served.route.paused {
        return Err(Refusal::Paused { fqdn: fqdn.clone() });
    }
    if served.route.tls_passthrough {
        return Err(Refusal::PassthroughOnly { fqdn: fqdn.clone() });
    }
    let (backend, stream) = backend::connect_any(&served)
        .await
        .map_err(Refusal::NoBackend)?;
    let failed = |error| Refusal::BackendFailed {
        fqdn: fqdn.clone(),
        backend: backend.clone(),
        error,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    tokio::spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(%error, "backend connection ended");
        }
    });
    let response = sender
        .send_request(upstream_request(req, client))
        .await
        .map_err(failed)?;
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Either::Right(body)))
}

/// The host a request is for: the absolute-form URI's authority, else the Host header; without
/// its port, lowercase, without a trailing dot.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = match req.uri().authority() {
        Some(authority) => authority.host(),
        None => {
            let value = req.headers().get(header::HOST)?.to_str().ok()?;
            match value.strip_prefix('[') {
                // An IPv6 literal: no route can name it, but the 404 should.
                Some(rest) => &value[..rest.find(']').map_or(value.len(), |i| i + 2)],
                None => value.split(':').next().unwrap_or(value),
            }
        }
    };
    let host = raw.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The request as the backend gets it.
fn upstream_request(req: Request<Incoming>, client: &Client) -> Request<Incoming> {
    let (mut parts, body) = req.into_parts();
    let authority = parts.uri.authority().map(|a| a.as_str().to_string());
    if !parts.headers.contains_key(header::HOST)
        && let Some(value) = authority.and_then(|a| HeaderValue::from_str(&a).ok())
    {
        parts.headers.insert(header::HOST, value);
    }
    let forwarded_host = parts.headers.get(header::HOST).cloned();
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
    parts.version = Version::HTTP_11;
    remove_hop_by_hop(&mut parts.headers);
    let headers = &mut parts.headers;
    let ip = client.addr.ip().to_string();
    let prior: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded_for = if prior.is_empty() {
        ip
    } else {
        format!("{}, {ip}", prior.join(", "))
    };
    let forwarded_for =
        HeaderValue::from_str(&forwarded_for).expect("ips and header text are valid");
    headers.insert(X_FORWARDED_FOR, forwarded_for);
    let proto = if client.tls_fqdn.is_some() {
        "https"
    } else {
        "http"
    };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    match forwarded_host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
    Request::from_parts(parts, body)
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes the headers meant for one hop only: the fixed ones and those `Connection` names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_host(uri: &str, host: Option<&str>, expect: Option<&str>) {
        let mut req = Request::builder().uri(uri);
        if let Some(host) = host {
            req = req.header(header::HOST, host);
        }
        let req = req.body(()).unwrap();
        assert_eq!(request_host(&req).as_deref(), expect, "{uri} {host:?}");
    }

    #[test]
    fn hosts() {
        check_host("/", Some("Web.Example.COM:8080"), Some("web.example.com"));
        check_host("/", Some("web.example.com."), Some("web.example.com"));
        check_host("/", Some("[::1]:80"), Some("[::1]"));
        check_host(
            "http://Other.Example:81/x",
            Some("web.example.com"),
            Some("other.example"),
        );
        check_host("/", None, None);
        check_host("/", Some(""), None);
    }

    /// A request naming a host in one of the ways clients do, with the host it is for.
    fn named_request() -> impl Strategy<Value = (String, Option<String>, String)> {
        let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?";
        let name = proptest::collection::vec(label, 1..5).prop_map(|labels| labels.join("."));
        let port = proptest::option::of(any::<u16>());
        let with_port = |host: &str, port: Option<u16>| match port {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        prop_oneof![
            // Origin form with a Host header, perhaps with a trailing dot and a port.
            (name.clone(), any::<bool>(), port.clone()).prop_map(move |(name, dot, port)| {
                let host = if dot {
                    format!("{name}.")
                } else {
                    name.clone()
                };
                (
                    "/".to_string(),
                    Some(with_port(&host, port)),
                    name.to_ascii_lowercase(),
                )
            }),
            // Absolute form: the URI's authority wins over the Host header.
            (name.clone(), port.clone(), "[a-z]{1,8}").prop_map(move |(name, port, other)| {
                let uri = format!("http://{}/x", with_port(&name, port));
                (
                    uri,
                    Some(format!("{other}.example")),
                    name.to_ascii_lowercase(),
                )
            }),
            // An IPv6 literal keeps its brackets.
            (any::<[u16; 8]>(), port).prop_map(move |(segments, port)| {
                let ip = std::net::Ipv6Addr::from(segments);
                let literal = format!("[{ip}]");
                ("/".to_string(), Some(with_port(&literal, port)), literal)
            }),
        ]
    }

    fn build(uri: &str, host: Option<&[u8]>) -> Option<Request<()>> {
        let mut req = Request::builder().uri(uri);
        if let Some(host) = host {
            req = req.header(header::HOST, HeaderValue::from_bytes(host).ok()?);
        }
        req.body(()).ok()
    }

    /// Every host a client can name is found, lowercase, without its port or trailing dot.
    #[test]
    fn named_hosts_are_found() {
        let found = crate::sni::tests::count_decoded(named_request(), |(uri, host, expect)| {
            let req = build(&uri, host.as_deref().map(str::as_bytes)).unwrap();
            prop_assert_eq!(request_host(&req), Some(expect));
            Ok(true)
        });
        assert_eq!(found, crate::sni::tests::CASES);
    }

    /// A changed Host header gives a host (not empty, lowercase, no trailing dot) or none, never
    /// a panic; a cut plain one gives what is left before its port.
    #[test]
    fn changed_host_headers_give_a_host_or_none() {
        let strategy = (named_request(), mutation::mutation());
        let found = crate::sni::tests::count_decoded(strategy, |((_, host, _), m)| {
            let host = host.unwrap();
            let changed = mutation::mutate(host.as_bytes(), &m);
            // What the HTTP layer refuses never reaches the gateway.
            let Some(req) = build("/", Some(&changed)) else {
                return Ok(false);
            };
            let got = request_host(&req);
            if let Some(found) = &got {
                prop_assert!(!found.is_empty() && !found.ends_with('.'));
                prop_assert_eq!(found.to_ascii_lowercase(), found.clone());
            }
            let cut = matches!(m, mutation::Mutation::Truncate(_));
            if cut && !host.starts_with('[') {
                let text = String::from_utf8(changed).unwrap();
                let name = text.split(':').next().unwrap().trim_end_matches('.');
                let expect = (!name.is_empty()).then(|| name.to_ascii_lowercase());
                prop_assert_eq!(&got, &expect);
            }
            Ok(got.is_some())
        });
        assert!(found >= crate::sni::tests::CASES / 4, "{found} found");
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("upgrade", "websocket"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("content-type", "text/plain"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        remove_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-type"]);
    }

    #[test]
    fn every_refusal_has_its_status() {
        let fqdn = || "web.example.com".to_string();
        let cases = [
            (Refusal::NoHost, 400, "names no host"),
            (
                Refusal::NoRoute { host: fqdn() },
                404,
                "no gateway serves web.example.com on this node",
            ),
            (
                Refusal::Misdirected {
                    host: "other.example.com".into(),
                    fqdn: fqdn(),
                },
                421,
                "other.example.com is not served on this connection",
            ),
            (
                Refusal::Paused { fqdn: fqdn() },
                503,
                "web.example.com is paused: its contract is in its grace period",
            ),
            (
                Refusal::PassthroughOnly { fqdn: fqdn() },
                400,
                "web.example.com is served over TLS only (passthrough): use https://",
            ),
            (
                Refusal::NoBackend(NoBackend {
                    fqdn: fqdn(),
                    failures: vec![
                        ("http://10.0.0.1".into(), std::io::Error::other("refused")),
                        ("http://10.0.0.2".into(), std::io::Error::other("timed out")),
                    ],
                }),
                502,
                "no backend of web.example.com answered: http://10.0.0.1: refused; http://10.0.0.2: timed out",
            ),
        ];
        for (refusal, status, text) in cases {
            let (got_status, got_text) = reply(&refusal);
            assert_eq!(got_status.as_u16(), status, "{refusal:?}");
            assert!(got_text.contains(text), "{got_text}");
        }
    }
}
