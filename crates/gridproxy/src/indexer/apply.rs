//! Applying one block's events to the tables, in the caller's transaction, together with the last
//! indexed height: a block is applied whole or not at all, exactly once, and in height order.

use std::collections::BTreeSet;

use tfchain_client::BlockView;
use tfchain_runtime::Event;
use tfchain_runtime::types::{
    Contract, ContractData, ContractState, Farm, Node, Power, PowerState, PricingPolicy,
    PublicConfig, TftPrice,
};
use tfgrid_types::capacity;
use tfgrid_types::{FarmId, Hash32, NodeId};

use crate::cost::Prices;
use crate::error::Error;
use crate::schema::SCHEMA_VERSION;
use crate::store::{Sql, Value, int};

/// Where the index stands: the last block applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    pub height: u64,
    pub hash: String,
    pub timestamp_ms: u64,
}

fn meta(sql: &mut dyn Sql, key: &str) -> Result<Option<String>, Error> {
    match sql.query_opt("SELECT value FROM meta WHERE key = $1", &[key.into()])? {
        Some(row) => row.opt_str(0),
        None => Ok(None),
    }
}

fn set_meta(sql: &mut dyn Sql, key: &str, value: String) -> Result<(), Error> {
    sql.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[key.into(), value.into()],
    )?;
    Ok(())
}

fn parse_meta<T: std::str::FromStr>(key: &str, v: Option<String>) -> Result<Option<T>, Error> {
    v.map(|s| {
        s.parse()
            .map_err(|_| Error::Store(format!("meta {key} is not a number: {s:?}")))
    })
    .transpose()
}

/// The last block applied, if any.
pub fn indexed(sql: &mut dyn Sql) -> Result<Option<Indexed>, Error> {
    let Some(height) = parse_meta("last_height", meta(sql, "last_height")?)? else {
        return Ok(None);
    };
    Ok(Some(Indexed {
        height,
        hash: meta(sql, "last_hash")?.unwrap_or_default(),
        timestamp_ms: parse_meta("last_timestamp_ms", meta(sql, "last_timestamp_ms")?)?
            .unwrap_or(0),
    }))
}

/// Binds the store to one chain (by genesis hash) and one schema version; refuses any other.
pub fn bind_chain(sql: &mut dyn Sql, genesis: &Hash32) -> Result<(), Error> {
    match meta(sql, "schema_version")? {
        None => set_meta(sql, "schema_version", SCHEMA_VERSION.into())?,
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) => {
            return Err(Error::Store(format!(
                "the store has schema version {v}, this program writes {SCHEMA_VERSION}"
            )));
        }
    }
    let genesis = genesis.to_string();
    match meta(sql, "genesis_hash")? {
        None => set_meta(sql, "genesis_hash", genesis),
        Some(stored) if stored == genesis => Ok(()),
        Some(stored) => Err(Error::OtherChain {
            stored,
            chain: genesis,
        }),
    }
}

/// The pricing policy billing uses (the chain's `pricing(state)`).
const BILLING_POLICY_ID: u32 = 1;
const META_PRICING_POLICY: &str = "pricing_policy";
const META_TFT_PRICE: &str = "tft_price";

fn meta_json<T: serde::de::DeserializeOwned>(
    sql: &mut dyn Sql,
    key: &str,
) -> Result<Option<T>, Error> {
    meta(sql, key)?
        .map(|v| serde_json::from_str(&v).map_err(|e| Error::Store(format!("meta {key}: {e}"))))
        .transpose()
}

fn set_meta_json(sql: &mut dyn Sql, key: &str, value: &impl serde::Serialize) -> Result<(), Error> {
    let text =
        serde_json::to_string(value).map_err(|e| Error::Store(format!("meta {key}: {e}")))?;
    set_meta(sql, key, text)
}

/// Keeps the chain's TFT price unless one is known: genesis sets it without an event, so a new
/// store starts from the price the chain reports, and the price events replayed from there bring
/// it to the chain's once the index has caught up.
pub fn seed_tft_price(sql: &mut dyn Sql, price: &TftPrice) -> Result<(), Error> {
    if meta(sql, META_TFT_PRICE)?.is_none() {
        set_meta_json(sql, META_TFT_PRICE, price)?;
    }
    Ok(())
}

