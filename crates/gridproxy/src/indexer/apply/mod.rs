//! Applying one block's events to the tables, in the caller's transaction, together with the last
//! indexed height: a block is applied whole or not at all, exactly once, and in height order.
//!
//! [`apply_block`] hands each event to the module of the entity it changes (twins, farms, nodes,
//! contracts, workloads, bills, rewards, prices) or names it as deliberately not indexed, with the
//! reason: the match names every event of the runtime, so a new one does not compile until it is
//! sorted. Capacity and public IP counts of
//! what the block touched are recomputed once, at its end.

mod bills;
mod contracts;
mod farms;
mod meta;
mod nodes;
mod prices;
mod rewards;
mod totals;
mod twins;
mod workloads;

use std::collections::BTreeSet;

use tfchain_client::BlockView;
use tfchain_runtime::Event;
use tfgrid_types::{FarmId, NodeId};

use crate::error::Error;
use crate::store::{Sql, Value, int};

pub use meta::{Indexed, bind_chain, indexed};
pub use prices::{prices, seed_tft_price};
pub use totals::{ACTIVE_CONTRACTS, ACTIVE_WORKLOADS, total};

/// Whether a block at `height` is the next after `last` (`Ok(false)`: applied already; a gap is an
/// error).
fn is_next(last: Option<u64>, height: u64) -> Result<bool, Error> {
    match last {
        Some(last) if height <= last => Ok(false),
        Some(last) if height != last + 1 => Err(Error::Gap {
            last: last as i64,
            got: height,
        }),
        None if height != 0 => Err(Error::Gap {
            last: -1,
            got: height,
        }),
        _ => Ok(true),
    }
}

/// Applies `block` if it is the next one; returns whether it did (a block already indexed is
/// skipped, a block that would leave a gap is an error).
pub fn apply_block(sql: &mut dyn Sql, block: &BlockView) -> Result<bool, Error> {
    let height = block.header.height;
    if !is_next(indexed(sql)?.map(|i| i.height), height)? {
        return Ok(false);
    }
    let mut ctx = Ctx {
        height,
        now_s: block.header.timestamp_ms / 1000,
        touched: BTreeSet::new(),
        touched_farms: BTreeSet::new(),
    };
    for (index, record) in block.events.iter().enumerate() {
        ctx.apply(sql, index as u64, &record.event)?;
    }
    for node_id in std::mem::take(&mut ctx.touched) {
        nodes::refresh_capacity(sql, node_id)?;
    }
    for farm_id in std::mem::take(&mut ctx.touched_farms) {
        farms::count_ips(sql, farm_id)?;
    }
    meta::set_indexed(
        sql,
        &Indexed {
            height,
            hash: block.hash.to_string(),
            timestamp_ms: block.header.timestamp_ms,
        },
    )?;
    Ok(true)
}

