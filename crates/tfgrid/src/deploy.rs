//! `plan`, `apply`, `status` and `destroy` of deployment files, through the SDK, over all the
//! project's nodes: what a person sees (a plan table with costs, progress while the nodes work,
//! each contract's results with addresses and endpoints, all on stdout in that order) or JSON for
//! scripts; and `network access`, a user's machine in the project's private network (its
//! `wg-quick` configuration on stdout). The project's state directory (`.tfgrid/`) is made
//! ignored by git.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tfgrid_sdk::deployer::{self, Action, Applied, ApplyOptions, Plan, Progress, StateFile};
use tfgrid_sdk::project::Project;
use tfgrid_types::deployment::{ResultData, ResultState, WorkloadData, WorkloadResult};
use tfgrid_types::format_tft;

use crate::ProjectArgs;
use crate::commands::Ctx;
use crate::output::{self, fields, table};

const HOURS_A_MONTH: u128 = 24 * 30;

fn state_file(args: &ProjectArgs, project: &Project) -> StateFile {
    match &args.state {
        Some(path) => StateFile { path: path.clone() },
        None => StateFile::beside(".", project.name()),
    }
}

/// What a directory of state the CLI makes says to git: ignore all of it (as cargo's `target/`).
const GITIGNORE: &str = "# Made by tfgrid: deployment state, not sources.\n*\n";

/// Creates `dir` for state (the project's `.tfgrid/`, `up`'s data) with a `.gitignore` in it, so
/// it is not committed by mistake; a directory that exists already is left as it is.
pub(crate) fn create_state_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ignore = dir.join(".gitignore");
    std::fs::write(&ignore, GITIGNORE).with_context(|| format!("writing {}", ignore.display()))
}

fn cost(units_an_hour: u128) -> String {
    format!(
        "{} TFT an hour, {} TFT a month",
        format_tft(units_an_hour),
        format_tft(units_an_hour * HOURS_A_MONTH)
    )
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update in place",
        Action::Replace => "replace (remove, then create)",
        Action::Remove => "remove",
        Action::Keep => "unchanged",
    }
}

/// The plan as a person reads it: a line per node (its contract, why that node), a table of the
/// workloads (with their node when there are several), the gateway names, the network, the cost.
fn show_plan(p: &Plan) -> String {
    let mut text = String::new();
    for n in &p.nodes {
        let line = match (n.contract_id, n.leaves()) {
            (Some(id), true) => format!("contract {id} on node {} is canceled", n.node_id),
            (Some(id), false) => format!("contract {id} on node {}", n.node_id),
            (None, _) => format!("a new contract on node {}", n.node_id),
        };
        text.push_str(&format!("{}: {line} ({})\n", p.project, n.node_reason));
    }
    let several = p.nodes.len() > 1;
    let mut header = vec!["workload", "type", "action", "takes"];
    if several {
        header.insert(0, "node");
    }
    let rows = p.nodes.iter().flat_map(|n| {
        n.changes.iter().map(move |c| {
            let mut row = vec![
                c.name.clone(),
                c.kind.into(),
                verb(c.action).into(),
                c.detail.clone(),
            ];
            if several {
                row.insert(0, n.node_id.to_string());
            }
            row
        })
    });
    text.push_str(&table(&header, rows));
    for n in &p.names {
        let action = match (n.action, n.contract_id) {
            (Action::Keep, Some(id)) => format!("held (contract {id})"),
            (Action::Remove, Some(id)) => format!("cancel contract {id}"),
            (action, _) => verb(action).into(),
        };
        text.push_str(&format!("\ngateway name {:?}: {action}", n.name));
    }
    if let Some(net) = p
        .network_view
        .as_ref()
        .filter(|n| n.members.len() > 1 || n.access_peers > 0)
    {
        let members: Vec<String> = net
            .members
            .iter()
            .map(|(node, subnet, public)| {
                let how = if *public { "public" } else { "hidden" };
                format!("node {node} {subnet} ({how})")
            })
            .collect();
        text.push_str(&format!(
            "\nnetwork {} {}: {}",
            net.name,
            net.ip_range,
            members.join(", ")
        ));
        if let Some(a) = net.access_node {
            let peers = match net.access_peers {
                0 => String::new(),
                1 => ", 1 access peer".into(),
                n => format!(", {n} access peers"),
            };
            text.push_str(&format!("; access node {a}{peers}"));
        }
    }
    text.push_str(&format!(
        "\ncost: {} before discounts",
        cost(p.cost_per_hour)
    ));
    if p.nodes.iter().any(|n| n.contract_id.is_some()) {
        text.push_str(&format!(" (now {})", cost(p.cost_per_hour_now)));
    }
    if !p.has_changes() {
        text.push_str("\nnothing to change");
    }
    text
}