/// What billing prices with, once the indexer knows both the policy and the TFT price.
pub fn prices(sql: &mut dyn Sql) -> Result<Option<Prices>, Error> {
    let policy: Option<PricingPolicy> = meta_json(sql, META_PRICING_POLICY)?;
    let tft: Option<TftPrice> = meta_json(sql, META_TFT_PRICE)?;
    Ok(policy.zip(tft).map(|(policy, tft)| Prices { policy, tft }))
}

/// Changes the kept TFT price; the chain emits these only after genesis, so one is kept already.
fn update_tft_price(sql: &mut dyn Sql, change: impl FnOnce(&mut TftPrice)) -> Result<(), Error> {
    let mut price: TftPrice = meta_json(sql, META_TFT_PRICE)?
        .ok_or_else(|| Error::Store("a TFT price change before any TFT price".into()))?;
    change(&mut price);
    set_meta_json(sql, META_TFT_PRICE, &price)
}

/// Applies `block` if it is the next one; returns whether it did (a block already indexed is
/// skipped, a block that would leave a gap is an error).
pub fn apply_block(sql: &mut dyn Sql, block: &BlockView) -> Result<bool, Error> {
    let height = block.header.height;
    let last = indexed(sql)?.map(|i| i.height);
    match last {
        Some(last) if height <= last => return Ok(false),
        Some(last) if height != last + 1 => {
            return Err(Error::Gap {
                last: last as i64,
                got: height,
            });
        }
        None if height != 0 => {
            return Err(Error::Gap {
                last: -1,
                got: height,
            });
        }
        _ => {}
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
        refresh_capacity(sql, node_id)?;
    }
    for farm_id in std::mem::take(&mut ctx.touched_farms) {
        sql.execute(
            "UPDATE farms SET \
             free_ips = (SELECT COUNT(*) FROM public_ips p WHERE p.farm_id = $1 AND p.contract_id = 0), \
             total_ips = (SELECT COUNT(*) FROM public_ips p WHERE p.farm_id = $1) \
             WHERE farm_id = $1",
            &[farm_id.into()],
        )?;
    }
    set_meta(sql, "last_height", height.to_string())?;
    set_meta(sql, "last_hash", block.hash.to_string())?;
    set_meta(
        sql,
        "last_timestamp_ms",
        block.header.timestamp_ms.to_string(),
    )?;
    Ok(true)
}

/// Adds `delta` to a grid-wide counter.
fn add_total(sql: &mut dyn Sql, name: &str, delta: i64) -> Result<(), Error> {
    if delta != 0 {
        sql.execute(
            "INSERT INTO totals (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = totals.value + excluded.value",
            &[name.into(), delta.into()],
        )?;
    }
    Ok(())
}

/// A grid-wide counter.
pub fn total(sql: &mut dyn Sql, name: &str) -> Result<i64, Error> {
    match sql.query_opt("SELECT value FROM totals WHERE name = $1", &[name.into()])? {
        Some(row) => row.i64(0),
        None => Ok(0),
    }
}

/// Counter of contracts not deleted.
pub const ACTIVE_CONTRACTS: &str = "active_contracts";
/// Counter of reported workloads, not deleted, of contracts not deleted.
pub const ACTIVE_WORKLOADS: &str = "active_workloads";

/// Recomputes a node's used resources (the deployments of its active node contracts) and its free
/// capacity as the node agent computes it.
fn refresh_capacity(sql: &mut dyn Sql, node_id: NodeId) -> Result<(), Error> {
    let id = Value::Int(node_id.into());
    let Some(total) = sql.query_opt(
        "SELECT total_mru, total_sru, total_hru FROM nodes WHERE node_id = $1",
        std::slice::from_ref(&id),
    )?
    else {
        return Ok(());
    };
    let used = sql
        .query_opt(
            "SELECT CAST(COALESCE(SUM(cru), 0) AS BIGINT), CAST(COALESCE(SUM(mru), 0) AS BIGINT), \
             CAST(COALESCE(SUM(sru), 0) AS BIGINT), CAST(COALESCE(SUM(hru), 0) AS BIGINT) \
             FROM contracts WHERE node_id = $1 AND contract_type = 'node' AND state <> 'Deleted'",
            std::slice::from_ref(&id),
        )?
        .ok_or_else(|| Error::Store("no sum row".into()))?;
    let free = capacity::free(
        total.u64(0)?,
        total.u64(1)?,
        total.u64(2)?,
        used.u64(1)?,
        used.u64(2)?,
        used.u64(3)?,
    );
    sql.execute(
        "UPDATE nodes SET used_cru = $2, used_mru = $3, used_sru = $4, used_hru = $5, \
         free_mru = $6, free_sru = $7, free_hru = $8 WHERE node_id = $1",
        &[
            id,
            Value::Int(used.i64(0)?),
            Value::Int(used.i64(1)?),
            Value::Int(used.i64(2)?),
            Value::Int(used.i64(3)?),
            int("free mru", free.mru)?,
            int("free sru", free.sru)?,
            int("free hru", free.hru)?,
        ],
    )?;
    Ok(())
}

