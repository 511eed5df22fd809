//! The whole ledger state: one typed table per kind of entity. Every table takes part in transaction
//! savepoints, block change sets and the state hash, so a new table is one line here.

use tfgrid_types::{AccountId, Balance, ContractId, FarmId, Hash32, NodeId, PolicyId, TwinId};

use crate::lthash::LtHash;
use crate::table::{Change, Table};
use crate::types::*;

/// The undo-log positions of every table: where a rollback returns to.
#[derive(Debug)]
pub struct Savepoint(Vec<usize>);

impl Savepoint {
    /// The start of the running transaction: a rollback to it undoes all of it.
    pub fn empty() -> Savepoint {
        Savepoint(Vec::new())
    }
}

macro_rules! state {
    ($($(#[$doc:meta])* $field:ident: $key:ty => $value:ty,)*) => {
        #[derive(Debug)]
        #[derive(Clone)]
        pub struct State {
            $($(#[$doc])* pub $field: Table<$key, $value>,)*
            hash: LtHash,
        }

        impl State {
            /// The names of all tables, as stores name them.
            pub const TABLES: &'static [&'static str] = &[$(stringify!($field)),*];

            pub fn new() -> State {
                State { $($field: Table::new(stringify!($field)),)* hash: LtHash::default() }
            }

            pub fn savepoint(&self) -> Savepoint {
                Savepoint(vec![$(self.$field.undo_len()),*])
            }

            /// Undoes every change made since `savepoint`.
            pub fn rollback_to(&mut self, savepoint: &Savepoint) {
                let mut marks = savepoint.0.iter().copied();
                $(self.$field.rollback_to(marks.next().unwrap_or(0));)*
            }

            /// Ends the running transaction: its changes can no longer be rolled back.
            pub fn commit_tx(&mut self) {
                $(self.$field.commit_tx();)*
            }

            /// Puts back the state the current block started from.
            pub fn revert_block(&mut self) {
                $(self.$field.revert_block();)*
            }

            /// Ends the block: returns what it changed and the new state root.
            pub fn finish_block(&mut self) -> (Vec<Change>, Hash32) {
                let mut changes = Vec::new();
                $(self.$field.finish_block(&mut self.hash, &mut changes);)*
                (changes, self.hash.root())
            }

            /// What the open block changed so far and the root it would end with; the block stays
            /// open (to be reverted, or finished).
            pub fn block_changes(&self) -> (Vec<Change>, Hash32) {
                let mut changes = Vec::new();
                let mut hash = self.hash.clone();
                $(self.$field.block_changes(&mut hash, &mut changes);)*
                (changes, hash.root())
            }

            /// Takes in the changes of a block another copy of this state finished (outside a block).
            pub fn apply_changes(&mut self, changes: &[Change]) -> Result<(), String> {
                for change in changes {
                    match change.table {
                        $(stringify!($field) => self.$field.apply_change(&change.key, change.value.as_deref(), &mut self.hash)?,)*
                        other => return Err(format!("unknown state table {other:?}")),
                    }
                }
                Ok(())
            }

            /// Loads one stored entry at start-up.
            pub fn load(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), String> {
                match table {
                    $(stringify!($field) => self.$field.load(key, value, &mut self.hash),)*
                    other => Err(format!("unknown state table {other:?}")),
                }
            }

            pub fn root(&self) -> Hash32 {
                self.hash.root()
            }
        }
    };
}

state! {
    accounts: AccountId => AccountInfo,
    /// All TFT in existence: genesis plus minted, less burned.
    total_issuance: () => Balance,
    params: () => ChainParams,
    counters: () => Counters,
    terms_accepted: AccountId => TermsAccepted,
    twins: TwinId => Twin,
    twin_id_by_account: AccountId => TwinId,
    farms: FarmId => Farm,
    farm_id_by_name: String => FarmId,
    farm_payout_address: FarmId => String,
    nodes: NodeId => Node,
    node_id_by_twin: TwinId => NodeId,
    node_power: NodeId => NodePower,
    node_uptime: NodeId => NodeUptime,
    /// The latest seconds each node was proven down (`smart_contract::sla`).
    node_downtime: NodeId => Vec<crate::smart_contract::sla::Downtime>,
    node_certifiers: AccountId => (),
    pricing_policies: PolicyId => PricingPolicy,
    pricing_policy_id_by_name: String => PolicyId,
    farming_policies: PolicyId => FarmingPolicy,
    grid_settings: () => GridSettings,
    council: () => Council,
    motions: Hash32 => Motion,
    kv: (AccountId, Vec<u8>) => Vec<u8>,
    contracts: ContractId => Contract,
    contract_ids_by_twin: TwinId => Vec<ContractId>,
    contract_id_by_node_hash: (NodeId, Hash32) => ContractId,
    /// Active node contracts of each node.
    node_contracts: NodeId => Vec<ContractId>,
    rent_contract_by_node: NodeId => ContractId,
    contract_id_by_name: String => ContractId,
    contract_resources: ContractId => Resources,
    contract_billing: ContractId => ContractBilling,
    /// Contracts billed at block heights `slot (mod billing period)`.
    contracts_to_bill_at: u64 => Vec<ContractId>,
    /// The latest bills of each contract (at most `CONTRACT_BILLS_KEPT`).
    contract_bills: ContractId => Vec<Bill>,
    deployment_states: ContractId => DeploymentState,
    twin_consumption: TwinId => Consumption,
    tft_price: () => TftPrice,
    validator_set: () => ValidatorSet,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    pub fn params(&self) -> &ChainParams {
        self.params
            .get(&())
            .expect("genesis sets the chain parameters")
    }

    pub fn council(&self) -> &Council {
        self.council.get(&()).expect("genesis sets the council")
    }

    pub fn validator_set(&self) -> &ValidatorSet {
        self.validator_set
            .get(&())
            .expect("genesis sets the validator set")
    }

    /// The accounts that decide block `height`, this state being the one after block `height - 1`:
    /// the scheduled set from its height on, the current one before.
    pub fn validators_at(&self, height: u64) -> Vec<AccountId> {
        crate::validators::at_height(self.validator_set(), height).to_vec()
    }

    pub fn issuance(&self) -> Balance {
        self.total_issuance.get(&()).copied().unwrap_or(0)
    }

    pub fn balance(&self, account: &AccountId) -> Balance {
        self.accounts.get(account).map_or(0, |a| a.free)
    }

    /// Hands out the next id of a counter.
    pub fn next_id<T: Copy + std::ops::Add<Output = T> + From<u8>>(
        &mut self,
        field: impl FnOnce(&mut Counters) -> &mut T,
    ) -> T {
        let mut counters = self.counters.get(&()).cloned().unwrap_or_default();
        let slot = field(&mut counters);
        *slot = *slot + T::from(1u8);
        let id = *slot;
        self.counters.insert((), counters);
        id
    }
}
