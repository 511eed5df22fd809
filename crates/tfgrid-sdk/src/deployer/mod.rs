//! Plan, apply, status and destroy of a project over its nodes, and a user's access to its private
//! network. The chain is the truth: each of a project's contracts (one per node) is tagged with its
//! name (`{"project": ...}` in the deployment's metadata), and the state file remembers which
//! contracts those are on which chain and digests of the secrets last applied, which spare an
//! update: a lost or stale state file loses nothing.
//!
//! The parts: [`state`] is the local state file; [`diff`] the pure comparison of what the project
//! wants with what exists; [`names`] the gateway names' name contracts; [`network`] the pure plan
//! of the private network across the nodes; [`apply`](mod@apply) writes the plan to the chain and
//! [`wait`] follows each node until it ran it. This module gathers what exists into a [`Plan`]:
//! where each group of the file runs (the node it names; else where its parts run now; else the
//! explorer's best fit), the network over those nodes, each node's workloads and what changes;
//! and destroys.
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

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::smart_contract::billing;
use tfchain_runtime::types::{ContractData, ContractState, Resources};
use tfgrid_types::deployment::{Deployment, Workload, WorkloadData};
use tfgrid_types::{Balance, ContractId, Hash32, NodeId};

pub use apply::{Applied, ApplyOptions, ContractApplied, Failure, Progress, apply};
pub use diff::{Action, Change, NameChange, same_workload};
pub use state::{State, StateFile};
pub use wait::reported;

use crate::http::{Needs, resolve_image};
use crate::project::{Group, Layout, NodeChoice, Project, ResolvedImage, Size};
use crate::{Error, Grid};
use names::{cancel_names, name_changes, names_to_cancel};
use network::{KeyPair, NetworkPlan, Previous, Range};

/// The metadata that tags a project's deployment.
fn metadata(project: &str) -> String {
    serde_json::json!({ "project": project }).to_string()
}

fn project_of(d: &Deployment) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&d.metadata).ok()?;
    Some(v.get("project")?.as_str()?.to_owned())
}

/// One of a project's contracts as the chain holds it now.
#[derive(Debug, Clone)]
pub struct Current {
    pub contract_id: ContractId,
    pub node_id: NodeId,
    pub deployment: Deployment,
}

/// Finds the project's active contracts, by node: the state file's, and the twin's contracts
/// tagged with the project's name.
pub async fn current(grid: &Grid, name: &str, state: &StateFile) -> Result<Vec<Current>, Error> {
    let recorded = state.load_for(name, grid.client.genesis_hash())?;
    let mut candidates = Vec::new();
    for c in recorded.iter().flat_map(|s| &s.contracts) {
        if let Some(view) = grid.contract(c.contract_id).await? {
            candidates.push(view.contract);
        }
    }
    candidates.extend(grid.client.rpc().contracts_by_twin(grid.twin_id).await?);
    let mut out: Vec<Current> = Vec::new();
    for c in candidates {
        let ContractData::NodeContract(nc) = c.contract_type else {
            continue;
        };
        let active = !matches!(c.state, ContractState::Deleted(_));
        let ours = c.twin_id == grid.twin_id && project_of(&nc.deployment).as_deref() == Some(name);
        if active && ours && !out.iter().any(|o| o.contract_id == c.contract_id) {
            out.push(Current {
                contract_id: c.contract_id,
                node_id: nc.node_id,
                deployment: nc.deployment,
            });
        }
    }
    out.sort_by_key(|c| (c.node_id, c.contract_id));
    Ok(out)
}

/// What an apply would do on one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodePlan {
    pub node_id: NodeId,
    /// Why this node.
    pub node_reason: String,
    pub contract_id: Option<ContractId>,
    pub changes: Vec<Change>,
    #[serde(skip)]
    workloads: Vec<Workload>,
    /// Workloads whose secrets changed since the last apply, though nothing else did.
    #[serde(skip)]
    secrets_changed: Vec<String>,
    /// The secrets' digests to record once applied.
    #[serde(skip)]
    secrets: BTreeMap<String, Hash32>,
    #[serde(skip)]
    current: Option<Current>,
}