/// A workload's result as a person reads it: where to reach it, or why it failed. `gateway_ip` is
/// the node's public address, where its gateway names answer.
fn result_text(r: &WorkloadResult, gateway_ip: Option<&str>) -> String {
    if r.state == ResultState::Error {
        return r.message.clone();
    }
    match &r.data {
        ResultData::Zmachine { ip, .. } => format!("private address {ip}"),
        ResultData::Zdb {
            namespace,
            ips,
            port,
        } => {
            let addrs: Vec<String> = ips.iter().map(|ip| format!("{ip}:{port}")).collect();
            format!("namespace {namespace} at {}", addrs.join(", "))
        }
        ResultData::Ip { ip, gateway, .. } => format!("public {ip} via {gateway}"),
        ResultData::GatewayNameProxy { fqdn } => match gateway_ip {
            Some(ip) => format!("http(s)://{fqdn} at {ip}"),
            None => format!("http(s)://{fqdn}"),
        },
        ResultData::Volume { id } => format!("volume {id}"),
        ResultData::Zmount { volume_id } => format!("disk {volume_id}"),
        ResultData::Network { endpoint, .. } if endpoint.is_empty() => {
            "WireGuard, hidden (reached through an access node)".into()
        }
        ResultData::Network { endpoint, .. } => format!("WireGuard at {endpoint}"),
        ResultData::None => r.message.clone(),
    }
}

pub(crate) fn results_table(results: &[WorkloadResult], gateway_ip: Option<&str>) -> String {
    table(
        &["workload", "state", "result"],
        results.iter().map(|r| {
            vec![
                r.name.clone(),
                format!("{:?}", r.state).to_lowercase(),
                result_text(r, gateway_ip),
            ]
        }),
    )
}

/// The node's public IPv4 (where its gateway answers), if it has a public config.
async fn gateway_ip(grid: &tfgrid_sdk::Grid, node_id: u32) -> Result<Option<String>> {
    use tfchain_client::api::TfchainApiClient;
    let node = grid.client.rpc().node(node_id).await?;
    Ok(node
        .and_then(|n| n.node.public_config)
        .map(|p| p.ip4.ip.split('/').next().unwrap_or_default().to_owned()))
}

async fn load(ctx: &Ctx, args: &ProjectArgs) -> Result<(tfgrid_sdk::Grid, Project, StateFile)> {
    let project = Project::read(&args.file)?;
    let grid = ctx.grid().await?;
    let state = state_file(args, &project);
    Ok((grid, project, state))
}

pub async fn plan(ctx: &Ctx, args: &ProjectArgs) -> Result<()> {
    let (grid, project, state) = load(ctx, args).await?;
    let plan = deployer::plan(&grid, &project, &state).await?;
    ctx.out.show(&plan, show_plan)?;
    Ok(())
}

/// A line of `apply`'s progress.
fn progress_line(p: &Progress<'_>) -> String {
    match p {
        Progress::Submitting(what) => format!("{what}..."),
        Progress::Included {
            what,
            height: 0,
            elapsed,
        } => format!("  {what} on the chain ({:.1} s)", elapsed.as_secs_f64()),
        Progress::Included {
            what,
            height,
            elapsed,
        } => format!(
            "  {what} in block {height} ({:.1} s)",
            elapsed.as_secs_f64()
        ),
        Progress::Waiting {
            node_id,
            contract_id,
            version,
        } => {
            format!("waiting for node {node_id} to run contract {contract_id} version {version}...")
        }
        Progress::Workload { result, elapsed } => format!(
            "  {:<16} {:<8} {:>5.1} s  {}",
            result.name,
            format!("{:?}", result.state).to_lowercase(),
            elapsed.as_secs_f64(),
            match result.state {
                ResultState::Error => result.message.as_str(),
                _ => "",
            }
        ),
    }
}

