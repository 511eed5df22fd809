//! `/contracts`, `/contracts/{id}` (with the deployment and the workload states the node reported)
//! and `/contracts/{id}/bills`. Deleted contracts stay, with their cause. Each contract carries its
//! cost per hour now ([`crate::cost`]), zero once deleted.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::{Value as Json_, json};

use tfchain_runtime::types::Resources;

use super::params::{Filter, Params};
use super::{ApiResult, AppState, PageQuery, RawQuery, page_response, path_id, read, units};
use crate::cost::{Priced, Prices};
use crate::error::Error;
use crate::store::{Row, Sql, Value};

pub(super) const FILTERS: &[&str] = &[
    "contract_id",
    "twin_id",
    "node_id",
    "type",
    "state",
    "name",
    "number_of_public_ips",
    "deployment_hash",
    "farm_id",
];

const SORTS: &[(&str, &str)] = &[
    ("contract_id", "c.contract_id"),
    ("twin_id", "c.twin_id"),
    ("node_id", "c.node_id"),
    ("created_at", "c.created_at"),
    ("updated_at", "c.updated_at"),
    ("state", "c.state"),
    ("type", "c.contract_type"),
];

const COLUMNS: &str = "c.contract_id, c.twin_id, c.contract_type, c.state, c.node_id, c.name, \
     c.deployment_hash, c.deployment_version, c.number_of_public_ips, c.cru, c.mru, c.sru, c.hru, \
     c.reported_cru, c.reported_mru, c.reported_sru, c.reported_hru, c.grace_since_block, c.cause, \
     c.created_at, c.updated_at, n.farm_id, f.name, n.rent_contract_id, n.power_state, n.total_cru, \
     n.total_mru, n.total_sru, n.total_hru";

/// The column after [`COLUMNS`] in `/contracts/{id}`.
const DEPLOYMENT_COLUMN: usize = 29;

const FROM: &str = "FROM contracts c LEFT JOIN nodes n ON n.node_id = c.node_id \
     LEFT JOIN farms f ON f.farm_id = n.farm_id";

fn resources(r: &Row, first: usize) -> Result<Resources, Error> {
    Ok(Resources {
        cru: r.u64(first)?,
        mru: r.u64(first + 1)?,
        sru: r.u64(first + 2)?,
        hru: r.u64(first + 3)?,
    })
}

/// What the contract's price depends on; nothing once it is deleted.
fn priced(r: &Row) -> Result<Option<Priced>, Error> {
    if r.str(3)? == "Deleted" {
        return Ok(None);
    }
    let node_exists = r.opt_str(24)?.is_some();
    Ok(Some(match r.str(2)?.as_str() {
        "node" => Priced::Node {
            public_ips: u32::try_from(r.u64(8)?)
                .map_err(|_| Error::Store("number of public IPs out of range".into()))?,
            reported: resources(r, 13)?,
            node_rented: r.i64(23)? != 0,
        },
        "name" => Priced::Name,
        _ => Priced::Rent {
            node_up: (node_exists && r.str(24)? != "Down")
                .then(|| resources(r, 25))
                .transpose()?,
        },
    }))
}

/// The contract's cost per hour in TFT units, as a decimal string; null until the indexer knows
/// the prices.
fn cost_per_hour(prices: Option<&Prices>, r: &Row) -> Result<Option<u128>, Error> {
    let Some(prices) = prices else {
        return Ok(None);
    };
    Ok(Some(priced(r)?.map_or(0, |p| prices.tft_per_hour(&p))))
}

/// What an hour of all the twin's active contracts costs now, as the chain's `twin_consumption`
/// sums it; none until the indexer knows the prices.
pub(super) fn twin_cost_per_hour(sql: &mut dyn Sql, twin_id: i64) -> Result<Option<u128>, Error> {
    let Some(prices) = crate::indexer::prices(sql)? else {
        return Ok(None);
    };
    let rows = sql.query(
        &format!("SELECT {COLUMNS} {FROM} WHERE c.twin_id = $1 AND c.state <> 'Deleted'"),
        &[Value::Int(twin_id)],
    )?;
    let mut total: u128 = 0;
    for r in &rows {
        total += cost_per_hour(Some(&prices), r)?.unwrap_or(0);
    }
    Ok(Some(total))
}

fn contract_json(r: &Row, prices: Option<&Prices>) -> Result<Json_, Error> {
    let kind = r.str(2)?;
    let details = match kind.as_str() {
        "node" => json!({
            "nodeId": r.i64(4)?,
            "deployment_hash": r.opt_str(6)?,
            "deployment_version": r.opt_i64(7)?,
            "number_of_public_ips": r.i64(8)?,
            "farm_id": r.opt_i64(21)?,
            "farm_name": r.opt_str(22)?,
            "resources": { "cru": r.i64(9)?, "mru": r.i64(10)?, "sru": r.i64(11)?, "hru": r.i64(12)? },
            "reported_resources": {
                "cru": r.i64(13)?, "mru": r.i64(14)?, "sru": r.i64(15)?, "hru": r.i64(16)?,
            },
        }),
        "name" => json!({ "name": r.opt_str(5)? }),
        _ => json!({ "nodeId": r.i64(4)?, "farm_id": r.opt_i64(21)? }),
    };
    Ok(json!({
        "contract_id": r.i64(0)?,
        "twin_id": r.i64(1)?,
        "type": kind,
        "state": r.str(3)?,
        "grace_since_block": r.opt_i64(17)?,
        "cause": r.opt_str(18)?,
        "created_at": r.i64(19)?,
        "updated_at": r.i64(20)?,
        "cost_per_hour": cost_per_hour(prices, r)?.map(|v| v.to_string()),
        "details": details,
    }))
}

