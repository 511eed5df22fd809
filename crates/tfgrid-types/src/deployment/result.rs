//! What a node reports back for each workload: its state, an error message, and the type's result
//! (addresses, 0-db endpoint, gateway FQDN, a network's WireGuard endpoint).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ResultState {
    Init,
    Unchanged,
    Error,
    Ok,
    Deleted,
    Paused,
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultData {
    None,
    Zmachine {
        id: String,
        ip: String,
    },
    Zmount {
        volume_id: String,
    },
    Volume {
        id: String,
    },
    Zdb {
        namespace: String,
        ips: Vec<String>,
        port: u16,
    },
    Ip {
        ip: String,
        ip6: String,
        gateway: String,
    },
    GatewayNameProxy {
        fqdn: String,
    },
    /// A node's part of a network: the UDP port its WireGuard device listens on (the node picks
    /// it when the workload asks for 0, and keeps it), and `<public IPv4>:<port>` where peers
    /// reach it, empty when the node has no public address (it is hidden: it dials out to its
    /// peers with endpoints, and they wait for it).
    Network {
        listen_port: u16,
        endpoint: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct WorkloadResult {
    pub name: String,
    /// Unix seconds of the change.
    pub created: u64,
    pub state: ResultState,
    /// Why the workload failed, when it did.
    pub message: String,
    pub data: ResultData,
}
