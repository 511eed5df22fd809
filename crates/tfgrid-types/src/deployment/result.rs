//! What a node reports back for each workload: its state, an error message, and the type's result
//! (addresses, 0-db endpoint, gateway FQDN).

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
