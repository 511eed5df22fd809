//! Workload states: `DeploymentStateReported` upserts one `workloads` row per reported workload
//! (state, message, result) and recounts the contract's live workloads, and the grid's
//! active-workload counter with them.

use tfgrid_types::ContractId;
use tfgrid_types::deployment::WorkloadResult;

use super::Ctx;
use super::totals::{ACTIVE_WORKLOADS, add_total};
use crate::error::Error;
use crate::store::{Sql, int};

/// `DeploymentStateReported`.
pub(super) fn reported(
    ctx: &Ctx,
    sql: &mut dyn Sql,
    contract_id: ContractId,
    version: u32,
    workloads: &[WorkloadResult],
) -> Result<(), Error> {
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
                int("contract id", contract_id)?,
                w.name.as_str().into(),
                version.into(),
                state.into(),
                w.message.as_str().into(),
                result.into(),
                int("workload time", w.created)?,
                ctx.now()?,
            ],
        )?;
    }
    refresh(sql, contract_id)
}

/// Recounts a contract's live workloads, and the grid's if the contract is active.
fn refresh(sql: &mut dyn Sql, contract_id: ContractId) -> Result<(), Error> {
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
