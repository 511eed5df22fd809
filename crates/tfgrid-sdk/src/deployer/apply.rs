//! Apply of a plan over the project's nodes: on each node create the contract (version 0) or
//! update it to the next version(s), all together, with the name contracts its gateways need,
//! then wait until every node has run it. A workload type that cannot change in place is replaced
//! in two versions: removed, then added anew (every node writes its first version, all are waited
//! for, then the second). Then the rendezvous of the private network: the endpoints the nodes
//! reported are read from their results, and the members whose peers lack one or hold a stale one
//! are updated and waited for again. Last, the contracts of nodes that no longer run anything of
//! the project are canceled. When a workload fails, a call is refused or a node never answers,
//! what this apply created on every node is canceled again (unless kept on purpose), so nothing
//! is left half-made; contracts it updated hold the new version. An account that cannot pay an
//! hour of what it asks for is refused before anything is created (as the plan refused it).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use tfchain_client::api::TfchainApiClient;
use tfgrid_types::deployment::{Workload, WorkloadResult};
use tfgrid_types::{ContractId, Hash32, NodeId};

use super::names::{cancel_names, submit_names, wait_names};
use super::network::{self, rendezvous};
use super::state::{ContractRecord, State};
use super::wait::{Step, wait};
use super::{NodePlan, Plan, check, metadata};
use crate::{Error, Grid};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Keep the contracts an apply created even when its workloads fail.
    pub keep_on_error: bool,
    /// How long to wait for a node to report every workload of a version.
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
    /// Waiting for a node to run a version of its contract; its workloads' states follow.
    Waiting {
        node_id: NodeId,
        contract_id: ContractId,
        version: u32,
    },
    /// The node waited for reported a workload's new state.
    Workload {
        result: &'a WorkloadResult,
        elapsed: Duration,
    },
}

/// One contract as applied: its version and every workload's result.
#[derive(Debug, Clone, Serialize)]
pub struct ContractApplied {
    pub contract_id: ContractId,
    pub node_id: NodeId,
    pub version: u32,
    pub workloads: Vec<WorkloadResult>,
}

/// A project as applied: its contracts by node, and every workload's result.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub project: String,
    pub contracts: Vec<ContractApplied>,
    /// The first contract's (by node id; the only one of a project on one node).
    pub contract_id: ContractId,
    pub node_id: NodeId,
    pub version: u32,
    /// Every contract's results, by node (a network's once per member node).
    pub workloads: Vec<WorkloadResult>,
    /// Contracts canceled: their nodes no longer run anything of the project.
    pub canceled: Vec<ContractId>,
    pub elapsed_ms: u64,
}

impl Applied {
    fn new(project: &str, contracts: Vec<ContractApplied>, canceled: Vec<ContractId>) -> Applied {
        let first = contracts.first().expect("a project deploys something");
        Applied {
            project: project.to_owned(),
            contract_id: first.contract_id,
            node_id: first.node_id,
            version: first.version,
            workloads: contracts.iter().flat_map(|c| c.workloads.clone()).collect(),
            contracts,
            canceled,
            elapsed_ms: 0,
        }
    }
}

/// Why an apply failed, and what was done about it.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub project: String,
    /// The node where it failed, and its contract (none when its creation was refused).
    pub node_id: NodeId,
    pub contract_id: Option<ContractId>,
    /// Workloads in error, with the node's message.
    pub failed: Vec<(String, String)>,
    /// Set when the node did not report in time.
    pub timed_out: Option<String>,
    /// Set when the chain refused a call.
    pub refused: Option<String>,
    /// Contracts this apply created, canceled again (node, contract).
    pub canceled: Vec<(NodeId, ContractId)>,
    /// Contracts this apply updated, which now hold the new version.
    pub updated: Vec<(NodeId, ContractId)>,
    /// Contracts this apply created and kept (`--keep-on-error`).
    pub kept: Vec<(NodeId, ContractId)>,
}

impl Failure {
    pub(super) fn new(
        project: &str,
        node_id: NodeId,
        contract_id: Option<ContractId>,
        failed: Vec<(String, String)>,
    ) -> Failure {
        Failure {
            project: project.to_owned(),
            node_id,
            contract_id,
            failed,
            timed_out: None,
            refused: None,
            canceled: vec![],
            updated: vec![],
            kept: vec![],
        }
    }
}