impl NodePlan {
    fn new(
        node_id: NodeId,
        node_reason: String,
        current: Option<Current>,
        workloads: Vec<Workload>,
        secrets_changed: Vec<String>,
        secrets: BTreeMap<String, Hash32>,
    ) -> NodePlan {
        let old = current.as_ref().map(|c| &c.deployment);
        NodePlan {
            node_id,
            node_reason,
            contract_id: current.as_ref().map(|c| c.contract_id),
            changes: diff::workload_changes(old, &workloads, &secrets_changed),
            workloads,
            secrets_changed,
            secrets,
            current,
        }
    }

    /// The node runs nothing of the project any more: its contract is canceled.
    pub fn leaves(&self) -> bool {
        self.workloads.is_empty()
    }

    pub fn has_changes(&self) -> bool {
        self.current.is_none()
            || self.leaves()
            || self.changes.iter().any(|c| c.action != Action::Keep)
    }

    /// The workloads the node is to run.
    pub fn workloads(&self) -> &[Workload] {
        &self.workloads
    }
}

/// The private network as planned, as a person or script reads it.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkView {
    pub name: String,
    pub ip_range: String,
    pub access_node: Option<NodeId>,
    /// Node, its /24, and whether it is public.
    pub members: Vec<(NodeId, String, bool)>,
    pub access_peers: usize,
}

/// What an apply would do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub project: String,
    pub description: String,
    /// By node: those that keep or start running the project, and those that leave it.
    pub nodes: Vec<NodePlan>,
    /// The name contracts of the gateway names.
    pub names: Vec<NameChange>,
    #[serde(rename = "network")]
    pub network_view: Option<NetworkView>,
    /// Units of TFT an hour once applied, and now, before discounts.
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub cost_per_hour: Balance,
    #[serde(with = "tfgrid_types::amount::json_units")]
    pub cost_per_hour_now: Balance,
    /// Gateway names the project created before this plan (marked in its deployments, or recorded
    /// in its state file).
    #[serde(skip)]
    created_names: Vec<String>,
    #[serde(skip)]
    network: Option<NetworkPlan>,
    #[serde(skip)]
    genesis: Hash32,
    #[serde(skip)]
    state: StateFile,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.nodes.iter().any(NodePlan::has_changes)
            || self.names.iter().any(|n| n.action != Action::Keep)
    }

    pub(crate) fn names_to(&self, action: Action) -> impl Iterator<Item = &NameChange> {
        self.names.iter().filter(move |n| n.action == action)
    }
}

/// What contracts of `contracts` workloads each and `names` name contracts cost an hour on the
/// chain's current prices, before discounts.
async fn cost_per_hour(
    grid: &Grid,
    contracts: &[&[Workload]],
    names: usize,
) -> Result<Balance, Error> {
    if contracts.iter().all(|c| c.is_empty()) && names == 0 {
        return Ok(0);
    }
    let rpc = grid.client.rpc();
    let policy = rpc
        .pricing_policy(1)
        .await?
        .ok_or_else(|| Error::NotFound("the chain has no pricing policy 1".into()))?;
    let price = rpc.tft_price().await?;
    let mut usd = names as u128 * policy.terms.unique_name.value as u128;
    for workloads in contracts.iter().filter(|c| !c.is_empty()) {
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
        usd += billing::node_contract_per_hour_usd(Some(&resources), c.ipv4u as u32, &policy);
    }
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
        parts.push("a public config (to be reached from outside)".into());
    }
    parts.join(", ")
}

/// Where a group runs, and why.
#[derive(Debug, Clone)]
struct Placed {
    node_id: NodeId,
    reason: String,
    /// The file names the node.
    named: bool,
}

/// Whether a contract holds only the network `name`: a node added as the network's access node.
fn network_only(c: &Current, name: &str) -> bool {
    let ws = &c.deployment.workloads;
    !ws.is_empty() && ws.iter().all(|w| w.name == name)
}

