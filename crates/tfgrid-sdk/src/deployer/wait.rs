//! Waiting for a node to run a version of a contract: until it has reported every workload `ok` or
//! `error`, showing each state change as it comes, and saying whether the node is alive when it
//! never answers. It follows two subscriptions, without polling: the node's reports as the chain's
//! pool takes them (a block before the ledger records them), and each finalized block's events
//! (a report recorded, or the contract's end); what the chain held before the subscriptions
//! started (a report already recorded, or signed and still pending) is read once. A lost connection
//! is made again through the client's endpoint list and the wait goes on there.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tfchain_client::api::{ContractView, PendingReport, TfchainApiClient};
use tfchain_client::{Backoff, ClientError};
use tfchain_runtime::types::{Cause, ContractState, DeploymentState};
use tfchain_runtime::{Event, EventRecord};
use tfgrid_types::deployment::{ResultState, Workload, WorkloadResult};
use tfgrid_types::{ContractId, NodeId};

use super::{ApplyOptions, ContractApplied, Failure, Progress};
use crate::{Error, Grid};

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
#[derive(Clone, Copy)]
pub(super) struct Step<'a> {
    pub project: &'a str,
    pub node_id: NodeId,
    pub contract_id: ContractId,
    pub version: u32,
    pub expected: &'a [Workload],
}

/// What a block's events say of a version of a contract.
#[derive(Debug, PartialEq)]
enum Seen {
    Report(Vec<WorkloadResult>),
    Deleted(Cause),
}

/// The node's last report of `version` of `contract_id` in a block's events, or the contract's
/// end, if either is there.
fn observe(contract_id: ContractId, version: u32, events: &[EventRecord]) -> Option<Seen> {
    events.iter().rev().find_map(|e| match &e.event {
        Event::DeploymentStateReported {
            contract_id: id,
            version: v,
            workloads,
            ..
        } if *id == contract_id && *v == version => Some(Seen::Report(workloads.clone())),
        Event::NodeContractCanceled {
            contract_id: id,
            cause,
            ..
        } if *id == contract_id => Some(Seen::Deleted(*cause)),
        _ => None,
    })
}

/// The node's report of `version` of `contract_id`, if a pending report is that.
fn pending(contract_id: ContractId, version: u32, report: PendingReport) -> Option<Seen> {
    (report.contract_id == contract_id && report.state.version == version)
        .then_some(Seen::Report(report.state.workloads))
}

/// The contract's state before the subscription started: its end, or the node's report so far.
async fn before(grid: &Grid, contract_id: ContractId, version: u32) -> Result<Option<Seen>, Error> {
    let view = grid.contract(contract_id).await?.ok_or_else(|| {
        Error::NotFound(format!("contract {contract_id} disappeared while waiting"))
    })?;
    if let ContractState::Deleted(cause) = view.contract.state {
        return Ok(Some(Seen::Deleted(cause)));
    }
    let state = reported(grid, &view, version).await?;
    Ok(state.map(|(s, _)| Seen::Report(s.workloads)))
}

/// Whether every expected workload is `ok` or `error` in a report.
fn settled(expected: &[Workload], report: &[WorkloadResult]) -> bool {
    expected.iter().all(|w| {
        report
            .iter()
            .any(|r| r.name == w.name && matches!(r.state, ResultState::Ok | ResultState::Error))
    })
}

