//! `/twins` and `/twins/{id}/consumption` (what a twin paid in all, and in the last hour of chain
//! time, and what an hour of its active contracts costs now).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::json;

use super::params::{Filter, Params};
use super::{ApiResult, AppState, RawQuery, page_response, page_rows, path_id, read, units};
use crate::error::Error;
use crate::store::Value;

pub(super) const FILTERS: &[&str] = &["twin_id", "account_id", "relay", "public_key"];

const SORTS: &[(&str, &str)] = &[("twin_id", "twin_id"), ("created_at", "created_at")];

const SECONDS_PER_HOUR: i64 = 3600;

pub async fn list(State(state): State<AppState>, q: RawQuery) -> ApiResult {
    let p = Params::new(q.0, FILTERS)?;
    let paging = p.paging()?;
    let mut f = Filter::default();
    if let Some(v) = p.int("twin_id")? {
        f.cmp("twin_id", "=", v);
    }
    for name in ["account_id", "relay", "public_key"] {
        if let Some(v) = p.str(name)? {
            f.cmp(name, "=", v);
        }
    }
    let order = p.order_by(SORTS, "twin_id", "twin_id")?;
    let (rows, count) = page_rows(
        &state,
        "twin_id, account_id, relay, public_key, created_at",
        "FROM twins",
        f,
        &order,
        paging,
    )
    .await?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(json!({
                "twinId": r.i64(0)?, "accountId": r.str(1)?, "relay": r.opt_str(2)?,
                "publicKey": r.opt_str(3)?, "created_at": r.i64(4)?,
            }))
        })
        .collect::<Result<_, Error>>()?;
    Ok(page_response(items, count, paging.size))
}

pub async fn consumption(State(state): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let id = path_id("id", &raw)?;
    let (exists, total, last_bill, last_hour, active, cost) = read(&state, move |sql| {
        let twin = Value::Int(id);
        let exists = sql
            .query_opt(
                "SELECT 1 FROM twins WHERE twin_id = $1",
                std::slice::from_ref(&twin),
            )?
            .is_some();
        let (total, last_bill) = match sql.query_opt(
            "SELECT total_billed, last_bill_s FROM consumption WHERE twin_id = $1",
            std::slice::from_ref(&twin),
        )? {
            Some(r) => (r.i64(0)?, r.i64(1)?),
            None => (0, 0),
        };
        // The last hour of chain time: up to the last indexed block.
        let now_ms = crate::indexer::indexed(sql)?.map_or(0, |i| i.timestamp_ms);
        let since = (now_ms / 1000) as i64 - SECONDS_PER_HOUR;
        let last_hour = sql.query_i64(
            "SELECT CAST(COALESCE(SUM(amount_billed), 0) AS BIGINT) FROM bills \
             WHERE twin_id = $1 AND timestamp_s > $2",
            &[twin.clone(), Value::Int(since)],
        )?;
        let active = sql.query_i64(
            "SELECT COUNT(*) FROM contracts WHERE twin_id = $1 AND state <> 'Deleted'",
            &[twin],
        )?;
        let cost = super::contracts::twin_cost_per_hour(sql, id)?;
        Ok((exists, total, last_bill, last_hour, active, cost))
    })
    .await?;
    if !exists {
        return Err(Error::NotFound(format!("twin {id}")).into());
    }
    Ok(Json(json!({
        "twin_id": id,
        "total_billed": units(total),
        "last_hour_billed": units(last_hour),
        "last_bill_s": last_bill,
        "active_contracts": active,
        "cost_per_hour": cost.map(|v| v.to_string()),
    }))
    .into_response())
}
