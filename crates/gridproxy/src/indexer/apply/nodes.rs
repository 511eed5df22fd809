//! Nodes: `NodeStored`/`NodeUpdated` upsert the `nodes` row (location, certification, total
//! resources, public config), `NodeDeleted` removes it, and the public config, uptime report,
//! certification and power events change their columns. A node's used resources and free capacity
//! are recomputed once per block for the nodes it touched ([`refresh_capacity`]).

use tfchain_runtime::types::{Node, NodeCertification, Power, PowerState, PublicConfig};
use tfgrid_types::{NodeId, capacity};

use super::{Ctx, debug_name};
use crate::error::Error;
use crate::store::{Sql, Value, int};

/// `NodeStored`, `NodeUpdated`.
pub(super) fn stored(ctx: &mut Ctx, sql: &mut dyn Sql, n: &Node) -> Result<(), Error> {
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
            ctx.now()?,
        ],
    )?;
    public_config(sql, n.id, n.public_config.as_ref())?;
    ctx.touched.insert(n.id);
    Ok(())
}

/// `NodeDeleted`.
pub(super) fn deleted(sql: &mut dyn Sql, node_id: NodeId) -> Result<(), Error> {
    sql.execute("DELETE FROM nodes WHERE node_id = $1", &[node_id.into()])?;
    Ok(())
}

/// `NodePublicConfigStored`, and a stored node's config.
pub(super) fn public_config(
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

/// `NodeUptimeReported`.
pub(super) fn uptime_reported(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    node_id: NodeId,
    timestamp_s: u64,
    uptime_s: u64,
) -> Result<(), Error> {
    sql.execute(
        "UPDATE nodes SET uptime_s = $2, last_report_s = $3, updated_at = $4 \
         WHERE node_id = $1",
        &[
            node_id.into(),
            int("uptime", uptime_s)?,
            int("report time", timestamp_s)?,
            ctx.now()?,
        ],
    )?;
    Ok(())
}

/// `NodeCertificationSet`.
pub(super) fn certification(
    sql: &mut dyn Sql,
    node_id: NodeId,
    certification: &NodeCertification,
) -> Result<(), Error> {
    sql.execute(
        "UPDATE nodes SET certification = $2 WHERE node_id = $1",
        &[node_id.into(), debug_name(certification).into()],
    )?;
    Ok(())
}

/// `PowerStateChanged`.
pub(super) fn power_state(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    node_id: NodeId,
    state: &PowerState,
) -> Result<(), Error> {
    let state = match state {
        PowerState::Up => "Up",
        PowerState::Down { .. } => "Down",
    };
    sql.execute(
        "UPDATE nodes SET power_state = $2, updated_at = $3 WHERE node_id = $1",
        &[node_id.into(), state.into(), ctx.now()?],
    )?;
    Ok(())
}

/// `PowerTargetChanged`.
pub(super) fn power_target(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    node_id: NodeId,
    target: &Power,
) -> Result<(), Error> {
    let target = match target {
        Power::Up => "Up",
        Power::Down => "Down",
    };
    sql.execute(
        "UPDATE nodes SET power_target = $2, updated_at = $3 WHERE node_id = $1",
        &[node_id.into(), target.into(), ctx.now()?],
    )?;
    Ok(())
}

/// Recomputes a node's used resources (the deployments of its active node contracts) and its free
/// capacity as the node agent computes it.
pub(super) fn refresh_capacity(sql: &mut dyn Sql, node_id: NodeId) -> Result<(), Error> {
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
