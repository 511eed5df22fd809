//! `tfgrid up`: a whole grid on this machine with one command — a dev chain, the explorer with its
//! dashboard, an image hub with a demo image, a farm, and N node agents with virtual capacity, each
//! with its own data — and with `--demo`, `examples/demo.toml` applied (a 0-db, a container and a
//! gateway name for it). As root, each node runs in a network namespace of its own, a host on a LAN
//! (`hostnet`) that reaches the chain and the hub through forwarders, and is a gateway: its public
//! config gives it an address on the farm's public network and the domain `node<N>.grid.local`. Ctrl-C (or TERM) stops everything it started
//! (by the PIDs it started) and tears down what the nodes ran.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hostnet::{Host, Lan};
use tfchain_client::Client;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::tfgrid::{Call as GridCall, IpInput};
use tfchain_runtime::types::{Ip4Config, PublicConfig};
use tfchain_runtime::{Call, balances};
use tfgrid_sdk::deployer::{self, ApplyOptions, Progress, StateFile};
use tfgrid_sdk::project::Project;
use tfgrid_sdk::{Endpoints, Grid};
use tfgrid_types::{Hash32, Keypair, UNITS_PER_TFT};

use crate::{images, output};

/// The chain's port on loopback unless `--rpc-port` says otherwise (the CLI's default `--rpc`).
pub const RPC_PORT: u16 = 9944;
const CAPACITY: &str = "cru=4,mru=8G,sru=100G,hru=100G";
/// What `--demo` applies.
const DEMO: &str = include_str!("../../../examples/demo.toml");
/// The local farm's public IPs (the chain accepts only routable addresses; nothing routes them here).
const FARM_IPS: [&str; 3] = [
    "185.206.122.33/24",
    "185.206.122.34/24",
    "185.206.122.35/24",
];
const FARM_GATEWAY: &str = "185.206.122.1";

/// Node `n`'s public config, as root: its gateway's address on the farm's public network (the LAN)
/// and the domain its gateway names are served under.
fn node_public_config(n: u32) -> PublicConfig {
    PublicConfig {
        ip4: Ip4Config {
            ip: format!("185.206.122.{}/24", 100 + n),
            gw: FARM_GATEWAY.into(),
        },
        ip6: None,
        domain: Some(format!("node{n}.grid.local")),
    }
}

/// The processes `up` started, stopped by PID when it ends, the nodes' data directories and
/// hosts, and the LAN they are on (deleted last).
struct Started {
    children: Vec<(String, Child)>,
    nodes: Vec<(PathBuf, Option<Host>)>,
    lan: Option<Lan>,
}

impl Drop for Started {
    fn drop(&mut self) {
        for (name, child) in self.children.iter_mut().rev() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
            output::note(format_args!("stopped {name}"));
        }
        // What the nodes run outlives their agents (as on a real node): tear it down.
        if let Ok(zos) = sibling("zos") {
            for (dir, host) in &self.nodes {
                let _ = on(host.as_ref(), &zos)
                    .arg("--teardown")
                    .arg("--data-dir")
                    .arg(dir)
                    .status();
            }
        }
    }
}

/// A command running `program` on `host`, or here.
fn on(host: Option<&Host>, program: &Path) -> Command {
    match host {
        Some(host) => host.command(program),
        None => Command::new(program),
    }
}

/// Whether this process runs as root (then nodes get a network namespace each).
fn root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .is_some_and(|uids| uids.split_whitespace().next() == Some("0"))
    })
}

/// Forwards connections to `listen` (on the LAN) to `to` (on loopback), so nodes on the LAN reach
/// the chain and the hub that users reach on 127.0.0.1.
async fn forward(listen: String, to: String) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok(())
}

fn sibling(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing: build the workspace's binaries (cargo build --bins)",
            path.display()
        );
    }
    Ok(path)
}

fn spawn(started: &mut Started, name: &str, logs: &Path, cmd: &mut Command) -> Result<()> {
    let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    started.children.push((name.to_owned(), child));
    Ok(())
}

async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {timeout:?}: see the logs");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Why `up` cannot have its loopback `ports` (each named by its option), if it cannot: one given
/// twice, or one that is not `free` — most likely held by another `tfgrid up`, which the user may
/// stop or dodge with other ports.
fn port_clash(ports: &[(&str, u16)], free: impl Fn(u16) -> bool) -> Option<String> {
    for (i, (option, port)) in ports.iter().enumerate() {
        if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
            return Some(format!(
                "{other} and {option} are both {port}: give each its own port"
            ));
        }
    }
    let (option, port) = ports.iter().find(|(_, port)| !free(*port))?;
    let options: Vec<&str> = ports.iter().map(|(option, _)| *option).collect();
    let (last, first) = options.split_last()?;
    Some(format!(
        "port {port} ({option}) is taken: another `tfgrid up` is probably running; stop it \
         (Ctrl-C), or pick other ports with {} and {last}",
        first.join(", ")
    ))
}

