//! Events: what each block did, as TFChain names it. Nodes, the explorer and clients follow these.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::{AccountId, Balance, FarmId, Hash32, NodeId};

use crate::types::*;

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    // System.
    /// A transaction's call succeeded.
    ExtrinsicSuccess {
        index: u32,
    },
    /// A transaction's call failed; its fee was paid and nothing else changed.
    ExtrinsicFailed {
        index: u32,
        error: String,
    },
    TransactionFeePaid {
        who: AccountId,
        #[serde(with = "tfgrid_types::amount::json_units")]
        fee: Balance,
    },

    // Balances.
    Transfer {
        from: AccountId,
        to: AccountId,
        #[serde(with = "tfgrid_types::amount::json_units")]
        amount: Balance,
    },
    Endowed {
        account: AccountId,
        #[serde(with = "tfgrid_types::amount::json_units")]
        amount: Balance,
    },

    // Tfgrid.
    TermsAndConditionsAccepted {
        account: AccountId,
    },
    TwinStored(Twin),
    TwinUpdated(Twin),
    FarmStored(Farm),
    FarmUpdated(Farm),
    FarmPayoutV2AddressRegistered {
        farm_id: FarmId,
        address: String,
    },
    FarmCertificationSet {
        farm_id: FarmId,
        certification: FarmCertification,
    },
    FarmMarkedAsDedicated {
        farm_id: FarmId,
        dedicated: bool,
    },
    NodeStored(Node),
    NodeUpdated(Node),
    NodeDeleted {
        node_id: NodeId,
    },
    NodePublicConfigStored {
        node_id: NodeId,
        public_config: Option<PublicConfig>,
    },
    NodeUptimeReported {
        node_id: NodeId,
        timestamp_s: u64,
        uptime_s: u64,
    },
    NodeCertificationSet {
        node_id: NodeId,
        certification: NodeCertification,
    },
    NodeCertifierAdded {
        account: AccountId,
    },
    NodeCertifierRemoved {
        account: AccountId,
    },
    PowerTargetChanged {
        farm_id: FarmId,
        node_id: NodeId,
        target: Power,
    },
    PowerStateChanged {
        farm_id: FarmId,
        node_id: NodeId,
        state: PowerState,
    },
    PricingPolicyStored(PricingPolicy),
    FarmingPolicyStored(FarmingPolicy),
    FarmingPolicyUpdated(FarmingPolicy),
    ZosVersionUpdated {
        version: String,
    },
    ConnectionPriceSet {
        price: u32,
    },

    // Council.
    Proposed {
        proposer: AccountId,
        hash: Hash32,
        threshold: u32,
    },
    Voted {
        who: AccountId,
        hash: Hash32,
        approve: bool,
        ayes: u32,
        nays: u32,
    },
    Approved {
        hash: Hash32,
    },
    Disapproved {
        hash: Hash32,
    },
    /// The council's call ran; `error` says why it failed, if it did.
    Executed {
        hash: Hash32,
        error: Option<String>,
    },
    Closed {
        hash: Hash32,
    },

    // Key-value store.
    EntrySet {
        account: AccountId,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    EntryTaken {
        account: AccountId,
        key: Vec<u8>,
        value: Vec<u8>,
    },
}
