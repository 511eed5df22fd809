//! `/contracts`, `/contracts/{id}` (with the deployment and the workload states the node reported)
//! and `/contracts/{id}/bills`. Deleted contracts stay, with their cause.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::{Value as Json_, json};

use super::params::{Filter, Params};
use super::{ApiResult, AppState, RawQuery, page_response, page_rows, path_id, read, units};
use crate::error::Error;
use crate::store::{Row, Value};

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
     c.created_at, c.updated_at, n.farm_id, f.name";

const FROM: &str = "FROM contracts c LEFT JOIN nodes n ON n.node_id = c.node_id \
     LEFT JOIN farms f ON f.farm_id = n.farm_id";

fn contract_json(r: &Row) -> Result<Json_, Error> {
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
    let (rows, count) = page_rows(&state, COLUMNS, FROM, f, &order, paging).await?;
    let items = rows.iter().map(contract_json).collect::<Result<_, _>>()?;
    Ok(page_response(items, count, paging.size))
}

pub async fn one(State(state): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let id = path_id("id", &raw)?;
    let one_sql = format!("SELECT {COLUMNS}, c.deployment {FROM} WHERE c.contract_id = $1");
    let (row, workloads) = read(&state, move |sql| {
        let row = sql.query_opt(&one_sql, &[Value::Int(id)])?;
        let workloads = sql.query(
            "SELECT name, deployment_version, state, message, result, created, reported_at \
             FROM workloads WHERE contract_id = $1 ORDER BY name",
            &[Value::Int(id)],
        )?;
        Ok((row, workloads))
    })
    .await?;
    let row = row.ok_or_else(|| Error::NotFound(format!("contract {id}")))?;
    let mut contract = contract_json(&row)?;
    if let Some(text) = row.opt_str(23)? {
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
        "SELECT contract_id, amount_billed, discount_level, timestamp_s, block_height FROM bills \
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
            }))
        })
        .collect::<Result<_, Error>>()?;
    Ok(page_response(items, count, paging.size))
}
