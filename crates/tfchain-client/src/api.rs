//! The RPC methods and their JSON types. Method names are `<module>_<name>`; subscriptions deliver
//! finalized headers and each block's events.

use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};
use tfchain_runtime::types::*;
use tfchain_runtime::{Commit, EventRecord, Header, SignedTransaction};
use tfgrid_types::{AccountId, Balance, ContractId, FarmId, Hash32, NodeId, PolicyId, TwinId};

pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Error codes of the API; the message says the rest.
pub mod codes {
    /// The transaction cannot be included (bad signature, nonce, fee funds, size).
    pub const TX_INVALID: i32 = 1001;
    /// The pool is full or the sender has too many pending transactions.
    pub const POOL_FULL: i32 = 1002;
    /// The bytes or parameters do not decode.
    pub const MALFORMED: i32 = 1003;
    /// The node failed to read its own store.
    pub const STORE: i32 = 1004;
    /// The same transaction is already pending.
    pub const ALREADY_KNOWN: i32 = 1005;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    pub chain: String,
    pub chain_id: String,
    pub genesis_hash: Hash32,
    pub height: u64,
    pub head_hash: Hash32,
    pub head_timestamp_ms: u64,
    pub block_time_ms: u64,
    pub pending_txs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub account: AccountId,
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub free: Balance,
    /// The nonce of the account's next transaction in the last block.
    pub nonce: u64,
    /// The nonce a new transaction should carry, counting those pending in the pool.
    pub next_nonce: u64,
}

/// A block by height or by hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    Height(u64),
    Hash(Hash32),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    pub hash: Hash32,
    pub header: Header,
    pub txs: Vec<TxView>,
    pub events: Vec<EventRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxView {
    pub hash: Hash32,
    #[serde(flatten)]
    pub tx: SignedTransaction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// Waiting in the pool.
    Pending,
    /// In a finalized block; `error` is the call's error if it failed (its fee was paid).
    Included {
        height: u64,
        block_hash: Hash32,
        index: u32,
        #[serde(with = "tfgrid_types::amount::json_units")]
        fee: Balance,
        error: Option<String>,
        events: Vec<EventRecord>,
    },
    /// Removed from the pool without inclusion.
    Dropped { reason: String },
    /// Never seen, or dropped long ago.
    Unknown,
}

/// A node's report of a contract, taken into the pool and not yet in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReport {
    pub contract_id: ContractId,
    pub state: DeploymentState,
}

/// One transaction's verdict in a batch submission: its hash when the pool took it, or why not
/// (with the code and message `tx_submit` would have answered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Submitted {
    Accepted(Hash32),
    Refused { code: i32, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRun {
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub fee: Balance,
    pub error: Option<String>,
    pub events: Vec<EventRecord>,
}

/// Paging through a table in id order: entries from `from` on, at most `limit` (capped by the node).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub from: Option<u64>,
    pub limit: Option<u32>,
}

/// A node with its power and last uptime report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    #[serde(flatten)]
    pub node: Node,
    pub power: Option<NodePower>,
    pub uptime: Option<NodeUptime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEvents {
    pub height: u64,
    pub block_hash: Hash32,
    pub timestamp_ms: u64,
    pub events: Vec<EventRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    /// Hex of the key bytes.
    pub key: String,
    /// Hex of the value bytes.
    pub value: String,
}

/// A contract with what the ledger knows of it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractView {
    #[serde(flatten)]
    pub contract: Contract,
    pub billing: Option<ContractBilling>,
    /// Resources the node reported (node contracts).
    pub resources: Option<Resources>,
    /// Workload results the node reported (node contracts).
    pub deployment_state: Option<DeploymentState>,
    /// What an hour costs now, in units of TFT, before any discount.
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub cost_per_hour: Balance,
}

/// What a twin spends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumptionView {
    pub twin_id: TwinId,
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub total_billed: Balance,
    pub last_bill_s: u64,
    pub active_contracts: u32,
    /// All active contracts' cost of an hour now, in units of TFT, before discounts.
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub cost_per_hour: Balance,
}

#[rpc(client, server)]
pub trait TfchainApi {
    #[method(name = "chain_status")]
    async fn status(&self) -> RpcResult<ChainStatus>;

    /// The chain's parameters: fees, billing and grace periods, the uptime report interval.
    #[method(name = "chain_params")]
    async fn params(&self) -> RpcResult<ChainParams>;

    #[method(name = "chain_getBlock")]
    async fn block(&self, at: BlockId) -> RpcResult<Option<BlockView>>;

    /// Submits a signed transaction (0x and the hex of its encoding); returns its hash.
    #[method(name = "tx_submit")]
    async fn submit(&self, tx: String) -> RpcResult<Hash32>;

    /// Submits many transactions in one request (at most 4,096), each admitted or refused on its
    /// own, in order: a client need not pay a round trip per transaction.
    #[method(name = "tx_submitBatch")]
    async fn submit_batch(&self, txs: Vec<String>) -> RpcResult<Vec<Submitted>>;

    /// Takes in transactions another node of the network relays: as `tx_submitBatch`, but not
    /// relayed further.
    #[method(name = "tx_relay")]
    async fn relay(&self, txs: Vec<String>) -> RpcResult<Vec<Submitted>>;