/// Where each group of the project runs: the node the file names; else where its parts run now;
/// else (for the project's own `[node]`, a contract of the project no other group runs on, as it
/// ran before; for others) the explorer's best fit beside the groups placed before it.
async fn place(
    grid: &Grid,
    project: &Project,
    groups: &[Group],
    images: &BTreeMap<String, ResolvedImage>,
    currents: &[Current],
) -> Result<Vec<Placed>, Error> {
    let mut placed: Vec<Option<Placed>> = vec![None; groups.len()];
    for (i, g) in groups.iter().enumerate() {
        let runs = |c: &&Current| g.parts.iter().any(|p| c.deployment.workload(p).is_some());
        if let Some(id) = g.choice.id {
            grid.client.rpc().node(id).await?.ok_or_else(|| {
                Error::NotFound(format!("the file asks for node {id}, which does not exist"))
            })?;
            let reason = "named in the file".into();
            placed[i] = Some(Placed {
                node_id: id,
                reason,
                named: true,
            });
        } else if let Some(c) = currents.iter().find(runs) {
            let reason = format!("where contract {} runs", c.contract_id);
            placed[i] = Some(Placed {
                node_id: c.node_id,
                reason,
                named: false,
            });
        }
    }
    let needs: Vec<Needs> = groups
        .iter()
        .map(|g| diff::needs(&project.group_workloads(images, g)))
        .collect();
    let mut taken: BTreeMap<NodeId, Needs> = BTreeMap::new();
    let add = |taken: &mut BTreeMap<NodeId, Needs>, node: NodeId, n: &Needs| {
        let t = taken.entry(node).or_default();
        (t.mru, t.sru, t.hru, t.ipv4) =
            (t.mru + n.mru, t.sru + n.sru, t.hru + n.hru, t.ipv4 + n.ipv4);
    };
    for (p, n) in placed.iter().zip(&needs) {
        if let Some(p) = p {
            add(&mut taken, p.node_id, n);
        }
    }
    for (i, g) in groups.iter().enumerate() {
        if placed[i].is_some() {
            continue;
        }
        let claimed: BTreeSet<NodeId> = placed.iter().flatten().map(|p| p.node_id).collect();
        let network = project.network_name();
        let unclaimed = currents
            .iter()
            .find(|c| !claimed.contains(&c.node_id) && !network_only(c, &network))
            .filter(|_| g.choice == project.node);
        let p = match unclaimed {
            Some(c) => Placed {
                node_id: c.node_id,
                reason: format!("where contract {} runs", c.contract_id),
                named: false,
            },
            None => find_node(grid, project, groups.len(), g, needs[i], &taken).await?,
        };
        add(&mut taken, p.node_id, &needs[i]);
        placed[i] = Some(p);
    }
    Ok(placed.into_iter().map(|p| p.expect("placed")).collect())
}

