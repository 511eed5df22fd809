//! The genesis state of a chain: parameters, endowed accounts, the council, the validators, policies
//! and settings. The dev genesis mirrors Substrate's dev chain: `//Alice` to `//Ferdie` funded, Alice
//! the council and the one validator.

use serde::{Deserialize, Serialize};
use tfgrid_types::{AccountId, Balance, Hash32, Keypair, UNITS_PER_TFT};

use crate::balances;
use crate::block::EventRecord;
use crate::error::DispatchError;
use crate::event::Event;
use crate::runtime::{Ctx, Origin, dispatch};
use crate::state::State;
use crate::table::Change;
use crate::tx::Call;
use crate::types::*;
use crate::{tfgrid, validators};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Timestamp of the genesis block, unix milliseconds.
    pub timestamp_ms: u64,
    pub params: ChainParams,
    pub balances: Vec<Endowment>,
    pub council: Council,
    /// The accounts that decide blocks from block 1 on (the council changes them).
    pub validators: Vec<AccountId>,
    pub pricing_policies: Vec<PricingTerms>,
    pub farming_policies: Vec<FarmingTerms>,
    pub grid_settings: GridSettings,
    pub node_certifiers: Vec<AccountId>,
    pub tft_price: TftPrice,
}

/// An account funded at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endowment {
    pub account: AccountId,
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub amount: Balance,
}

/// The genesis state with what it changed and emitted.
#[derive(Debug)]
pub struct GenesisState {
    pub state: State,
    pub changes: Vec<Change>,
    pub state_root: Hash32,
    pub events: Vec<EventRecord>,
}

/// The names of the funded development accounts (`//Alice`, ...).
pub const DEV_ACCOUNTS: [&str; 6] = ["Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"];

fn dev_account(name: &str) -> AccountId {
    Keypair::from_uri(&format!("//{name}"))
        .expect("dev URIs are valid")
        .account()
}

impl Genesis {
    pub fn dev() -> Genesis {
        let gb = |value| Policy {
            value,
            unit: Unit::Gigabytes,
        };
        let farming = |name: &str, cu, su, nu, ipv4, node_certification| FarmingTerms {
            name: name.into(),
            cu,
            su,
            nu,
            ipv4,
            minimal_uptime: 95,
            policy_end: 0,
            immutable: false,
            default: true,
            node_certification,
            farm_certification: FarmCertification::NotCertified,
        };
        Genesis {
            timestamp_ms: 0,
            params: ChainParams {
                existential_deposit: 500,
                tx_base_fee: UNITS_PER_TFT / 1000,
                tx_byte_fee: 1,
                timestamp_hint_drift_s: 60,
                motion_duration_blocks: 600,
                billing_period_blocks: 60,
                grace_period_blocks: 600,
                uptime_report_interval_s: 60,
                staking_pool_account: dev_account("StakingPool"),
            },
            tft_price: TftPrice {
                price_musd: 80,
                min_musd: 10,
                max_musd: 1000,
            },
            balances: DEV_ACCOUNTS
                .iter()
                .map(|n| Endowment {
                    account: dev_account(n),
                    amount: 1_000_000_000 * UNITS_PER_TFT,
                })
                .collect(),
            council: Council {
                members: vec![dev_account("Alice")],
                threshold: 1,
            },
            validators: vec![dev_account("Alice")],
            pricing_policies: vec![PricingTerms {
                name: "threefold_default_pricing_policy".into(),
                su: gb(50_000),
                cu: gb(100_000),
                nu: gb(15_000),
                ipu: gb(40_000),
                unique_name: gb(2_500),
                domain_name: gb(5_000),
                foundation_account: dev_account("Foundation"),
                certified_sales_account: dev_account("Sales"),
                discount_for_dedication_nodes: 50,
            }],
            farming_policies: vec![
                farming(
                    "threefold_default_diy_farming_policy",
                    160,
                    100,
                    2,
                    5,
                    NodeCertification::Diy,
                ),
                farming(
                    "threefold_default_certified_farming_policy",
                    200,
                    120,
                    3,
                    6,
                    NodeCertification::Certified,
                ),
            ],
            grid_settings: GridSettings {
                zos_version: "v3.0.0".into(),
                connection_price: 80,
            },
            node_certifiers: vec![],
        }
    }

    /// Builds the genesis state. Fails when the genesis config breaks a rule (a bad policy, say).
    pub fn build(&self) -> Result<GenesisState, DispatchError> {
        if self.params.billing_period_blocks == 0 || self.params.grace_period_blocks == 0 {
            return Err(DispatchError::InvalidValue {
                what: "billing and grace periods",
                reason: "must be at least one block",
            });
        }
        validators::check(&self.validators)?;
        let mut state = State::new();
        state.params.insert((), self.params.clone());
        state.council.insert((), self.council.clone());
        state.validator_set.insert(
            (),
            ValidatorSet {
                current: self.validators.clone(),
                scheduled: None,
            },
        );
        state.grid_settings.insert((), self.grid_settings.clone());
        state.total_issuance.insert((), 0);
        state.tft_price.insert((), self.tft_price.clone());
        let mut ctx = Ctx {
            state: &mut state,
            height: 0,
            now_s: self.timestamp_ms / 1000,
            events: Vec::new(),
        };
        for Endowment { account, amount } in &self.balances {
            balances::mint(ctx.state, account, *amount)?;
            ctx.emit(Event::Endowed {
                account: *account,
                amount: *amount,
            });
        }
        let mut calls: Vec<tfgrid::Call> = Vec::new();
        calls.extend(
            self.pricing_policies
                .iter()
                .map(|terms| tfgrid::Call::CreatePricingPolicy {
                    terms: terms.clone(),
                }),
        );
        calls.extend(
            self.farming_policies
                .iter()
                .map(|terms| tfgrid::Call::CreateFarmingPolicy {
                    terms: terms.clone(),
                }),
        );
        calls.extend(
            self.node_certifiers
                .iter()
                .map(|account| tfgrid::Call::AddNodeCertifier { account: *account }),
        );
        for call in calls {
            dispatch(&mut ctx, Origin::Council, &Call::Tfgrid(call))?;
        }
        let events = ctx
            .events
            .into_iter()
            .map(|event| EventRecord {
                tx_index: None,
                event,
            })
            .collect();
        state.commit_tx();
        let (changes, state_root) = state.finish_block();
        Ok(GenesisState {
            state,
            changes,
            state_root,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_genesis_is_deterministic_and_funded() {
        let a = Genesis::dev().build().unwrap();
        let b = Genesis::dev().build().unwrap();
        assert_eq!(a.state_root, b.state_root);
        assert_eq!(a.state.issuance(), 6 * 1_000_000_000 * UNITS_PER_TFT);
        assert_eq!(a.state.pricing_policies.len(), 1);
        assert_eq!(a.state.farming_policies.len(), 2);
        assert_eq!(a.state.validators_at(1), vec![dev_account("Alice")]);
        // The change set rebuilds the same state.
        let mut reloaded = State::new();
        for change in &a.changes {
            reloaded
                .load(change.table, &change.key, change.value.as_ref().unwrap())
                .unwrap();
        }
        assert_eq!(reloaded.root(), a.state_root);
    }

    #[test]
    fn a_genesis_without_validators_is_refused() {
        let mut genesis = Genesis::dev();
        genesis.validators.clear();
        assert_eq!(genesis.build().err(), Some(DispatchError::NoValidators));
    }
}