    /// The validators' commit of the block at `height`: the precommit signatures that finalized it
    /// under BFT, and any validator caught equivocating at that height (none for the genesis block
    /// or a solo chain).
    #[method(name = "chain_getCommit")]
    async fn commit(&self, height: u64) -> RpcResult<Option<Commit>>;

    /// Runs a signed transaction on the head state without keeping anything.
    #[method(name = "tx_dryRun")]
    async fn dry_run(&self, tx: String) -> RpcResult<DryRun>;

    #[method(name = "tx_status")]
    async fn tx_status(&self, hash: Hash32) -> RpcResult<TxStatus>;

    #[method(name = "account_info")]
    async fn account(&self, account: AccountId) -> RpcResult<AccountView>;

    #[method(name = "tfgrid_twin")]
    async fn twin(&self, id: TwinId) -> RpcResult<Option<Twin>>;

    #[method(name = "tfgrid_twinByAccount")]
    async fn twin_by_account(&self, account: AccountId) -> RpcResult<Option<Twin>>;

    #[method(name = "tfgrid_twins")]
    async fn twins(&self, page: Page) -> RpcResult<Vec<Twin>>;

    #[method(name = "tfgrid_farm")]
    async fn farm(&self, id: FarmId) -> RpcResult<Option<Farm>>;

    #[method(name = "tfgrid_farmByName")]
    async fn farm_by_name(&self, name: String) -> RpcResult<Option<Farm>>;

    #[method(name = "tfgrid_farms")]
    async fn farms(&self, page: Page) -> RpcResult<Vec<Farm>>;

    #[method(name = "tfgrid_node")]
    async fn node(&self, id: NodeId) -> RpcResult<Option<NodeView>>;

    #[method(name = "tfgrid_nodeByTwin")]
    async fn node_by_twin(&self, twin_id: TwinId) -> RpcResult<Option<NodeView>>;

    #[method(name = "tfgrid_nodes")]
    async fn nodes(&self, page: Page) -> RpcResult<Vec<NodeView>>;

    #[method(name = "tfgrid_pricingPolicy")]
    async fn pricing_policy(&self, id: PolicyId) -> RpcResult<Option<PricingPolicy>>;

    #[method(name = "tfgrid_farmingPolicies")]
    async fn farming_policies(&self, page: Page) -> RpcResult<Vec<FarmingPolicy>>;

    #[method(name = "contract_get")]
    async fn contract(&self, id: ContractId) -> RpcResult<Option<ContractView>>;

    /// The name contract holding a gateway name, if one does.
    #[method(name = "contract_getByName")]
    async fn contract_by_name(&self, name: String) -> RpcResult<Option<Contract>>;

    /// Active contracts of a twin.
    #[method(name = "contract_listByTwin")]
    async fn contracts_by_twin(&self, twin_id: TwinId) -> RpcResult<Vec<Contract>>;

    /// Active node contracts on a node, and its rent contract.
    #[method(name = "contract_listByNode")]
    async fn contracts_by_node(&self, node_id: NodeId) -> RpcResult<Vec<Contract>>;

    /// The newest workload report the contract's node signed and submitted that no block holds
    /// yet (what the node already says, a block early), if any.
    #[method(name = "contract_pendingState")]
    async fn pending_deployment_state(&self, id: ContractId) -> RpcResult<Option<DeploymentState>>;

    /// The latest bills of a contract, oldest first.
    #[method(name = "contract_bills")]
    async fn contract_bills(&self, id: ContractId) -> RpcResult<Vec<Bill>>;

    #[method(name = "twin_consumption")]
    async fn twin_consumption(&self, twin_id: TwinId) -> RpcResult<ConsumptionView>;

    #[method(name = "tfgrid_tftPrice")]
    async fn tft_price(&self) -> RpcResult<TftPrice>;

    #[method(name = "council_info")]
    async fn council(&self) -> RpcResult<Council>;

    #[method(name = "council_motions")]
    async fn motions(&self) -> RpcResult<Vec<Motion>>;

    /// The validator set after the last block, and the change the council scheduled, if any (it
    /// decides blocks from its `at_height` on).
    #[method(name = "validators_info")]
    async fn validators(&self) -> RpcResult<ValidatorSet>;

    /// A value of an account's key-value store; `key` is hex.
    #[method(name = "kv_get")]
    async fn kv_get(&self, account: AccountId, key: String) -> RpcResult<Option<KvEntry>>;

    #[method(name = "kv_list")]
    async fn kv_list(&self, account: AccountId) -> RpcResult<Vec<KvEntry>>;

    #[subscription(name = "chain_subscribeFinalizedHeads" => "chain_finalizedHead", unsubscribe = "chain_unsubscribeFinalizedHeads", item = Header)]
    async fn subscribe_finalized_heads(&self) -> SubscriptionResult;

    #[subscription(name = "chain_subscribeEvents" => "chain_events", unsubscribe = "chain_unsubscribeEvents", item = BlockEvents)]
    async fn subscribe_events(&self) -> SubscriptionResult;

    /// Every workload report a contract's node submits, as the pool takes it (a block before the
    /// ledger records it): what `contract_pendingState` answers, pushed.
    #[subscription(name = "contract_subscribePendingReports" => "contract_pendingReport", unsubscribe = "contract_unsubscribePendingReports", item = PendingReport)]
    async fn subscribe_pending_reports(&self) -> SubscriptionResult;
}
