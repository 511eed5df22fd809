//! Zero-OS's node agent: identity, capacity, the node's one chain session, registration, uptime
//! reports, the chain watcher, the persistent job queue with its owed reports, the provision engine
//! (a pure planner, and the executor over one primitive per workload type: 0-db namespaces,
//! containers and VMs, volumes, networks, public IPs, gateways).

pub mod agent;
pub mod capacity;
pub mod chain;
pub mod engine;
pub mod identity;
pub mod images;
pub mod limits;
pub mod plan;
pub mod primitives;
pub mod store;
pub mod teardown;