/// Whether a port on loopback can be listened on now.
fn loopback_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

pub async fn up(
    nodes: u32,
    dir: PathBuf,
    demo: bool,
    rpc_port: u16,
    hub_port: u16,
    explorer_port: u16,
) -> Result<()> {
    // Before anything is cleared or started: a running grid's data and ports are not this one's.
    let ports = [
        ("--rpc-port", rpc_port),
        ("--hub-port", hub_port),
        ("--explorer-port", explorer_port),
    ];
    if let Some(clash) = port_clash(&ports, loopback_free) {
        bail!(clash);
    }
    let rpc = format!("ws://127.0.0.1:{rpc_port}");
    let hub = format!("127.0.0.1:{hub_port}");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    // Absolute: the nodes' container runtime resolves paths from elsewhere than here.
    let dir = std::path::absolute(&dir)?;
    crate::deploy::create_state_dir(&dir)?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut started = Started {
        children: Vec::new(),
        nodes: Vec::new(),
        lan: None,
    };
    // As root, each node is a host of its own on a LAN of network namespaces; this process is on
    // it too, forwarding the chain and the hub to the nodes.
    let (node_rpc, hub_public) = if root() {
        let lan = Lan::new().context("making the nodes' LAN (network namespaces)")?;
        let here = lan.here();
        // The farm's public network shares the LAN's wire; this host is its gateway, so public
        // IPs given to machines answer here.
        lan.add_address(&format!("{FARM_GATEWAY}/24"))
            .context("adding the farm's gateway address")?;
        started.lan = Some(lan);
        forward(
            format!("{here}:{rpc_port}"),
            format!("127.0.0.1:{rpc_port}"),
        )
        .await?;
        forward(format!("{here}:{hub_port}"), hub.clone()).await?;
        (
            format!("ws://{here}:{rpc_port}"),
            format!("http://{here}:{hub_port}"),
        )
    } else {
        (rpc.clone(), format!("http://{hub}"))
    };

    output::note("starting the chain...");
    spawn(
        &mut started,
        "tfchain",
        &logs,
        Command::new(sibling("tfchain")?)
            .args([
                "--dev",
                "--rpc-addr",
                &format!("127.0.0.1:{rpc_port}"),
                "--base-path",
            ])
            .arg(dir.join("chain")),
    )?;
    let client = wait_until(
        &format!("the chain's start (is port {rpc_port} taken?)"),
        Duration::from_secs(30),
        || async { Client::connect(&rpc).await.ok() },
    )
    .await?;

    let hub_dir = dir.join("hub");
    std::fs::create_dir_all(&hub_dir)?;
    let image = match images::container_image(&dir)? {
        Some(archive) => Some(crate::hub::push(&archive, &hub_dir, Some("demo"))?),
        None => None,
    };
    // A VM image too, where the machine has a kernel and QEMU to boot it with.
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let vm_image = match images::newest_kernel() {
        Some(kernel) if qemu && image.is_some() => {
            let archive = dir.join("demo-vm.tar");
            match images::vm_image(&kernel, &dir, &archive) {
                Ok(()) => Some(crate::hub::push(&archive, &hub_dir, Some("demo-vm"))?),
                Err(e) => {
                    output::note(format_args!("no demo VM image: {e:#}"));
                    None
                }
            }
        }
        _ => None,
    };
    spawn(
        &mut started,
        "hub",
        &logs,
        Command::new(std::env::current_exe()?)
            .args([
                "hub",
                "serve",
                "--listen",
                &hub,
                "--public-url",
                &hub_public,
                "--dir",
            ])
            .arg(&hub_dir),
    )?;

    let explorer = format!("127.0.0.1:{explorer_port}");
    spawn(
        &mut started,
        "gridproxy",
        &logs,
        Command::new(sibling("gridproxy")?)
            .args(["--chain", &rpc, "--listen", &explorer, "--data-dir"])
            .arg(dir.join("gridproxy")),
    )?;

    output::note("creating the farm and the twins of //Alice (farmer) and //Bob (deployer)...");
    let alice = Keypair::from_uri("//Alice")?;
    let bob = Keypair::from_uri("//Bob")?;
    // Both accounts at once: one block for the terms, one for the twins.
    let accept = GridCall::UserAcceptTc {
        document_link: "https://grid.tf/terms".into(),
        document_hash: "local".into(),
    };
    let twin = GridCall::CreateTwin {
        relay: None,
        pk: None,
    };
    for call in [accept, twin] {
        let mut sent = Vec::new();
        for key in [&alice, &bob] {
            sent.push(client.submit(key, Call::Tfgrid(call.clone())).await?);
        }
        for hash in sent {
            client.wait(hash, Duration::from_secs(30)).await?;
        }
    }
    let public_ips = FARM_IPS
        .iter()
        .map(|ip| IpInput {
            ip: (*ip).into(),
            gw: FARM_GATEWAY.into(),
        })
        .collect();
    client
        .execute(
            &alice,
            Call::Tfgrid(GridCall::CreateFarm {
                name: "local-farm".into(),
                public_ips,
            }),
        )
        .await?;

    for n in 1..=nodes {
        output::note(format_args!("starting node {n}..."));
        let seed = Hash32::of("tfgrid up node", &n.to_le_bytes()).0;
        let node_dir = dir.join(format!("node{n}"));
        std::fs::create_dir_all(node_dir.join("identity"))?;
        std::fs::write(node_dir.join("identity/seed"), seed)?;
        let fund = balances::Call::Transfer {
            dest: Keypair::from_seed(seed).account(),
            amount: UNITS_PER_TFT,
        };
        client.execute(&alice, Call::Balances(fund)).await?;
        let host = match started.lan.as_mut() {
            Some(lan) => Some(lan.host().context("adding the node's host to the LAN")?),
            None => None,
        };
        // A node's 0-dbs listen on its address on the LAN (loopback when it shares this host's),
        // and its machines get public IPs on its LAN interface.
        let mut zos = on(host.as_ref(), &sibling("zos")?);
        zos.args(["--chain", &node_rpc, "--farm", "1", "--capacity", CAPACITY]);
        match &host {
            Some(h) => zos.args(["--host", &h.ip, "--public-iface", &h.iface]),
            None => zos.args(["--host", "127.0.0.1"]),
        };
        spawn(
            &mut started,
            &format!("node{n}"),
            &logs,
            zos.arg("--data-dir").arg(&node_dir),
        )?;
        started.nodes.push((node_dir, host));
        wait_until(
            &format!("node {n}'s registration"),
            Duration::from_secs(60),
            || async { client.rpc().node(n).await.ok()? },
        )
        .await?;
        if started.lan.is_some() {
            let config = GridCall::AddNodePublicConfig {
                farm_id: 1,
                node_id: n,
                public_config: Some(node_public_config(n)),
            };
            client
                .execute(&alice, Call::Tfgrid(config))
                .await
                .with_context(|| format!("giving node {n} its public config"))?;
        }
    }

    let endpoints = Endpoints {
        rpc: rpc.clone(),
        explorer: format!("http://{explorer}"),
        hub: format!("http://{hub}"),
    };
    let indexed = tfgrid_sdk::http::Explorer::new(&endpoints.explorer);
    wait_until(
        "the explorer's view of the nodes as up",
        Duration::from_secs(60),
        || async {
            let up = indexed.count_up().await.ok()?;
            (up >= nodes as usize).then_some(())
        },
    )
    .await?;

    output::print("\nlocal grid up:")?;
    output::print(format_args!(
        "  chain    {rpc} (dev chain, 1 s blocks; http:// works too)"
    ))?;
    match &image {
        Some(p) => output::print(format_args!(
            "  hub      http://{hub}  demo image http://{hub}/{} (flist_hash {})",
            p.file, p.hash
        ))?,
        None => output::print(format_args!(
            "  hub      http://{hub}  (no demo image: install busybox-static)"
        ))?,
    }
    match &vm_image {
        Some(_) => output::print(
            "           \"demo-vm\": the same root booting a kernel, for machines that are VMs",
        )?,
        None => output::print(
            "           (no VM image: install qemu-system-x86 and linux-image-amd64 for one)",
        )?,
    }
    output::print(format_args!(
        "  explorer http://{explorer}/  (dashboard; REST API: /nodes, /farms, /contracts, ...; /openapi.json)"
    ))?;
    output::print(format_args!(
        "  farm     1 \"local-farm\" of //Alice (the dev council), public IPs {}",
        FARM_IPS.join(" ")
    ))?;
    match &started.lan {
        Some(lan) => {
            output::print(format_args!(
                "  nodes    1 to {nodes}, each {CAPACITY}, each a host of its own (network namespace) on {}/24",
                lan.here()
            ))?;
            let last = node_public_config(nodes);
            output::print(format_args!(
                "  gateways node N serves <name>.nodeN.grid.local at 185.206.122.(100+N) (node {nodes}: {})",
                last.ip4.ip
            ))?;
        }
        None => output::print(format_args!(
            "  nodes    1 to {nodes}, each {CAPACITY} (sharing this host's network: not root)"
        ))?,
    }
    output::print(
        "  accounts //Alice, //Bob, //Charlie, //Dave, //Eve, //Ferdie (funded); //Alice and //Bob have twins",
    )?;
    output::print(format_args!("  logs     {}", logs.display()))?;

    output::print(format_args!(
        "\nUse it with:\n  export TFGRID_RPC={} TFGRID_EXPLORER={} TFGRID_HUB={} TFGRID_KEY=//Bob",
        endpoints.rpc, endpoints.explorer, endpoints.hub
    ))?;
    output::print(
        "  tfgrid plan examples/demo.toml; tfgrid apply examples/demo.toml; tfgrid node list",
    )?;
    if demo {
        if image.is_none() {
            bail!(
                "the demo needs its image: install busybox-static (apt-get install busybox-static)"
            );
        }
        run_demo(endpoints, StateFile::beside(&dir, "demo")).await?;
    }
    output::print("\nCtrl-C stops the grid.")?;
    // Ctrl-C, or a TERM from a service manager or `timeout`: stop and clean up either way.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted?,
        _ = term.recv() => {}
    }
    drop(started);
    Ok(())
}

