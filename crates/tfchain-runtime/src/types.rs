//! The entities the ledger stores: accounts, twins, farms and their public IPs, nodes, policies, the
//! council and its motions, the validator set. Field names follow TFChain's pallets. These are wire
//! and disk formats: a change of a field is a change of the encoding, so the `version` fields say
//! which one a value has.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::deployment::{Deployment, WorkloadResult};
use tfgrid_types::{AccountId, Balance, ContractId, FarmId, Hash32, NodeId, PolicyId, TwinId};

macro_rules! entity {
    ($($item:item)*) => {$(
        #[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
        $item
    )*};
}

entity! {
    /// The balance and transaction counter of an account.
    #[derive(Default)]
    pub struct AccountInfo {
        #[serde(with = "tfgrid_types::amount::json_units")]
        pub free: Balance,
        /// The nonce the account's next transaction must carry.
        pub nonce: u64,
    }

    /// Chain-wide parameters fixed by the chain spec and changed only by the council.
    pub struct ChainParams {
        /// A new account must receive at least this much.
        #[serde(with = "tfgrid_types::amount::json_units")]
        pub existential_deposit: Balance,
        /// The fee of every paying transaction, burned.
        #[serde(with = "tfgrid_types::amount::json_units")]
        pub tx_base_fee: Balance,
        /// The fee per byte of a transaction's encoding, burned.
        #[serde(with = "tfgrid_types::amount::json_units")]
        pub tx_byte_fee: Balance,
        /// How far a node's uptime report's time hint may be from the block time.
        pub timestamp_hint_drift_s: u64,
        /// Blocks a council motion stays open.
        pub motion_duration_blocks: u64,
        /// Every contract is billed once per this many blocks, in slot `contract_id % period`; each
        /// node's farming reward is minted once per period, in slot `node_id % period`.
        pub billing_period_blocks: u64,
        /// Blocks a contract may stay unpaid before it is deleted.
        pub grace_period_blocks: u64,
        /// How often nodes report uptime; a node silent for 3 intervals counts as down.
        pub uptime_report_interval_s: u64,
        /// Receives 5 % of every contract payment.
        pub staking_pool_account: AccountId,
    }

    /// Sequential id counters: each holds the last id given out.
    #[derive(Default)]
    pub struct Counters {
        pub contract: ContractId,
        pub twin: TwinId,
        pub farm: FarmId,
        pub node: NodeId,
        pub pricing_policy: PolicyId,
        pub farming_policy: PolicyId,
    }

    /// Terms and conditions an account accepted (needed before it can create a twin).
    pub struct TermsAccepted {
        pub document_link: String,
        pub document_hash: String,
        pub timestamp_s: u64,
    }

    /// The on-chain identity of an account.
    pub struct Twin {
        pub version: u32,
        pub id: TwinId,
        pub account_id: AccountId,
        /// The RMB relay the twin is reached through.
        pub relay: Option<String>,
        /// The public key for encrypted messages to the twin.
        pub pk: Option<Vec<u8>>,
    }

    pub struct PublicIp {
        /// IPv4 address with its prefix, `185.206.122.33/24`.
        pub ip: String,
        pub gateway: String,
        /// The contract using the address, 0 when free.
        pub contract_id: u64,
    }

    pub struct Farm {
        pub version: u32,
        pub id: FarmId,
        pub name: String,
        pub twin_id: TwinId,
        pub pricing_policy_id: PolicyId,
        pub certification: FarmCertification,
        pub public_ips: Vec<PublicIp>,
        pub dedicated_farm: bool,
    }

    #[derive(Copy, PartialOrd, Ord)]
    pub enum FarmCertification { NotCertified, Gold }

    #[derive(Copy, PartialOrd, Ord)]
    pub enum NodeCertification { Diy, Certified }

    /// Capacity in bytes (memory and disks) and logical cores.
    #[derive(Copy, Default)]
    pub struct Resources {
        pub hru: u64,
        pub sru: u64,
        pub cru: u64,
        pub mru: u64,
    }

    pub struct Location {
        pub city: String,
        pub country: String,
        pub latitude: String,
        pub longitude: String,
    }

    pub struct Interface {
        pub name: String,
        pub mac: String,
        pub ips: Vec<String>,
    }

    pub struct Ip4Config { pub ip: String, pub gw: String }
    pub struct Ip6Config { pub ip: String, pub gw: String }

    /// Addresses a farmer gives a node so it can serve as a gateway.
    pub struct PublicConfig {
        pub ip4: Ip4Config,
        pub ip6: Option<Ip6Config>,
        pub domain: Option<String>,
    }

    pub struct Node {
        pub version: u32,
        pub id: NodeId,
        pub farm_id: FarmId,
        pub twin_id: TwinId,
        pub resources: Resources,
        pub location: Location,
        pub public_config: Option<PublicConfig>,
        /// Unix seconds of registration.
        pub created: u64,
        pub farming_policy_id: PolicyId,
        pub interfaces: Vec<Interface>,
        pub certification: NodeCertification,
        pub secure_boot: bool,
        pub virtualized: bool,
        pub serial_number: Option<String>,
        pub connection_price: u32,
    }

    /// What a node registers (create and update share it).
    pub struct NodeSpec {
        pub farm_id: FarmId,
        pub resources: Resources,
        pub location: Location,
        pub interfaces: Vec<Interface>,
        pub secure_boot: bool,
        pub virtualized: bool,
        pub serial_number: Option<String>,
    }

    #[derive(Copy)]
    pub enum PowerState { Up, Down { since_block: u64 } }

    #[derive(Copy)]
    pub enum Power { Up, Down }

    pub struct NodePower {
        pub state: PowerState,
        pub target: Power,
    }

    /// The node's last uptime report, and its up time in the current reward period.
    pub struct NodeUptime {
        pub uptime_s: u64,
        /// Block time of the report, unix seconds.
        pub reported_at_s: u64,
        /// Seconds the node was seen up since the period started.
        pub period_up_s: u64,
        /// Unix seconds the current reward period started.
        pub period_start_s: u64,
    }

    #[derive(Copy)]
    pub enum Unit { Bytes, Kilobytes, Megabytes, Gigabytes, Terabytes }

    /// A price in units-USD per hour (10^7 per USD) for an amount of `unit`.
    pub struct Policy { pub value: u32, pub unit: Unit }

    pub struct PricingPolicy {
        pub version: u32,
        pub id: PolicyId,
        #[serde(flatten)]
        pub terms: PricingTerms,
    }

    /// What the council sets in a pricing policy.
    pub struct PricingTerms {
        pub name: String,
        pub su: Policy,
        pub cu: Policy,
        pub nu: Policy,
        pub ipu: Policy,
        pub unique_name: Policy,
        pub domain_name: Policy,
        pub foundation_account: AccountId,
        pub certified_sales_account: AccountId,
        pub discount_for_dedication_nodes: u8,
    }

    pub struct FarmingPolicy {
        pub version: u32,
        pub id: PolicyId,
        /// Block at which the policy was created.
        pub policy_created: u64,
        #[serde(flatten)]
        pub terms: FarmingTerms,
    }

    /// What the council sets in a farming policy.
    pub struct FarmingTerms {
        pub name: String,
        /// Rewards in mUSD per hour for each unit of capacity.
        pub cu: u32,
        pub su: u32,
        pub nu: u32,
        pub ipv4: u32,
        /// Percent of the period a node must be up to earn anything.
        pub minimal_uptime: u16,
        /// Block after which the policy no longer applies (0 = never ends).
        pub policy_end: u64,
        pub immutable: bool,
        pub default: bool,
        pub node_certification: NodeCertification,
        pub farm_certification: FarmCertification,
    }

    /// Settings of the grid set by the council.
    pub struct GridSettings {
        pub zos_version: String,
        /// Price of a connection in mUSD, copied into nodes at registration.
        pub connection_price: u32,
    }

    /// The council: accounts whose joint approval is the "restricted origin".
    pub struct Council {
        pub members: Vec<AccountId>,
        /// Default number of approvals a motion needs.
        pub threshold: u32,
    }

    pub struct Motion {
        pub hash: Hash32,
        pub proposer: AccountId,
        /// The encoded call the motion executes as the council.
        pub call: Vec<u8>,
        pub description: String,
        pub threshold: u32,
        pub ayes: Vec<AccountId>,
        pub nays: Vec<AccountId>,
        /// The last block at which votes are taken.
        pub end_block: u64,
    }

    /// The accounts that decide blocks: the current set and at most one change the council
    /// scheduled (see `validators.rs`).
    pub struct ValidatorSet {
        pub current: Vec<AccountId>,
        pub scheduled: Option<ScheduledValidators>,
    }

    /// A validator set that decides blocks from `at_height` on.
    pub struct ScheduledValidators {
        pub at_height: u64,
        pub validators: Vec<AccountId>,
    }
}

