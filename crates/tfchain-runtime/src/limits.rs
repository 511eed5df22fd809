//! Named maxima of the ledger: sizes of strings, lists and encodings. Decoders and validators refuse
//! anything larger before they allocate or store it.

/// A transaction's encoding (room for a 64 KiB deployment and its signatures).
pub const TX_BYTES_MAX: usize = 128 * 1024;
/// Transactions in one block.
pub const BLOCK_TXS_MAX: usize = 50_000;
/// A block's encoding.
pub const BLOCK_BYTES_MAX: usize = 16 * 1024 * 1024;

pub const TC_LINK_LEN_MAX: usize = 2048;
pub const TC_HASH_LEN_MAX: usize = 50;
pub const RELAY_LEN_MAX: usize = 1024;
pub const TWIN_PK_LEN_MAX: usize = 128;
pub const FARM_NAME_LEN_MIN: usize = 3;
pub const FARM_NAME_LEN_MAX: usize = 40;
/// Public IPs a farm holds.
pub const FARM_PUBLIC_IPS_MAX: usize = 256;
pub const PUBLIC_IP_LEN_MAX: usize = 18;
pub const GATEWAY_LEN_MAX: usize = 15;
pub const STELLAR_ADDRESS_LEN_MAX: usize = 56;
pub const CITY_LEN_MAX: usize = 58;
pub const COUNTRY_LEN_MIN: usize = 2;
pub const COUNTRY_LEN_MAX: usize = 56;
pub const COORDINATE_LEN_MAX: usize = 50;
pub const INTERFACES_MAX: usize = 10;
pub const INTERFACE_NAME_LEN_MIN: usize = 3;
pub const INTERFACE_NAME_LEN_MAX: usize = 20;
pub const INTERFACE_IPS_MAX: usize = 10;
pub const INTERFACE_IP_LEN_MIN: usize = 7;
pub const INTERFACE_IP_LEN_MAX: usize = 42;
pub const SERIAL_NUMBER_LEN_MAX: usize = 128;
pub const IP6_LEN_MAX: usize = 43;
pub const GATEWAY6_LEN_MAX: usize = 39;
pub const DOMAIN_LEN_MAX: usize = 128;
pub const POLICY_NAME_LEN_MAX: usize = 64;
pub const ZOS_VERSION_LEN_MAX: usize = 64;
pub const COUNCIL_MEMBERS_MAX: usize = 100;
pub const MOTIONS_MAX: usize = 100;
pub const MOTION_DESCRIPTION_LEN_MAX: usize = 1024;
/// Accounts in the validator set (as TFChain's validator set pallet).
pub const VALIDATORS_MAX: usize = 100;
/// Blocks between the block that changes the validator set and the first block the new set
/// decides. A node learns the set for height h+1 when it commits block h; with a delay of one, the
/// set chosen in block h would bind at h+1 before every validator had committed h. Two leaves a
/// whole block for each validator to see the change before it binds.
pub const VALIDATOR_SET_DELAY: u64 = 2;
pub const KV_KEY_LEN_MAX: usize = 512;
pub const KV_VALUE_LEN_MAX: usize = 2048;

/// Minimum capacity a node registers with (ADR-0022: SSD or HDD, at least one).
pub const NODE_CRU_MIN: u64 = 1;
pub const NODE_MRU_MIN: u64 = 2 * 1024 * 1024 * 1024;
pub const NODE_SRU_MIN: u64 = 100 * 1024 * 1024 * 1024;
pub const NODE_HRU_MIN: u64 = 100 * 1000 * 1000 * 1000;

/// Proven downtimes kept per node for billing: a node down more often than this between two bills
/// of a contract on it has its oldest downtime billed.
pub const NODE_DOWNTIMES_KEPT: usize = 32;
/// Bills kept per contract in the ledger state (the explorer keeps them all).
pub const CONTRACT_BILLS_KEPT: usize = 64;
/// Entries in one node report.
pub const REPORT_ENTRIES_MAX: usize = 1_024;
/// Contracts one twin may hold.
pub const CONTRACTS_PER_TWIN_MAX: usize = 10_000;
pub const NAME_CONTRACT_LEN_MIN: usize = 3;
pub const NAME_CONTRACT_LEN_MAX: usize = 64;
