//! `tfgrid up`: a whole grid on this machine with one command — a dev chain, the explorer with its
//! dashboard, an image hub with a demo image, farms, and N node agents (3 unless told) with virtual
//! capacity, each with its own data — and with `--demo`, `examples/demo.toml` applied (a gateway
//! name and a 0-db on node 1, the web container it serves on node 2, reached over the project's
//! private network). As root, each node runs in a network namespace of its own, a host on a LAN
//! (`hostnet`) that reaches the chain and the hub through forwarders. Every node but the last is
//! public: its public config gives it an address on the farm's public network and the domain
//! `node<N>.grid.local`, so it is a gateway and a WireGuard endpoint. The last of two or more is
//! hidden, as a node at home is: behind a NAT router of its own, with no public config, in a farm
//! without public IPs. With `--validators N` (2 to 6, as root) the chain is N validators under
//! Tendermint BFT, each a host of its own on the LAN, and every client is given all their
//! endpoints to fail over through. Each process's PID is in `run/<name>.pid` while it runs. Ctrl-C
//! (or TERM) stops everything it started (by the PIDs it started) and tears down what the nodes
//! ran.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hostnet::{Host, Lan};
use tfchain_client::Client;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::genesis::DEV_ACCOUNTS;
use tfchain_runtime::tfgrid::{Call as GridCall, IpInput};
use tfchain_runtime::types::{Ip4Config, PublicConfig};
use tfchain_runtime::{Call, balances};
use tfgrid_sdk::deployer::{self, Applied, ApplyOptions, Progress, StateFile};
use tfgrid_sdk::project::Project;
use tfgrid_sdk::{Endpoints, Grid};
use tfgrid_types::deployment::ResultData;
use tfgrid_types::{Hash32, Keypair, UNITS_PER_TFT};

use crate::hub::Pushed;
use crate::{images, output};

/// The chain's port on loopback unless `--rpc-port` says otherwise (the CLI's default `--rpc`).
pub const RPC_PORT: u16 = 9944;
/// How many nodes unless `--nodes` says otherwise: as root, two public and one hidden.
pub const NODES: u32 = 3;
/// How many validators unless `--validators` says otherwise: a solo chain.
pub const VALIDATORS: u32 = 1;
/// The peer-to-peer port of each validator (each has an address of its own on the LAN).
const P2P_PORT: u16 = 30333;
/// The height every validator reaches before `up` goes on: blocks decided by them all.
const FIRST_BLOCKS: u64 = 2;
const CAPACITY: &str = "cru=4,mru=8G,sru=100G,hru=100G";
/// What `--demo` applies.
const DEMO: &str = include_str!("../../../examples/demo.toml");
/// How many nodes the demo spreads over (it names nodes 1 and 2).
const DEMO_NODES: u32 = 2;
/// The farm of the nodes on the farm's public network, with its public IPs (the chain accepts only
/// routable addresses; nothing routes them here).
const FARM: &str = "local-farm";
const FARM_IPS: [&str; 3] = [
    "185.206.122.33/24",
    "185.206.122.34/24",
    "185.206.122.35/24",
];
const FARM_GATEWAY: &str = "185.206.122.1";
/// The farm of the hidden node: a home behind a router has no public IPs to give, so the explorer
/// never offers the hidden node to a machine that asks for one.
const HOME_FARM: &str = "home-farm";

/// Where a node sits on this machine's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Sharing this host's network (not root): no host of its own, no public config.
    Shared,
    /// A host on the LAN with a public config: a gateway, and a WireGuard endpoint at its address.
    Public,
    /// A host behind a NAT router of its own, with no public config: no gateway, no endpoint (it
    /// dials its networks' access nodes), no public IPs.
    Hidden,
}

/// Node `n`'s place among `nodes`: with a LAN, the last of two or more is hidden (node 1 stays
/// public, to be a gateway and the hidden node's access node); without one, all share this host's.
fn place(n: u32, nodes: u32, lan: bool) -> Place {
    match lan {
        false => Place::Shared,
        true if nodes >= 2 && n == nodes => Place::Hidden,
        true => Place::Public,
    }
}

impl Place {
    /// The farm the node is in: 1, or 2 (the home farm) when hidden.
    fn farm(self) -> u32 {
        match self {
            Place::Hidden => 2,
            Place::Shared | Place::Public => 1,
        }
    }
}

/// Node `n`'s public address, where its gateway answers (its public config's, without the prefix).
fn public_address(n: u32) -> String {
    format!("185.206.122.{}", 100 + n)
}

/// Node `n`'s public config, as root: its gateway's address on the farm's public network (the LAN)
/// and the domain its gateway names are served under.
fn node_public_config(n: u32) -> PublicConfig {
    PublicConfig {
        ip4: Ip4Config {
            ip: format!("{}/24", public_address(n)),
            gw: FARM_GATEWAY.into(),
        },
        ip6: None,
        domain: Some(format!("node{n}.grid.local")),
    }
}

