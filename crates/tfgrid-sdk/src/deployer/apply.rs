//! Apply of a plan: create the contract (version 0) or update it to the next version(s), with the
//! name contracts its gateways need, then wait until the node has run it. A workload type that
//! cannot change in place is replaced in two versions: removed, then added anew. When a workload
//! fails or the node never answers, what this apply created is canceled again (unless kept on
//! purpose), so nothing is left half-made. An account that cannot pay an hour of what it asks for
//! is refused before anything is created (as the plan refused it).

use std::time::{Duration, Instant};

use serde::Serialize;
use tfchain_client::api::TfchainApiClient;
use tfgrid_types::deployment::WorkloadResult;
use tfgrid_types::{ContractId, NodeId};

use super::check;
use super::diff::{self, Action};
use super::names::{cancel_names, submit_names, wait_names};
use super::state::{State, digests};
use super::wait::{Step, wait};
use super::{Current, Plan, metadata};
use crate::{Error, Grid};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Keep the contract an apply created even when its workloads fail.
    pub keep_on_error: bool,
    /// How long to wait for the node to report every workload.
    pub timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            keep_on_error: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What an apply shows while it works.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// A chain call is starting.
    Submitting(&'a str),
    /// It is in a finalized block.
    Included {
        what: &'a str,
        height: u64,
        elapsed: Duration,
    },
    /// The node reported a workload's new state.
    Workload {
        result: &'a WorkloadResult,
        elapsed: Duration,
    },
}

/// A project as applied: its contract and every workload's result.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub project: String,
    pub contract_id: ContractId,
    pub node_id: NodeId,
    pub version: u32,
    pub workloads: Vec<WorkloadResult>,
    pub elapsed_ms: u64,
}

/// Why an apply failed, and what was done about it.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub project: String,
    pub node_id: NodeId,
    pub contract_id: ContractId,
    /// Workloads in error, with the node's message.
    pub failed: Vec<(String, String)>,
    /// Set when the node did not report in time.
    pub timed_out: Option<String>,
    /// The created contract was canceled again.
    pub canceled: bool,
    /// The apply updated an existing contract, which now holds the failed version.
    pub updated: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "applying {} on node {} failed",
            self.project, self.node_id
        )?;
        for (name, message) in &self.failed {
            write!(f, "\n  workload {name}: {message}")?;
        }
        if let Some(why) = &self.timed_out {
            write!(f, "\n  {why}")?;
        }
        if self.canceled {
            write!(
                f,
                "\ncontract {} was canceled: nothing of this apply is left",
                self.contract_id
            )
        } else if self.updated {
            write!(
                f,
                "\ncontract {} holds the new version with what failed: fix the file and apply again, or destroy",
                self.contract_id
            )
        } else {
            write!(
                f,
                "\ncontract {} is kept (--keep-on-error): destroy it when done",
                self.contract_id
            )
        }
    }
}

