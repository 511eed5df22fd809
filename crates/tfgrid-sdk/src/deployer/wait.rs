//! Waiting for a node to run a version of a contract: until it has reported every workload `ok` or
//! `error` (its signed report counts as soon as the chain has it pending, a block before the ledger
//! records it), showing each state change as it comes, and saying whether the node is alive when
//! it never answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tfchain_client::api::{ContractView, TfchainApiClient};
use tfchain_runtime::types::{ContractState, DeploymentState};
use tfgrid_types::deployment::{ResultState, Workload};
use tfgrid_types::{ContractId, NodeId};

use super::{Applied, ApplyOptions, Failure, Progress};
use crate::{Error, Grid};

/// How often apply looks for the node's report while it waits.
const POLL: Duration = Duration::from_millis(100);

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The node's report of `version` of a contract: the ledger's record, or else the node's signed
/// report still waiting for a block (then `true`).
pub async fn reported(
    grid: &Grid,
    view: &ContractView,
    version: u32,
) -> Result<Option<(DeploymentState, bool)>, Error> {
    if let Some(recorded) = view
        .deployment_state
        .as_ref()
        .filter(|s| s.version == version)
    {
        return Ok(Some((recorded.clone(), false)));
    }
    let pending = grid
        .client
        .rpc()
        .pending_deployment_state(view.contract.contract_id)
        .await?;
    Ok(pending.filter(|s| s.version == version).map(|s| (s, true)))
}

/// A version of a project's contract to wait for, and the workloads it holds.
pub(super) struct Step<'a> {
    pub project: &'a str,
    pub node_id: NodeId,
    pub contract_id: ContractId,
    pub version: u32,
    pub expected: &'a [Workload],
}

/// Polls until the node has reported the step's version with every workload `ok` or `error`, in a
/// block or in its signed report still waiting for one (so apply ends a block earlier); reports
/// each state change as it comes.
pub(super) async fn wait(
    grid: &Grid,
    step: Step<'_>,
    options: &ApplyOptions,
    started: Instant,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Applied, Error> {
    let Step {
        project,
        node_id,
        contract_id,
        version,
        expected,
    } = step;
    let deadline = Instant::now() + options.timeout;
    let mut shown: BTreeMap<String, (ResultState, String)> = BTreeMap::new();
    let failure = |failed, timed_out| Failure {
        project: project.to_owned(),
        node_id,
        contract_id,
        failed,
        timed_out,
        canceled: false,
        updated: false,
    };
    loop {
        let view = grid.contract(contract_id).await?.ok_or_else(|| {
            Error::NotFound(format!("contract {contract_id} disappeared while waiting"))
        })?;
        if let ContractState::Deleted(cause) = view.contract.state {
            return Err(Error::NotFound(format!(
                "contract {contract_id} was deleted ({cause:?}) while waiting"
            )));
        }
        let state = reported(grid, &view, version).await?.map(|(s, _)| s);
        if let Some(state) = state {
            for r in &state.workloads {
                let seen = (r.state, r.message.clone());
                if shown.get(&r.name) != Some(&seen) {
                    shown.insert(r.name.clone(), seen);
                    progress(Progress::Workload {
                        result: r,
                        elapsed: started.elapsed(),
                    });
                }
            }
            let settled = |name: &str| {
                state.workloads.iter().any(|r| {
                    r.name == name && matches!(r.state, ResultState::Ok | ResultState::Error)
                })
            };
            if expected.iter().all(|w| settled(&w.name)) {
                let failed: Vec<(String, String)> = state
                    .workloads
                    .iter()
                    .filter(|r| r.state == ResultState::Error)
                    .map(|r| (r.name.clone(), r.message.clone()))
                    .collect();
                if !failed.is_empty() {
                    return Err(Error::Failed(failure(failed, None)));
                }
                return Ok(Applied {
                    project: project.to_owned(),
                    contract_id,
                    node_id,
                    version,
                    workloads: state.workloads,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
            }
        }
        if Instant::now() >= deadline {
            let why = silent_node(grid, node_id, version, options.timeout).await?;
            return Err(Error::Failed(failure(vec![], Some(why))));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why a node did not report `version` within `timeout`, with when it was last seen alive.
async fn silent_node(
    grid: &Grid,
    node_id: NodeId,
    version: u32,
    timeout: Duration,
) -> Result<String, Error> {
    let node = grid.client.rpc().node(node_id).await?;
    let seen = node
        .and_then(|n| n.uptime)
        .map(|u| now_s().saturating_sub(u.reported_at_s));
    let liveness = match seen {
        Some(s) => format!("its last uptime report was {s} s ago"),
        None => "it never reported its uptime".into(),
    };
    Ok(format!(
        "node {node_id} did not report version {version} within {timeout:?} ({liveness}): is it down?"
    ))
}
