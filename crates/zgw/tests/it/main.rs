//! End-to-end tests of the real `zgw` binary (built by `cargo build -p zgw --bins`, found next to
//! this test executable) on loopback ports, with routes written through `zgw::route::Route`,
//! reloads by SIGHUP, `curl` as the client and small HTTP and HTTPS backends in the test: routing,
//! the gateway's own replies, backends failing over, TLS termination and passthrough, backends in
//! a network namespace, and shutdown.

mod harness;
mod http;
mod netns;
mod tls;
