//! `/stats`: counts and totals over the grid, optionally over nodes of some statuses only. The node
//! figures come from one pass over a covering index, grouped by country; grid-wide contract and
//! workload counters are kept by the indexer.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;

use super::nodes::status_clause;
use super::params::{Filter, Params};
use super::{ApiResult, AppState, RawQuery, now_s, read};
use crate::indexer::apply;

pub(super) const STATS_FILTERS: &[&str] = &["status"];

pub async fn stats(State(state): State<AppState>, q: RawQuery) -> ApiResult {
    let p = Params::new(q.0, STATS_FILTERS)?;
    let since = now_s() - state.progress.up_window_s() as i64;
    let mut f = Filter::default();
    if let Some(v) = p.choice_list("status", &["up", "down", "standby"])? {
        f.push(status_clause(&v, since));
    }
    let node_sql = format!(
        "SELECT n.country, COUNT(*), CAST(SUM(n.total_cru) AS BIGINT), \
         CAST(SUM(n.total_sru) AS BIGINT), CAST(SUM(n.total_mru) AS BIGINT), \
         CAST(SUM(n.total_hru) AS BIGINT), \
         CAST(SUM(CASE WHEN n.ipv4 IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN n.domain IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) \
         FROM nodes n {} GROUP BY n.country",
        f.where_sql()
    );
    let mut dedicated = Filter {
        clauses: f.clauses.clone(),
        params: f.params.clone(),
    };
    dedicated.push("n.farm_id IN (SELECT farm_id FROM farms WHERE dedicated = 1)");
    let dedicated_sql = format!("SELECT COUNT(*) FROM nodes n {}", dedicated.where_sql());
    let params = f.params;
    let (groups, dedicated_nodes, others) = read(&state, move |sql| {
        let groups = sql.query(&node_sql, &params)?;
        let dedicated = sql.query_i64(&dedicated_sql, &params)?;
        let others = [
            sql.query_i64("SELECT COUNT(*) FROM farms", &[])?,
            sql.query_i64("SELECT COUNT(*) FROM twins", &[])?,
            sql.query_i64("SELECT COUNT(*) FROM public_ips", &[])?,
            apply::total(sql, apply::ACTIVE_CONTRACTS)?,
            apply::total(sql, apply::ACTIVE_WORKLOADS)?,
        ];
        Ok((groups, dedicated, others))
    })
    .await?;
    let mut distribution: BTreeMap<String, i64> = BTreeMap::new();
    let mut sums = [0i64; 7];
    for g in &groups {
        distribution.insert(g.str(0)?, g.i64(1)?);
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum += g.i64(1 + i)?;
        }
    }
    Ok(Json(json!({
        "nodes": sums[0],
        "totalCru": sums[1],
        "totalSru": sums[2],
        "totalMru": sums[3],
        "totalHru": sums[4],
        "accessNodes": sums[5],
        "gateways": sums[6],
        "countries": distribution.len(),
        "dedicatedNodes": dedicated_nodes,
        "nodesDistribution": distribution,
        "farms": others[0],
        "twins": others[1],
        "publicIps": others[2],
        "contracts": others[3],
        "workloads_number": others[4],
    }))
    .into_response())
}
