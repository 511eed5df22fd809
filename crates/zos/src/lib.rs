//! Zero-OS's node agent: identity, capacity, registration, uptime reports, the chain watcher, the
//! persistent job queue, the provision engine and its primitives (0-db namespaces, containers,
//! volumes, networks, public IPs, gateways).

pub mod agent;
pub mod capacity;
pub mod engine;
pub mod identity;
pub mod images;
pub mod limits;
pub mod primitives;
pub mod store;
pub mod teardown;