/// The explorer's best fit for group `g` (of `groups`), needing `needs`, beside what the plan put
/// on nodes already (`taken`).
async fn find_node(
    grid: &Grid,
    project: &Project,
    groups: usize,
    g: &Group,
    needs: Needs,
    taken: &BTreeMap<NodeId, Needs>,
) -> Result<Placed, Error> {
    let found = grid
        .explorer
        .find_nodes(&g.choice, needs, grid.twin_id)
        .await?;
    if let Some(n) = check::pick(&found, taken, &needs) {
        return Ok(Placed {
            node_id: n.node_id,
            reason: format!(
                "of farm {:?}: the most free memory of {} node{} that fit",
                n.farm_name,
                found.len(),
                if found.len() == 1 { "" } else { "s" }
            ),
            named: false,
        });
    }
    let up = grid.explorer.count_up().await?;
    Err(Error::NoNode {
        project: match groups {
            1 => project.name().into(),
            _ => format!("{}'s {}", project.name(), g.parts.join(", ")),
        },
        reason: format!(
            "it needs {}; none of the {up} node{} up{} has that free",
            describe_needs(&needs),
            if up == 1 { "" } else { "s" },
            constraints(&g.choice)
        ),
    })
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

/// The project's images, resolved through the hub.
async fn resolve_images(
    grid: &Grid,
    project: &Project,
) -> Result<BTreeMap<String, ResolvedImage>, Error> {
    let mut images = BTreeMap::new();
    for c in &project.containers {
        if !images.contains_key(&c.image) {
            let resolved = resolve_image(&grid.hub, &c.image, c.image_hash.as_deref()).await?;
            images.insert(c.image.clone(), resolved);
        }
    }
    Ok(images)
}

fn network_error(project: &str, message: String) -> Error {
    Error::Network {
        project: project.to_owned(),
        message,
    }
}

/// Where each member listens, as its last report says (the pending one, else the recorded one).
async fn endpoints(
    grid: &Grid,
    name: &str,
    currents: &[Current],
) -> Result<BTreeMap<NodeId, String>, Error> {
    let mut out = BTreeMap::new();
    for c in currents {
        let pending = grid
            .client
            .rpc()
            .pending_deployment_state(c.contract_id)
            .await?;
        let state = match pending {
            Some(s) => Some(s),
            None => grid
                .contract(c.contract_id)
                .await?
                .and_then(|v| v.deployment_state),
        };
        if let Some(e) = state.and_then(|s| network::endpoint_of(&s.workloads, name)) {
            out.insert(c.node_id, e);
        }
    }
    Ok(out)
}

/// Whether a node has a public config on the chain.
async fn is_public(grid: &Grid, node_id: NodeId) -> Result<bool, Error> {
    let node = grid.client.rpc().node(node_id).await?;
    let node = node.ok_or_else(|| Error::NotFound(format!("there is no node {node_id}")))?;
    Ok(node.node.public_config.is_some())
}

/// A node of the network: public or hidden, where it listens, the /24 the file asks for.
async fn member(
    grid: &Grid,
    node_id: NodeId,
    subnet: Option<u8>,
    endpoints: &BTreeMap<NodeId, String>,
) -> Result<network::Member, Error> {
    Ok(network::Member {
        node_id,
        public: is_public(grid, node_id).await?,
        endpoint: endpoints.get(&node_id).cloned().unwrap_or_default(),
        subnet,
    })
}

/// A node with a public config to be the network's access node, when no member is: the one added
/// before, if it still has one, else one the explorer finds.
async fn access_node(
    grid: &Grid,
    project: &str,
    name: &str,
    currents: &[Current],
    members: &[network::Member],
) -> Result<(NodeId, String), Error> {
    for c in currents.iter().filter(|c| network_only(c, name)) {
        if is_public(grid, c.node_id).await? {
            let reason = format!(
                "the network's access node, where contract {} runs",
                c.contract_id
            );
            return Ok((c.node_id, reason));
        }
    }
    let needs = Needs {
        public_config: true,
        ..Needs::default()
    };
    let found = grid
        .explorer
        .find_nodes(&NodeChoice::default(), needs, grid.twin_id)
        .await?;
    let fresh = found
        .iter()
        .find(|n| !members.iter().any(|m| m.node_id == n.node_id));
    match fresh {
        Some(n) => Ok((
            n.node_id,
            "the network's access node: its hidden nodes reach each other through it".into(),
        )),
        None => {
            let hidden: Vec<String> = members.iter().map(|m| m.node_id.to_string()).collect();
            Err(network_error(
                project,
                format!(
                    "its nodes ({}) are hidden (no public config) and reach each other through an \
                     access node, a node with a public config; none is up",
                    hidden.join(", ")
                ),
            ))
        }
    }
}

/// What earlier versions assigned, read back from the deployments and the state file's access
/// peers.
fn previous(name: &str, range: Range, currents: &[Current], recorded: Option<&State>) -> Previous {
    let deployments = currents.iter().map(|c| (c.node_id, &c.deployment));
    let mut previous = network::previous(name, range, deployments);
    for a in recorded.iter().flat_map(|s| &s.access) {
        if !previous
            .access
            .iter()
            .any(|p| p.subnet_index == a.subnet_index)
        {
            previous.access.push(a.clone());
        }
    }
    previous
}

/// The network `name` over `nodes`: its members, with an access node added when one is needed
/// (`extra_access` access peers are about to be added); returns the node added, and why.
#[allow(clippy::too_many_arguments)] // The inputs of the planner, each read from the chain.
async fn network_for(
    grid: &Grid,
    project: &str,
    name: &str,
    range: Range,
    nodes: BTreeSet<NodeId>,
    asked: &BTreeMap<NodeId, u8>,
    currents: &[Current],
    previous: &Previous,
    extra_access: usize,
) -> Result<(NetworkPlan, Option<(NodeId, String)>), Error> {
    let endpoints = endpoints(grid, name, currents).await?;
    let mut members = Vec::new();
    for node in nodes {
        members.push(member(grid, node, asked.get(&node).copied(), &endpoints).await?);
    }
    let mut added = None;
    if network::needs_access_node(&members, previous.access.len() + extra_access) {
        let (node, reason) = access_node(grid, project, name, currents, &members).await?;
        members.push(member(grid, node, None, &endpoints).await?);
        added = Some((node, reason));
    }
    let plan = network::plan(range, previous, &members, &mut rand::rngs::OsRng)
        .map_err(|m| network_error(project, m))?;
    Ok((plan, added))
}

/// The workloads the project wants on each node, and why each node.
struct Wanted {
    by_node: BTreeMap<NodeId, Vec<Workload>>,
    reasons: BTreeMap<NodeId, String>,
    placed: Vec<Placed>,
    network: Option<NetworkPlan>,
}

/// Places the project's groups, plans its network and builds each node's workloads.
async fn wanted(
    grid: &Grid,
    project: &Project,
    currents: &[Current],
    recorded: Option<&State>,
) -> Result<Wanted, Error> {
    let images = resolve_images(grid, project).await?;
    let groups = project.groups();
    let placed = place(grid, project, &groups, &images, currents).await?;
    let nodes: Vec<NodeId> = placed.iter().map(|p| p.node_id).collect();
    let mut reasons = BTreeMap::new();
    for p in &placed {
        reasons.entry(p.node_id).or_insert_with(|| p.reason.clone());
    }
    let members = project.network_nodes(&nodes);
    let network = match members.is_empty() {
        true => None,
        false => {
            let name = project.network_name();
            let asked = project
                .asked_subnets(&nodes)
                .map_err(|m| network_error(project.name(), m))?;
            let previous = previous(&name, project.range(), currents, recorded);
            let (plan, added) = network_for(
                grid,
                project.name(),
                &name,
                project.range(),
                members,
                &asked,
                currents,
                &previous,
                0,
            )
            .await?;
            if let Some((node, reason)) = added {
                reasons.insert(node, reason);
            }
            Some(plan)
        }
    };
    let mut old = BTreeMap::new();
    for c in currents {
        old.entry(c.node_id).or_insert_with(|| c.deployment.clone());
    }
    let layout = Layout {
        nodes: &nodes,
        network: network.as_ref(),
        old: &old,
    };
    Ok(Wanted {
        by_node: project.workloads(&images, layout),
        reasons,
        placed,
        network,
    })
}

/// Each node's plan: the contracts that exist (a second one on a node leaves), then new ones.
fn node_plans(
    mut by_node: BTreeMap<NodeId, Vec<Workload>>,
    reasons: &BTreeMap<NodeId, String>,
    currents: &[Current],
    recorded: Option<&State>,
) -> Vec<NodePlan> {
    let leaving = "it runs nothing of the project any more: its contract is canceled";
    let mut out = Vec::new();
    for c in currents {
        let workloads = by_node.remove(&c.node_id).unwrap_or_default();
        let reason = match workloads.is_empty() {
            true => leaving.to_owned(),
            false => reasons[&c.node_id].clone(),
        };
        let digests = recorded
            .map(|s| s.secrets_of(c.contract_id))
            .unwrap_or_default();
        let changed = diff::secrets_changed(&workloads, &digests);
        let secrets = state::digests(&workloads);
        let current = Some(c.clone());
        out.push(NodePlan::new(
            c.node_id, reason, current, workloads, changed, secrets,
        ));
    }
    for (node, workloads) in by_node {
        let secrets = state::digests(&workloads);
        let reason = reasons[&node].clone();
        out.push(NodePlan::new(
            node,
            reason,
            None,
            workloads,
            vec![],
            secrets,
        ));
    }
    out.sort_by_key(|n| (n.node_id, n.leaves()));
    out
}

/// Works out what applying `project` would do: where each part runs, which workloads change on
/// each node, the network, the cost.
pub async fn plan(grid: &Grid, project: &Project, state: &StateFile) -> Result<Plan, Error> {
    let currents = current(grid, project.name(), state).await?;
    let recorded = state.load_for(project.name(), grid.client.genesis_hash())?;
    let Wanted {
        mut by_node,
        reasons,
        placed,
        network,
    } = wanted(grid, project, &currents, recorded.as_ref()).await?;
    let created_names = project_names(&currents, recorded.as_ref());
    let own: Vec<ContractId> = currents.iter().map(|c| c.contract_id).collect();
    let names = name_changes(grid, &project.gateway_names(), &created_names, &own).await?;
    let ours: Vec<String> = names
        .iter()
        .filter(|n| n.action == Action::Create || created_names.contains(&n.name))
        .map(|n| n.name.clone())
        .collect();
    for workloads in by_node.values_mut() {
        names::mark_created(workloads, &ours);
    }
    let nodes = node_plans(by_node, &reasons, &currents, recorded.as_ref());
    let mut checked = BTreeSet::new();
    for p in placed.iter().filter(|p| p.named) {
        let node = nodes.iter().find(|n| n.node_id == p.node_id && !n.leaves());
        if let Some(node) = node.filter(|_| checked.insert(p.node_id)) {
            let needs = diff::needs(&node.workloads);
            check_named_node(grid, project, p.node_id, node.contract_id, &needs).await?;
        }
    }
    let parts = Parts {
        project: project.name(),
        description: &project.description,
        nodes,
        names,
        network,
        created_names,
    };
    assemble(grid, parts, state).await
}

/// What a plan holds before it is priced.
struct Parts<'a> {
    project: &'a str,
    description: &'a str,
    nodes: Vec<NodePlan>,
    names: Vec<NameChange>,
    network: Option<NetworkPlan>,
    created_names: Vec<String>,
}

