//! `/farms` (with their public IPs and free/used counts) and `/public_ips`.

use std::collections::BTreeMap;

use axum::extract::State;
use serde_json::{Value as Json_, json};

use super::params::{Filter, Params};
use super::{ApiResult, AppState, RawQuery, page_response, page_rows, read};
use crate::error::Error;
use crate::store::{Row, Value};

pub(super) const FARM_FILTERS: &[&str] = &[
    "farm_id",
    "twin_id",
    "name",
    "name_contains",
    "certification_type",
    "dedicated",
    "pricing_policy_id",
    "stellar_address",
    "free_ips",
    "total_ips",
    "node_available_for",
];

/// Kept on the farm row by the indexer.
const FREE_IPS: &str = "f.free_ips";
const TOTAL_IPS: &str = "f.total_ips";

const FARM_SORTS: &[(&str, &str)] = &[
    ("farm_id", "f.farm_id"),
    ("name", "f.name"),
    ("twin_id", "f.twin_id"),
    ("free_ips", "free_ips"),
    ("total_ips", "total_ips"),
    ("used_ips", "used_ips"),
    ("dedicated", "f.dedicated"),
];

fn farm_json(r: &Row, ips: Vec<Json_>) -> Result<Json_, Error> {
    Ok(json!({
        "farmId": r.i64(0)?,
        "name": r.str(1)?,
        "twinId": r.i64(2)?,
        "pricingPolicyId": r.i64(3)?,
        "certificationType": r.str(4)?,
        "dedicated": r.bool(5)?,
        "stellarAddress": r.opt_str(6)?,
        "free_ips": r.i64(7)?,
        "total_ips": r.i64(8)?,
        "used_ips": r.i64(9)?,
        "publicIps": ips,
    }))
}

pub async fn list(State(state): State<AppState>, q: RawQuery) -> ApiResult {
    let p = Params::new(q.0, FARM_FILTERS)?;
    let paging = p.paging()?;
    let mut f = Filter::default();
    if let Some(v) = p.int("farm_id")? {
        f.cmp("f.farm_id", "=", v);
    }
    if let Some(v) = p.int("twin_id")? {
        f.cmp("f.twin_id", "=", v);
    }
    if let Some(v) = p.str("name")? {
        f.eq_nocase("f.name", &v);
    }
    if let Some(v) = p.str("name_contains")? {
        f.contains("f.name", &v);
    }
    if let Some(v) = p.choice_list("certification_type", &["NotCertified", "Gold"])? {
        f.any_of("f.certification", v.into_iter().map(Value::from).collect());
    }
    match p.bool("dedicated")? {
        Some(true) => f.push("f.dedicated = 1"),
        Some(false) => f.push("f.dedicated = 0"),
        None => {}
    }
    if let Some(v) = p.int("pricing_policy_id")? {
        f.cmp("f.pricing_policy_id", "=", v);
    }
    if let Some(v) = p.str("stellar_address")? {
        f.cmp("f.stellar_address", "=", v);
    }
    if let Some(v) = p.int("free_ips")? {
        f.cmp(FREE_IPS, ">=", v);
    }
    if let Some(v) = p.int("total_ips")? {
        f.cmp(TOTAL_IPS, ">=", v);
    }
    if let Some(v) = p.int("node_available_for")? {
        let t = f.bind(v);
        f.push(format!(
            "EXISTS (SELECT 1 FROM nodes n WHERE n.farm_id = f.farm_id AND \
             ((n.rent_contract_id = 0 AND f.dedicated = 0) OR \
             (n.rent_contract_id <> 0 AND n.renter_twin_id = {t})))"
        ));
    }
    let order = p.order_by(FARM_SORTS, "f.farm_id", "f.farm_id")?;
    let rows_sql = format!(
        "SELECT f.farm_id, f.name, f.twin_id, f.pricing_policy_id, f.certification, f.dedicated, \
         f.stellar_address, {FREE_IPS} AS free_ips, {TOTAL_IPS} AS total_ips, \
         {TOTAL_IPS} - {FREE_IPS} AS used_ips FROM farms f {} {order} LIMIT ${} OFFSET ${}",
        f.where_sql(),
        f.params.len() + 1,
        f.params.len() + 2
    );
    let count_sql = format!("SELECT COUNT(*) FROM farms f {}", f.where_sql());
    let mut rows_params = f.params.clone();
    rows_params.push(paging.limit());
    rows_params.push(paging.offset());
    let count_params = f.params;
    let (rows, ips, count) = read(&state, move |sql| {
        let rows = sql.query(&rows_sql, &rows_params)?;
        // The page's farms' IPs in one query.
        let mut ips: BTreeMap<i64, Vec<Json_>> = BTreeMap::new();
        if !rows.is_empty() {
            let mut ipf = Filter::default();
            let ids = rows
                .iter()
                .map(|r| r.i64(0).map(Value::Int))
                .collect::<Result<_, _>>()?;
            ipf.any_of("farm_id", ids);
            let q = format!(
                "SELECT farm_id, ip, gateway, contract_id FROM public_ips {} ORDER BY farm_id, ip",
                ipf.where_sql()
            );
            for r in sql.query(&q, &ipf.params)? {
                ips.entry(r.i64(0)?).or_default().push(json!({
                    "ip": r.str(1)?, "gateway": r.str(2)?, "contract_id": r.i64(3)?,
                }));
            }
        }
        let count = if paging.ret_count {
            Some(sql.query_i64(&count_sql, &count_params)?)
        } else {
            None
        };
        Ok((rows, ips, count))
    })
    .await?;
    let mut ips = ips;
    let items = rows
        .iter()
        .map(|r| farm_json(r, ips.remove(&r.i64(0)?).unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    Ok(page_response(items, count, paging.size))
}

pub(super) const IP_FILTERS: &[&str] = &["farm_ids", "free", "ip", "gateway", "contract_id"];

const IP_SORTS: &[(&str, &str)] = &[
    ("ip", "ip"),
    ("farm_id", "farm_id"),
    ("contract_id", "contract_id"),
];

pub async fn public_ips(State(state): State<AppState>, q: RawQuery) -> ApiResult {
    let p = Params::new(q.0, IP_FILTERS)?;
    let paging = p.paging()?;
    let mut f = Filter::default();
    if let Some(v) = p.int_list("farm_ids")? {
        f.any_of("farm_id", v);
    }
    match p.bool("free")? {
        Some(true) => f.push("contract_id = 0"),
        Some(false) => f.push("contract_id <> 0"),
        None => {}
    }
    if let Some(v) = p.str("ip")? {
        f.cmp("ip", "=", v);
    }
    if let Some(v) = p.str("gateway")? {
        f.cmp("gateway", "=", v);
    }
    if let Some(v) = p.int("contract_id")? {
        f.cmp("contract_id", "=", v);
    }
    let order = p.order_by(IP_SORTS, "farm_id", "ip")?;
    let (rows, count) = page_rows(
        &state,
        "farm_id, ip, gateway, contract_id",
        "FROM public_ips",
        f,
        &order,
        paging,
    )
    .await?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(json!({
                "farm_id": r.i64(0)?, "ip": r.str(1)?, "gateway": r.str(2)?,
                "contract_id": r.i64(3)?,
            }))
        })
        .collect::<Result<_, Error>>()?;
    Ok(page_response(items, count, paging.size))
}