pub async fn apply(ctx: &Ctx, args: &ProjectArgs, keep_on_error: bool, timeout: u64) -> Result<()> {
    let (grid, project, state) = load(ctx, args).await?;
    if args.state.is_none()
        && let Some(dir) = state.path.parent()
    {
        create_state_dir(dir)?;
    }
    let plan = deployer::plan(&grid, &project, &state).await?;
    // The plan, the progress and the results all go to stdout: one stream keeps their order in a
    // file or a pipe as on a terminal, and `apply f.toml > out` holds the whole story.
    let quiet = ctx.out.json;
    if !quiet {
        output::print(show_plan(&plan))?;
    }
    let options = ApplyOptions {
        keep_on_error,
        timeout: Duration::from_secs(timeout),
    };
    let mut show = |p: Progress<'_>| {
        if !quiet {
            // A stdout closed meanwhile is said by the results' print.
            let _ = output::print(progress_line(&p));
        }
    };
    let applied = deployer::apply(&grid, &plan, &options, &mut show).await?;
    let text = applied_text(&grid, &applied).await?;
    ctx.out.show(&applied, |_| text)?;
    Ok(())
}

/// What an apply did, as a person reads it: each contract's results.
pub(crate) async fn applied_text(grid: &tfgrid_sdk::Grid, a: &Applied) -> Result<String> {
    let mut text = match a.contracts.len() {
        1 => format!(
            "{} applied in {:.1} s: contract {} on node {} (version {})",
            a.project,
            a.elapsed_ms as f64 / 1000.0,
            a.contract_id,
            a.node_id,
            a.version
        ),
        n => format!(
            "{} applied in {:.1} s on {n} nodes",
            a.project,
            a.elapsed_ms as f64 / 1000.0
        ),
    };
    for c in &a.contracts {
        let ip = gateway_ip(grid, c.node_id).await?;
        if a.contracts.len() > 1 {
            text.push_str(&format!(
                "\ncontract {} on node {} (version {})",
                c.contract_id, c.node_id, c.version
            ));
        }
        text.push('\n');
        text.push_str(&results_table(&c.workloads, ip.as_deref()));
    }
    for id in &a.canceled {
        text.push_str(&format!(
            "\ncontract {id} canceled: its node runs nothing of the project any more"
        ));
    }
    Ok(text)
}

pub async fn status(ctx: &Ctx, args: &ProjectArgs) -> Result<()> {
    let (grid, project, state) = load(ctx, args).await?;
    let currents = deployer::current(&grid, project.name(), &state).await?;
    if currents.is_empty() {
        ctx.out.show(&serde_json::Value::Null, |_| {
            format!("{} is not deployed", project.name())
        })?;
        return Ok(());
    }
    let mut json = Vec::new();
    let mut blocks = vec![fields(&[("project", project.name().to_owned())])];
    let mut total = 0;
    for current in &currents {
        let (value, block, cost_per_hour) = contract_status(&grid, current).await?;
        json.push(value);
        blocks.push(block);
        total += cost_per_hour;
    }
    // The gateway names' own contracts cost too.
    let (names, names_cost) = names_cost(&grid, &currents).await?;
    let mut summary = Vec::new();
    if names > 0 {
        summary.push((
            "names",
            format!(
                "{names} gateway name{}, {} before discounts",
                if names == 1 { "" } else { "s" },
                cost(names_cost)
            ),
        ));
    }
    if currents.len() > 1 || names > 0 {
        summary.push((
            "in all",
            format!("{} before discounts", cost(total + names_cost)),
        ));
    }
    if !summary.is_empty() {
        blocks.push(fields(&summary));
    }
    let json = serde_json::json!({ "project": project.name(), "contracts": json });
    ctx.out.show(&json, |_| blocks.join("\n\n"))?;
    Ok(())
}

