//! The entities the ledger stores: accounts, twins, farms and their public IPs, nodes, policies, the
//! council and its motions. Field names follow TFChain's pallets. These are wire and disk formats: a
//! change of a field is a change of the encoding, so the `version` fields say which one a value has.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::{AccountId, Balance, FarmId, Hash32, NodeId, PolicyId, TwinId};

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
    }

    /// Sequential id counters: each holds the last id given out.
    #[derive(Default)]
    pub struct Counters {
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

    /// The node's last uptime report.
    pub struct NodeUptime {
        pub uptime_s: u64,
        /// Block time of the report, unix seconds.
        pub reported_at_s: u64,
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
