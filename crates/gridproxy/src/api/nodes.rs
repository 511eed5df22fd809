//! `/nodes`, `/nodes/{id}`, `/gateways`, `/gateways/{id}`: nodes with their capacity (total, used by
//! active contracts, free as the node agent counts it), status, location, farm and renting, and the
//! grid proxy's filters.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::{Value as Json_, json};

use super::params::{Filter, Params};
use super::{ApiResult, AppState, RawQuery, now_s, page_response, page_rows, path_id, read};
use crate::error::Error;
use crate::store::{Row, Value};

pub(super) const FILTERS: &[&str] = &[
    "free_mru",
    "free_sru",
    "free_hru",
    "total_mru",
    "total_sru",
    "total_hru",
    "total_cru",
    "status",
    "farm_ids",
    "farm_name",
    "farm_name_contains",
    "country",
    "country_contains",
    "city",
    "city_contains",
    "dedicated",
    "in_dedicated_farm",
    "rentable",
    "rented",
    "rented_by",
    "available_for",
    "domain",
    "ipv4",
    "ipv6",
    "free_ips",
    "node_id",
    "node_ids",
    "twin_id",
    "owned_by",
    "excluded",
    "certification_type",
];

/// The node's status: standby when powered down (or asked to be), up when its last uptime report
/// is recent, down otherwise. `since` is a number we computed, not user input.
pub fn status_sql(since: i64) -> String {
    format!(
        "(CASE WHEN n.power_state = 'Down' OR n.power_target = 'Down' THEN 'standby' \
         WHEN n.last_report_s >= {since} THEN 'up' ELSE 'down' END)"
    )
}

/// Free public IPs of the node's farm, kept on the farm row by the indexer.
const FREE_IPS_SQL: &str = "f.free_ips";

