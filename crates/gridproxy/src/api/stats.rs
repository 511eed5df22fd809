//! `/stats`: counts and totals over the grid, optionally over nodes of some statuses only. The node
//! figures come from one pass over a covering index, grouped by country; grid-wide contract and
//! workload counters are kept by the indexer. The answer changes only when a block is applied or a
//! node's last report ages out of the up window (whole seconds), so it is computed once per query,
//! indexed height and second, and requests in between share it ([`StatsCache`]).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::{Value as Json_, json};

use super::nodes::status_clause;
use super::params::{Filter, Params};
use super::{ApiResult, AppState, RawQuery, now_s, read};
use crate::error::Error;
use crate::indexer::apply;
use crate::limits::STATS_CACHED_MAX;

pub(super) const STATS_FILTERS: &[&str] = &["status"];

/// `/stats` answers by (query, indexed height, unix second), at most `STATS_CACHED_MAX` of them.
#[derive(Debug, Default)]
pub struct StatsCache {
    entries: Mutex<Vec<(StatsKey, Arc<Json_>)>>,
}

type StatsKey = (Vec<(String, String)>, i64, i64);

impl StatsCache {
    fn get(&self, key: &StatsKey) -> Option<Arc<Json_>> {
        let entries = self.entries.lock().expect("stats cache lock");
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// Keeps `value` for `key`, dropping answers of other heights or seconds (never asked again).
    fn put(&self, key: StatsKey, value: Arc<Json_>) {
        let mut entries = self.entries.lock().expect("stats cache lock");
        entries.retain(|((_, height, second), _)| (*height, *second) == (key.1, key.2));
        if entries.len() >= STATS_CACHED_MAX {
            entries.remove(0);
        }
        entries.push((key, value));
    }
}

pub async fn stats(State(state): State<AppState>, q: RawQuery) -> ApiResult {
    let mut query = q.0;
    query.sort();
    let now = now_s();
    let key = (
        query.clone(),
        state.progress.indexed_height.load(Ordering::Acquire),
        now,
    );
    if let Some(answer) = state.stats_cache.get(&key) {
        return Ok(Json(&*answer).into_response());
    }
    let answer = Arc::new(compute(&state, query, now).await?);
    state.stats_cache.put(key, answer.clone());
    Ok(Json(&*answer).into_response())
}

/// The figures, from the store.
async fn compute(state: &AppState, query: Vec<(String, String)>, now: i64) -> Result<Json_, Error> {
    let p = Params::new(query, STATS_FILTERS)?;
    let since = now - state.progress.up_window_s() as i64;
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
    let (groups, dedicated_nodes, others) = read(state, move |sql| {
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
    Ok(json!({
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
}
