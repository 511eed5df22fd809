//! Plan, apply, status and destroy of a project. The chain is the truth: a project's contract is
//! tagged with its name (`{"project": ...}` in the deployment's metadata), and the state file
//! remembers which contract that is on which chain and digests of the secrets last applied, which
//! spare an update: a lost or stale state file loses nothing.
//!
//! The parts: [`state`] is the local state file; [`diff`] the pure comparison of what the project
//! wants with what exists; [`names`] the gateway names' name contracts; [`apply`](mod@apply) writes
//! the plan to the chain and [`wait`] follows the node until it ran it. This module gathers what
//! exists into a [`Plan`], and destroys.
//!
//! What the chain cannot hold is derived or redone: the gateway names the project created are
//! marked on their workloads in the deployment (see [`names`]), and a workload's secrets, sealed
//! on the chain, count as changed (sealed anew, updated) unless the state file's digest shows they
//! are the same.
//!
//! Gateway names are held by name contracts of the twin: apply creates those the project's
//! gateways need (canceled again when the apply fails); it cancels those it created and its
//! gateways no longer use, and destroy cancels them with the project. A name the twin held before,
//! or that another of its deployments serves, is left alone.

mod apply;
pub mod check;
pub mod diff;
mod names;
pub mod network;
pub mod state;
mod wait;

use std::collections::BTreeMap;

use serde::Serialize;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::smart_contract::billing;
use tfchain_runtime::types::{ContractData, ContractState, Resources};
use tfgrid_types::deployment::{Deployment, Workload};
use tfgrid_types::{Balance, ContractId, NodeId};

pub use apply::{Applied, ApplyOptions, Failure, Progress, apply};
pub use diff::{Action, Change, NameChange, same_workload};
pub use state::{State, StateFile};
pub use wait::reported;

use crate::http::{Needs, resolve_image};
use crate::project::{Project, Size};
use crate::{Error, Grid};
use names::{cancel_names, name_changes, names_to_cancel};

/// The metadata that tags a project's deployment.
fn metadata(project: &str) -> String {
    serde_json::json!({ "project": project }).to_string()
}

fn project_of(d: &Deployment) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&d.metadata).ok()?;
    Some(v.get("project")?.as_str()?.to_owned())
}

/// A project's contract as the chain holds it now.
#[derive(Debug, Clone)]
pub struct Current {
    pub contract_id: ContractId,
    pub node_id: NodeId,
    pub deployment: Deployment,
}

/// Finds the project's active contract: the state file's, or else the twin's contract tagged with
/// the project's name.
pub async fn current(grid: &Grid, name: &str, state: &StateFile) -> Result<Option<Current>, Error> {
    let recorded = state
        .load_for(name, grid.client.genesis_hash())?
        .map(|s| s.contract_id);
    let mut candidates = Vec::new();
    if let Some(id) = recorded
        && let Some(view) = grid.contract(id).await?
    {
        candidates.push(view.contract);
    }
    candidates.extend(grid.client.rpc().contracts_by_twin(grid.twin_id).await?);
    Ok(candidates.into_iter().find_map(|c| {
        let ContractData::NodeContract(nc) = c.contract_type else {
            return None;
        };
        let active = !matches!(c.state, ContractState::Deleted(_));
        (active && c.twin_id == grid.twin_id && project_of(&nc.deployment).as_deref() == Some(name))
            .then_some(Current {
                contract_id: c.contract_id,
                node_id: nc.node_id,
                deployment: nc.deployment,
            })
    }))
}

/// What an apply would do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub project: String,
    pub description: String,
    pub node_id: NodeId,
    /// Why this node.
    pub node_reason: String,
    pub contract_id: Option<ContractId>,
    pub changes: Vec<Change>,
    /// The name contracts of the gateway names.
    pub names: Vec<NameChange>,
    /// Units of TFT an hour once applied, and now, before discounts.
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub cost_per_hour: Balance,
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub cost_per_hour_now: Balance,
    /// Gateway names the project created before this plan (marked in its deployment, or recorded in
    /// its state file).
    #[serde(skip)]
    created_names: Vec<String>,
    #[serde(skip)]
    workloads: Vec<Workload>,
    /// Workloads whose secrets changed since the last apply, though nothing else did.
    #[serde(skip)]
    secrets_changed: Vec<String>,
    #[serde(skip)]
    current: Option<Current>,
    #[serde(skip)]
    state: StateFile,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.current.is_none()
            || self.changes.iter().any(|c| c.action != Action::Keep)
            || self.names.iter().any(|n| n.action != Action::Keep)
    }

    pub(crate) fn names_to(&self, action: Action) -> impl Iterator<Item = &NameChange> {
        self.names.iter().filter(move |n| n.action == action)
    }
}

