//! Plan, apply, status and destroy of a project. The chain is the truth: a project's contract is
//! tagged with its name (`{"project": ...}` in the deployment's metadata), and the state file only
//! remembers which contract that is on which chain, so a lost or stale state file loses nothing.
//!
//! Apply creates the contract or updates it to the next version, then waits until the node has
//! reported every workload `ok` or `error` (its signed report counts as soon as the chain has it
//! pending, a block before the ledger records it). A workload type that cannot change in
//! place (a container) is replaced in two versions: removed, then added anew. When a workload
//! fails or the node never answers, the contract this apply created is canceled again (unless
//! kept on purpose), so nothing is left half-made. An account that cannot pay an hour of what it
//! asks for is refused before anything is created.
//!
//! Gateway names are held by name contracts of the twin: apply creates those the project's
//! gateways need (submitted just before the node contract, so both land in one block; canceled
//! again when the apply fails) and records them in the state file; it cancels those it created
//! and its gateways no longer use, and destroy cancels them with the project. A name the twin held
//! before, or that another of its deployments serves, is left alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tfchain_client::api::{ContractView, TfchainApiClient};
use tfchain_runtime::smart_contract::billing;
use tfchain_runtime::types::{ContractData, ContractState, DeploymentState, Resources};
use tfgrid_types::deployment::{
    Deployment, ResultState, Secret, Workload, WorkloadData, WorkloadResult,
};
use tfgrid_types::{Balance, ContractId, Hash32, NodeId};

use crate::http::{Needs, resolve_image};
use crate::project::{Project, Size};
use crate::{Error, Grid};

/// How often apply looks for the node's report while it waits.
const POLL: Duration = Duration::from_millis(100);

/// Where a project's contract is recorded.
#[derive(Debug, Clone)]
pub struct StateFile {
    pub path: PathBuf,
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub project: String,
    /// The chain it is on: a state file from another chain (a new local grid) is ignored.
    pub genesis: Hash32,
    pub node_id: NodeId,
    pub contract_id: ContractId,
    /// A digest of each workload's secrets as last applied: the chain holds them sealed, so this
    /// is how a plan sees a changed password or environment value.
    #[serde(default)]
    pub secrets: BTreeMap<String, Hash32>,
    /// The gateway names whose name contracts this project created (and so cancels when it no
    /// longer uses them); a name the twin held before stays the twin's.
    #[serde(default)]
    pub names: Vec<String>,
}

/// A digest of a workload's secrets in the clear (none when it has none). A network's WireGuard
/// key is made anew at each plan, not written in the file: it does not count.
fn secrets_digest(w: &Workload) -> Option<Hash32> {
    if let WorkloadData::Network(_) = w.data {
        return None;
    }
    let mut w = w.clone();
    let values: Vec<String> = w
        .data
        .secrets_mut()
        .into_iter()
        .map(|s| match s {
            Secret::Plain(text) => text.clone(),
            Secret::Sealed(_) => String::new(),
        })
        .collect();
    (!values.is_empty()).then(|| {
        Hash32::of(
            "tfgrid state secrets v1",
            serde_json::to_string(&(&w.name, values))
                .expect("strings serialize")
                .as_bytes(),
        )
    })
}

fn digests(workloads: &[Workload]) -> BTreeMap<String, Hash32> {
    workloads
        .iter()
        .filter_map(|w| Some((w.name.clone(), secrets_digest(w)?)))
        .collect()
}

impl StateFile {
    /// `<dir>/.tfgrid/<project>.json`.
    pub fn beside(dir: impl AsRef<Path>, project: &str) -> StateFile {
        StateFile {
            path: dir.as_ref().join(".tfgrid").join(format!("{project}.json")),
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::State {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    pub fn load(&self) -> Result<Option<State>, Error> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Writes the state whole or not at all (a temporary file, synced, then renamed).
    pub fn save(&self, state: &State) -> Result<(), Error> {
        use std::io::Write;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(|e| self.error(e))?;
        file.write_all(&serde_json::to_vec_pretty(state).expect("state serializes"))
            .and_then(|_| file.sync_all())
            .map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.error(e))
    }

    pub fn remove(&self) -> Result<(), Error> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.error(e)),
            _ => Ok(()),
        }
    }
}

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
    let genesis = grid.client.genesis_hash();
    let recorded = state
        .load()?
        .filter(|s| s.genesis == genesis && s.project == name)
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