/// `contract 5 on node 1, contract 6 on node 2`.
fn contracts_text(contracts: &[(NodeId, ContractId)]) -> String {
    let each: Vec<String> = contracts
        .iter()
        .map(|(n, c)| format!("contract {c} on node {n}"))
        .collect();
    each.join(", ")
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
        for why in self.timed_out.iter().chain(&self.refused) {
            write!(f, "\n  {why}")?;
        }
        if !self.canceled.is_empty() {
            let left = match self.updated.is_empty() {
                true => "nothing of this apply is left",
                false => "nothing it created is left",
            };
            write!(
                f,
                "\ncanceled what this apply created: {}; {left}",
                contracts_text(&self.canceled)
            )?;
        }
        if !self.updated.is_empty() {
            write!(
                f,
                "\n{} now hold{} the new version with what failed: fix the file and apply again, or destroy",
                contracts_text(&self.updated),
                if self.updated.len() == 1 { "s" } else { "" }
            )?;
        }
        if !self.kept.is_empty() {
            write!(
                f,
                "\n{} kept (--keep-on-error): destroy when done",
                contracts_text(&self.kept)
            )?;
        }
        Ok(())
    }
}

/// Applies a plan and waits for every node to run it.
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
    let mut run = Run::new(plan);
    if plan.has_changes() {
        if let Err(e) = run.write(grid, options, started, progress).await {
            return Err(run.undo(grid, options, e).await);
        }
        run.finish(grid).await?;
    }
    let mut applied = run.results(grid).await?;
    applied.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(applied)
}

/// An apply's work on one node that keeps running the project.
struct Work<'a> {
    node: &'a NodePlan,
    contract_id: Option<ContractId>,
    /// This apply created its contract.
    created: bool,
    /// This apply wrote a version of its contract.
    updated: bool,
    /// The versions still to write, first first.
    versions: VecDeque<Vec<Workload>>,
    /// The workloads last written (those of the plan until then).
    written: Vec<Workload>,
    version: u32,
    applied: Option<ContractApplied>,
}

/// An apply under way: the work on each node, and what it created.
struct Run<'a> {
    plan: &'a Plan,
    works: Vec<Work<'a>>,
    /// The name contracts submitted, until their blocks are waited for.
    pending_names: Option<Vec<(String, Hash32)>>,
    names_created: Vec<(String, ContractId)>,
    /// The node being worked on, to say where a refusal came from.
    at: NodeId,
    canceled: Vec<ContractId>,
}