/// A value's variant name, as the tables keep enums (`CanceledByUser`, `Diy`).
fn debug_name(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    s.split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The block being applied.
struct Ctx {
    height: u64,
    now_s: u64,
    /// Nodes whose used or total resources changed in this block.
    touched: BTreeSet<NodeId>,
    /// Farms whose public IPs changed in this block.
    touched_farms: BTreeSet<FarmId>,
}

impl Ctx {
    /// The block's time, unix seconds.
    fn now(&self) -> Result<Value, Error> {
        int("block time", self.now_s)
    }

    /// Applies the `index`th event of the block.
    fn apply(&mut self, sql: &mut dyn Sql, index: u64, event: &Event) -> Result<(), Error> {
        match event {
            Event::TwinStored(t) | Event::TwinUpdated(t) => twins::stored(self, sql, t),
            Event::FarmStored(f) | Event::FarmUpdated(f) => farms::stored(self, sql, f),
            Event::FarmPayoutV2AddressRegistered { farm_id, address } => {
                farms::payout_address(sql, *farm_id, address)
            }
            Event::FarmCertificationSet {
                farm_id,
                certification,
            } => farms::certification(sql, *farm_id, certification),
            Event::FarmMarkedAsDedicated { farm_id, dedicated } => {
                farms::dedicated(sql, *farm_id, *dedicated)
            }
            Event::NodeStored(n) | Event::NodeUpdated(n) => nodes::stored(self, sql, n),
            Event::NodeDeleted { node_id } => nodes::deleted(sql, *node_id),
            Event::NodePublicConfigStored {
                node_id,
                public_config,
            } => nodes::public_config(sql, *node_id, public_config.as_ref()),
            Event::NodeUptimeReported {
                node_id,
                timestamp_s,
                uptime_s,
            } => nodes::uptime_reported(self, sql, *node_id, *timestamp_s, *uptime_s),
            Event::NodeCertificationSet {
                node_id,
                certification,
            } => nodes::certification(sql, *node_id, certification),
            Event::PowerStateChanged { node_id, state, .. } => {
                nodes::power_state(self, sql, *node_id, state)
            }
            Event::PowerTargetChanged {
                node_id, target, ..
            } => nodes::power_target(self, sql, *node_id, target),
            Event::ContractCreated(c) => contracts::stored(self, sql, c, true),
            Event::ContractUpdated(c) => contracts::stored(self, sql, c, false),
            Event::NodeContractCanceled {
                contract_id,
                node_id,
                cause,
                ..
            } => contracts::node_canceled(self, sql, *contract_id, *node_id, cause),
            Event::NameContractCanceled { contract_id, cause } => {
                contracts::ended(self, sql, *contract_id, cause)
            }
            Event::RentContractCanceled {
                contract_id,
                node_id,
                cause,
            } => contracts::rent_canceled(self, sql, *contract_id, *node_id, cause),
            Event::IPsFreed { contract_id, .. } => contracts::ips_freed(self, sql, *contract_id),
            Event::ContractGracePeriodStarted {
                contract_id, block, ..
            } => contracts::grace_started(self, sql, *contract_id, *block),
            Event::ContractGracePeriodEnded { contract_id, .. } => {
                contracts::grace_ended(self, sql, *contract_id)
            }
            Event::UpdatedUsedResources { contract_id, used } => {
                contracts::used_resources(self, sql, *contract_id, used)
            }
            Event::DeploymentStateReported {
                contract_id,
                version,
                workloads,
                ..
            } => workloads::reported(self, sql, *contract_id, *version, workloads),
            Event::ContractBilled {
                contract_id,
                timestamp_s,
                discount_level,
                amount_billed,
                credited_s,
            } => bills::billed(
                self,
                sql,
                index,
                bills::Billed {
                    contract_id: *contract_id,
                    timestamp_s: *timestamp_s,
                    discount_level,
                    amount_billed: *amount_billed,
                    credited_s: *credited_s,
                },
            ),
            Event::FarmingRewardMinted {
                node_id,
                farm_id,
                amount,
                uptime_percent,
            } => rewards::minted(
                self,
                sql,
                index,
                *node_id,
                *farm_id,
                *amount,
                *uptime_percent,
            ),
            Event::PricingPolicyStored(p) => prices::policy_stored(sql, p),
            Event::TftPriceSet { price_musd } => prices::price_set(sql, *price_musd),
            Event::TftPriceBoundsSet { min_musd, max_musd } => {
                prices::bounds_set(sql, *min_musd, *max_musd)
            }
            // Not indexed, on purpose.
            // Transaction outcomes: the tables hold what calls changed, not the calls.
            Event::ExtrinsicSuccess { .. } | Event::ExtrinsicFailed { .. } => Ok(()),
            // Balances and fees: accounts are served by the chain's RPC, not the explorer.
            Event::TransactionFeePaid { .. } | Event::Transfer { .. } | Event::Endowed { .. } => {
                Ok(())
            }
            // The burned share of a bill: the bill itself comes with `ContractBilled`.
            Event::TokensBurned { .. } => Ok(()),
            // The API keeps no record of who accepted the terms and conditions.
            Event::TermsAndConditionsAccepted { .. } => Ok(()),
            // Who may certify nodes is governance; the certifications themselves are indexed.
            Event::NodeCertifierAdded { .. } | Event::NodeCertifierRemoved { .. } => Ok(()),
            // The API serves no farming policies.
            Event::FarmingPolicyStored(_) | Event::FarmingPolicyUpdated(_) => Ok(()),
            // The API serves no Zero-OS version.
            Event::ZosVersionUpdated { .. } => Ok(()),
            // The price for nodes yet to register: each node's own comes with `NodeStored`.
            Event::ConnectionPriceSet { .. } => Ok(()),
            // Network use is priced into the contract's next bill, which is indexed.
            Event::NruConsumptionReportReceived(_) => Ok(()),
            // The contract's cancel event, in the same block, ends it.
            Event::ContractGracePeriodElapsed { .. } => Ok(()),
            // Only rewards paid are kept.
            Event::FarmingRewardWithheld { .. } => Ok(()),
            // Council motions: what an executed one changed comes as its own event.
            Event::Proposed { .. }
            | Event::Voted { .. }
            | Event::Approved { .. }
            | Event::Disapproved { .. }
            | Event::Executed { .. }
            | Event::Closed { .. } => Ok(()),
            // Who decides blocks is the chain's business; the node serves it (`validators_info`).
            Event::ValidatorSetScheduled { .. } | Event::ValidatorSetChanged { .. } => Ok(()),
            // An account's own key-value entries are not the grid's.
            Event::EntrySet { .. } | Event::EntryTaken { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tfchain_runtime::types::*;
    use tfchain_runtime::{EventRecord, Header};
    use tfgrid_types::capacity::GIB;
    use tfgrid_types::{Hash32, Keypair};

    use super::*;
    use crate::store::{self, Sqlite};

    fn block(height: u64, events: Vec<Event>) -> BlockView {
        let header = Header {
            parent_hash: Hash32([0; 32]),
            height,
            timestamp_ms: 1_700_000_000_000 + height * 1000,
            tx_root: Hash32([0; 32]),
            state_root: Hash32([0; 32]),
            events_root: Hash32([0; 32]),
            author: Keypair::from_uri("//Alice").unwrap().account(),
        };
        BlockView {
            hash: header.hash(),
            header,
            txs: vec![],
            events: events
                .into_iter()
                .map(|event| EventRecord {
                    tx_index: None,
                    event,
                })
                .collect(),
        }
    }

    fn node() -> Node {
        Node {
            version: NODE_VERSION,
            id: 1,
            farm_id: 1,
            twin_id: 2,
            resources: Resources {
                hru: 100 * GIB,
                sru: 100 * GIB,
                cru: 4,
                mru: 8 * GIB,
            },
            location: Location {
                city: "Ghent".into(),
                country: "Belgium".into(),
                latitude: "0".into(),
                longitude: "0".into(),
            },
            public_config: None,
            created: 1,
            farming_policy_id: 1,
            interfaces: vec![],
            certification: NodeCertification::Diy,
            secure_boot: false,
            virtualized: false,
            serial_number: None,
            connection_price: 80,
        }
    }

    fn node_contract(id: u64, size_gib: u64) -> Contract {
        let deployment = serde_json::from_value(json!({
            "version": 0, "twin_id": 3,
            "signature_requirement": { "requests": [], "weight_required": 0 },
            "workloads": [{ "version": 0, "name": "db", "type": "zdb",
                "data": { "size": size_gib * GIB, "mode": "user", "password": { "plain": "x" } } }],
        }))
        .unwrap();
        Contract {
            version: 1,
            contract_id: id,
            twin_id: 3,
            state: ContractState::Created,
            contract_type: ContractData::NodeContract(NodeContract {
                node_id: 1,
                deployment_hash: Hash32([id as u8; 32]),
                deployment,
                public_ips: 0,
                public_ips_list: vec![],
            }),
        }
    }

    #[test]
    fn a_block_is_next_only_right_after_the_last() {
        let check = |last: Option<u64>, height: u64, expect: Result<bool, (i64, u64)>| {
            let got = is_next(last, height).map_err(|e| match e {
                Error::Gap { last, got } => (last, got),
                other => panic!("{other}"),
            });
            assert_eq!(got, expect, "last {last:?}, height {height}");
        };
        check(None, 0, Ok(true));
        check(None, 1, Err((-1, 1)));
        check(Some(4), 5, Ok(true));
        check(Some(4), 4, Ok(false));
        check(Some(4), 0, Ok(false));
        check(Some(4), 6, Err((4, 6)));
    }

    fn used_and_free_hru(store: &Sqlite) -> (i64, i64) {
        let row = store::read(store, |sql| {
            sql.query_opt(
                "SELECT used_hru, free_hru FROM nodes WHERE node_id = 1",
                &[],
            )
        })
        .unwrap()
        .unwrap();
        (row.i64(0).unwrap(), row.i64(1).unwrap())
    }

    fn apply(store: &Sqlite, b: &BlockView) -> Result<bool, Error> {
        store::write(store, |sql| apply_block(sql, b))
    }

    #[test]
    fn blocks_apply_once_in_order_and_keep_used_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db")).unwrap();
        let farm = Farm {
            version: FARM_VERSION,
            id: 1,
            name: "f".into(),
            twin_id: 1,
            pricing_policy_id: 1,
            certification: FarmCertification::NotCertified,
            public_ips: vec![PublicIp {
                ip: "185.206.122.33/24".into(),
                gateway: "185.206.122.1".into(),
                contract_id: 0,
            }],
            dedicated_farm: false,
        };
        let b0 = block(0, vec![Event::FarmStored(farm), Event::NodeStored(node())]);
        // Not the first block: a gap.
        assert!(matches!(
            apply(&store, &block(1, vec![])),
            Err(Error::Gap { .. })
        ));
        assert!(apply(&store, &b0).unwrap());
        assert_eq!(used_and_free_hru(&store), (0, 100 * GIB as i64));
        let ips = store::read(&store, |sql| {
            sql.query_opt(
                "SELECT free_ips, total_ips FROM farms WHERE farm_id = 1",
                &[],
            )
        })
        .unwrap()
        .unwrap();
        assert_eq!((ips.i64(0).unwrap(), ips.i64(1).unwrap()), (1, 1));
        let b1 = block(
            1,
            vec![
                Event::ContractCreated(node_contract(1, 10)),
                Event::ContractCreated(node_contract(2, 5)),
            ],
        );
        assert!(apply(&store, &b1).unwrap());
        // Applying it again changes nothing.
        assert!(!apply(&store, &b1).unwrap());
        assert_eq!(
            used_and_free_hru(&store),
            (15 * GIB as i64, 85 * GIB as i64)
        );
        assert!(matches!(
            apply(&store, &block(3, vec![])),
            Err(Error::Gap { last: 1, got: 3 })
        ));
        let b2 = block(
            2,
            vec![Event::NodeContractCanceled {
                contract_id: 1,
                node_id: 1,
                twin_id: 3,
                cause: Cause::CanceledByUser,
            }],
        );
        assert!(apply(&store, &b2).unwrap());
        assert_eq!(used_and_free_hru(&store), (5 * GIB as i64, 95 * GIB as i64));
        let last = store::read(&store, indexed).unwrap().unwrap();
        assert_eq!(last.height, 2);
        assert_eq!(last.hash, b2.hash.to_string());
        // A failing block leaves nothing behind: a bill of an unknown contract aborts it whole.
        let bad = block(
            3,
            vec![
                Event::ContractCreated(node_contract(3, 50)),
                Event::ContractBilled {
                    contract_id: 99,
                    timestamp_s: 1,
                    discount_level: DiscountLevel::None,
                    amount_billed: 1,
                    credited_s: 0,
                },
            ],
        );
        assert!(apply(&store, &bad).is_err());
        assert_eq!(used_and_free_hru(&store), (5 * GIB as i64, 95 * GIB as i64));
        assert_eq!(store::read(&store, indexed).unwrap().unwrap().height, 2);
    }
}