/// Waits until the node has reported the step's version with every workload `ok` or `error`;
/// reports each state change as it comes. A lost connection is made again through the client's
/// endpoint list after a short, growing pause, and the wait starts over on the new one (subscribed
/// again, the contract read again), each state change still shown once.
pub(super) async fn wait(
    grid: &Grid,
    step: Step<'_>,
    options: &ApplyOptions,
    started: Instant,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ContractApplied, Error> {
    let deadline = tokio::time::Instant::now() + options.timeout;
    let mut shown = BTreeMap::new();
    let mut backoff = Backoff::default();
    loop {
        let watched = watch(grid, step, &mut shown, &mut backoff, started, progress);
        match tokio::time::timeout_at(deadline, watched).await {
            Ok(Err(e)) if lost_connection(&e) => {}
            Ok(done) => return done,
            Err(_) => {
                let why = silent_node(grid, step.node_id, step.version, options.timeout).await?;
                let failure = Failure {
                    timed_out: Some(why),
                    ..Failure::new(step.project, step.node_id, Some(step.contract_id), vec![])
                };
                return Err(Error::Failed(Box::new(failure)));
            }
        }
        let pause = tokio::time::Instant::now() + backoff.next_delay();
        tokio::time::sleep_until(pause.min(deadline)).await;
    }
}

/// Whether `e` is the connection to the chain lost (or not made again yet): the wait goes on.
fn lost_connection(e: &Error) -> bool {
    matches!(
        e,
        Error::Chain {
            source: ClientError::Transport(_) | ClientError::Connect { .. },
            ..
        }
    )
}

/// The wait on one connection: made again if it was lost, then subscribed, and the contract read
/// once; ends with the node's settled report, or an error ([`lost_connection`] when the connection
/// goes).
async fn watch(
    grid: &Grid,
    step: Step<'_>,
    shown: &mut BTreeMap<String, (ResultState, String)>,
    backoff: &mut Backoff,
    started: Instant,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ContractApplied, Error> {
    let Step {
        project,
        node_id,
        contract_id,
        version,
        expected,
    } = step;
    let events = format!("following the chain's events while waiting for contract {contract_id}");
    grid.client
        .ensure_connected()
        .await
        .map_err(Error::chain(&events))?;
    let rpc = grid.client.rpc();
    // Subscribed first, so no block falls between what is read now and what the events say.
    let mut reports = rpc.subscribe_pending_reports().await?;
    let mut blocks = rpc.subscribe_events().await?;
    let mut seen = before(grid, contract_id, version).await?;
    backoff.reset();
    loop {
        match seen.take() {
            Some(Seen::Deleted(cause)) => {
                return Err(Error::NotFound(format!(
                    "contract {contract_id} was deleted ({cause:?}) while waiting"
                )));
            }
            Some(Seen::Report(workloads)) => {
                for r in &workloads {
                    let now = (r.state, r.message.clone());
                    if shown.get(&r.name) != Some(&now) {
                        shown.insert(r.name.clone(), now);
                        progress(Progress::Workload {
                            result: r,
                            elapsed: started.elapsed(),
                        });
                    }
                }
                if settled(expected, &workloads) {
                    let failed: Vec<(String, String)> = workloads
                        .iter()
                        .filter(|r| r.state == ResultState::Error)
                        .map(|r| (r.name.clone(), r.message.clone()))
                        .collect();
                    if !failed.is_empty() {
                        let failure = Failure::new(project, node_id, Some(contract_id), failed);
                        return Err(Error::Failed(Box::new(failure)));
                    }
                    return Ok(ContractApplied {
                        contract_id,
                        node_id,
                        version,
                        workloads,
                    });
                }
            }
            None => {}
        }
        let next = tokio::select! {
            report = reports.next() => report.map(|r| r.map(|r| pending(contract_id, version, r))),
            block = blocks.next() => block.map(|b| b.map(|b| observe(contract_id, version, &b.events))),
        };
        let lost = |why: String| Error::Chain {
            step: events.clone(),
            source: ClientError::Transport(why),
        };
        seen = match next {
            Some(Ok(now)) => now,
            Some(Err(e)) => return Err(lost(e.to_string())),
            None => return Err(lost("the subscription closed".into())),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use tfgrid_types::deployment::ResultData;

    fn result(name: &str, state: ResultState) -> WorkloadResult {
        WorkloadResult {
            name: name.into(),
            created: 0,
            state,
            message: String::new(),
            data: ResultData::None,
        }
    }

    fn reported(contract_id: ContractId, version: u32, state: ResultState) -> EventRecord {
        EventRecord {
            tx_index: Some(0),
            event: Event::DeploymentStateReported {
                contract_id,
                node_id: 1,
                version,
                workloads: vec![result("db", state)],
            },
        }
    }

    #[test]
    fn a_block_says_what_it_holds_of_one_version_of_one_contract() {
        let events = [
            reported(7, 1, ResultState::Ok),
            reported(8, 2, ResultState::Ok),
            reported(8, 2, ResultState::Error),
        ];
        // The last report of the version asked for counts; others are not this one.
        let last = Some(Seen::Report(vec![result("db", ResultState::Error)]));
        assert_eq!(observe(8, 2, &events), last);
        assert_eq!(observe(8, 1, &events), None);
        assert_eq!(observe(9, 2, &events), None);
        let canceled = EventRecord {
            tx_index: None,
            event: Event::NodeContractCanceled {
                contract_id: 9,
                node_id: 1,
                twin_id: 3,
                cause: Cause::OutOfFunds,
            },
        };
        assert_eq!(
            observe(9, 2, &[canceled]),
            Some(Seen::Deleted(Cause::OutOfFunds))
        );
    }

    #[test]
    fn settled_when_every_expected_workload_is_ok_or_error() {
        let db = |state| vec![result("db", state)];
        let expected = [Workload {
            version: 0,
            name: "db".into(),
            metadata: String::new(),
            description: String::new(),
            data: tfgrid_types::deployment::WorkloadData::Zmount(
                tfgrid_types::deployment::Zmount { size: 1 },
            ),
        }];
        assert!(settled(&expected, &db(ResultState::Ok)));
        assert!(settled(&expected, &db(ResultState::Error)));
        assert!(!settled(&expected, &db(ResultState::Init)));
        assert!(!settled(&expected, &[]));
    }
}
