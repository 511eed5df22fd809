//! Contracts (node, name, rent): `ContractCreated`/`ContractUpdated` write the `contracts` row
//! (deployment, its capacity, public IPs) and link it to what it holds (the farm's public IPs, the
//! rented node); the cancel events end it with its cause, `IPsFreed` releases its IPs, the grace
//! period events and the node's resource report change their columns. The active-contract counter
//! follows creations and ends.

use tfchain_runtime::types::{Cause, Contract, ContractData, ContractState, Resources};
use tfgrid_types::deployment::Capacity;
use tfgrid_types::{ContractId, FarmId, NodeId};

use super::totals::{ACTIVE_CONTRACTS, ACTIVE_WORKLOADS, add_total};
use super::{Ctx, debug_name};
use crate::error::Error;
use crate::store::{Sql, Value, int};

fn state_name(state: &ContractState) -> &'static str {
    match state {
        ContractState::Created => "Created",
        ContractState::GracePeriod { .. } => "GracePeriod",
        ContractState::Deleted(_) => "Deleted",
    }
}

/// What a contract event sets beyond its id, owner and state.
struct Columns {
    kind: &'static str,
    node_id: Option<NodeId>,
    name: Option<String>,
    hash: Option<String>,
    deployment: Option<String>,
    version: Option<u32>,
    public_ips: u32,
    capacity: Capacity,
    grace: Option<Value>,
}

impl Columns {
    fn of(c: &Contract) -> Result<Columns, Error> {
        let grace = match c.state {
            ContractState::GracePeriod { since_block } => Some(int("block", since_block)?),
            _ => None,
        };
        let mut columns = Columns {
            kind: "",
            node_id: None,
            name: None,
            hash: None,
            deployment: None,
            version: None,
            public_ips: 0,
            capacity: Capacity::default(),
            grace,
        };
        match &c.contract_type {
            ContractData::NodeContract(nc) => {
                columns.kind = "node";
                columns.node_id = Some(nc.node_id);
                columns.hash = Some(nc.deployment_hash.to_string());
                columns.deployment = Some(serde_json::to_string(&nc.deployment).map_err(|e| {
                    Error::Store(format!("encoding contract {}: {e}", c.contract_id))
                })?);
                columns.version = Some(nc.deployment.version);
                columns.public_ips = nc.public_ips;
                columns.capacity = nc.deployment.capacity();
            }
            ContractData::NameContract { name } => {
                columns.kind = "name";
                columns.name = Some(name.clone());
            }
            ContractData::RentContract { node_id } => {
                columns.kind = "rent";
                columns.node_id = Some(*node_id);
            }
        }
        Ok(columns)
    }

    /// `deployment_hash` to `grace_since_block`, in the order both writes bind them.
    fn deployment_values(&self) -> Result<Vec<Value>, Error> {
        Ok(vec![
            self.hash.clone().into(),
            self.deployment.clone().into(),
            self.version.map(i64::from).into(),
            self.public_ips.into(),
            int("cru", self.capacity.cru)?,
            int("mru", self.capacity.mru)?,
            int("sru", self.capacity.sru)?,
            int("hru", self.capacity.hru)?,
            self.grace.clone().into(),
        ])
    }
}

/// `ContractCreated` (`created`) and `ContractUpdated`.
pub(super) fn stored(
    ctx: &mut Ctx,
    sql: &mut dyn Sql,
    c: &Contract,
    created: bool,
) -> Result<(), Error> {
    let id = int("contract id", c.contract_id)?;
    let columns = Columns::of(c)?;
    let state = Value::from(state_name(&c.state));
    if created {
        add_total(sql, ACTIVE_CONTRACTS, 1)?;
        let mut values = vec![
            id.clone(),
            c.twin_id.into(),
            columns.kind.into(),
            state,
            columns.node_id.map(i64::from).into(),
            columns.name.clone().into(),
        ];
        values.extend(columns.deployment_values()?);
        values.extend([ctx.now()?, int("height", ctx.height)?]);
        sql.execute(
            "INSERT INTO contracts (contract_id, twin_id, contract_type, state, node_id, \
             name, deployment_hash, deployment, deployment_version, number_of_public_ips, \
             cru, mru, sru, hru, grace_since_block, created_at, created_block, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $16)",
            &values,
        )?;
    } else {
        let mut values = vec![id.clone(), state];
        values.extend(columns.deployment_values()?);
        values.push(ctx.now()?);
        sql.execute(
            "UPDATE contracts SET state = $2, deployment_hash = $3, deployment = $4, \
             deployment_version = $5, number_of_public_ips = $6, cru = $7, mru = $8, \
             sru = $9, hru = $10, grace_since_block = $11, updated_at = $12 \
             WHERE contract_id = $1",
            &values,
        )?;
    }
    link(ctx, sql, c, id)
}