pub async fn list(State(state): State<AppState>, q: RawQuery) -> ApiResult {
    let p = Params::new(q.0, FILTERS)?;
    let paging = p.paging()?;
    let mut f = Filter::default();
    if let Some(v) = p.int("contract_id")? {
        f.cmp("c.contract_id", "=", v);
    }
    if let Some(v) = p.int("twin_id")? {
        f.cmp("c.twin_id", "=", v);
    }
    if let Some(v) = p.int("node_id")? {
        f.cmp("c.node_id", "=", v);
    }
    if let Some(v) = p.choice_list("type", &["node", "name", "rent"])? {
        f.any_of("c.contract_type", v.into_iter().map(Value::from).collect());
    }
    if let Some(v) = p.choice_list("state", &["Created", "GracePeriod", "Deleted"])? {
        f.any_of("c.state", v.into_iter().map(Value::from).collect());
    }
    if let Some(v) = p.str("name")? {
        f.cmp("c.name", "=", v);
    }
    if let Some(v) = p.int("number_of_public_ips")? {
        f.cmp("c.number_of_public_ips", "=", v);
    }
    if let Some(v) = p.str("deployment_hash")? {
        f.cmp("c.deployment_hash", "=", v);
    }
    if let Some(v) = p.int("farm_id")? {
        f.cmp("n.farm_id", "=", v);
    }
    let order = p.order_by(SORTS, "c.contract_id", "c.contract_id")?;
    let query = PageQuery::new(COLUMNS, FROM, f, &order, paging);
    let ((rows, count), prices) = read(&state, move |sql| {
        Ok((query.run(sql)?, crate::indexer::prices(sql)?))
    })
    .await?;
    let items = rows
        .iter()
        .map(|r| contract_json(r, prices.as_ref()))
        .collect::<Result<_, _>>()?;
    Ok(page_response(items, count, paging.size))
}

pub async fn one(State(state): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let id = path_id("id", &raw)?;
    let one_sql = format!("SELECT {COLUMNS}, c.deployment {FROM} WHERE c.contract_id = $1");
    let (row, workloads, prices) = read(&state, move |sql| {
        let row = sql.query_opt(&one_sql, &[Value::Int(id)])?;
        let workloads = sql.query(
            "SELECT name, deployment_version, state, message, result, created, reported_at \
             FROM workloads WHERE contract_id = $1 ORDER BY name",
            &[Value::Int(id)],
        )?;
        Ok((row, workloads, crate::indexer::prices(sql)?))
    })
    .await?;
    let row = row.ok_or_else(|| Error::NotFound(format!("contract {id}")))?;
    let mut contract = contract_json(&row, prices.as_ref())?;
    if let Some(text) = row.opt_str(DEPLOYMENT_COLUMN)? {
        let deployment: Json_ = serde_json::from_str(&text)
            .map_err(|e| Error::Store(format!("stored deployment of contract {id}: {e}")))?;
        contract["details"]["deployment"] = deployment;
    }
    contract["workloads"] = workloads
        .iter()
        .map(|w| {
            let result: Json_ = serde_json::from_str(&w.str(4)?)
                .map_err(|e| Error::Store(format!("stored workload result: {e}")))?;
            Ok(json!({
                "name": w.str(0)?, "version": w.i64(1)?, "state": w.str(2)?,
                "message": w.str(3)?, "result": result, "created": w.i64(5)?,
                "reported_at": w.i64(6)?,
            }))
        })
        .collect::<Result<Vec<_>, Error>>()?
        .into();
    Ok(Json(contract).into_response())
}

pub async fn bills(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    q: RawQuery,
) -> ApiResult {
    let id = path_id("id", &raw)?;
    let p = Params::new(q.0, &[])?;
    let paging = p.paging()?;
    let order = p.order_by(
        &[("timestamp", "timestamp_s")],
        "timestamp_s",
        "block_height",
    )?;
    let rows_sql = format!(
        "SELECT contract_id, amount_billed, discount_level, timestamp_s, block_height, credited_s \
         FROM bills \
         WHERE contract_id = $1 {order}, event_index LIMIT $2 OFFSET $3"
    );
    let (exists, rows, count) = read(&state, move |sql| {
        let exists = sql
            .query_opt(
                "SELECT 1 FROM contracts WHERE contract_id = $1",
                &[Value::Int(id)],
            )?
            .is_some();
        let rows = sql.query(
            &rows_sql,
            &[Value::Int(id), paging.limit(), paging.offset()],
        )?;
        let count = if paging.ret_count {
            Some(sql.query_i64(
                "SELECT COUNT(*) FROM bills WHERE contract_id = $1",
                &[Value::Int(id)],
            )?)
        } else {
            None
        };
        Ok((exists, rows, count))
    })
    .await?;
    if !exists {
        return Err(Error::NotFound(format!("contract {id}")).into());
    }
    let items = rows
        .iter()
        .map(|r| {
            Ok(json!({
                "contract_id": r.i64(0)?,
                "amountBilled": units(r.i64(1)?),
                "discountReceived": r.str(2)?,
                "timestamp": r.i64(3)?,
                "block": r.i64(4)?,
                "creditedSeconds": r.i64(5)?,
            }))
        })
        .collect::<Result<_, Error>>()?;
    Ok(page_response(items, count, paging.size))
}