/// Applies a plan and waits for the node to run it.
pub async fn apply(
    grid: &Grid,
    plan: &Plan,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Applied, Error> {
    let started = Instant::now();
    // Checked again: the balance may have changed since the plan.
    let available = grid.client.rpc().account(grid.key.account()).await?.free;
    check::funds(
        &plan.project,
        plan.cost_per_hour,
        plan.cost_per_hour_now,
        available,
    )?;
    match &plan.current {
        None => create(grid, plan, options, started, progress).await,
        Some(current) if !plan.has_changes() => {
            let view = grid.contract(current.contract_id).await?;
            let workloads = view
                .and_then(|v| v.deployment_state)
                .map(|s| s.workloads)
                .unwrap_or_default();
            Ok(Applied {
                project: plan.project.clone(),
                contract_id: current.contract_id,
                node_id: current.node_id,
                version: current.deployment.version,
                workloads,
                elapsed_ms: started.elapsed().as_millis() as u64,
            })
        }
        Some(current) => update(grid, plan, current, options, started, progress).await,
    }
}

/// Creates the project's contract and its name contracts, then waits for the node.
async fn create(
    grid: &Grid,
    plan: &Plan,
    options: &ApplyOptions,
    started: Instant,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Applied, Error> {
    let pending = submit_names(grid, &plan.names, progress).await?;
    let what = format!("creating the contract on node {}", plan.node_id);
    progress(Progress::Submitting(&what));
    let created = grid
        .create_deployment(
            plan.node_id,
            plan.workloads.clone(),
            metadata(&plan.project),
            plan.description.clone(),
            None,
        )
        .await;
    let (names, names_failed) = wait_names(grid, pending).await;
    let (contract, included) = match (created, names_failed) {
        (Ok(created), None) => created,
        (Ok((contract, _)), Some(e)) => {
            grid.cancel(contract.contract_id).await?;
            cancel_names(grid, &names).await?;
            return Err(e);
        }
        (Err(e), _) => {
            cancel_names(grid, &names).await?;
            return Err(e);
        }
    };
    progress(Progress::Included {
        what: &format!("contract {}", contract.contract_id),
        height: included.height,
        elapsed: started.elapsed(),
    });
    let created = names.iter().map(|(n, _)| n.clone()).collect();
    save_state(grid, plan, plan.node_id, contract.contract_id, created)?;
    let step = Step {
        project: &plan.project,
        node_id: plan.node_id,
        contract_id: contract.contract_id,
        version: 0,
        expected: &plan.workloads,
    };
    match wait(grid, step, options, started, progress).await {
        Err(Error::Failed(mut failure)) if !options.keep_on_error => {
            grid.cancel(contract.contract_id).await?;
            cancel_names(grid, &names).await?;
            plan.state.remove()?;
            failure.canceled = true;
            Err(Error::Failed(failure))
        }
        waited => waited,
    }
}

/// Updates the project's contract to the plan's version(s), creating the name contracts it needs
/// with the first and canceling those it dropped after the last.
async fn update(
    grid: &Grid,
    plan: &Plan,
    current: &Current,
    options: &ApplyOptions,
    started: Instant,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Applied, Error> {
    let pending = submit_names(grid, &plan.names, progress).await?;
    let mut names = Some(pending);
    let mut applied = None;
    for workloads in diff::versions(&plan.workloads, &plan.changes) {
        let what = format!("updating contract {}", current.contract_id);
        progress(Progress::Submitting(&what));
        let updated = grid
            .update_deployment(
                current.contract_id,
                workloads.clone(),
                &plan.secrets_changed,
                metadata(&plan.project),
                plan.description.clone(),
                None,
            )
            .await;
        // The names were submitted with the first version: they are in its block or before.
        let d = match names.take() {
            Some(pending) => match (updated, wait_names(grid, pending).await) {
                (Ok(d), (created, None)) => {
                    let mut recorded = plan.created_names.clone();
                    recorded.extend(created.into_iter().map(|(n, _)| n));
                    save_state(grid, plan, current.node_id, current.contract_id, recorded)?;
                    d
                }
                (Err(e), (created, _)) | (Ok(_), (created, Some(e))) => {
                    cancel_names(grid, &created).await?;
                    return Err(e);
                }
            },
            None => updated?,
        };
        progress(Progress::Included {
            what: &format!("contract {} version {}", current.contract_id, d.version),
            height: 0,
            elapsed: started.elapsed(),
        });
        let step = Step {
            project: &plan.project,
            node_id: plan.node_id,
            contract_id: current.contract_id,
            version: d.version,
            expected: &workloads,
        };
        let done = wait(grid, step, options, started, progress)
            .await
            .map_err(|e| match e {
                Error::Failed(mut f) => {
                    f.updated = true;
                    Error::Failed(f)
                }
                other => other,
            })?;
        applied = Some(done);
    }
    let dropped: Vec<(String, ContractId)> = plan
        .names_to(Action::Remove)
        .filter_map(|n| Some((n.name.clone(), n.contract_id?)))
        .collect();
    cancel_names(grid, &dropped).await?;
    let mut recorded = plan.state.load()?.map(|s| s.names).unwrap_or_default();
    recorded.retain(|n| !dropped.iter().any(|(d, _)| d == n));
    save_state(grid, plan, current.node_id, current.contract_id, recorded)?;
    Ok(applied.expect("at least one version"))
}

/// Records the project's contract, its secrets' digests and the gateway names it created.
fn save_state(
    grid: &Grid,
    plan: &Plan,
    node_id: NodeId,
    contract_id: ContractId,
    names: Vec<String>,
) -> Result<(), Error> {
    plan.state.save(&State {
        project: plan.project.clone(),
        genesis: grid.client.genesis_hash(),
        node_id,
        contract_id,
        secrets: digests(&plan.workloads),
        names,
    })
}