/// Marks what the contract holds: a node contract's public IPs (and its node's capacity as
/// touched), a rent contract's node.
fn link(ctx: &mut Ctx, sql: &mut dyn Sql, c: &Contract, id: Value) -> Result<(), Error> {
    match &c.contract_type {
        ContractData::NodeContract(nc) => {
            if !nc.public_ips_list.is_empty()
                && let Some(row) = sql.query_opt(
                    "SELECT farm_id FROM nodes WHERE node_id = $1",
                    &[nc.node_id.into()],
                )?
            {
                ctx.touched_farms.insert(row.u64(0)? as FarmId);
            }
            for ip in &nc.public_ips_list {
                sql.execute(
                    "UPDATE public_ips SET contract_id = $1 WHERE ip = $2 AND farm_id = \
                     (SELECT farm_id FROM nodes WHERE node_id = $3)",
                    &[id.clone(), ip.ip.as_str().into(), nc.node_id.into()],
                )?;
            }
            ctx.touched.insert(nc.node_id);
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

/// `NameContractCanceled`, and the end of every contract: deleted with its cause, out of the
/// active counters if it was still in them.
pub(super) fn ended(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    id: ContractId,
    cause: &Cause,
) -> Result<(), Error> {
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
        &[
            int("contract id", id)?,
            debug_name(cause).into(),
            ctx.now()?,
        ],
    )?;
    Ok(())
}

/// `NodeContractCanceled`: its node's capacity is freed.
pub(super) fn node_canceled(
    ctx: &mut Ctx,
    sql: &mut dyn Sql,
    id: ContractId,
    node_id: NodeId,
    cause: &Cause,
) -> Result<(), Error> {
    ended(ctx, sql, id, cause)?;
    ctx.touched.insert(node_id);
    Ok(())
}

/// `RentContractCanceled`: the node is no longer rented by it.
pub(super) fn rent_canceled(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    id: ContractId,
    node_id: NodeId,
    cause: &Cause,
) -> Result<(), Error> {
    ended(ctx, sql, id, cause)?;
    sql.execute(
        "UPDATE nodes SET rent_contract_id = 0, renter_twin_id = 0 \
         WHERE node_id = $1 AND rent_contract_id = $2",
        &[node_id.into(), int("contract id", id)?],
    )?;
    Ok(())
}

/// `IPsFreed`: the contract's public IPs are free again.
pub(super) fn ips_freed(ctx: &mut Ctx, sql: &mut dyn Sql, id: ContractId) -> Result<(), Error> {
    for row in sql.query(
        "SELECT DISTINCT farm_id FROM public_ips WHERE contract_id = $1",
        &[int("contract id", id)?],
    )? {
        ctx.touched_farms.insert(row.u64(0)? as FarmId);
    }
    sql.execute(
        "UPDATE public_ips SET contract_id = 0 WHERE contract_id = $1",
        &[int("contract id", id)?],
    )?;
    Ok(())
}

/// `ContractGracePeriodStarted`.
pub(super) fn grace_started(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    id: ContractId,
    block: u64,
) -> Result<(), Error> {
    sql.execute(
        "UPDATE contracts SET state = 'GracePeriod', grace_since_block = $2, \
         updated_at = $3 WHERE contract_id = $1",
        &[int("contract id", id)?, int("block", block)?, ctx.now()?],
    )?;
    Ok(())
}

/// `ContractGracePeriodEnded`.
pub(super) fn grace_ended(ctx: &Ctx, sql: &mut dyn Sql, id: ContractId) -> Result<(), Error> {
    sql.execute(
        "UPDATE contracts SET state = 'Created', grace_since_block = NULL, \
         updated_at = $2 WHERE contract_id = $1",
        &[int("contract id", id)?, ctx.now()?],
    )?;
    Ok(())
}

/// `UpdatedUsedResources`: what the node reports the contract uses.
pub(super) fn used_resources(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    id: ContractId,
    used: &Resources,
) -> Result<(), Error> {
    sql.execute(
        "UPDATE contracts SET reported_cru = $2, reported_mru = $3, \
         reported_sru = $4, reported_hru = $5, updated_at = $6 WHERE contract_id = $1",
        &[
            int("contract id", id)?,
            int("cru", used.cru)?,
            int("mru", used.mru)?,
            int("sru", used.sru)?,
            int("hru", used.hru)?,
            ctx.now()?,
        ],
    )?;
    Ok(())
}