/// One contract's status: as JSON, as text (its fields and results), and its cost an hour.
async fn contract_status(
    grid: &tfgrid_sdk::Grid,
    current: &deployer::Current,
) -> Result<(serde_json::Value, String, u128)> {
    let view = grid
        .contract(current.contract_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("contract {} vanished", current.contract_id))?;
    let version = current.deployment.version;
    let reported = deployer::reported(grid, &view, version).await?;
    let ip = gateway_ip(grid, current.node_id).await?;
    let mut text = fields(&[
        ("contract", view.contract.contract_id.to_string()),
        ("node", current.node_id.to_string()),
        ("state", crate::contracts::state(&view.contract)),
        (
            "version",
            match &reported {
                Some((_, false)) => format!("{version} (reported by the node)"),
                Some((_, true)) => format!("{version} (reported by the node, in the next block)"),
                None => format!("{version} (the node has not reported it yet)"),
            },
        ),
        (
            "cost",
            format!("{} before discounts", cost(view.cost_per_hour)),
        ),
    ]);
    text.push('\n');
    let results = reported.as_ref().map_or(&[][..], |(s, _)| &s.workloads[..]);
    text.push_str(&results_table(results, ip.as_deref()));
    let json = serde_json::json!({ "contract": view, "reported": reported.as_ref().map(|r| &r.0) });
    Ok((json, text, view.cost_per_hour))
}

/// How many gateway names the project's deployments serve from the twin's name contracts, and
/// what those cost an hour.
async fn names_cost(
    grid: &tfgrid_sdk::Grid,
    currents: &[deployer::Current],
) -> Result<(usize, u128)> {
    let (mut names, mut total) = (0, 0);
    for w in currents.iter().flat_map(|c| &c.deployment.workloads) {
        if let WorkloadData::GatewayNameProxy(g) = &w.data
            && let Some(c) = grid.name_contract(&g.name).await?
            && c.twin_id == grid.twin_id
            && let Some(view) = grid.contract(c.contract_id).await?
        {
            total += view.cost_per_hour;
            names += 1;
        }
    }
    Ok((names, total))
}

pub async fn destroy(ctx: &Ctx, args: &ProjectArgs) -> Result<()> {
    let (grid, project, state) = load(ctx, args).await?;
    let canceled = deployer::destroy(&grid, project.name(), &state).await?;
    let json = serde_json::json!({ "project": project.name(), "canceled": canceled });
    ctx.out.show(&json, |_| match &canceled[..] {
        [] => format!("{} is not deployed: nothing to destroy", project.name()),
        [id] => format!(
            "{} destroyed: contract {id} canceled; the node removes its workloads",
            project.name()
        ),
        ids => format!(
            "{} destroyed: contracts {} canceled; the nodes remove their workloads",
            project.name(),
            ids.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })?;
    Ok(())
}

/// `tfgrid network access`: a new access peer for the user's machine in the project's private
/// network, applied, and its `wg-quick` configuration printed (the private key is printed only
/// here). `file`, when given, is the project's deployment file (it must name the project).
pub async fn network_access(
    ctx: &Ctx,
    name: &str,
    file: Option<&Path>,
    state: Option<&Path>,
    timeout: u64,
) -> Result<()> {
    if let Some(file) = file {
        let project = Project::read(file)?;
        anyhow::ensure!(
            project.name() == name,
            "{} is the file of project {:?}, not {name:?}",
            file.display(),
            project.name()
        );
    }
    let grid = ctx.grid().await?;
    let state = match state {
        Some(path) => StateFile {
            path: path.to_owned(),
        },
        None => StateFile::beside(".", name),
    };
    let (plan, access) = deployer::access(&grid, name, &state).await?;
    let quiet = ctx.out.json;
    if !quiet {
        output::note(show_plan(&plan));
    }
    let options = ApplyOptions {
        keep_on_error: false,
        timeout: Duration::from_secs(timeout),
    };
    let mut show = |p: Progress<'_>| {
        if !quiet {
            output::note(progress_line(&p));
        }
    };
    let applied = deployer::apply(&grid, &plan, &options, &mut show).await?;
    let config = access
        .config(&plan, &applied)
        .context("the network has no access node")?;
    let json = serde_json::json!({
        "project": name,
        "subnet_index": access.subnet_index,
        "public_key": access.key.public_key,
        "config": config,
    });
    ctx.out.show(&json, |_| config.clone())?;
    if !quiet {
        output::note("keep it: its private key is printed only once (wg-quick up <file>.conf)");
    }
    Ok(())
}