/// Whether two workloads are the same but for their version and secrets (sealed on the chain,
/// so they cannot be compared).
pub fn same_workload(a: &Workload, b: &Workload) -> bool {
    let blank = |w: &Workload| {
        let mut w = w.clone();
        w.version = 0;
        for s in w.data.secrets_mut() {
            *s = Secret::Plain(String::new());
        }
        w
    };
    blank(a) == blank(b)
}

/// What an apply does with a gateway name's name contract.
#[derive(Debug, Clone, Serialize)]
pub struct NameChange {
    pub name: String,
    pub action: Action,
    /// The name contract, when the twin holds it already.
    pub contract_id: Option<ContractId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    /// Changed in place.
    Update,
    /// Removed, then created anew (its type cannot change in place).
    Replace,
    Remove,
    Keep,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub action: Action,
    /// What it takes: cpu, memory, disk.
    pub detail: String,
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
    /// Gateway names the project created before this plan (its state file's).
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

    fn names_to(&self, action: Action) -> impl Iterator<Item = &NameChange> {
        self.names.iter().filter(move |n| n.action == action)
    }
}

fn detail(w: &WorkloadData) -> String {
    let c = w.capacity();
    let mut parts = Vec::new();
    if c.cru > 0 {
        parts.push(format!("{} cpu", c.cru));
    }
    if c.mru > 0 {
        parts.push(format!("{} memory", Size(c.mru)));
    }
    if c.sru > 0 {
        parts.push(format!("{} ssd", Size(c.sru)));
    }
    if c.hru > 0 {
        parts.push(format!("{} hdd", Size(c.hru)));
    }
    if c.ipv4u > 0 {
        parts.push("1 public ipv4".into());
    }
    parts.join(", ")
}

fn needs(workloads: &[Workload]) -> Needs {
    workloads.iter().fold(Needs::default(), |n, w| {
        let c = w.data.capacity();
        Needs {
            cru: n.cru.max(c.cru),
            mru: n.mru + c.mru,
            sru: n.sru + c.sru,
            hru: n.hru + c.hru,
            ipv4: n.ipv4 + c.ipv4u,
            domain: n.domain || matches!(w.data, WorkloadData::GatewayNameProxy(_)),
            public_config: n.public_config || matches!(w.data, WorkloadData::GatewayFqdnProxy(_)),
        }
    })
}

/// The gateway names a deployment's workloads serve.
fn gateway_names(d: &Deployment) -> impl Iterator<Item = &str> {
    d.workloads.iter().filter_map(|w| match &w.data {
        WorkloadData::GatewayNameProxy(g) => Some(g.name.as_str()),
        _ => None,
    })
}

/// Whether an active node contract of the twin other than `except` serves gateway name `name`.
async fn name_used_elsewhere(
    grid: &Grid,
    name: &str,
    except: Option<ContractId>,
) -> Result<bool, Error> {
    let contracts = grid.client.rpc().contracts_by_twin(grid.twin_id).await?;
    Ok(contracts.iter().any(|c| {
        let ContractData::NodeContract(nc) = &c.contract_type else {
            return false;
        };
        Some(c.contract_id) != except
            && !matches!(c.state, ContractState::Deleted(_))
            && gateway_names(&nc.deployment).any(|n| n == name)
    }))
}

/// The name contracts among `names` that the twin holds and no other of its deployments uses
/// (`except` is the project's own contract): those the project may cancel.
async fn names_to_cancel(
    grid: &Grid,
    names: impl IntoIterator<Item = &str>,
    except: Option<ContractId>,
) -> Result<Vec<(String, ContractId)>, Error> {
    let mut out = Vec::new();
    for name in names {
        if let Some(c) = grid.name_contract(name).await?
            && c.twin_id == grid.twin_id
            && !name_used_elsewhere(grid, name, except).await?
        {
            out.push((name.to_owned(), c.contract_id));
        }
    }
    Ok(out)
}

