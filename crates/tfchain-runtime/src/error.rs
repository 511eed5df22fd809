//! Why a call failed. A failed call changes nothing but its fee and nonce; its message goes to the
//! user as it is, so it names the entity and the rule.

use tfgrid_types::{AccountId, Balance, FarmId, Hash32, NodeId, PolicyId, TwinId, format_tft};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DispatchError {
    // Origins.
    #[error("this call needs the council's approval (a council motion)")]
    RequiresCouncil,
    #[error("the council cannot make this call: it needs a signed account")]
    RequiresSigner,
    #[error("account {0} is not a council member")]
    NotCouncilMember(AccountId),

    // Balances.
    #[error("insufficient funds: {} TFT needed, {} TFT available", format_tft(*.needed), format_tft(*.available))]
    InsufficientFunds { needed: Balance, available: Balance },
    #[error("a new account must receive at least the existential deposit of {} TFT", format_tft(*.0))]
    ExistentialDeposit(Balance),
    #[error("an amount of zero cannot be transferred")]
    ZeroAmount,
    #[error("amount overflows")]
    Overflow,

    // Twins.
    #[error("the terms and conditions must be accepted first (user_accept_tc)")]
    TermsNotAccepted,
    #[error("invalid terms and conditions: {0}")]
    InvalidTerms(&'static str),
    #[error("account {0} already has twin {1}")]
    TwinExists(AccountId, TwinId),
    #[error("account {0} has no twin: create one first")]
    NoTwin(AccountId),
    #[error("twin {0} not found")]
    TwinNotFound(TwinId),
    #[error("invalid relay {0:?}: {1}")]
    InvalidRelay(String, &'static str),
    #[error("twin public key is {0} bytes, at most {max} allowed", max = crate::limits::TWIN_PK_LEN_MAX)]
    TwinPkTooLong(usize),

    // Farms.
    #[error("farm {0} not found")]
    FarmNotFound(FarmId),
    #[error("farm name {0:?} is taken")]
    FarmNameTaken(String),
    #[error("invalid farm name {0:?}: {1}")]
    InvalidFarmName(String, &'static str),
    #[error("twin {twin} does not own farm {farm}")]
    NotFarmOwner { twin: TwinId, farm: FarmId },
    #[error("invalid public IP {ip:?} with gateway {gateway:?}: {reason}")]
    InvalidPublicIp {
        ip: String,
        gateway: String,
        reason: &'static str,
    },
    #[error("public IP {0} is already in farm {1}")]
    PublicIpExists(String, FarmId),
    #[error("public IP {0} is not in farm {1}")]
    PublicIpNotFound(String, FarmId),
    #[error("public IP {0} is used by contract {1}")]
    PublicIpInUse(String, u64),
    #[error("farm {0} has the maximum of {max} public IPs", max = crate::limits::FARM_PUBLIC_IPS_MAX)]
    TooManyPublicIps(FarmId),
    #[error("invalid stellar address {0:?}")]
    InvalidStellarAddress(String),

    // Nodes.
    #[error("node {0} not found")]
    NodeNotFound(NodeId),
    #[error("twin {0} already registered node {1}")]
    NodeExists(TwinId, NodeId),
    #[error("twin {twin} is not the twin of node {node}")]
    NotNodeTwin { twin: TwinId, node: NodeId },
    #[error("twin {0} has no node")]
    NoNode(TwinId),
    #[error("invalid node resources: {0}")]
    InvalidResources(&'static str),
    #[error("invalid location: {0}")]
    InvalidLocation(&'static str),
    #[error("invalid interface {name:?}: {reason}")]
    InvalidInterface { name: String, reason: &'static str },
    #[error("serial number is longer than {max} bytes", max = crate::limits::SERIAL_NUMBER_LEN_MAX)]
    SerialNumberTooLong,
    #[error("invalid public config: {0}")]
    InvalidPublicConfig(&'static str),
    #[error("node {node} is not in farm {farm}")]
    NodeNotInFarm { node: NodeId, farm: FarmId },
    #[error("uptime time hint {hint} is more than {drift} s from the block time {now}")]
    TimestampHintDrift { hint: u64, now: u64, drift: u64 },
    #[error("account {0} may not certify nodes")]
    NotCertifier(AccountId),
    #[error("account {0} is already a node certifier")]
    AlreadyCertifier(AccountId),

    // Policies and settings.
    #[error("pricing policy {0} not found")]
    PricingPolicyNotFound(PolicyId),
    #[error("pricing policy name {0:?} is taken")]
    PricingPolicyNameTaken(String),
    #[error("farming policy {0} not found")]
    FarmingPolicyNotFound(PolicyId),
    #[error("farming policy {0} is immutable")]
    FarmingPolicyImmutable(PolicyId),
    #[error("no farming policy fits this node")]
    NoFarmingPolicy,
    #[error("invalid {what}: {reason}")]
    InvalidValue {
        what: &'static str,
        reason: &'static str,
    },

    // Council.
    #[error("a motion with the same call is already open: {0}")]
    DuplicateMotion(Hash32),
    #[error("motion {0} not found")]
    MotionNotFound(Hash32),
    #[error("motion {0} has ended at block {1}")]
    MotionEnded(Hash32, u64),
    #[error("motion {0} is still open until block {1}")]
    MotionOpen(Hash32, u64),
    #[error("account {0} already voted this way")]
    DuplicateVote(AccountId),
    #[error("threshold {threshold} must be between 1 and the {members} council members")]
    BadThreshold { threshold: u32, members: usize },
    #[error("a motion cannot carry another council call")]
    NestedCouncilCall,
    #[error("the motion's call does not decode: {0}")]
    BadMotionCall(String),
    #[error("too many open motions (at most {max})", max = crate::limits::MOTIONS_MAX)]
    TooManyMotions,

    // Validators.
    #[error("the validator set cannot be empty")]
    NoValidators,
    #[error("account {0} is twice in the validator set")]
    DuplicateValidator(AccountId),
    #[error("a validator set of {0} accounts, at most {max} allowed", max = crate::limits::VALIDATORS_MAX)]
    TooManyValidators(usize),

    // Contracts.
    #[error("contract {0} not found")]
    ContractNotFound(u64),
    #[error("twin {twin} does not own contract {contract}")]
    NotContractOwner { twin: TwinId, contract: u64 },
    #[error("node {0} is on standby (powered down): it takes no new deployments")]
    NodeNotAvailable(NodeId),
    #[error("node {node} is rented by twin {renter}: only the renter may deploy on it")]
    NodeRentedByOther { node: NodeId, renter: TwinId },
    #[error("node {0} is in a dedicated farm: rent the whole node first")]
    NodeDedicated(NodeId),
    #[error("node {0} already has a rent contract")]
    NodeAlreadyRented(NodeId),
    #[error("node {0} runs other twins' deployments: it can only be rented when empty")]
    NodeNotEmpty(NodeId),
    #[error("node {0} has active contracts: cancel them first")]
    NodeHasContracts(NodeId),
    #[error("node {node} already runs a deployment with hash {hash} (contract {contract})")]
    DuplicateDeployment {
        node: NodeId,
        hash: Hash32,
        contract: u64,
    },
    #[error("invalid deployment: {0}")]
    InvalidDeployment(#[from] tfgrid_types::deployment::DeploymentError),
    #[error("the deployment belongs to twin {deployment}, not to the caller's twin {caller}")]
    DeploymentNotOwned { deployment: TwinId, caller: TwinId },
    #[error("a new deployment has version 0, not {0}")]
    DeploymentVersion(u32),
    #[error("farm {farm} has {free} free public IPs, the deployment needs {needed}")]
    NotEnoughPublicIps {
        farm: FarmId,
        needed: u32,
        free: u32,
    },
    #[error("an update cannot change the number of public IPs ({old} to {new})")]
    PublicIpCountChanged { old: u32, new: u32 },
    #[error("contract {0} is in its grace period: top up the twin's balance first")]
    ContractInGracePeriod(u64),
    #[error("contract {0} is not a node contract")]
    NotNodeContract(u64),
    #[error("contract {contract} does not run on node {node}")]
    NotContractNode { contract: u64, node: NodeId },
    #[error("invalid name {0:?}: 3 to 64 lowercase letters, digits, '-' and '_'")]
    InvalidContractName(String),
    #[error("name {0:?} is taken by contract {1}")]
    NameTaken(String, u64),
    #[error("rent contract {0} cannot be canceled while node contracts run on its node")]
    RentContractInUse(u64),
    #[error("report of {0} entries, at most {max} allowed", max = crate::limits::REPORT_ENTRIES_MAX)]
    ReportTooLarge(usize),
    #[error("twin {0} holds the maximum number of contracts")]
    TooManyContracts(TwinId),
    #[error("workload {0:?} is not in the deployment")]
    UnknownWorkload(String),

    // Key-value store.
    #[error("key is {0} bytes, at most {max} allowed", max = crate::limits::KV_KEY_LEN_MAX)]
    KvKeyTooLong(usize),
    #[error("value is {0} bytes, at most {max} allowed", max = crate::limits::KV_VALUE_LEN_MAX)]
    KvValueTooLong(usize),
    #[error("key is empty")]
    KvKeyEmpty,
    #[error("no value is stored under that key")]
    KvNotFound,
}

/// Why a transaction cannot be included at all (it is dropped and pays nothing).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TxInvalid {
    #[error("bad signature: the transaction was not signed by {0} for this chain")]
    BadSignature(AccountId),
    #[error("bad nonce: the account's next nonce is {expected}, the transaction has {got}")]
    StaleNonce { expected: u64, got: u64 },
    #[error("bad nonce: {got} is too far ahead of the account's next nonce {expected}")]
    FutureNonce { expected: u64, got: u64 },
    #[error("insufficient funds to pay the fee: {} TFT needed, {} TFT available", format_tft(*.fee), format_tft(*.available))]
    CannotPayFee { fee: Balance, available: Balance },
    #[error("the transaction is {0} bytes, at most {max} allowed", max = crate::limits::TX_BYTES_MAX)]
    TooLarge(usize),
    #[error("the transaction does not decode: {0}")]
    Malformed(String),
}
