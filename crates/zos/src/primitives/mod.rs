//! Primitives: what turns a workload into something running on the node. This node runs `zdb`
//! workloads; the other types are refused with a message saying so, until their primitive exists.

pub mod zdb;

use tfgrid_types::deployment::{Workload, WorkloadData};

/// The namespace (and later, the name of anything a workload creates): `<twin>-<contract>-<name>`,
/// as Zero-OS names workloads.
pub fn workload_id(twin: u32, contract: u64, name: &str) -> String {
    format!("{twin}-{contract}-{name}")
}

/// Why a workload cannot run on this node, if it cannot.
pub fn unsupported(workload: &Workload) -> Option<String> {
    match workload.data {
        WorkloadData::Zdb(_) => None,
        ref other => Some(format!(
            "{} workloads are not supported by this node yet",
            other.type_name()
        )),
    }
}