/// A process `up` started: its name (of its log and its PID file) and its PID file, removed once
/// it has stopped.
struct Running {
    name: String,
    child: Child,
    pid_file: PathBuf,
}

/// The processes `up` started, stopped by PID when it ends, the nodes' data directories and
/// hosts, and the LAN they are on (deleted last).
#[derive(Default)]
struct Started {
    children: Vec<Running>,
    nodes: Vec<(PathBuf, Option<Host>)>,
    lan: Option<Lan>,
}

impl Drop for Started {
    fn drop(&mut self) {
        for running in self.children.iter_mut().rev() {
            let _ = Command::new("kill")
                .arg(running.child.id().to_string())
                .status();
            let _ = running.child.wait();
            let _ = std::fs::remove_file(&running.pid_file);
            output::note(format_args!("stopped {}", running.name));
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

/// Starts `name` with its output in `logs/<name>.log` and its PID in `run/<name>.pid`; returns
/// the PID.
fn spawn(started: &mut Started, name: &str, layout: &Layout, cmd: &mut Command) -> Result<u32> {
    let log = std::fs::File::create(layout.logs.join(format!("{name}.log")))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let pid = child.id();
    let pid_file = layout.dir.join("run").join(format!("{name}.pid"));
    started.children.push(Running {
        name: name.to_owned(),
        child,
        pid_file: pid_file.clone(),
    });
    std::fs::write(&pid_file, format!("{pid}\n"))
        .with_context(|| format!("writing {}", pid_file.display()))?;
    Ok(pid)
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

/// Why `--demo` cannot run on this grid, if it cannot: its container needs root (as do the
/// nodes' public addresses its gateway needs), and it names nodes 1 and 2.
fn demo_refusal(nodes: u32, root: bool) -> Option<String> {
    if !root {
        return Some(
            "--demo needs root: its web container runs under runc, and its gateway needs a node \
             with a public address, which nodes have only on the LAN `up` makes as root"
                .into(),
        );
    }
    (nodes < DEMO_NODES).then(|| {
        format!("--demo spreads its project over nodes 1 and 2: run it with --nodes {DEMO_NODES} or more")
    })
}

/// Why `--validators` cannot be `validators` here, if it cannot: the dev spec has 1 to 6 (//Alice
/// to //Ferdie), and several need root, each being a host of its own on the LAN `up` makes only
/// as root.
fn validators_refusal(validators: u32, root: bool) -> Option<String> {
    let most = DEV_ACCOUNTS.len();
    if validators == 0 || validators as usize > most {
        return Some(format!(
            "--validators is 1 (a solo chain) to {most} (//{} to //{}), not {validators}",
            DEV_ACCOUNTS[0],
            DEV_ACCOUNTS[most - 1]
        ));
    }
    (validators > 1 && !root).then(|| {
        format!(
            "--validators {validators} needs root: each validator runs as a host of its own on \
             the LAN of network namespaces `up` makes only as root; without root, run a solo \
             chain (--validators 1)"
        )
    })
}

/// Where `up` keeps its data, and where users reach what it runs (on loopback).
struct Layout {
    dir: PathBuf,
    logs: PathBuf,
    /// A solo chain's RPC port on loopback, or each validator's on its own address.
    rpc_port: u16,
    hub_port: u16,
    /// A solo chain's `ws://127.0.0.1:<port>`.
    rpc: String,
    /// `127.0.0.1:<port>`, for the hub and the explorer.
    hub: String,
    explorer: String,
}

impl Layout {
    /// Checks the loopback ports (before anything is cleared or started: a running grid's data and
    /// ports are not this one's; validators' RPC ports are on their own addresses), then clears
    /// `dir` for this grid's data, logs and PID files.
    fn prepare(
        dir: &Path,
        validators: u32,
        rpc_port: u16,
        hub_port: u16,
        explorer_port: u16,
    ) -> Result<Layout> {
        let rpc = ("--rpc-port", rpc_port);
        let mut ports = vec![("--hub-port", hub_port), ("--explorer-port", explorer_port)];
        if validators == 1 {
            ports.insert(0, rpc);
        }
        if let Some(clash) = port_clash(&ports, loopback_free) {
            bail!(clash);
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        // Absolute: the nodes' container runtime resolves paths from elsewhere than here.
        let dir = std::path::absolute(dir)?;
        crate::deploy::create_state_dir(&dir)?;
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        std::fs::create_dir_all(dir.join("run"))?;
        Ok(Layout {
            dir,
            logs,
            rpc_port,
            hub_port,
            rpc: format!("ws://127.0.0.1:{rpc_port}"),
            hub: format!("127.0.0.1:{hub_port}"),
            explorer: format!("127.0.0.1:{explorer_port}"),
        })
    }

    /// Where clients reach the grid, with the chain at `rpc` (an endpoint list).
    fn endpoints(&self, rpc: &str) -> Endpoints {
        Endpoints {
            rpc: rpc.to_owned(),
            explorer: format!("http://{}", self.explorer),
            hub: format!("http://{}", self.hub),
        }
    }
}

/// How the nodes reach the chain (its endpoint list) and the hub (the URL it tells them).
struct Reach {
    rpc: String,
    hub: String,
}

/// As root, makes the LAN the nodes (and several validators) will be hosts of: this process is on
/// it too, as the farm's public gateway, forwarding the hub to the nodes; returns its address on
/// it. Otherwise the nodes reach everything on loopback.
async fn make_lan(started: &mut Started, layout: &Layout) -> Result<Option<String>> {
    if !root() {
        return Ok(None);
    }
    let lan = Lan::new().context("making the nodes' LAN (network namespaces)")?;
    let here = lan.here();
    // The farm's public network shares the LAN's wire; this host is its gateway, so public IPs
    // given to machines answer here.
    lan.add_address(&format!("{FARM_GATEWAY}/24"))
        .context("adding the farm's gateway address")?;
    started.lan = Some(lan);
    forward(format!("{here}:{}", layout.hub_port), layout.hub.clone()).await?;
    Ok(Some(here))
}

/// The chain `up` runs: its endpoint list (for users, the explorer and `up` itself), the nodes'
/// (a solo chain's forwarder on the LAN), and its validators when there are several.
struct Chain {
    client: Client,
    rpc: String,
    nodes_rpc: String,
    validators: Vec<Validator>,
}

/// A validator of a BFT chain: its dev account's name, its RPC URL, its process.
struct Validator {
    name: &'static str,
    rpc: String,
    pid: u32,
}

/// Starts the chain: a solo dev chain on loopback (forwarded to the LAN, as root), or
/// `validators` validators under BFT.
async fn start_chain(started: &mut Started, layout: &Layout, validators: u32) -> Result<Chain> {
    if validators > 1 {
        return start_validators(started, layout, validators).await;
    }
    output::note("starting the chain...");
    spawn(
        started,
        "tfchain",
        layout,
        Command::new(sibling("tfchain")?)
            .args([
                "--dev",
                "--rpc-addr",
                &format!("127.0.0.1:{}", layout.rpc_port),
                "--base-path",
            ])
            .arg(layout.dir.join("chain")),
    )?;
    let client = wait_until(
        &format!("the chain's start (is port {} taken?)", layout.rpc_port),
        Duration::from_secs(30),
        || async { Client::connect(&layout.rpc).await.ok() },
    )
    .await?;
    let port = layout.rpc_port;
    let nodes_rpc = match started.lan.as_ref().map(Lan::here) {
        Some(here) => {
            forward(format!("{here}:{port}"), format!("127.0.0.1:{port}")).await?;
            format!("ws://{here}:{port}")
        }
        None => layout.rpc.clone(),
    };
    Ok(Chain {
        client,
        rpc: layout.rpc.clone(),
        nodes_rpc,
        validators: Vec::new(),
    })
}

/// Validator `i`'s arguments among validators at `ips` (the dev accounts in order): its key, its
/// RPC and peer-to-peer addresses, every other validator as a peer, and their RPCs to relay the
/// transactions it takes to.
fn bft_args(i: usize, ips: &[String], rpc_port: u16) -> Vec<String> {
    let others = |url: &dyn Fn(&str) -> String| {
        let others = ips.iter().enumerate().filter(|(j, _)| *j != i);
        others.map(|(_, ip)| url(ip)).collect::<Vec<_>>().join(",")
    };
    vec![
        "--validator".into(),
        format!("//{}", DEV_ACCOUNTS[i]),
        "--rpc-addr".into(),
        format!("{}:{rpc_port}", ips[i]),
        "--p2p-addr".into(),
        format!("{}:{P2P_PORT}", ips[i]),
        "--peer".into(),
        others(&|ip| format!("{ip}:{P2P_PORT}")),
        "--relay-to".into(),
        others(&|ip| format!("ws://{ip}:{rpc_port}")),
    ]
}

/// Writes the dev spec with `validators` validators to `dir/spec.json`.
fn write_spec(tfchain: &Path, dir: &Path, validators: u32) -> Result<PathBuf> {
    let out = Command::new(tfchain)
        .args(["build-spec", "--validators", &validators.to_string()])
        .output()
        .context("running tfchain build-spec")?;
    if !out.status.success() {
        bail!(
            "tfchain build-spec --validators {validators}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let spec = dir.join("spec.json");
    std::fs::write(&spec, out.stdout).with_context(|| format!("writing {}", spec.display()))?;
    Ok(spec)
}

/// Starts `count` validators of the dev chain under BFT (//Alice, //Bob, ...), each a host of its
/// own on the LAN with its data in `chain-<name>`, and waits until each holds blocks they decided.
async fn start_validators(started: &mut Started, layout: &Layout, count: u32) -> Result<Chain> {
    output::note(format_args!("starting {count} validators..."));
    let tfchain = sibling("tfchain")?;
    let spec = write_spec(&tfchain, &layout.dir, count)?;
    let lan = started
        .lan
        .as_mut()
        .context("several validators need the LAN")?;
    let hosts = (0..count)
        .map(|_| lan.host())
        .collect::<std::io::Result<Vec<Host>>>()
        .context("adding the validators' hosts to the LAN")?;
    let ips: Vec<String> = hosts.iter().map(|h| h.ip.clone()).collect();
    let mut validators = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let name = DEV_ACCOUNTS[i];
        let lower = name.to_lowercase();
        let pid = spawn(
            started,
            &format!("tfchain-{lower}"),
            layout,
            host.command(&tfchain)
                .arg("--chain")
                .arg(&spec)
                .args(bft_args(i, &ips, layout.rpc_port))
                .arg("--base-path")
                .arg(layout.dir.join(format!("chain-{lower}"))),
        )?;
        let rpc = format!("ws://{}:{}", host.ip, layout.rpc_port);
        validators.push(Validator { name, rpc, pid });
    }
    for v in &validators {
        wait_until(
            &format!("//{}'s first decided blocks", v.name),
            Duration::from_secs(60),
            || async {
                let client = Client::connect(&v.rpc).await.ok()?;
                let height = client.rpc().status().await.ok()?.height;
                (height >= FIRST_BLOCKS).then_some(())
            },
        )
        .await?;
    }
    let rpc = validators
        .iter()
        .map(|v| v.rpc.as_str())
        .collect::<Vec<_>>();
    let rpc = rpc.join(",");
    let client = Client::connect(&rpc)
        .await
        .context("connecting to the validators")?;
    Ok(Chain {
        client,
        nodes_rpc: rpc.clone(),
        rpc,
        validators,
    })
}

/// The images `up` puts in the hub: the busybox container image `demo` (from the machine's
/// busybox-static), and `demo-vm`, the same root booting a kernel, where the machine has a kernel
/// and QEMU to boot it with.
struct Images {
    container: Option<Pushed>,
    vm: Option<Pushed>,
}

fn push_images(dir: &Path, hub_dir: &Path) -> Result<Images> {
    let container = match images::container_image(dir)? {
        Some(archive) => Some(crate::hub::push(&archive, hub_dir, Some("demo"))?),
        None => None,
    };
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let vm = match images::newest_kernel() {
        Some(kernel) if qemu && container.is_some() => {
            let archive = dir.join("demo-vm.tar");
            match images::vm_image(&kernel, dir, &archive) {
                Ok(()) => Some(crate::hub::push(&archive, hub_dir, Some("demo-vm"))?),
                Err(e) => {
                    output::note(format_args!("no demo VM image: {e:#}"));
                    None
                }
            }
        }
        _ => None,
    };
    Ok(Images { container, vm })
}

/// Fills the hub with the images and serves it; and starts the explorer, following the chain at
/// `rpc` (an endpoint list).
fn start_hub_and_explorer(
    started: &mut Started,
    layout: &Layout,
    reach: &Reach,
    rpc: &str,
) -> Result<Images> {
    let hub_dir = layout.dir.join("hub");
    std::fs::create_dir_all(&hub_dir)?;
    let images = push_images(&layout.dir, &hub_dir)?;
    spawn(
        started,
        "hub",
        layout,
        Command::new(std::env::current_exe()?)
            .args([
                "hub",
                "serve",
                "--listen",
                &layout.hub,
                "--public-url",
                &reach.hub,
                "--dir",
            ])
            .arg(&hub_dir),
    )?;
    spawn(
        started,
        "gridproxy",
        layout,
        Command::new(sibling("gridproxy")?)
            .args(["--chain", rpc, "--listen", &layout.explorer, "--data-dir"])
            .arg(layout.dir.join("gridproxy")),
    )?;
    Ok(images)
}

/// Twins for //Alice (the farmer) and //Bob (the deployer), and //Alice's farms: the local farm
/// with its public IPs, and the home farm (no public IPs) when a node is hidden.
async fn create_farms(client: &Client, home: bool) -> Result<()> {
    output::note("creating the farms and the twins of //Alice (farmer) and //Bob (deployer)...");
    let alice = Keypair::from_uri("//Alice")?;
    let bob = Keypair::from_uri("//Bob")?;
    let accept = GridCall::UserAcceptTc {
        document_link: "https://grid.tf/terms".into(),
        document_hash: "local".into(),
    };
    let twin = GridCall::CreateTwin {
        relay: None,
        pk: None,
    };
    let public_ips = FARM_IPS
        .iter()
        .map(|ip| IpInput {
            ip: (*ip).into(),
            gw: FARM_GATEWAY.into(),
        })
        .collect();
    let mut farms = vec![GridCall::CreateFarm {
        name: FARM.into(),
        public_ips,
    }];
    if home {
        farms.push(GridCall::CreateFarm {
            name: HOME_FARM.into(),
            public_ips: Vec::new(),
        });
    }
    // One block for the terms, one for the twins, one for the farms (one account's calls keep
    // their order, so the farms' ids are 1 and 2).
    let steps = [
        vec![(&alice, accept.clone()), (&bob, accept)],
        vec![(&alice, twin.clone()), (&bob, twin)],
        farms.into_iter().map(|farm| (&alice, farm)).collect(),
    ];
    for step in steps {
        let mut sent = Vec::new();
        for (key, call) in step {
            sent.push(client.submit(key, Call::Tfgrid(call)).await?);
        }
        for hash in sent {
            client.wait(hash, Duration::from_secs(30)).await?;
        }
    }
    Ok(())
}

/// Starts node `n` in its place, funds its account, waits for its registration, and gives a public
/// node its public config.
async fn start_node(
    started: &mut Started,
    layout: &Layout,
    client: &Client,
    reach: &Reach,
    (n, place): (u32, Place),
) -> Result<()> {
    output::note(format_args!("starting node {n}..."));
    let seed = Hash32::of("tfgrid up node", &n.to_le_bytes()).0;
    let node_dir = layout.dir.join(format!("node{n}"));
    std::fs::create_dir_all(node_dir.join("identity"))?;
    std::fs::write(node_dir.join("identity/seed"), seed)?;
    let alice = Keypair::from_uri("//Alice")?;
    let fund = balances::Call::Transfer {
        dest: Keypair::from_seed(seed).account(),
        amount: UNITS_PER_TFT,
    };
    client.execute(&alice, Call::Balances(fund)).await?;
    let host = match (started.lan.as_mut(), place) {
        (Some(lan), Place::Hidden) => Some(
            lan.hidden_host()
                .context("adding the hidden node's host behind a NAT router (needs nftables)")?,
        ),
        (Some(lan), _) => Some(lan.host().context("adding the node's host to the LAN")?),
        (None, _) => None,
    };
    // A node's 0-dbs listen on its host's address (loopback when it shares this host's), and a
    // public node's machines get public IPs on its LAN interface; a hidden node has no interface
    // on the farm's public network. A node sharing this host's network leaves its forwarding and
    // nftables alone.
    let mut zos = on(host.as_ref(), &sibling("zos")?);
    let farm = place.farm().to_string();
    zos.args([
        "--chain",
        &reach.rpc,
        "--farm",
        &farm,
        "--capacity",
        CAPACITY,
    ]);
    match (&host, place) {
        (Some(h), Place::Public) => zos.args(["--host", &h.ip, "--public-iface", &h.iface]),
        (Some(h), _) => zos.args(["--host", &h.ip]),
        (None, _) => zos.args(["--host", "127.0.0.1", "--no-outbound-nat"]),
    };
    spawn(
        started,
        &format!("node{n}"),
        layout,
        zos.arg("--data-dir").arg(&node_dir),
    )?;
    started.nodes.push((node_dir, host));
    wait_until(
        &format!("node {n}'s registration"),
        Duration::from_secs(60),
        || async { client.rpc().node(n).await.ok()? },
    )
    .await?;
    if place == Place::Public {
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
    Ok(())
}

/// Runs the grid until Ctrl-C or TERM: `nodes` nodes, `validators` validators, its data in `dir`,
/// the demo if asked, on the loopback ports `(rpc, hub, explorer)`.
pub async fn up(
    nodes: u32,
    validators: u32,
    dir: PathBuf,
    demo: bool,
    (rpc_port, hub_port, explorer_port): (u16, u16, u16),
) -> Result<()> {
    if let Some(refusal) = validators_refusal(validators, root()) {
        bail!(refusal);
    }
    if demo && let Some(refusal) = demo_refusal(nodes, root()) {
        bail!(refusal);
    }
    let layout = Layout::prepare(&dir, validators, rpc_port, hub_port, explorer_port)?;
    let mut started = Started::default();
    let here = make_lan(&mut started, &layout).await?;
    let chain = start_chain(&mut started, &layout, validators).await?;
    let reach = Reach {
        rpc: chain.nodes_rpc.clone(),
        hub: format!(
            "http://{}:{hub_port}",
            here.as_deref().unwrap_or("127.0.0.1")
        ),
    };
    let images = start_hub_and_explorer(&mut started, &layout, &reach, &chain.rpc)?;
    let lan = started.lan.is_some();
    let places: Vec<Place> = (1..=nodes).map(|n| place(n, nodes, lan)).collect();
    let client = &chain.client;
    create_farms(client, places.contains(&Place::Hidden)).await?;
    for node in (1..).zip(places.iter().copied()) {
        start_node(&mut started, &layout, client, &reach, node).await?;
    }
    let endpoints = layout.endpoints(&chain.rpc);
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
    write_env(&layout.dir, &endpoints)?;
    print_summary(&layout, &chain, &images, &started, &places)?;
    if demo {
        if images.container.is_none() {
            bail!(
                "the demo needs its image: install busybox-static (apt-get install busybox-static)"
            );
        }
        run_demo(endpoints, StateFile::beside(&layout.dir, "demo")).await?;
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

/// "3", "1 and 2", "1 to 5".
fn ids(first: u32, last: u32) -> String {
    match last - first {
        0 => first.to_string(),
        1 => format!("{first} and {last}"),
        _ => format!("{first} to {last}"),
    }
}

/// "node 3", "nodes 1 and 2", "nodes 1 to 5".
fn node_span(first: u32, last: u32) -> String {
    let noun = if first == last { "node" } else { "nodes" };
    format!("{noun} {}", ids(first, last))
}

/// The summary's lines on the farms and the nodes: on the LAN (at `here`), which nodes are public
/// and which is hidden (at `hidden_ip`, behind its router), and why that matters.
fn nodes_summary(places: &[Place], here: Option<&str>, hidden_ip: Option<&str>) -> Vec<String> {
    let count = places.len() as u32;
    let public = places.iter().filter(|p| **p == Place::Public).count() as u32;
    let hidden = places.iter().position(|p| *p == Place::Hidden);
    let mut lines = vec![format!(
        "  farm     1 \"{FARM}\" of //Alice (the dev council), public IPs {}",
        FARM_IPS.join(" ")
    )];
    if let Some(i) = hidden {
        lines.push(format!(
            "  farm     2 \"{HOME_FARM}\" of //Alice, no public IPs: node {}",
            i + 1
        ));
    }
    if count == 0 {
        lines.push("  nodes    none (--nodes 0)".into());
        return lines;
    }
    let all = ids(1, count);
    let Some(here) = here else {
        lines.push(format!(
            "  nodes    {all}, each {CAPACITY}, sharing this host's network (not root): none is \
             hidden, none has a public config, so none is a gateway"
        ));
        return lines;
    };
    lines.push(format!(
        "  nodes    {all}, each {CAPACITY}, each a host of its own (network namespace) on {here}/24"
    ));
    if public > 0 {
        lines.push(format!(
            "  public   {}: a public config each, so a gateway (node N serves <name>.nodeN.grid.local \
             at 185.206.122.(100+N), node 1 at {}) and a WireGuard endpoint at its LAN address",
            node_span(1, public),
            public_address(1)
        ));
    }
    if let Some(i) = hidden {
        lines.push(format!(
            "  hidden   node {} at {}, behind a NAT router of its own, as a node at home is: no \
             public config, so no gateway, no WireGuard endpoint (it dials each of its networks' \
             access node, a public one) and no public IPs; what runs there is reached over its project's \
             private network",
            i + 1,
            hidden_ip.unwrap_or("?")
        ));
    }
    lines
}

/// The summary's lines on the chain at `rpc`: a solo chain, or its validators, each with its
/// address and PID.
fn chain_summary(rpc: &str, validators: &[Validator]) -> Vec<String> {
    if validators.is_empty() {
        return vec![format!(
            "  chain    {rpc} (dev chain, 1 s blocks; http:// works too)"
        )];
    }
    let mut lines = vec![format!(
        "  chain    {} validators under Tendermint BFT (dev chain, 1 s blocks, each final when \
         decided), each a host of its own on the LAN; clients get them all and fail over",
        validators.len()
    )];
    for v in validators {
        let name = format!("//{}", v.name);
        lines.push(format!(
            "           {name:<9} {} (pid {}, logs/tfchain-{}.log)",
            v.rpc,
            v.pid,
            v.name.to_lowercase()
        ));
    }
    lines
}

/// The shell line that points `tfgrid` at the grid at `endpoints`, as //Bob.
fn export_line(endpoints: &Endpoints) -> String {
    format!(
        "export TFGRID_RPC={} TFGRID_EXPLORER={} TFGRID_HUB={} TFGRID_KEY=//Bob",
        endpoints.rpc, endpoints.explorer, endpoints.hub
    )
}

/// Writes the export line to `dir/env`, for later shells to source.
fn write_env(dir: &Path, endpoints: &Endpoints) -> Result<()> {
    let env = dir.join("env");
    std::fs::write(&env, format!("{}\n", export_line(endpoints)))
        .with_context(|| format!("writing {}", env.display()))
}

/// What runs, and how to use it.
fn print_summary(
    layout: &Layout,
    chain: &Chain,
    images: &Images,
    started: &Started,
    places: &[Place],
) -> Result<()> {
    let (hub, explorer) = (&layout.hub, &layout.explorer);
    output::print("\nlocal grid up:")?;
    for line in chain_summary(&chain.rpc, &chain.validators) {
        output::print(line)?;
    }
    match &images.container {
        Some(p) => output::print(format_args!(
            "  hub      http://{hub}  demo image http://{hub}/{} (flist_hash {})",
            p.file, p.hash
        ))?,
        None => output::print(format_args!(
            "  hub      http://{hub}  (no demo image: install busybox-static)"
        ))?,
    }
    match &images.vm {
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
    let here = started.lan.as_ref().map(Lan::here);
    let hidden_ip = places
        .iter()
        .zip(&started.nodes)
        .find(|(p, _)| **p == Place::Hidden)
        .and_then(|(_, (_, host))| host.as_ref().map(|h| h.ip.as_str()));
    for line in nodes_summary(places, here.as_deref(), hidden_ip) {
        output::print(line)?;
    }
    output::print(
        "  accounts //Alice, //Bob, //Charlie, //Dave, //Eve, //Ferdie (funded); //Alice and //Bob have twins",
    )?;
    output::print(format_args!("  logs     {}", layout.logs.display()))?;
    output::print(format_args!(
        "\nUse it with:\n  {}\n  (in {}, for other shells: `. {}`)",
        export_line(&layout.endpoints(&chain.rpc)),
        layout.dir.join("env").display(),
        layout.dir.join("env").display(),
    ))?;
    output::print(
        "  tfgrid plan examples/demo.toml; tfgrid apply examples/demo.toml; tfgrid node list",
    )
}

/// Applies `examples/demo.toml` as //Bob, showing progress, and prints what runs where and the
/// URL that answers.
async fn run_demo(endpoints: Endpoints, state: StateFile) -> Result<()> {
    output::note("\ndeploying examples/demo.toml as //Bob...");
    let project = Project::parse(DEMO, "examples/demo.toml")?;
    let grid = Grid::connect(endpoints, Keypair::from_uri("//Bob")?).await?;
    let plan = deployer::plan(&grid, &project, &state).await?;
    let applied = deployer::apply(&grid, &plan, &ApplyOptions::default(), &mut |p| match p {
        Progress::Waiting {
            node_id,
            contract_id,
            version,
        } => output::note(format_args!(
            "  node {node_id}: contract {contract_id} version {version}"
        )),
        Progress::Workload { result, elapsed } => output::note(format_args!(
            "    {:<7} {:?} after {:.1} s {}",
            result.name,
            result.state,
            elapsed.as_secs_f64(),
            result.message
        )),
        _ => {}
    })
    .await?;
    output::print(format_args!(
        "\n{}",
        crate::deploy::applied_text(&grid, &applied).await?
    ))?;
    for line in try_it(&applied) {
        output::print(line)?;
    }
    output::print("  see it: tfgrid --key //Bob status examples/demo.toml")?;
    Ok(())
}

/// How to try each gateway name the apply made: a `curl` at the public address of the node serving
/// it and, when the containers run on other nodes, which (its backend is reached over the project's
/// private network).
fn try_it(applied: &Applied) -> Vec<String> {
    let mut lines = Vec::new();
    for c in &applied.contracts {
        for r in &c.workloads {
            let ResultData::GatewayNameProxy { fqdn } = &r.data else {
                continue;
            };
            let ip = public_address(c.node_id);
            lines.push(format!(
                "  try it: curl --resolve {fqdn}:80:{ip} http://{fqdn}/"
            ));
            let elsewhere: Vec<String> = applied
                .contracts
                .iter()
                .filter(|o| o.node_id != c.node_id)
                .filter(|o| {
                    o.workloads
                        .iter()
                        .any(|w| matches!(w.data, ResultData::Zmachine { .. }))
                })
                .map(|o| o.node_id.to_string())
                .collect();
            if !elsewhere.is_empty() {
                lines.push(format!(
                    "          node {}'s gateway, proxying over the project's private network to \
                     the container on node {}",
                    c.node_id,
                    elsewhere.join(", ")
                ));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfgrid_sdk::deployer::ContractApplied;
    use tfgrid_types::deployment::{ResultState, WorkloadResult};

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

    #[test]
    fn the_last_of_two_or_more_nodes_on_a_lan_is_hidden() {
        use Place::*;
        let places =
            |nodes, lan| -> Vec<Place> { (1..=nodes).map(|n| place(n, nodes, lan)).collect() };
        assert_eq!(places(3, true), [Public, Public, Hidden]);
        assert_eq!(places(2, true), [Public, Hidden]);
        assert_eq!(places(1, true), [Public]);
        assert_eq!(places(3, false), [Shared, Shared, Shared]);
        assert_eq!(Hidden.farm(), 2);
        assert_eq!(Public.farm(), 1);
    }

    #[test]
    fn the_summary_says_which_node_is_hidden_and_why() {
        use Place::*;
        let lines = nodes_summary(
            &[Public, Public, Hidden],
            Some("10.213.7.1"),
            Some("192.168.4.2"),
        );
        let text = lines.join("\n");
        for expected in [
            "farm     2 \"home-farm\" of //Alice, no public IPs: node 3",
            "nodes    1 to 3, each cru=4,mru=8G,sru=100G,hru=100G, each a host of its own \
             (network namespace) on 10.213.7.1/24",
            "public   nodes 1 and 2: a public config each",
            "hidden   node 3 at 192.168.4.2, behind a NAT router of its own",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        let shared = nodes_summary(&[Shared, Shared], None, None).join("\n");
        assert!(
            !shared.contains("home-farm") && !shared.contains("hidden "),
            "{shared}"
        );
        assert!(shared.contains("nodes    1 and 2, each"), "{shared}");
        assert!(shared.contains("(not root)"), "{shared}");
        assert_eq!(node_span(4, 4), "node 4");
        assert_eq!(node_span(1, 5), "nodes 1 to 5");
    }

    #[test]
    fn the_demo_needs_root_and_two_nodes() {
        assert!(
            demo_refusal(3, false)
                .unwrap()
                .starts_with("--demo needs root")
        );
        assert_eq!(
            demo_refusal(1, true).as_deref(),
            Some("--demo spreads its project over nodes 1 and 2: run it with --nodes 2 or more")
        );
        assert_eq!(demo_refusal(2, true), None);
    }

    #[test]
    fn several_validators_need_root_and_dev_accounts() {
        assert_eq!(validators_refusal(1, false), None);
        assert_eq!(validators_refusal(4, true), None);
        assert_eq!(validators_refusal(6, true), None);
        assert_eq!(
            validators_refusal(4, false).as_deref(),
            Some(
                "--validators 4 needs root: each validator runs as a host of its own on the LAN \
                 of network namespaces `up` makes only as root; without root, run a solo chain \
                 (--validators 1)"
            )
        );
        for wrong in [0, 7] {
            assert_eq!(
                validators_refusal(wrong, true),
                Some(format!(
                    "--validators is 1 (a solo chain) to 6 (//Alice to //Ferdie), not {wrong}"
                ))
            );
        }
    }

    #[test]
    fn each_validator_peers_with_and_relays_to_the_others() {
        let ips: Vec<String> = (2..5).map(|n| format!("10.213.7.{n}")).collect();
        assert_eq!(
            bft_args(1, &ips, 9944).join(" "),
            "--validator //Bob --rpc-addr 10.213.7.3:9944 --p2p-addr 10.213.7.3:30333 \
             --peer 10.213.7.2:30333,10.213.7.4:30333 \
             --relay-to ws://10.213.7.2:9944,ws://10.213.7.4:9944"
        );
        assert!(bft_args(0, &ips, 9944).contains(&"//Alice".to_string()));
    }

    #[test]
    fn the_summary_names_each_validator_with_its_address_and_pid() {
        assert_eq!(
            chain_summary("ws://127.0.0.1:9944", &[]),
            ["  chain    ws://127.0.0.1:9944 (dev chain, 1 s blocks; http:// works too)"]
        );
        let validators = [("Alice", 2, 100), ("Charlie", 4, 102)].map(|(name, host, pid)| {
            let rpc = format!("ws://10.213.7.{host}:9944");
            Validator { name, rpc, pid }
        });
        let lines = chain_summary("unused", &validators);
        assert!(
            lines[0].starts_with("  chain    2 validators under Tendermint BFT"),
            "{lines:?}"
        );
        assert_eq!(
            lines[1..],
            [
                "           //Alice   ws://10.213.7.2:9944 (pid 100, logs/tfchain-alice.log)",
                "           //Charlie ws://10.213.7.4:9944 (pid 102, logs/tfchain-charlie.log)",
            ]
        );
    }

    fn applied(contracts: &[(u32, &[ResultData])]) -> Applied {
        let contracts = contracts
            .iter()
            .map(|(node_id, data)| ContractApplied {
                contract_id: u64::from(*node_id) + 1,
                node_id: *node_id,
                version: 0,
                workloads: data
                    .iter()
                    .map(|d| WorkloadResult {
                        name: "w".into(),
                        created: 0,
                        state: ResultState::Ok,
                        message: String::new(),
                        data: d.clone(),
                    })
                    .collect(),
            })
            .collect::<Vec<_>>();
        Applied {
            project: "demo".into(),
            contract_id: contracts[0].contract_id,
            node_id: contracts[0].node_id,
            version: 0,
            workloads: Vec::new(),
            contracts,
            canceled: Vec::new(),
            elapsed_ms: 0,
        }
    }

    #[test]
    fn try_it_curls_the_gateway_node_and_names_where_the_container_runs() {
        let gateway = ResultData::GatewayNameProxy {
            fqdn: "demo.node1.grid.local".into(),
        };
        let machine = ResultData::Zmachine {
            id: "web".into(),
            ip: "10.20.2.2".into(),
        };
        let spread = applied(&[
            (1, std::slice::from_ref(&gateway)),
            (2, std::slice::from_ref(&machine)),
        ]);
        assert_eq!(
            try_it(&spread),
            [
                "  try it: curl --resolve demo.node1.grid.local:80:185.206.122.101 \
                 http://demo.node1.grid.local/",
                "          node 1's gateway, proxying over the project's private network to the \
                 container on node 2",
            ]
        );
        let together = applied(&[(1, &[gateway, machine])]);
        assert_eq!(try_it(&together).len(), 1);
        assert!(try_it(&applied(&[(2, &[])])).is_empty());
    }
}
