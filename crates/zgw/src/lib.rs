//! The gateway a node runs for `gateway-name-proxy` and `gateway-fqdn-proxy` workloads: an HTTP(S)
//! proxy that routes by host name to each workload's backends. The node agent writes one route file
//! per workload ([`route`]) and signals the `zgw` process to reload them ([`table`]).
//!
//! The plain listener serves HTTP/1.1 ([`proxy`]); the TLS listener reads each ClientHello's server
//! name ([`sni`]) and either passes the stream through to a backend or terminates TLS with the
//! host's certificate ([`certs`], [`tls`]) and serves HTTP the same way. Backends may sit in a
//! user network's namespace ([`backend`]). [`server`] holds the accept loop and the drain.

#![forbid(unsafe_code)]

pub mod backend;
pub mod certs;
pub mod limits;
pub mod proxy;
pub mod route;
pub mod server;
pub mod sni;
pub mod table;
pub mod tls;
