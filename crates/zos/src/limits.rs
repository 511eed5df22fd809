//! Named maxima of the node agent.

use std::time::Duration;

/// Jobs waiting in the persistent queue.
pub const JOBS_MAX: usize = 10_000;
/// Contracts listed per node at reconciliation.
pub const CONTRACTS_PER_NODE_MAX: usize = 10_000;
/// The size bound of the node's 0-db `default` namespace. The namespace is protected (only the
/// agent, with the admin password, writes it) and holds nothing of users; the bound keeps even a
/// leaked admin password from filling the node's disk through it.
pub const ZDB_DEFAULT_MAXSIZE: u64 = 1 << 20;

/// How long to wait for a zdb server to start.
pub const ZDB_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait before retrying the chain after an error.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);
/// The largest image archive a node downloads.
pub const IMAGE_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;
/// How long to wait for the gateway (`zgw`) to start listening.
pub const GATEWAY_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping gateway may take to drain before it is killed.
pub const GATEWAY_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a VM's monitor (QMP) may take to answer.
pub const VM_QMP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a killed VM may take to be gone.
pub const VM_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long QEMU may take to start a VM (to daemonize, not to boot it).
pub const VM_START_TIMEOUT: Duration = Duration::from_secs(30);
/// A machine's console log (`output.log`) is emptied when it grows past this.
pub const MACHINE_LOG_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// How long a report may take to be included.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(30);
