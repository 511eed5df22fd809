//! `plan`, `apply`, `status` and `destroy` of deployment files, through the SDK: what a person sees
//! (a plan table with costs, progress while the node works, results with addresses and endpoints,
//! all on stdout in that order) or JSON for scripts. The project's state directory (`.tfgrid/`) is
//! made ignored by git.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tfgrid_sdk::deployer::{self, Action, ApplyOptions, Plan, Progress, StateFile};
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

fn show_plan(p: &Plan) -> String {
    let verb = |a: Action| match a {
        Action::Create => "create",
        Action::Update => "update in place",
        Action::Replace => "replace (remove, then create)",
        Action::Remove => "remove",
        Action::Keep => "unchanged",
    };
    let mut text = match p.contract_id {
        Some(id) => format!(
            "{}: contract {id} on node {} ({})\n",
            p.project, p.node_id, p.node_reason
        ),
        None => format!(
            "{}: a new contract on node {} ({})\n",
            p.project, p.node_id, p.node_reason
        ),
    };
    text.push_str(&table(
        &["workload", "type", "action", "takes"],
        p.changes.iter().map(|c| {
            vec![
                c.name.clone(),
                c.kind.into(),
                verb(c.action).into(),
                c.detail.clone(),
            ]
        }),
    ));
    for n in &p.names {
        let action = match (n.action, n.contract_id) {
            (Action::Keep, Some(id)) => format!("held (contract {id})"),
            (Action::Remove, Some(id)) => format!("cancel contract {id}"),
            (action, _) => verb(action).into(),
        };
        text.push_str(&format!("\ngateway name {:?}: {action}", n.name));
    }
    text.push_str(&format!(
        "\ncost: {} before discounts",
        cost(p.cost_per_hour)
    ));
    if p.contract_id.is_some() {
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
    let ip = gateway_ip(&grid, applied.node_id).await?;
    ctx.out.show(&applied, |a| {
        format!(
            "{} applied in {:.1} s: contract {} on node {} (version {})\n{}",
            a.project,
            a.elapsed_ms as f64 / 1000.0,
            a.contract_id,
            a.node_id,
            a.version,
            results_table(&a.workloads, ip.as_deref())
        )
    })?;
    Ok(())
}

pub async fn status(ctx: &Ctx, args: &ProjectArgs) -> Result<()> {
    let (grid, project, state) = load(ctx, args).await?;
    let Some(current) = deployer::current(&grid, project.name(), &state).await? else {
        ctx.out.show(&serde_json::Value::Null, |_| {
            format!("{} is not deployed", project.name())
        })?;
        return Ok(());
    };
    let view = grid
        .contract(current.contract_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("contract {} vanished", current.contract_id))?;
    let version = current.deployment.version;
    let reported = deployer::reported(&grid, &view, version).await?;
    let ip = gateway_ip(&grid, current.node_id).await?;
    // The gateway names' own contracts cost too.
    let mut names_cost = 0;
    let mut names = 0;
    for w in &current.deployment.workloads {
        if let WorkloadData::GatewayNameProxy(g) = &w.data
            && let Some(c) = grid.name_contract(&g.name).await?
            && c.twin_id == grid.twin_id
            && let Some(view) = grid.contract(c.contract_id).await?
        {
            names_cost += view.cost_per_hour;
            names += 1;
        }
    }
    let json = serde_json::json!({ "contract": view, "reported": reported.as_ref().map(|r| &r.0) });
    ctx.out.show(&json, |_| {
        let v = &view;
        let state = reported.as_ref().map(|r| &r.0);
        let mut text = fields(&[
            ("project", project.name().to_owned()),
            ("contract", v.contract.contract_id.to_string()),
            ("node", current.node_id.to_string()),
            ("state", crate::contracts::state(&v.contract)),
            (
                "version",
                match &reported {
                    Some((_, false)) => format!("{version} (reported by the node)"),
                    Some((_, true)) => {
                        format!("{version} (reported by the node, in the next block)")
                    }
                    None => format!("{version} (the node has not reported it yet)"),
                },
            ),
            (
                "cost",
                match names {
                    0 => format!("{} before discounts", cost(v.cost_per_hour)),
                    n => format!(
                        "{} before discounts ({} of it for {n} gateway name{})",
                        cost(v.cost_per_hour + names_cost),
                        format_tft(names_cost),
                        if n == 1 { "" } else { "s" }
                    ),
                },
            ),
        ]);
        text.push('\n');
        text.push_str(&results_table(
            state.map_or(&[][..], |s| &s.workloads),
            ip.as_deref(),
        ));
        text
    })?;
    Ok(())
}

pub async fn destroy(ctx: &Ctx, args: &ProjectArgs) -> Result<()> {
    let (grid, project, state) = load(ctx, args).await?;
    let current = deployer::destroy(&grid, project.name(), &state).await?;
    let json = serde_json::json!({ "project": project.name(), "canceled": current });
    ctx.out.show(&json, |_| match current {
        Some(id) => format!(
            "{} destroyed: contract {id} canceled; the node removes its workloads",
            project.name()
        ),
        None => format!("{} is not deployed: nothing to destroy", project.name()),
    })?;
    Ok(())
}