/// Applies `examples/demo.toml` as //Bob, showing progress, and prints what runs.
async fn run_demo(endpoints: Endpoints, state: StateFile) -> Result<()> {
    output::note("\ndeploying examples/demo.toml as //Bob...");
    let project = Project::parse(DEMO, "examples/demo.toml")?;
    let grid = Grid::connect(endpoints, Keypair::from_uri("//Bob")?).await?;
    let plan = deployer::plan(&grid, &project, &state).await?;
    let applied = deployer::apply(&grid, &plan, &ApplyOptions::default(), &mut |p| {
        if let Progress::Workload { result, elapsed } = p {
            output::note(format_args!(
                "  {:<7} {:?} after {:.1} s {}",
                result.name,
                result.state,
                elapsed.as_secs_f64(),
                result.message
            ));
        }
    })
    .await?;
    output::print(format_args!(
        "\ndemo: contract {} on node {}, every workload ok {:.1} s after the command:",
        applied.contract_id,
        applied.node_id,
        applied.elapsed_ms as f64 / 1000.0
    ))?;
    let config = node_public_config(applied.node_id);
    let ip = config.ip4.ip.split('/').next().unwrap_or_default();
    output::print(format_args!(
        "{}",
        crate::deploy::results_table(&applied.workloads, Some(ip))
    ))?;
    for r in &applied.workloads {
        if let tfgrid_types::deployment::ResultData::GatewayNameProxy { fqdn } = &r.data {
            output::print(format_args!(
                "  try it: curl --resolve {fqdn}:80:{ip} http://{fqdn}/"
            ))?;
        }
    }
    output::print("  see it: tfgrid --key //Bob status examples/demo.toml")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::port_clash;

    const PORTS: [(&str, u16); 3] = [
        ("--rpc-port", 9944),
        ("--hub-port", 8090),
        ("--explorer-port", 8080),
    ];

    fn check(ports: &[(&str, u16)], taken: &[u16], expect: Option<&str>) {
        assert_eq!(
            port_clash(ports, |p| !taken.contains(&p)).as_deref(),
            expect
        );
    }

    #[test]
    fn clashes() {
        check(&PORTS, &[], None);
        check(
            &PORTS,
            &[8080, 9944],
            Some(
                "port 9944 (--rpc-port) is taken: another `tfgrid up` is probably running; stop \
                 it (Ctrl-C), or pick other ports with --rpc-port, --hub-port and --explorer-port",
            ),
        );
        check(
            &PORTS,
            &[8080],
            Some(
                "port 8080 (--explorer-port) is taken: another `tfgrid up` is probably running; \
                 stop it (Ctrl-C), or pick other ports with --rpc-port, --hub-port and \
                 --explorer-port",
            ),
        );
        let twice = [
            ("--rpc-port", 9944),
            ("--hub-port", 9944),
            ("--explorer-port", 1),
        ];
        check(
            &twice,
            &[9944],
            Some("--rpc-port and --hub-port are both 9944: give each its own port"),
        );
    }
}