/// Prices the plan and refuses it when the account cannot pay an hour of what it asks.
async fn assemble(grid: &Grid, parts: Parts<'_>, state: &StateFile) -> Result<Plan, Error> {
    let Parts {
        project,
        description,
        nodes,
        names,
        network,
        created_names,
    } = parts;
    let held = |keep_with: Action| {
        names
            .iter()
            .filter(|n| n.action == Action::Keep || n.action == keep_with)
            .count()
    };
    let wanted: Vec<&[Workload]> = nodes.iter().map(|n| &n.workloads[..]).collect();
    let cost = cost_per_hour(grid, &wanted, held(Action::Create)).await?;
    let now: Vec<&[Workload]> = nodes
        .iter()
        .filter_map(|n| Some(&n.current.as_ref()?.deployment.workloads[..]))
        .collect();
    let cost_now = cost_per_hour(grid, &now, held(Action::Remove)).await?;
    let available = grid.client.rpc().account(grid.key.account()).await?.free;
    check::funds(project, cost, cost_now, available)?;
    let network_view = network.as_ref().map(|n| NetworkView {
        name: format!("{project}_net"),
        ip_range: n.range.cidr(),
        access_node: n.access_node().map(|a| a.node_id),
        members: n
            .members
            .iter()
            .map(|m| (m.node_id, n.range.subnet(m.subnet), m.public))
            .collect(),
        access_peers: n.access.len(),
    });
    Ok(Plan {
        project: project.into(),
        description: description.into(),
        nodes,
        names,
        network_view,
        cost_per_hour: cost,
        cost_per_hour_now: cost_now,
        created_names,
        network,
        genesis: grid.client.genesis_hash(),
        state: state.clone(),
    })
}

