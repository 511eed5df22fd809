//! Primitives: what turns a workload into something running on the node. This node runs `zdb`
//! workloads, `zmachine`s as containers, the `zmount`s and `volume`s mounted into them, their
//! private networks, and public IPv4s (`ip`, on the node's public interface); the other types are
//! refused with a message saying so, until their primitive exists.

pub mod container;
pub mod network;
pub mod volume;
pub mod zdb;

use tfgrid_types::deployment::{Workload, WorkloadData};

/// The name of what a workload creates (namespace, container): `<twin>-<contract>-<name>`, as
/// Zero-OS names workloads.
pub fn workload_id(twin: u32, contract: u64, name: &str) -> String {
    format!("{twin}-{contract}-{name}")
}

/// Why a workload cannot run on this node, if it cannot. `containers` says why containers cannot
/// run here, when they cannot; `public_iface` is the node's interface on the farm's public network.
pub fn unsupported(
    workload: &Workload,
    containers: Option<&str>,
    public_iface: Option<&str>,
) -> Option<String> {
    match workload.data {
        WorkloadData::Zdb(_) => None,
        WorkloadData::Ip(ref ip) if ip.v6 => {
            Some("public IPv6 is not supported by this node yet".into())
        }
        WorkloadData::Ip(_) => match (containers, public_iface) {
            (Some(why), _) => Some(format!("this node cannot give public IPs: {why}")),
            (None, None) => Some(
                "this node has no interface on the farm's public network (zos --public-iface)"
                    .into(),
            ),
            (None, Some(_)) => None,
        },
        WorkloadData::Network(_) => {
            containers.map(|why| format!("this node cannot build networks: {why}"))
        }
        WorkloadData::Zmount(_) | WorkloadData::Volume(_) => {
            containers.map(|why| format!("this node cannot mount volumes: {why}"))
        }
        WorkloadData::Zmachine(_) => {
            containers.map(|why| format!("this node cannot run zmachines: {why}"))
        }
        ref other => Some(format!(
            "{} workloads are not supported by this node yet",
            other.type_name()
        )),
    }
}