impl<'a> Run<'a> {
    fn new(plan: &'a Plan) -> Run<'a> {
        let works = plan
            .nodes
            .iter()
            .filter(|n| !n.leaves())
            .map(|node| Work {
                node,
                contract_id: node.contract_id,
                created: false,
                updated: false,
                versions: match node.has_changes() {
                    true => diff_versions(node),
                    false => VecDeque::new(),
                },
                written: node.workloads.clone(),
                version: node.current.as_ref().map_or(0, |c| c.deployment.version),
                applied: None,
            })
            .collect();
        Run {
            plan,
            works,
            pending_names: None,
            names_created: vec![],
            at: 0,
            canceled: vec![],
        }
    }

    /// Writes every version on every node and waits for them, then the rendezvous.
    async fn write(
        &mut self,
        grid: &Grid,
        options: &ApplyOptions,
        started: Instant,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(), Error> {
        self.pending_names = Some(submit_names(grid, &self.plan.names, progress).await?);
        self.rounds(grid, options, started, progress).await?;
        self.wait_names(grid).await?;
        let Some(net) = &self.plan.network else {
            return Ok(());
        };
        let name = format!("{}_net", self.plan.project);
        let reported: BTreeMap<NodeId, String> = self
            .works
            .iter()
            .filter_map(|w| {
                let results = &w.applied.as_ref()?.workloads;
                Some((w.node.node_id, network::endpoint_of(results, &name)?))
            })
            .collect();
        let (next, stale) = rendezvous(net, &reported);
        for w in self
            .works
            .iter_mut()
            .filter(|w| stale.contains(&w.node.node_id))
        {
            let network = next
                .workload(&name, w.node.node_id)
                .expect("a stale node is a member");
            let mut workloads = w.written.clone();
            for existing in workloads.iter_mut().filter(|x| x.name == name) {
                *existing = network.clone();
            }
            w.versions.push_back(workloads);
        }
        self.rounds(grid, options, started, progress).await
    }

    /// Writes the next version of every node that has one, then waits for each, until none has.
    async fn rounds(
        &mut self,
        grid: &Grid,
        options: &ApplyOptions,
        started: Instant,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(), Error> {
        loop {
            let round: Vec<usize> = (0..self.works.len())
                .filter(|&i| !self.works[i].versions.is_empty())
                .collect();
            if round.is_empty() {
                return Ok(());
            }
            for &i in &round {
                self.submit(grid, i, started, progress).await?;
                self.wait_names(grid).await?;
            }
            for &i in &round {
                let w = &self.works[i];
                let step = Step {
                    project: &self.plan.project,
                    node_id: w.node.node_id,
                    contract_id: w.contract_id.expect("written"),
                    version: w.version,
                    expected: &w.written,
                };
                self.at = w.node.node_id;
                progress(Progress::Waiting {
                    node_id: step.node_id,
                    contract_id: step.contract_id,
                    version: step.version,
                });
                let done = wait(grid, step, options, started, progress).await?;
                self.works[i].applied = Some(done);
            }
        }
    }

    /// Writes the next version of node `i`: creates its contract, or updates it.
    async fn submit(
        &mut self,
        grid: &Grid,
        i: usize,
        started: Instant,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(), Error> {
        let plan = self.plan;
        let w = &mut self.works[i];
        let node_id = w.node.node_id;
        self.at = node_id;
        let workloads = w.versions.pop_front().expect("a version to write");
        let (meta, description) = (metadata(&plan.project), plan.description.clone());
        match w.contract_id {
            None => {
                let what = format!("creating the contract on node {node_id}");
                progress(Progress::Submitting(&what));
                let (contract, included) = grid
                    .create_deployment(node_id, workloads.clone(), meta, description, None)
                    .await?;
                w.contract_id = Some(contract.contract_id);
                (w.created, w.version) = (true, 0);
                progress(Progress::Included {
                    what: &format!("contract {} on node {node_id}", contract.contract_id),
                    height: included.height,
                    elapsed: started.elapsed(),
                });
            }
            Some(id) => {
                let what = format!("updating contract {id}");
                progress(Progress::Submitting(&what));
                // Secrets changed are sealed anew with the first version; later ones keep those.
                let secrets = match w.updated {
                    false => &w.node.secrets_changed[..],
                    true => &[],
                };
                let d = grid
                    .update_deployment(id, workloads.clone(), secrets, meta, description, None)
                    .await?;
                (w.updated, w.version) = (true, d.version);
                progress(Progress::Included {
                    what: &format!("contract {id} version {}", d.version),
                    height: 0,
                    elapsed: started.elapsed(),
                });
            }
        }
        w.written = workloads;
        if w.created {
            // Recorded at once: a contract this client made is never forgotten.
            self.save(&[])?;
        }
        Ok(())
    }

    /// Waits for the name contracts submitted (they land with the first node contract, or
    /// before it).
    async fn wait_names(&mut self, grid: &Grid) -> Result<(), Error> {
        let Some(pending) = self.pending_names.take() else {
            return Ok(());
        };
        let (created, failed) = wait_names(grid, pending).await;
        self.names_created = created;
        failed.map_or(Ok(()), Err)
    }

    /// Cancels the contracts of nodes that leave the project and the names it no longer uses, and
    /// records what is left.
    async fn finish(&mut self, grid: &Grid) -> Result<(), Error> {
        for node in self.plan.nodes.iter().filter(|n| n.leaves()) {
            if let Some(id) = node.contract_id {
                grid.cancel(id).await?;
                self.canceled.push(id);
            }
        }
        let dropped: Vec<(String, ContractId)> = self
            .plan
            .names_to(super::Action::Remove)
            .filter_map(|n| Some((n.name.clone(), n.contract_id?)))
            .collect();
        cancel_names(grid, &dropped).await?;
        let dropped: Vec<&str> = dropped.iter().map(|(n, _)| n.as_str()).collect();
        self.save(&dropped)
    }

    /// Undoes what this apply created (unless told to keep it) after `error`, and says so.
    async fn undo(&mut self, grid: &Grid, options: &ApplyOptions, error: Error) -> Error {
        let _ = self.wait_names(grid).await;
        let created: Vec<(NodeId, ContractId)> = self
            .works
            .iter()
            .filter(|w| w.created)
            .filter_map(|w| Some((w.node.node_id, w.contract_id?)))
            .collect();
        let updated: Vec<(NodeId, ContractId)> = self
            .works
            .iter()
            .filter(|w| w.updated && !w.created)
            .filter_map(|w| Some((w.node.node_id, w.contract_id?)))
            .collect();
        let mut failure = match error {
            Error::Failed(f) => *f,
            // Refused before anything was written: nothing to say but the refusal.
            other if created.is_empty() && updated.is_empty() => {
                return match cancel_names(grid, &self.names_created).await {
                    Ok(()) => other,
                    Err(e) => e,
                };
            }
            other => Failure {
                refused: Some(other.to_string()),
                ..Failure::new(&self.plan.project, self.at, None, vec![])
            },
        };
        failure.updated = updated;
        if options.keep_on_error {
            failure.kept = created;
            return Error::Failed(Box::new(failure));
        }
        for &(node, id) in &created {
            if let Err(e) = grid.cancel(id).await {
                return e;
            }
            failure.canceled.push((node, id));
        }
        if let Err(e) = cancel_names(grid, &self.names_created).await {
            return e;
        }
        for w in self.works.iter_mut().filter(|w| w.created) {
            (w.contract_id, w.created) = (None, false);
        }
        self.names_created.clear();
        match self.save(&[]) {
            Ok(()) => Error::Failed(Box::new(failure)),
            Err(e) => e,
        }
    }

    /// Records the project's contracts (those of nodes still to leave too), their secrets'
    /// digests, the gateway names it created but `dropped`, and the access peers; or removes the
    /// state file when no contract is left.
    fn save(&self, dropped: &[&str]) -> Result<(), Error> {
        let plan = self.plan;
        let mut contracts: Vec<ContractRecord> = self
            .works
            .iter()
            .filter_map(|w| {
                Some(ContractRecord {
                    node_id: w.node.node_id,
                    contract_id: w.contract_id?,
                    secrets: w.node.secrets.clone(),
                })
            })
            .collect();
        for n in plan.nodes.iter().filter(|n| n.leaves()) {
            if let Some(id) = n.contract_id.filter(|id| !self.canceled.contains(id)) {
                contracts.push(ContractRecord {
                    node_id: n.node_id,
                    contract_id: id,
                    secrets: Default::default(),
                });
            }
        }
        if contracts.is_empty() {
            return plan.state.remove();
        }
        let mut names = plan.created_names.clone();
        for (n, _) in &self.names_created {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        names.retain(|n| !dropped.contains(&n.as_str()));
        plan.state.save(&State {
            project: plan.project.clone(),
            genesis: plan.genesis,
            contracts,
            names,
            access: plan
                .network
                .as_ref()
                .map(|n| n.access.clone())
                .unwrap_or_default(),
        })
    }

    /// Every contract's results: those waited for, else what its node last reported.
    async fn results(&self, grid: &Grid) -> Result<Applied, Error> {
        let mut contracts = Vec::new();
        for w in &self.works {
            if let Some(done) = &w.applied {
                contracts.push(done.clone());
                continue;
            }
            let id = w.contract_id.expect("an unchanged node has its contract");
            let view = grid.contract(id).await?;
            let workloads = match &view {
                Some(v) => super::reported(grid, v, w.version)
                    .await?
                    .map(|(s, _)| s.workloads)
                    .unwrap_or_default(),
                None => vec![],
            };
            contracts.push(ContractApplied {
                contract_id: id,
                node_id: w.node.node_id,
                version: w.version,
                workloads,
            });
        }
        Ok(Applied::new(
            &self.plan.project,
            contracts,
            self.canceled.clone(),
        ))
    }
}

/// The versions a node's plan writes: one, or two when a workload is replaced.
fn diff_versions(node: &NodePlan) -> VecDeque<Vec<Workload>> {
    super::diff::versions(&node.workloads, &node.changes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_says_what_was_undone_on_which_node() {
        let mut f = Failure::new("app", 2, Some(8), vec![("db".into(), "no room".into())]);
        f.canceled = vec![(1, 7), (2, 8)];
        assert_eq!(
            f.to_string(),
            "applying app on node 2 failed\n  workload db: no room\n\
             canceled what this apply created: contract 7 on node 1, contract 8 on node 2; \
             nothing of this apply is left"
        );
        f.updated = vec![(3, 5)];
        assert!(
            f.to_string().ends_with(
                "contract 8 on node 2; nothing it created is left\ncontract 5 on node 3 now \
                 holds the new version with what failed: fix the file and apply again, or destroy"
            ),
            "{f}"
        );
        let mut kept = Failure::new("app", 1, Some(7), vec![]);
        kept.timed_out = Some("node 1 did not report version 0".into());
        kept.kept = vec![(1, 7)];
        assert_eq!(
            kept.to_string(),
            "applying app on node 1 failed\n  node 1 did not report version 0\n\
             contract 7 on node 1 kept (--keep-on-error): destroy when done"
        );
    }
}