entity! {
    pub struct Contract {
        pub version: u32,
        pub contract_id: ContractId,
        pub twin_id: TwinId,
        pub state: ContractState,
        pub contract_type: ContractData,
    }

    pub enum ContractData {
        NodeContract(NodeContract),
        NameContract { name: String },
        RentContract { node_id: NodeId },
    }

    pub struct NodeContract {
        pub node_id: NodeId,
        pub deployment_hash: Hash32,
        pub deployment: Deployment,
        /// Public IPv4 addresses reserved from the farm.
        pub public_ips: u32,
        pub public_ips_list: Vec<PublicIp>,
    }

    #[derive(Copy)]
    pub enum ContractState {
        Created,
        /// Unpaid since `since_block`: the node pauses the workloads.
        GracePeriod { since_block: u64 },
        Deleted(Cause),
    }

    #[derive(Copy)]
    pub enum Cause { CanceledByUser, OutOfFunds, CanceledByCollective, NodeDeleted }

    /// Where a contract's billing stands.
    #[derive(Default)]
    pub struct ContractBilling {
        /// Unix seconds up to which the contract is billed.
        pub last_billed_s: u64,
        /// Network usage reported but not billed yet, in units-USD.
        #[serde(with = "tfgrid_types::amount::json_units")]
        pub unbilled_nu_usd: u128,
        /// TFT owed from billing cycles that could not be paid (in the grace period).
        #[serde(with = "tfgrid_types::amount::json_units")]
        pub overdue: Balance,
        /// Unix seconds of the newest network report taken.
        pub last_nru_report_s: u64,
    }

    /// One payment of a contract.
    pub struct Bill {
        pub timestamp_s: u64,
        pub discount_level: DiscountLevel,
        #[serde(with = "tfgrid_types::amount::json_units")]
        pub amount_billed: Balance,
        /// Seconds of the billed time the contract's node was proven down, not charged.
        pub credited_s: u64,
    }

    #[derive(Copy)]
    pub enum DiscountLevel { None, Default, Bronze, Silver, Gold }

    /// What a twin has paid in all.
    #[derive(Default)]
    pub struct Consumption {
        #[serde(with = "tfgrid_types::amount::json_units")]
        pub total_billed: Balance,
        pub last_bill_s: u64,
    }

    /// The TFT price billing uses, in mUSD, clamped to bounds the council sets.
    pub struct TftPrice {
        pub price_musd: u32,
        pub min_musd: u32,
        pub max_musd: u32,
    }

    /// Resources a contract uses, as its node reports them.
    pub struct ContractResources {
        pub contract_id: ContractId,
        pub used: Resources,
    }

    /// Network bytes a contract used in a window, as its node reports them.
    pub struct NruConsumption {
        pub contract_id: ContractId,
        /// Unix seconds at the end of the window.
        pub timestamp: u64,
        /// Seconds.
        pub window: u64,
        /// Bytes.
        pub nru: u64,
    }

    /// The workload results a node reported for a contract's deployment.
    pub struct DeploymentState {
        /// Unix seconds of the report.
        pub reported_at_s: u64,
        pub version: u32,
        pub workloads: Vec<WorkloadResult>,
    }
}