/// Which name contracts to create for the project's gateway names, which the twin holds already,
/// and which of those the project created (`created`) it no longer uses and cancels.
async fn name_changes(
    grid: &Grid,
    wanted: &[String],
    created: &[String],
    current: Option<ContractId>,
) -> Result<Vec<NameChange>, Error> {
    let mut out = Vec::new();
    for name in wanted {
        let (action, contract_id) = match grid.name_contract(name).await? {
            None => (Action::Create, None),
            Some(c) if c.twin_id == grid.twin_id => (Action::Keep, Some(c.contract_id)),
            Some(c) => {
                return Err(Error::NameTaken {
                    name: name.clone(),
                    twin: c.twin_id,
                });
            }
        };
        out.push(NameChange {
            name: name.clone(),
            action,
            contract_id,
        });
    }
    let dropped = created
        .iter()
        .filter(|n| !wanted.contains(n))
        .map(String::as_str);
    for (name, id) in names_to_cancel(grid, dropped, current).await? {
        out.push(NameChange {
            name,
            action: Action::Remove,
            contract_id: Some(id),
        });
    }
    Ok(out)
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

/// Works out what applying `project` would do: where it runs, which workloads change, the cost.
pub async fn plan(grid: &Grid, project: &Project, state: &StateFile) -> Result<Plan, Error> {
    let current = current(grid, project.name(), state).await?;
    let mut images = BTreeMap::new();
    for c in &project.containers {
        if !images.contains_key(&c.image) {
            let resolved = resolve_image(&grid.hub, &c.image, c.image_hash.as_deref()).await?;
            images.insert(c.image.clone(), resolved);
        }
    }
    let workloads = project.workloads(
        &images,
        current.as_ref().map(|c| &c.deployment),
        &mut rand::rngs::OsRng,
    );
    let needs = needs(&workloads);
    let (node_id, node_reason) = match (&current, project.node.id) {
        (Some(c), Some(id)) if c.node_id != id => {
            return Err(Error::NoNode {
                project: project.name().into(),
                reason: format!(
                    "it runs on node {} (contract {}) and the file asks for node {id}: destroy it first to move it",
                    c.node_id, c.contract_id
                ),
            });
        }
        (Some(c), _) => (c.node_id, format!("where contract {} runs", c.contract_id)),
        (None, Some(id)) => {
            grid.client.rpc().node(id).await?.ok_or_else(|| {
                Error::NotFound(format!("the file asks for node {id}, which does not exist"))
            })?;
            (id, "named in the file".into())
        }
        (None, None) => {
            let found = grid
                .explorer
                .find_nodes(&project.node, needs, grid.twin_id)
                .await?;
            match found.first() {
                Some(n) => (
                    n.node_id,
                    format!(
                        "of farm {:?}: the most free memory of {} node{} that fit",
                        n.farm_name,
                        found.len(),
                        if found.len() == 1 { "" } else { "s" }
                    ),
                ),
                None => {
                    let up = grid.explorer.count_up().await?;
                    return Err(Error::NoNode {
                        project: project.name().into(),
                        reason: format!(
                            "it needs {}; none of the {up} node{} up{} has that free",
                            describe_needs(&needs),
                            if up == 1 { "" } else { "s" },
                            constraints(project)
                        ),
                    });
                }
            }
        }
    };
    let old = current.as_ref().map(|c| &c.deployment);
    let recorded_state = state
        .load()?
        .filter(|s| s.genesis == grid.client.genesis_hash() && s.project == project.name());
    let created_names = recorded_state
        .as_ref()
        .map(|s| s.names.clone())
        .unwrap_or_default();
    let names = name_changes(
        grid,
        &project.gateway_names(),
        &created_names,
        current.as_ref().map(|c| c.contract_id),
    )
    .await?;
    let held = |keep_with: Action| {
        names
            .iter()
            .filter(|n| n.action == Action::Keep || n.action == keep_with)
            .count()
    };
    let recorded = match &current {
        Some(c) => state
            .load()?
            .filter(|s| s.contract_id == c.contract_id && s.genesis == grid.client.genesis_hash())
            .map(|s| s.secrets)
            .unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let secrets_changed: Vec<String> = workloads
        .iter()
        .filter(|w| {
            recorded
                .get(&w.name)
                .is_some_and(|d| Some(*d) != secrets_digest(w))
        })
        .map(|w| w.name.clone())
        .collect();
    let mut changes: Vec<Change> = workloads
        .iter()
        .map(|w| {
            let action = match old.and_then(|d| d.workload(&w.name)) {
                None => Action::Create,
                Some(prev) if same_workload(prev, w) && !secrets_changed.contains(&w.name) => {
                    Action::Keep
                }
                Some(_) if w.data.updatable() => Action::Update,
                Some(_) => Action::Replace,
            };
            Change {
                name: w.name.clone(),
                kind: w.data.type_name(),
                action,
                detail: detail(&w.data),
            }
        })
        .collect();
    for w in old.map_or(&[][..], |d| &d.workloads[..]) {
        if !workloads.iter().any(|n| n.name == w.name) {
            changes.push(Change {
                name: w.name.clone(),
                kind: w.data.type_name(),
                action: Action::Remove,
                detail: detail(&w.data),
            });
        }
    }
    Ok(Plan {
        project: project.name().into(),
        description: project.description.clone(),
        node_id,
        node_reason,
        contract_id: current.as_ref().map(|c| c.contract_id),
        changes,
        cost_per_hour: cost_per_hour(grid, &workloads, held(Action::Create)).await?,
        cost_per_hour_now: cost_per_hour(
            grid,
            old.map_or(&[][..], |d| &d.workloads),
            held(Action::Remove),
        )
        .await?,
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
    let meta = metadata(&plan.project);
    if plan.cost_per_hour > plan.cost_per_hour_now {
        let available = grid.client.rpc().account(grid.key.account()).await?.free;
        if available < plan.cost_per_hour {
            return Err(Error::InsufficientFunds {
                project: plan.project.clone(),
                cost_per_hour: plan.cost_per_hour,
                available,
            });
        }
    }
    let Some(current) = &plan.current else {
        let pending = submit_names(grid, plan, progress).await?;
        let what = format!("creating the contract on node {}", plan.node_id);
        progress(Progress::Submitting(&what));
        let created = grid
            .create_deployment(
                plan.node_id,
                plan.workloads.clone(),
                meta,
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
        let state = State {
            project: plan.project.clone(),
            genesis: grid.client.genesis_hash(),
            node_id: plan.node_id,
            contract_id: contract.contract_id,
            secrets: digests(&plan.workloads),
            names: names.iter().map(|(n, _)| n.clone()).collect(),
        };
        plan.state.save(&state)?;
        let waited = wait(
            grid,
            plan,
            Step {
                contract_id: contract.contract_id,
                version: 0,
                expected: &plan.workloads,
            },
            options,
            started,
            progress,
        )
        .await;
        return match waited {
            Ok(applied) => Ok(applied),
            Err(Error::Failed(mut failure)) => {
                if !options.keep_on_error {
                    grid.cancel(contract.contract_id).await?;
                    cancel_names(grid, &names).await?;
                    plan.state.remove()?;
                    failure.canceled = true;
                }
                Err(Error::Failed(failure))
            }
            Err(other) => Err(other),
        };
    };
    if !plan.has_changes() {
        let view = grid.contract(current.contract_id).await?;
        let workloads = view
            .and_then(|v| v.deployment_state)
            .map(|s| s.workloads)
            .unwrap_or_default();
        return Ok(Applied {
            project: plan.project.clone(),
            contract_id: current.contract_id,
            node_id: current.node_id,
            version: current.deployment.version,
            workloads,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
    }
    let replaced: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .map(|c| c.name.as_str())
        .collect();
    let mut steps = Vec::new();
    if !replaced.is_empty() {
        steps.push(
            plan.workloads
                .iter()
                .filter(|w| !replaced.contains(&w.name.as_str()))
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    steps.push(plan.workloads.clone());
    let pending = submit_names(grid, plan, progress).await?;
    let mut names = Some(pending);
    let mut applied = None;
    for workloads in steps {
        let what = format!("updating contract {}", current.contract_id);
        progress(Progress::Submitting(&what));
        let updated = grid
            .update_deployment(
                current.contract_id,
                workloads.clone(),
                &plan.secrets_changed,
                meta.clone(),
                plan.description.clone(),
                None,
            )
            .await;
        // The names were submitted with the first version: they are in its block or before.
        if let Some(pending) = names.take() {
            let (created, names_failed) = wait_names(grid, pending).await;
            if names_failed.is_some() || updated.is_err() {
                cancel_names(grid, &created).await?;
                return Err(match (updated, names_failed) {
                    (Err(e), _) | (Ok(_), Some(e)) => e,
                    (Ok(_), None) => unreachable!("one of them failed"),
                });
            }
            let mut recorded = plan.created_names.clone();
            recorded.extend(created.into_iter().map(|(n, _)| n));
            save_state(grid, plan, current, recorded)?;
        }
        let d = updated?;
        progress(Progress::Included {
            what: &format!("contract {} version {}", current.contract_id, d.version),
            height: 0,
            elapsed: started.elapsed(),
        });
        let done = wait(
            grid,
            plan,
            Step {
                contract_id: current.contract_id,
                version: d.version,
                expected: &workloads,
            },
            options,
            started,
            progress,
        )
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
    save_state(grid, plan, current, recorded)?;
    Ok(applied.expect("at least one step"))
}

/// Records the project's contract, its secrets' digests and the gateway names it created.
fn save_state(
    grid: &Grid,
    plan: &Plan,
    current: &Current,
    names: Vec<String>,
) -> Result<(), Error> {
    plan.state.save(&State {
        project: plan.project.clone(),
        genesis: grid.client.genesis_hash(),
        node_id: current.node_id,
        contract_id: current.contract_id,
        secrets: digests(&plan.workloads),
        names,
    })
}

/// Submits the creation of the name contracts the plan needs; returns their transactions. When
/// one is refused, those submitted before it are waited for and canceled again.
async fn submit_names(
    grid: &Grid,
    plan: &Plan,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<(String, Hash32)>, Error> {
    let mut out = Vec::new();
    for n in plan.names_to(Action::Create) {
        progress(Progress::Submitting(&format!(
            "creating the name contract of {:?}",
            n.name
        )));
        match grid.submit_name_contract(&n.name).await {
            Ok(hash) => out.push((n.name.clone(), hash)),
            Err(e) => {
                let (created, _) = wait_names(grid, out).await;
                cancel_names(grid, &created).await?;
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Waits for every name contract submitted: those the chain created, and the first failure.
async fn wait_names(
    grid: &Grid,
    txs: Vec<(String, Hash32)>,
) -> (Vec<(String, ContractId)>, Option<Error>) {
    let mut created = Vec::new();
    let mut failed = None;
    for (name, hash) in txs {
        let step = format!("creating the name contract of {name:?}");
        let outcome = grid.wait(hash, &step).await.and_then(|included| {
            crate::created_contract(&included)
                .ok_or_else(|| Error::NotFound(format!("{step}: the chain reported no contract")))
        });
        match outcome {
            Ok(contract) => created.push((name, contract.contract_id)),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    (created, failed)
}

async fn cancel_names(grid: &Grid, names: &[(String, ContractId)]) -> Result<(), Error> {
    for (_, id) in names {
        grid.cancel(*id).await?;
    }
    Ok(())
}

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

/// A version of a contract to wait for, and the workloads it holds.
struct Step<'a> {
    contract_id: ContractId,
    version: u32,
    expected: &'a [Workload],
}

/// Polls until the node has reported `version` with every workload `ok` or `error`, in a block or
/// in its signed report still waiting for one (so apply ends a block earlier); reports each state
/// change as it comes.
async fn wait(
    grid: &Grid,
    plan: &Plan,
    Step {
        contract_id,
        version,
        expected,
    }: Step<'_>,
    options: &ApplyOptions,
    started: Instant,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Applied, Error> {
    let rpc = grid.client.rpc();
    let deadline = Instant::now() + options.timeout;
    let mut shown: BTreeMap<String, (ResultState, String)> = BTreeMap::new();
    let failure = |failed, timed_out| Failure {
        project: plan.project.clone(),
        node_id: plan.node_id,
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
                    project: plan.project.clone(),
                    contract_id,
                    node_id: plan.node_id,
                    version,
                    workloads: state.workloads,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
            }
        }
        if Instant::now() >= deadline {
            let node = rpc.node(plan.node_id).await?;
            let seen = node
                .and_then(|n| n.uptime)
                .map(|u| now_s().saturating_sub(u.reported_at_s));
            let liveness = match seen {
                Some(s) => format!("its last uptime report was {s} s ago"),
                None => "it never reported its uptime".into(),
            };
            return Err(Error::Failed(failure(
                vec![],
                Some(format!(
                    "node {} did not report version {version} within {:?} ({liveness}): is it down?",
                    plan.node_id, options.timeout
                )),
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Cancels the project's contract (the node then removes its workloads) and the name contracts it
/// created for its gateways (as its state file records them; without one, those of its gateways),
/// unless another deployment of the twin serves the name, and forgets it; returns the node
/// contract canceled, if there was one.
pub async fn destroy(
    grid: &Grid,
    name: &str,
    state: &StateFile,
) -> Result<Option<ContractId>, Error> {
    let current = current(grid, name, state).await?;
    if let Some(c) = &current {
        let recorded = state
            .load()?
            .filter(|s| s.genesis == grid.client.genesis_hash() && s.project == name);
        let names: Vec<String> = match recorded {
            Some(s) => s.names,
            None => gateway_names(&c.deployment).map(str::to_owned).collect(),
        };
        let names =
            names_to_cancel(grid, names.iter().map(String::as_str), Some(c.contract_id)).await?;
        grid.cancel(c.contract_id).await?;
        cancel_names(grid, &names).await?;
    }
    state.remove()?;
    Ok(current.map(|c| c.contract_id))
}