/// What a set of workloads and `names` name contracts cost an hour on the chain's current prices,
/// before discounts.
async fn cost_per_hour(
    grid: &Grid,
    workloads: &[Workload],
    names: usize,
) -> Result<Balance, Error> {
    if workloads.is_empty() && names == 0 {
        return Ok(0);
    }
    let rpc = grid.client.rpc();
    let policy = rpc
        .pricing_policy(1)
        .await?
        .ok_or_else(|| Error::NotFound("the chain has no pricing policy 1".into()))?;
    let price = rpc.tft_price().await?;
    let c = workloads.iter().fold(
        Default::default(),
        |a: tfgrid_types::deployment::Capacity, w| a + w.data.capacity(),
    );
    let resources = Resources {
        cru: c.cru,
        mru: c.mru,
        sru: c.sru,
        hru: c.hru,
    };
    let mut usd = 0;
    if !workloads.is_empty() {
        usd = billing::node_contract_per_hour_usd(Some(&resources), c.ipv4u as u32, &policy);
    }
    usd += names as u128 * policy.terms.unique_name.value as u128;
    Ok(billing::usd_to_tft_at(&price, usd))
}

fn describe_needs(n: &Needs) -> String {
    let mut parts = vec![format!("{} cpu", n.cru), format!("{} memory", Size(n.mru))];
    if n.sru > 0 {
        parts.push(format!("{} ssd", Size(n.sru)));
    }
    if n.hru > 0 {
        parts.push(format!("{} hdd", Size(n.hru)));
    }
    if n.ipv4 > 0 {
        parts.push(format!("{} free public ipv4", n.ipv4));
    }
    if n.domain {
        parts.push("a gateway domain".into());
    } else if n.public_config {
        parts.push("a public config (to serve a gateway)".into());
    }
    parts.join(", ")
}

/// Where the project runs: the node of its contract, the one the file names, or the explorer's
/// best fit for `needs`; and why.
async fn choose_node(
    grid: &Grid,
    project: &Project,
    current: Option<&Current>,
    needs: Needs,
) -> Result<(NodeId, String), Error> {
    match (current, project.node.id) {
        (Some(c), Some(id)) if c.node_id != id => Err(Error::NoNode {
            project: project.name().into(),
            reason: format!(
                "it runs on node {} (contract {}) and the file asks for node {id}: destroy it first to move it",
                c.node_id, c.contract_id
            ),
        }),
        (Some(c), _) => Ok((c.node_id, format!("where contract {} runs", c.contract_id))),
        (None, Some(id)) => {
            grid.client.rpc().node(id).await?.ok_or_else(|| {
                Error::NotFound(format!("the file asks for node {id}, which does not exist"))
            })?;
            Ok((id, "named in the file".into()))
        }
        (None, None) => {
            let found = grid
                .explorer
                .find_nodes(&project.node, needs, grid.twin_id)
                .await?;
            if let Some(n) = found.first() {
                return Ok((
                    n.node_id,
                    format!(
                        "of farm {:?}: the most free memory of {} node{} that fit",
                        n.farm_name,
                        found.len(),
                        if found.len() == 1 { "" } else { "s" }
                    ),
                ));
            }
            let up = grid.explorer.count_up().await?;
            Err(Error::NoNode {
                project: project.name().into(),
                reason: format!(
                    "it needs {}; none of the {up} node{} up{} has that free",
                    describe_needs(&needs),
                    if up == 1 { "" } else { "s" },
                    constraints(project)
                ),
            })
        }
    }
}

/// Whether node `node_id`, named in the file, has room for `needs` beside its other contracts (all
/// but `own`, the project's).
async fn check_named_node(
    grid: &Grid,
    project: &Project,
    node_id: NodeId,
    own: Option<ContractId>,
    needs: &Needs,
) -> Result<(), Error> {
    let rpc = grid.client.rpc();
    let node = rpc
        .node(node_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("there is no node {node_id}")))?;
    let others = rpc
        .contracts_by_node(node_id)
        .await?
        .into_iter()
        .filter(|c| Some(c.contract_id) != own && !matches!(c.state, ContractState::Deleted(_)))
        .filter_map(|c| match c.contract_type {
            ContractData::NodeContract(nc) => Some(nc.deployment.capacity()),
            _ => None,
        })
        .fold(Default::default(), |a, c| a + c);
    check::room(node_id, node.node.resources, others, needs).map_err(|reason| Error::NoNode {
        project: project.name().into(),
        reason,
    })
}

