//! What nodes report about their contracts: used resources (what billing charges), network bytes,
//! and the state of each workload. Accepted only from the node a contract runs on; free.

use tfgrid_types::deployment::WorkloadResult;
use tfgrid_types::{AccountId, ContractId, NodeId};

use crate::error::DispatchError;
use crate::event::Event;
use crate::limits::REPORT_ENTRIES_MAX;
use crate::runtime::Ctx;
use crate::tfgrid::twin_of;
use crate::types::{ContractData, ContractResources, DeploymentState, NruConsumption};

use super::billing;

/// The node of the calling twin.
fn caller_node(ctx: &Ctx<'_>, account: &AccountId) -> Result<NodeId, DispatchError> {
    let twin = twin_of(ctx, account)?;
    ctx.state
        .node_id_by_twin
        .get(&twin)
        .copied()
        .ok_or(DispatchError::NoNode(twin))
}

/// Checks that the contract is a node contract on `node`.
fn on_node(ctx: &Ctx<'_>, contract_id: ContractId, node: NodeId) -> Result<(), DispatchError> {
    let contract = ctx
        .state
        .contracts
        .get(&contract_id)
        .ok_or(DispatchError::ContractNotFound(contract_id))?;
    match &contract.contract_type {
        ContractData::NodeContract(c) if c.node_id == node => Ok(()),
        ContractData::NodeContract(_) => Err(DispatchError::NotContractNode {
            contract: contract_id,
            node,
        }),
        _ => Err(DispatchError::NotNodeContract(contract_id)),
    }
}

fn check_len(len: usize) -> Result<(), DispatchError> {
    if len > REPORT_ENTRIES_MAX {
        Err(DispatchError::ReportTooLarge(len))
    } else {
        Ok(())
    }
}

pub(super) fn resources(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    reports: &[ContractResources],
) -> Result<(), DispatchError> {
    check_len(reports.len())?;
    let node = caller_node(ctx, &account)?;
    for report in reports {
        on_node(ctx, report.contract_id, node)?;
        ctx.state
            .contract_resources
            .insert(report.contract_id, report.used);
        ctx.emit(Event::UpdatedUsedResources {
            contract_id: report.contract_id,
            used: report.used,
        });
    }
    Ok(())
}

pub(super) fn nru(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    reports: &[NruConsumption],
) -> Result<(), DispatchError> {
    check_len(reports.len())?;
    let node = caller_node(ctx, &account)?;
    for report in reports {
        on_node(ctx, report.contract_id, node)?;
        let last = ctx
            .state
            .contract_billing
            .get(&report.contract_id)
            .map_or(0, |b| b.last_nru_report_s);
        // Older reports were counted already (a node may resend after a restart).
        if report.timestamp > last {
            billing::add_nru(ctx.state, report.contract_id, report);
            ctx.emit(Event::NruConsumptionReportReceived(report.clone()));
        }
    }
    Ok(())
}

pub(super) fn deployment_state(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    contract_id: ContractId,
    version: u32,
    workloads: &[WorkloadResult],
) -> Result<(), DispatchError> {
    check_len(workloads.len())?;
    let node = caller_node(ctx, &account)?;
    on_node(ctx, contract_id, node)?;
    let contract = ctx.state.contracts.get(&contract_id).expect("checked");
    let ContractData::NodeContract(c) = &contract.contract_type else {
        unreachable!("checked")
    };
    for result in workloads {
        if c.deployment.workload(&result.name).is_none() {
            return Err(DispatchError::UnknownWorkload(result.name.clone()));
        }
    }
    let state = DeploymentState {
        reported_at_s: ctx.now_s,
        version,
        workloads: workloads.to_vec(),
    };
    ctx.state.deployment_states.insert(contract_id, state);
    ctx.emit(Event::DeploymentStateReported {
        contract_id,
        node_id: node,
        version,
        workloads: workloads.to_vec(),
    });
    Ok(())
}