/// A WHERE clause for nodes of any of `statuses`, written so the store can use its indexes (the
/// same predicates as [`status_sql`]).
pub fn status_clause(statuses: &[&str], since: i64) -> String {
    let parts: Vec<String> = statuses
        .iter()
        .map(|s| match *s {
            "up" => format!(
                "(n.power_state = 'Up' AND n.power_target = 'Up' AND n.last_report_s >= {since})"
            ),
            "down" => format!(
                "(n.power_state = 'Up' AND n.power_target = 'Up' AND n.last_report_s < {since})"
            ),
            _ => "(n.power_state = 'Down' OR n.power_target = 'Down')".to_owned(),
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

const SORTS: &[(&str, &str)] = &[
    ("node_id", "n.node_id"),
    ("farm_id", "n.farm_id"),
    ("twin_id", "n.twin_id"),
    ("uptime", "n.uptime_s"),
    ("created", "n.created"),
    ("updated_at", "n.updated_at"),
    ("country", "n.country"),
    ("city", "n.city"),
    ("status", "status"),
    ("free_mru", "n.free_mru"),
    ("free_sru", "n.free_sru"),
    ("free_hru", "n.free_hru"),
    ("total_cru", "n.total_cru"),
    ("total_mru", "n.total_mru"),
    ("total_sru", "n.total_sru"),
    ("total_hru", "n.total_hru"),
    ("used_cru", "n.used_cru"),
    ("used_mru", "n.used_mru"),
    ("used_sru", "n.used_sru"),
    ("used_hru", "n.used_hru"),
    ("rent_contract_id", "n.rent_contract_id"),
    ("free_ips", "farm_free_ips"),
];

fn columns(status: &str) -> String {
    format!(
        "n.node_id, n.farm_id, f.name, n.twin_id, n.country, n.city, n.latitude, n.longitude, \
         n.created, n.farming_policy_id, n.updated_at, n.total_cru, n.total_mru, n.total_sru, \
         n.total_hru, n.used_cru, n.used_mru, n.used_sru, n.used_hru, n.free_mru, n.free_sru, \
         n.free_hru, n.ipv4, n.gw4, n.ipv6, n.gw6, n.domain, n.certification, f.dedicated, \
         n.rent_contract_id, n.renter_twin_id, n.serial_number, n.power_state, n.power_target, \
         n.uptime_s, n.last_report_s, {status} AS status, {FREE_IPS_SQL} AS farm_free_ips, \
         n.secure_boot, n.virtualized, n.connection_price"
    )
}

fn node_json(r: &Row) -> Result<Json_, Error> {
    let dedicated = r.bool(28)?;
    let rent = r.i64(29)?;
    let domain = r.opt_str(26)?;
    let ipv4 = r.opt_str(22)?;
    let public_config = match (&ipv4, &domain) {
        (None, None) => Json_::Null,
        _ => json!({
            "ipv4": ipv4, "gw4": r.opt_str(23)?, "ipv6": r.opt_str(24)?,
            "gw6": r.opt_str(25)?, "domain": domain,
        }),
    };
    Ok(json!({
        "id": r.i64(0)?,
        "nodeId": r.i64(0)?,
        "farmId": r.i64(1)?,
        "farmName": r.str(2)?,
        "twinId": r.i64(3)?,
        "country": r.str(4)?,
        "city": r.str(5)?,
        "location": {
            "country": r.str(4)?, "city": r.str(5)?,
            "latitude": r.str(6)?, "longitude": r.str(7)?,
        },
        "created": r.i64(8)?,
        "farmingPolicyId": r.i64(9)?,
        "updatedAt": r.i64(10)?,
        "total_resources": { "cru": r.i64(11)?, "mru": r.i64(12)?, "sru": r.i64(13)?, "hru": r.i64(14)? },
        "used_resources": { "cru": r.i64(15)?, "mru": r.i64(16)?, "sru": r.i64(17)?, "hru": r.i64(18)? },
        "free_resources": { "mru": r.i64(19)?, "sru": r.i64(20)?, "hru": r.i64(21)? },
        "publicConfig": public_config,
        "certificationType": r.str(27)?,
        "dedicated": dedicated,
        "inDedicatedFarm": dedicated,
        "rentContractId": rent,
        "rented": rent != 0,
        "rentable": dedicated && rent == 0,
        "rentedByTwinId": r.i64(30)?,
        "serialNumber": r.opt_str(31)?,
        "power": { "state": r.str(32)?, "target": r.str(33)? },
        "uptime": r.i64(34)?,
        "lastUptimeReport": r.i64(35)?,
        "status": r.str(36)?,
        "farm_free_ips": r.i64(37)?,
        "secureBoot": r.bool(38)?,
        "virtualized": r.bool(39)?,
        "connectionPrice": r.i64(40)?,
    }))
}

fn bool_clause(f: &mut Filter, value: Option<bool>, when_true: &str, when_false: &str) {
    match value {
        Some(true) => f.push(when_true),
        Some(false) => f.push(when_false),
        None => {}
    }
}

/// The WHERE clauses of the node filters.
fn filter(p: &Params, since: i64, gateways_only: bool) -> Result<Filter, Error> {
    let mut f = Filter::default();
    for (name, column) in [
        ("free_mru", "n.free_mru"),
        ("free_sru", "n.free_sru"),
        ("free_hru", "n.free_hru"),
        ("total_mru", "n.total_mru"),
        ("total_sru", "n.total_sru"),
        ("total_hru", "n.total_hru"),
        ("total_cru", "n.total_cru"),
    ] {
        if let Some(v) = p.int(name)? {
            f.cmp(column, ">=", v);
        }
    }
    if let Some(v) = p.choice_list("status", &["up", "down", "standby"])? {
        f.push(status_clause(&v, since));
    }
    if let Some(v) = p.int_list("farm_ids")? {
        f.any_of("n.farm_id", v);
    }
    if let Some(v) = p.str("farm_name")? {
        f.eq_nocase("f.name", &v);
    }
    if let Some(v) = p.str("farm_name_contains")? {
        f.contains("f.name", &v);
    }
    if let Some(v) = p.str("country")? {
        f.eq_nocase("n.country", &v);
    }
    if let Some(v) = p.str("country_contains")? {
        f.contains("n.country", &v);
    }
    if let Some(v) = p.str("city")? {
        f.eq_nocase("n.city", &v);
    }
    if let Some(v) = p.str("city_contains")? {
        f.contains("n.city", &v);
    }
    for name in ["dedicated", "in_dedicated_farm"] {
        bool_clause(&mut f, p.bool(name)?, "f.dedicated = 1", "f.dedicated = 0");
    }
    bool_clause(
        &mut f,
        p.bool("rentable")?,
        "(f.dedicated = 1 AND n.rent_contract_id = 0)",
        "NOT (f.dedicated = 1 AND n.rent_contract_id = 0)",
    );
    bool_clause(
        &mut f,
        p.bool("rented")?,
        "n.rent_contract_id <> 0",
        "n.rent_contract_id = 0",
    );
    if let Some(v) = p.int("rented_by")? {
        f.push("n.rent_contract_id <> 0");
        f.cmp("n.renter_twin_id", "=", v);
    }
    if let Some(v) = p.int("available_for")? {
        let t = f.bind(v);
        f.push(format!(
            "((n.rent_contract_id = 0 AND f.dedicated = 0) OR \
             (n.rent_contract_id <> 0 AND n.renter_twin_id = {t}))"
        ));
    }
    let domain = if gateways_only {
        if p.bool("domain")? == Some(false) {
            return Err(Error::bad_param("domain", "gateways always have a domain"));
        }
        Some(true)
    } else {
        p.bool("domain")?
    };
    bool_clause(&mut f, domain, "n.domain IS NOT NULL", "n.domain IS NULL");
    bool_clause(
        &mut f,
        p.bool("ipv4")?,
        "n.ipv4 IS NOT NULL",
        "n.ipv4 IS NULL",
    );
    bool_clause(
        &mut f,
        p.bool("ipv6")?,
        "n.ipv6 IS NOT NULL",
        "n.ipv6 IS NULL",
    );
    if let Some(v) = p.int("free_ips")? {
        f.cmp(FREE_IPS_SQL, ">=", v);
    }
    if let Some(v) = p.int("node_id")? {
        f.cmp("n.node_id", "=", v);
    }
    if let Some(v) = p.int_list("node_ids")? {
        f.any_of("n.node_id", v);
    }
    if let Some(v) = p.int("twin_id")? {
        f.cmp("n.twin_id", "=", v);
    }
    if let Some(v) = p.int("owned_by")? {
        f.cmp("f.twin_id", "=", v);
    }
    if let Some(v) = p.int_list("excluded")? {
        f.none_of("n.node_id", v);
    }
    if let Some(v) = p.choice_list("certification_type", &["Certified", "Diy"])? {
        f.any_of("n.certification", v.into_iter().map(Value::from).collect());
    }
    Ok(f)
}

async fn list_nodes(state: AppState, q: RawQuery, gateways_only: bool) -> ApiResult {
    let p = Params::new(q.0, FILTERS)?;
    let paging = p.paging()?;
    let since = now_s() - state.progress.up_window_s() as i64;
    let status = status_sql(since);
    let f = filter(&p, since, gateways_only)?;
    let order = p.order_by(SORTS, "n.node_id", "n.node_id")?;
    let from = "FROM nodes n JOIN farms f ON f.farm_id = n.farm_id";
    let (rows, count) = page_rows(&state, &columns(&status), from, f, &order, paging).await?;
    let items = rows.iter().map(node_json).collect::<Result<_, _>>()?;
    Ok(page_response(items, count, paging.size))
}

pub async fn list(State(state): State<AppState>, q: RawQuery) -> ApiResult {
    list_nodes(state, q, false).await
}

/// Gateways: nodes with a domain in their public config (`domain=true` is implied).
pub async fn gateways(State(state): State<AppState>, q: RawQuery) -> ApiResult {
    list_nodes(state, q, true).await
}

async fn one_node(state: AppState, raw: String, gateways_only: bool) -> ApiResult {
    let id = path_id("id", &raw)?;
    let status = status_sql(now_s() - state.progress.up_window_s() as i64);
    let sql_text = format!(
        "SELECT {} FROM nodes n JOIN farms f ON f.farm_id = n.farm_id WHERE n.node_id = $1",
        columns(&status)
    );
    let (row, contracts, rewards) = read(&state, move |sql| {
        let row = sql.query_opt(&sql_text, &[Value::Int(id)])?;
        let contracts = sql.query_i64(
            "SELECT COUNT(*) FROM contracts WHERE node_id = $1 AND contract_type = 'node' \
             AND state <> 'Deleted'",
            &[Value::Int(id)],
        )?;
        let rewards = sql.query_i64(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM farming_rewards \
             WHERE node_id = $1",
            &[Value::Int(id)],
        )?;
        Ok((row, contracts, rewards))
    })
    .await?;
    let row = row.ok_or_else(|| Error::NotFound(format!("node {id}")))?;
    let mut node = node_json(&row)?;
    if gateways_only && node["publicConfig"]["domain"].is_null() {
        return Err(Error::NotFound(format!("gateway {id}")).into());
    }
    node["num_contracts"] = json!(contracts);
    node["farming_rewards_total"] = super::units(rewards);
    Ok(Json(node).into_response())
}

pub async fn one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    one_node(state, id, false).await
}

pub async fn gateway(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    one_node(state, id, true).await
}