/// The workloads the project's file describes, with its images resolved through the hub.
async fn wanted_workloads(
    grid: &Grid,
    project: &Project,
    old: Option<&Deployment>,
) -> Result<Vec<Workload>, Error> {
    let mut images = BTreeMap::new();
    for c in &project.containers {
        if !images.contains_key(&c.image) {
            let resolved = resolve_image(&grid.hub, &c.image, c.image_hash.as_deref()).await?;
            images.insert(c.image.clone(), resolved);
        }
    }
    Ok(project.workloads(&images, old, &mut rand::rngs::OsRng))
}

/// Works out what applying `project` would do: where it runs, which workloads change, the cost.
pub async fn plan(grid: &Grid, project: &Project, state: &StateFile) -> Result<Plan, Error> {
    let current = current(grid, project.name(), state).await?;
    let old = current.as_ref().map(|c| &c.deployment);
    let mut workloads = wanted_workloads(grid, project, old).await?;
    let needs = diff::needs(&workloads);
    let (node_id, node_reason) = choose_node(grid, project, current.as_ref(), needs).await?;
    let contract_id = current.as_ref().map(|c| c.contract_id);
    if project.node.id.is_some() {
        check_named_node(grid, project, node_id, contract_id, &needs).await?;
    }
    let recorded = state.load_for(project.name(), grid.client.genesis_hash())?;
    let created_names = project_names(old, recorded.as_ref());
    let names = name_changes(grid, &project.gateway_names(), &created_names, contract_id).await?;
    let ours: Vec<String> = names
        .iter()
        .filter(|n| n.action == Action::Create || created_names.contains(&n.name))
        .map(|n| n.name.clone())
        .collect();
    names::mark_created(&mut workloads, &ours);
    let held = |keep_with: Action| {
        names
            .iter()
            .filter(|n| n.action == Action::Keep || n.action == keep_with)
            .count()
    };
    let digests = recorded
        .filter(|s| Some(s.contract_id) == contract_id)
        .map(|s| s.secrets)
        .unwrap_or_default();
    let secrets_changed = diff::secrets_changed(&workloads, &digests);
    let changes = diff::workload_changes(old, &workloads, &secrets_changed);
    let cost = cost_per_hour(grid, &workloads, held(Action::Create)).await?;
    let old_workloads = old.map_or(&[][..], |d| &d.workloads);
    let cost_now = cost_per_hour(grid, old_workloads, held(Action::Remove)).await?;
    let available = grid.client.rpc().account(grid.key.account()).await?.free;
    check::funds(project.name(), cost, cost_now, available)?;
    Ok(Plan {
        project: project.name().into(),
        description: project.description.clone(),
        node_id,
        node_reason,
        contract_id,
        changes,
        cost_per_hour: cost,
        cost_per_hour_now: cost_now,
        names,
        created_names,
        workloads,
        secrets_changed,
        current,
        state: state.clone(),
    })
}

fn constraints(project: &Project) -> String {
    let n = &project.node;
    let mut parts = Vec::new();
    if let Some(f) = &n.farm {
        parts.push(format!("in farm {f:?}"));
    }
    if let Some(f) = n.farm_id {
        parts.push(format!("in farm {f}"));
    }
    if let Some(c) = &n.country {
        parts.push(format!("in {c}"));
    }
    if let Some(c) = &n.city {
        parts.push(format!("in {c}"));
    }
    if let Some(c) = n.certified {
        parts.push(if c { "certified" } else { "not certified" }.into());
    }
    if let Some(d) = n.dedicated {
        parts.push(if d { "dedicated" } else { "shared" }.into());
    }
    match parts.is_empty() {
        true => String::new(),
        false => format!(" ({})", parts.join(", ")),
    }
}

/// The gateway names whose name contracts the project created: those its deployment on the chain
/// marks as such, and those its state file records.
fn project_names(old: Option<&Deployment>, recorded: Option<&State>) -> Vec<String> {
    let mut names = old.map(names::created_names).unwrap_or_default();
    for n in recorded.iter().flat_map(|s| &s.names) {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

/// Cancels the project's contract (the node then removes its workloads) and the name contracts it
/// created for its gateways (as its deployment marks them and its state file records them), unless
/// another deployment of the twin serves the name, and forgets it; returns the node contract
/// canceled, if there was one.
pub async fn destroy(
    grid: &Grid,
    name: &str,
    state: &StateFile,
) -> Result<Option<ContractId>, Error> {
    let current = current(grid, name, state).await?;
    if let Some(c) = &current {
        let recorded = state.load_for(name, grid.client.genesis_hash())?;
        let names = project_names(Some(&c.deployment), recorded.as_ref());
        let names =
            names_to_cancel(grid, names.iter().map(String::as_str), Some(c.contract_id)).await?;
        grid.cancel(c.contract_id).await?;
        cancel_names(grid, &names).await?;
    }
    state.remove()?;
    Ok(current.map(|c| c.contract_id))
}