fn constraints(n: &NodeChoice) -> String {
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

/// The gateway names whose name contracts the project created: those its deployments on the chain
/// mark as such, and those its state file records.
fn project_names(currents: &[Current], recorded: Option<&State>) -> Vec<String> {
    let mut names = Vec::new();
    let marked = currents
        .iter()
        .flat_map(|c| names::created_names(&c.deployment));
    for n in marked.chain(recorded.iter().flat_map(|s| s.names.iter().cloned())) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// Cancels the project's contracts (the nodes then remove their workloads) and the name contracts
/// it created for its gateways (as its deployments mark them and its state file records them),
/// unless another deployment of the twin serves the name, and forgets it; returns the node
/// contracts canceled.
pub async fn destroy(grid: &Grid, name: &str, state: &StateFile) -> Result<Vec<ContractId>, Error> {
    let currents = current(grid, name, state).await?;
    let own: Vec<ContractId> = currents.iter().map(|c| c.contract_id).collect();
    if !currents.is_empty() {
        let recorded = state.load_for(name, grid.client.genesis_hash())?;
        let names = project_names(&currents, recorded.as_ref());
        let names = names_to_cancel(grid, names.iter().map(String::as_str), &own).await?;
        for id in &own {
            grid.cancel(*id).await?;
        }
        cancel_names(grid, &names).await?;
    }
    state.remove()?;
    Ok(own)
}

/// A user's machine in the project's private network: its /24 and its key pair (the private key
/// is nowhere else: the chain and the state file hold the public key).
#[derive(Debug, Clone)]
pub struct Access {
    pub subnet_index: u8,
    pub key: KeyPair,
}

impl Access {
    /// Its `wg-quick` configuration, once `plan` is applied (`applied`, whose results say where
    /// the access node listens).
    pub fn config(&self, plan: &Plan, applied: &Applied) -> Option<String> {
        let name = format!("{}_net", plan.project);
        let reported: BTreeMap<NodeId, String> = applied
            .contracts
            .iter()
            .filter_map(|c| Some((c.node_id, network::endpoint_of(&c.workloads, &name)?)))
            .collect();
        let network = plan.network.as_ref()?.with_endpoints(&reported);
        let access = network.access_node()?;
        Some(network::wg_quick(
            network.range,
            self.subnet_index,
            &self.key.private_key,
            access,
        ))
    }
}

/// Plans a new access peer for the user's machine in project `name`'s private network: a key pair
/// made here, a /24 no member uses, a peer of the access node (a node with a public config is added
/// when no member has one) and routes on the other members. Everything else the deployments hold
/// stays as it is; the plan is applied as any other.
pub async fn access(grid: &Grid, name: &str, state: &StateFile) -> Result<(Plan, Access), Error> {
    let currents = current(grid, name, state).await?;
    if currents.is_empty() {
        return Err(Error::NotFound(format!(
            "{name} is not deployed: apply it first"
        )));
    }
    let recorded = state.load_for(name, grid.client.genesis_hash())?;
    let net_name = format!("{name}_net");
    let networks: Vec<(NodeId, String)> = currents
        .iter()
        .filter_map(|c| match &c.deployment.workload(&net_name)?.data {
            WorkloadData::Network(n) => Some((c.node_id, n.ip_range.clone())),
            _ => None,
        })
        .collect();
    let range = networks
        .first()
        .and_then(|(_, r)| Range::parse(r))
        .ok_or_else(|| {
            let why = "it has none (only containers, and gateways to them, have one)";
            network_error(name, why.into())
        })?;
    let previous = previous(&net_name, range, &currents, recorded.as_ref());
    let members = networks.iter().map(|(n, _)| *n).collect();
    let no_asks = BTreeMap::new();
    let (mut network, added) = network_for(
        grid, name, &net_name, range, members, &no_asks, &currents, &previous, 1,
    )
    .await?;
    let key = KeyPair::generate(&mut rand::rngs::OsRng);
    let subnet_index = network
        .add_access_peer(key.public_key.clone())
        .map_err(|m| network_error(name, m))?;
    let mut nodes = Vec::new();
    for c in &currents {
        let mut workloads = c.deployment.workloads.clone();
        for w in workloads.iter_mut().filter(|w| w.name == net_name) {
            *w = network.workload(&net_name, c.node_id).expect("a member");
        }
        let secrets = recorded.as_ref().map(|s| s.secrets_of(c.contract_id));
        let reason = format!("where contract {} runs", c.contract_id);
        let current = Some(c.clone());
        let secrets = secrets.unwrap_or_default();
        nodes.push(NodePlan::new(
            c.node_id,
            reason,
            current,
            workloads,
            vec![],
            secrets,
        ));
    }
    if let Some((node, reason)) = added {
        let workloads = vec![network.workload(&net_name, node).expect("a member")];
        nodes.push(NodePlan::new(
            node,
            reason,
            None,
            workloads,
            vec![],
            BTreeMap::new(),
        ));
    }
    let description = currents[0].deployment.description.clone();
    let parts = Parts {
        project: name,
        description: &description,
        nodes,
        names: vec![],
        network: Some(network),
        created_names: project_names(&currents, recorded.as_ref()),
    };
    let plan = assemble(grid, parts, state).await?;
    Ok((plan, Access { subnet_index, key }))
}