fn debug_name(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    s.split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub fn power_state_name(state: &PowerState) -> &'static str {
    match state {
        PowerState::Up => "Up",
        PowerState::Down { .. } => "Down",
    }
}

pub fn power_name(power: &Power) -> &'static str {
    match power {
        Power::Up => "Up",
        Power::Down => "Down",
    }
}

fn state_name(state: &ContractState) -> &'static str {
    match state {
        ContractState::Created => "Created",
        ContractState::GracePeriod { .. } => "GracePeriod",
        ContractState::Deleted(_) => "Deleted",
    }
}

struct Ctx {
    height: u64,
    now_s: u64,
    /// Nodes whose used or total resources changed in this block.
    touched: BTreeSet<NodeId>,
    /// Farms whose public IPs changed in this block.
    touched_farms: BTreeSet<FarmId>,
}

impl Ctx {
    fn now(&self) -> Result<Value, Error> {
        int("block time", self.now_s)
    }

    fn apply(&mut self, sql: &mut dyn Sql, index: u64, event: &Event) -> Result<(), Error> {
        match event {
            Event::TwinStored(t) | Event::TwinUpdated(t) => {
                sql.execute(
                    "INSERT INTO twins (twin_id, account_id, relay, public_key, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (twin_id) DO UPDATE SET \
                     account_id = excluded.account_id, relay = excluded.relay, \
                     public_key = excluded.public_key",
                    &[
                        t.id.into(),
                        t.account_id.to_string().into(),
                        t.relay.clone().into(),
                        t.pk.as_ref().map(hex::encode).into(),
                        self.now()?,
                    ],
                )?;
            }
            Event::FarmStored(f) | Event::FarmUpdated(f) => self.farm(sql, f)?,
            Event::FarmPayoutV2AddressRegistered { farm_id, address } => {
                sql.execute(
                    "UPDATE farms SET stellar_address = $2 WHERE farm_id = $1",
                    &[(*farm_id).into(), address.as_str().into()],
                )?;
            }
            Event::FarmCertificationSet {
                farm_id,
                certification,
            } => {
                sql.execute(
                    "UPDATE farms SET certification = $2 WHERE farm_id = $1",
                    &[(*farm_id).into(), debug_name(certification).into()],
                )?;
            }
            Event::FarmMarkedAsDedicated { farm_id, dedicated } => {
                sql.execute(
                    "UPDATE farms SET dedicated = $2 WHERE farm_id = $1",
                    &[(*farm_id).into(), (*dedicated).into()],
                )?;
            }
            Event::NodeStored(n) | Event::NodeUpdated(n) => self.node(sql, n)?,
            Event::NodeDeleted { node_id } => {
                sql.execute("DELETE FROM nodes WHERE node_id = $1", &[(*node_id).into()])?;
            }
            Event::NodePublicConfigStored {
                node_id,
                public_config,
            } => self.public_config(sql, *node_id, public_config.as_ref())?,
            Event::NodeUptimeReported {
                node_id,
                timestamp_s,
                uptime_s,
            } => {
                sql.execute(
                    "UPDATE nodes SET uptime_s = $2, last_report_s = $3, updated_at = $4 \
                     WHERE node_id = $1",
                    &[
                        (*node_id).into(),
                        int("uptime", *uptime_s)?,
                        int("report time", *timestamp_s)?,
                        self.now()?,
                    ],
                )?;
            }
            Event::NodeCertificationSet {
                node_id,
                certification,
            } => {
                sql.execute(
                    "UPDATE nodes SET certification = $2 WHERE node_id = $1",
                    &[(*node_id).into(), debug_name(certification).into()],
                )?;
            }
            Event::PowerStateChanged { node_id, state, .. } => {
                sql.execute(
                    "UPDATE nodes SET power_state = $2, updated_at = $3 WHERE node_id = $1",
                    &[
                        (*node_id).into(),
                        power_state_name(state).into(),
                        self.now()?,
                    ],
                )?;
            }
            Event::PowerTargetChanged {
                node_id, target, ..
            } => {
                sql.execute(
                    "UPDATE nodes SET power_target = $2, updated_at = $3 WHERE node_id = $1",
                    &[(*node_id).into(), power_name(target).into(), self.now()?],
                )?;
            }
            Event::ContractCreated(c) => self.contract(sql, c, true)?,
            Event::ContractUpdated(c) => self.contract(sql, c, false)?,
            Event::NodeContractCanceled {
                contract_id,
                node_id,
                cause,
                ..
            } => {
                self.end_contract(sql, *contract_id, &debug_name(cause))?;
                self.touched.insert(*node_id);
            }
            Event::NameContractCanceled { contract_id, cause } => {
                self.end_contract(sql, *contract_id, &debug_name(cause))?;
            }
            Event::RentContractCanceled {
                contract_id,
                node_id,
                cause,
            } => {
                self.end_contract(sql, *contract_id, &debug_name(cause))?;
                sql.execute(
                    "UPDATE nodes SET rent_contract_id = 0, renter_twin_id = 0 \
                     WHERE node_id = $1 AND rent_contract_id = $2",
                    &[(*node_id).into(), int("contract id", *contract_id)?],
                )?;
            }
            Event::IPsFreed { contract_id, .. } => {
                for row in sql.query(
                    "SELECT DISTINCT farm_id FROM public_ips WHERE contract_id = $1",
                    &[int("contract id", *contract_id)?],
                )? {
                    self.touched_farms.insert(row.u64(0)? as FarmId);
                }
                sql.execute(
                    "UPDATE public_ips SET contract_id = 0 WHERE contract_id = $1",
                    &[int("contract id", *contract_id)?],
                )?;
            }
            Event::ContractBilled {
                contract_id,
                timestamp_s,
                discount_level,
                amount_billed,
            } => {
                let amount = int("amount billed", *amount_billed)?;
                let twin = sql
                    .query_opt(
                        "SELECT twin_id FROM contracts WHERE contract_id = $1",
                        &[int("contract id", *contract_id)?],
                    )?
                    .ok_or_else(|| {
                        Error::Store(format!("a bill of unknown contract {contract_id}"))
                    })?
                    .i64(0)?;
                sql.execute(
                    "INSERT INTO bills (block_height, event_index, contract_id, twin_id, \
                     timestamp_s, amount_billed, discount_level) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        int("height", self.height)?,
                        int("event index", index)?,
                        int("contract id", *contract_id)?,
                        twin.into(),
                        int("bill time", *timestamp_s)?,
                        amount.clone(),
                        debug_name(discount_level).into(),
                    ],
                )?;
                sql.execute(
                    "INSERT INTO consumption (twin_id, total_billed, last_bill_s) \
                     VALUES ($1, $2, $3) ON CONFLICT (twin_id) DO UPDATE SET \
                     total_billed = consumption.total_billed + excluded.total_billed, \
                     last_bill_s = excluded.last_bill_s",
                    &[twin.into(), amount, int("bill time", *timestamp_s)?],
                )?;
            }
            Event::ContractGracePeriodStarted {
                contract_id, block, ..
            } => {
                sql.execute(
                    "UPDATE contracts SET state = 'GracePeriod', grace_since_block = $2, \
                     updated_at = $3 WHERE contract_id = $1",
                    &[
                        int("contract id", *contract_id)?,
                        int("block", *block)?,
                        self.now()?,
                    ],
                )?;
            }
            Event::ContractGracePeriodEnded { contract_id, .. } => {
                sql.execute(
                    "UPDATE contracts SET state = 'Created', grace_since_block = NULL, \
                     updated_at = $2 WHERE contract_id = $1",
                    &[int("contract id", *contract_id)?, self.now()?],
                )?;
            }
            Event::UpdatedUsedResources { contract_id, used } => {
                sql.execute(
                    "UPDATE contracts SET reported_cru = $2, reported_mru = $3, \
                     reported_sru = $4, reported_hru = $5, updated_at = $6 WHERE contract_id = $1",
                    &[
                        int("contract id", *contract_id)?,
                        int("cru", used.cru)?,
                        int("mru", used.mru)?,
                        int("sru", used.sru)?,
                        int("hru", used.hru)?,
                        self.now()?,
                    ],
                )?;
            }
            Event::DeploymentStateReported {
                contract_id,
                version,
                workloads,
                ..
            } => {
                for w in workloads {
                    let state = serde_json::to_value(w.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let result = serde_json::to_string(&w.data)
                        .map_err(|e| Error::Store(format!("encoding a workload result: {e}")))?;
                    sql.execute(
                        "INSERT INTO workloads (contract_id, name, deployment_version, state, \
                         message, result, created, reported_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (contract_id, name) DO UPDATE SET \
                         deployment_version = excluded.deployment_version, state = excluded.state, \
                         message = excluded.message, result = excluded.result, \
                         created = excluded.created, reported_at = excluded.reported_at",
                        &[
                            int("contract id", *contract_id)?,
                            w.name.as_str().into(),
                            (*version).into(),
                            state.into(),
                            w.message.as_str().into(),
                            result.into(),
                            int("workload time", w.created)?,
                            self.now()?,
                        ],
                    )?;
                }
                self.refresh_workloads(sql, *contract_id)?;
            }
            Event::FarmingRewardMinted {
                node_id,
                farm_id,
                amount,
                uptime_percent,
            } => {
                sql.execute(
                    "INSERT INTO farming_rewards (block_height, event_index, node_id, farm_id, \
                     amount, uptime_percent, timestamp_s) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        int("height", self.height)?,
                        int("event index", index)?,
                        (*node_id).into(),
                        (*farm_id).into(),
                        int("reward", *amount)?,
                        (*uptime_percent).into(),
                        self.now()?,
                    ],
                )?;
            }
            Event::PricingPolicyStored(p) if p.id == BILLING_POLICY_ID => {
                set_meta_json(sql, META_PRICING_POLICY, p)?;
            }
            Event::TftPriceSet { price_musd } => {
                update_tft_price(sql, |p| p.price_musd = *price_musd)?;
            }
            Event::TftPriceBoundsSet { min_musd, max_musd } => update_tft_price(sql, |p| {
                p.min_musd = *min_musd;
                p.max_musd = *max_musd;
            })?,
            // Balances, fees, other policies, council and key-value events do not shape the
            // explorer's tables.
            _ => {}
        }
        Ok(())
    }

    fn farm(&mut self, sql: &mut dyn Sql, f: &Farm) -> Result<(), Error> {
        sql.execute(
            "INSERT INTO farms (farm_id, name, twin_id, pricing_policy_id, certification, \
             dedicated, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (farm_id) DO UPDATE SET name = excluded.name, \
             twin_id = excluded.twin_id, pricing_policy_id = excluded.pricing_policy_id, \
             certification = excluded.certification, dedicated = excluded.dedicated",
            &[
                f.id.into(),
                f.name.as_str().into(),
                f.twin_id.into(),
                f.pricing_policy_id.into(),
                debug_name(&f.certification).into(),
                f.dedicated_farm.into(),
                self.now()?,
            ],
        )?;
        sql.execute("DELETE FROM public_ips WHERE farm_id = $1", &[f.id.into()])?;
        for ip in &f.public_ips {
            sql.execute(
                "INSERT INTO public_ips (farm_id, ip, gateway, contract_id) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    f.id.into(),
                    ip.ip.as_str().into(),
                    ip.gateway.as_str().into(),
                    int("contract id", ip.contract_id)?,
                ],
            )?;
        }
        // A farm created with its IPs: count them as for IPs added later.
        self.touched_farms.insert(f.id);
        Ok(())
    }

    fn node(&mut self, sql: &mut dyn Sql, n: &Node) -> Result<(), Error> {
        let r = &n.resources;
        sql.execute(
            "INSERT INTO nodes (node_id, farm_id, twin_id, country, city, latitude, longitude, \
             created, farming_policy_id, certification, secure_boot, virtualized, serial_number, \
             connection_price, total_cru, total_mru, total_sru, total_hru, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19) ON CONFLICT (node_id) DO UPDATE SET farm_id = excluded.farm_id, \
             twin_id = excluded.twin_id, country = excluded.country, city = excluded.city, \
             latitude = excluded.latitude, longitude = excluded.longitude, \
             farming_policy_id = excluded.farming_policy_id, \
             certification = excluded.certification, secure_boot = excluded.secure_boot, \
             virtualized = excluded.virtualized, serial_number = excluded.serial_number, \
             connection_price = excluded.connection_price, total_cru = excluded.total_cru, \
             total_mru = excluded.total_mru, total_sru = excluded.total_sru, \
             total_hru = excluded.total_hru, updated_at = excluded.updated_at",
            &[
                n.id.into(),
                n.farm_id.into(),
                n.twin_id.into(),
                n.location.country.as_str().into(),
                n.location.city.as_str().into(),
                n.location.latitude.as_str().into(),
                n.location.longitude.as_str().into(),
                int("node created", n.created)?,
                n.farming_policy_id.into(),
                debug_name(&n.certification).into(),
                n.secure_boot.into(),
                n.virtualized.into(),
                n.serial_number.clone().into(),
                n.connection_price.into(),
                int("cru", r.cru)?,
                int("mru", r.mru)?,
                int("sru", r.sru)?,
                int("hru", r.hru)?,
                self.now()?,
            ],
        )?;
        self.public_config(sql, n.id, n.public_config.as_ref())?;
        self.touched.insert(n.id);
        Ok(())
    }

    fn public_config(
        &mut self,
        sql: &mut dyn Sql,
        node_id: NodeId,
        config: Option<&PublicConfig>,
    ) -> Result<(), Error> {
        let (ipv4, gw4, ipv6, gw6, domain) = match config {
            Some(c) => (
                Some(c.ip4.ip.clone()),
                Some(c.ip4.gw.clone()),
                c.ip6.as_ref().map(|v| v.ip.clone()),
                c.ip6.as_ref().map(|v| v.gw.clone()),
                c.domain.clone(),
            ),
            None => (None, None, None, None, None),
        };
        sql.execute(
            "UPDATE nodes SET ipv4 = $2, gw4 = $3, ipv6 = $4, gw6 = $5, domain = $6 \
             WHERE node_id = $1",
            &[
                node_id.into(),
                ipv4.into(),
                gw4.into(),
                ipv6.into(),
                gw6.into(),
                domain.into(),
            ],
        )?;
        Ok(())
    }

    fn contract(&mut self, sql: &mut dyn Sql, c: &Contract, created: bool) -> Result<(), Error> {
        let id = int("contract id", c.contract_id)?;
        let (kind, node_id, name) = match &c.contract_type {
            ContractData::NodeContract(nc) => ("node", Some(nc.node_id), None),
            ContractData::NameContract { name } => ("name", None, Some(name.clone())),
            ContractData::RentContract { node_id } => ("rent", Some(*node_id), None),
        };
        let grace = match c.state {
            ContractState::GracePeriod { since_block } => Some(int("block", since_block)?),
            _ => None,
        };
        let (hash, deployment, version, ips, cap) = match &c.contract_type {
            ContractData::NodeContract(nc) => (
                Some(nc.deployment_hash.to_string()),
                Some(serde_json::to_string(&nc.deployment).map_err(|e| {
                    Error::Store(format!("encoding contract {}: {e}", c.contract_id))
                })?),
                Some(nc.deployment.version),
                nc.public_ips,
                nc.deployment.capacity(),
            ),
            _ => (None, None, None, 0, Default::default()),
        };
        if created {
            add_total(sql, ACTIVE_CONTRACTS, 1)?;
            sql.execute(
                "INSERT INTO contracts (contract_id, twin_id, contract_type, state, node_id, \
                 name, deployment_hash, deployment, deployment_version, number_of_public_ips, \
                 cru, mru, sru, hru, grace_since_block, created_at, created_block, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $16)",
                &[
                    id.clone(),
                    c.twin_id.into(),
                    kind.into(),
                    state_name(&c.state).into(),
                    node_id.map(i64::from).into(),
                    name.into(),
                    hash.into(),
                    deployment.into(),
                    version.map(i64::from).into(),
                    ips.into(),
                    int("cru", cap.cru)?,
                    int("mru", cap.mru)?,
                    int("sru", cap.sru)?,
                    int("hru", cap.hru)?,
                    grace.into(),
                    self.now()?,
                    int("height", self.height)?,
                ],
            )?;
        } else {
            sql.execute(
                "UPDATE contracts SET state = $2, deployment_hash = $3, deployment = $4, \
                 deployment_version = $5, number_of_public_ips = $6, cru = $7, mru = $8, \
                 sru = $9, hru = $10, grace_since_block = $11, updated_at = $12 \
                 WHERE contract_id = $1",
                &[
                    id.clone(),
                    state_name(&c.state).into(),
                    hash.into(),
                    deployment.into(),
                    version.map(i64::from).into(),
                    ips.into(),
                    int("cru", cap.cru)?,
                    int("mru", cap.mru)?,
                    int("sru", cap.sru)?,
                    int("hru", cap.hru)?,
                    grace.into(),
                    self.now()?,
                ],
            )?;
        }
        match &c.contract_type {
            ContractData::NodeContract(nc) => {
                if !nc.public_ips_list.is_empty()
                    && let Some(row) = sql.query_opt(
                        "SELECT farm_id FROM nodes WHERE node_id = $1",
                        &[nc.node_id.into()],
                    )?
                {
                    self.touched_farms.insert(row.u64(0)? as FarmId);
                }
                for ip in &nc.public_ips_list {
                    sql.execute(
                        "UPDATE public_ips SET contract_id = $1 WHERE ip = $2 AND farm_id = \
                         (SELECT farm_id FROM nodes WHERE node_id = $3)",
                        &[id.clone(), ip.ip.as_str().into(), nc.node_id.into()],
                    )?;
                }
                self.touched.insert(nc.node_id);
            }
            ContractData::RentContract { node_id } => {
                sql.execute(
                    "UPDATE nodes SET rent_contract_id = $2, renter_twin_id = $3 \
                     WHERE node_id = $1",
                    &[(*node_id).into(), id, c.twin_id.into()],
                )?;
            }
            ContractData::NameContract { .. } => {}
        }
        Ok(())
    }

    /// Recounts a contract's live workloads, and the grid's if the contract is active.
    fn refresh_workloads(&mut self, sql: &mut dyn Sql, contract_id: u64) -> Result<(), Error> {
        let id = int("contract id", contract_id)?;
        let Some(row) = sql.query_opt(
            "SELECT state, workloads_active FROM contracts WHERE contract_id = $1",
            std::slice::from_ref(&id),
        )?
        else {
            return Ok(());
        };
        let now = sql.query_i64(
            "SELECT COUNT(*) FROM workloads WHERE contract_id = $1 AND state <> 'deleted'",
            std::slice::from_ref(&id),
        )?;
        sql.execute(
            "UPDATE contracts SET workloads_active = $2 WHERE contract_id = $1",
            &[id, now.into()],
        )?;
        if row.str(0)? != "Deleted" {
            add_total(sql, ACTIVE_WORKLOADS, now - row.i64(1)?)?;
        }
        Ok(())
    }

    fn end_contract(&mut self, sql: &mut dyn Sql, id: u64, cause: &str) -> Result<(), Error> {
        if let Some(row) = sql.query_opt(
            "SELECT state, workloads_active FROM contracts WHERE contract_id = $1",
            &[int("contract id", id)?],
        )? && row.str(0)? != "Deleted"
        {
            add_total(sql, ACTIVE_CONTRACTS, -1)?;
            add_total(sql, ACTIVE_WORKLOADS, -row.i64(1)?)?;
        }
        sql.execute(
            "UPDATE contracts SET state = 'Deleted', cause = $2, grace_since_block = NULL, \
             updated_at = $3 WHERE contract_id = $1",
            &[int("contract id", id)?, cause.into(), self.now()?],
        )?;
        Ok(())
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
                },
            ],
        );
        assert!(apply(&store, &bad).is_err());
        assert_eq!(used_and_free_hru(&store), (5 * GIB as i64, 95 * GIB as i64));
        assert_eq!(store::read(&store, indexed).unwrap().unwrap().height, 2);
    }
}