impl TftPrice {
    /// The price billing uses: clamped, so a wrong price cannot overbill.
    pub fn effective_musd(&self) -> u32 {
        self.price_musd.clamp(self.min_musd, self.max_musd).max(1)
    }
}

impl Contract {
    pub fn node_id(&self) -> Option<NodeId> {
        match &self.contract_type {
            ContractData::NodeContract(c) => Some(c.node_id),
            ContractData::RentContract { node_id } => Some(*node_id),
            ContractData::NameContract { .. } => None,
        }
    }

    pub fn is_active(&self) -> bool {
        !matches!(self.state, ContractState::Deleted(_))
    }
}

impl Resources {
    /// Whether any axis differs from `other` by more than one percent.
    pub fn differs_by_more_than_1_percent(&self, other: &Resources) -> bool {
        let pairs = [
            (self.hru, other.hru),
            (self.sru, other.sru),
            (self.cru, other.cru),
            (self.mru, other.mru),
        ];
        pairs.iter().any(|&(a, b)| {
            let diff = a.abs_diff(b) as u128;
            diff * 100 > (b as u128)
        })
    }
}

pub const TWIN_VERSION: u32 = 1;
pub const FARM_VERSION: u32 = 4;
pub const NODE_VERSION: u32 = 5;
pub const PRICING_POLICY_VERSION: u32 = 1;
pub const FARMING_POLICY_VERSION: u32 = 1;
