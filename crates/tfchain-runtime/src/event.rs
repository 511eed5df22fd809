//! Events: what each block did, as TFChain names it. Nodes, the explorer and clients follow these.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::deployment::WorkloadResult;
use tfgrid_types::{AccountId, Balance, ContractId, FarmId, Hash32, NodeId, TwinId};

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

    // Smart contracts.
    ContractCreated(Contract),
    ContractUpdated(Contract),
    NodeContractCanceled {
        contract_id: ContractId,
        node_id: NodeId,
        twin_id: TwinId,
        cause: Cause,
    },
    NameContractCanceled {
        contract_id: ContractId,
        cause: Cause,
    },
    RentContractCanceled {
        contract_id: ContractId,
        node_id: NodeId,
        cause: Cause,
    },
    IPsFreed {
        contract_id: ContractId,
        public_ips: Vec<PublicIp>,
    },
    ContractBilled {
        contract_id: ContractId,
        timestamp_s: u64,
        discount_level: DiscountLevel,
        #[serde(with = "tfgrid_types::amount::json_units")]
        amount_billed: Balance,
        /// Seconds the contract's node was proven down in the time billed, not charged.
        credited_s: u64,
    },
    TokensBurned {
        contract_id: ContractId,
        #[serde(with = "tfgrid_types::amount::json_units")]
        amount: Balance,
    },
    UpdatedUsedResources {
        contract_id: ContractId,
        used: Resources,
    },
    NruConsumptionReportReceived(NruConsumption),
    DeploymentStateReported {
        contract_id: ContractId,
        node_id: NodeId,
        version: u32,
        workloads: Vec<WorkloadResult>,
    },
    /// The node pauses the contract's workloads.
    ContractGracePeriodStarted {
        contract_id: ContractId,
        node_id: Option<NodeId>,
        twin_id: TwinId,
        block: u64,
    },
    /// The node resumes them.
    ContractGracePeriodEnded {
        contract_id: ContractId,
        node_id: Option<NodeId>,
        twin_id: TwinId,
    },
    ContractGracePeriodElapsed {
        contract_id: ContractId,
        twin_id: TwinId,
    },
    FarmingRewardMinted {
        node_id: NodeId,
        farm_id: FarmId,
        #[serde(with = "tfgrid_types::amount::json_units")]
        amount: Balance,
        uptime_percent: u16,
    },
    FarmingRewardWithheld {
        node_id: NodeId,
        uptime_percent: u16,
    },
    TftPriceSet {
        price_musd: u32,
    },
    TftPriceBoundsSet {
        min_musd: u32,
        max_musd: u32,
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

    // Validators.
    /// The council chose `validators` to decide blocks from `at_height` on.
    ValidatorSetScheduled {
        at_height: u64,
        validators: Vec<AccountId>,
    },
    /// The scheduled set became the current one at this block.
    ValidatorSetChanged {
        validators: Vec<AccountId>,
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
