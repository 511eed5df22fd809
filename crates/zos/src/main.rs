//! The `zos` binary: the node agent. `zos --farm 1 --data-dir /var/lib/zos` registers this machine in
//! farm 1 and provisions what contracts command; `--capacity` gives a virtual capacity instead;
//! `--teardown` removes everything the node runs and exits.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use zos::agent::{self, Config};
use zos::chain::ChainSession;
use zos::engine::Engine;
use zos::images::Images;
use zos::primitives::container::Containers;
use zos::primitives::gateway::Gateway;
use zos::primitives::machine::MachinePrimitive;
use zos::primitives::network::{Networks, PublicIps};
use zos::primitives::proxy::GatewayPrimitive;
use zos::primitives::vm::Vms;
use zos::primitives::volume::Volumes;
use zos::primitives::zdb::ZdbServer;
use zos::primitives::{MachineRuntime, Machines, NodePrimitives};
use zos::store::Store;
use zos::{capacity, identity, teardown};

#[derive(Parser, Debug)]
#[command(version, about = "Zero-OS node agent")]
struct Args {
    /// The chain's RPC endpoint, or a comma-separated list of one chain's endpoints to fail over
    /// through (ws://a:9944,ws://b:9944).
    #[arg(long, env = "ZOS_CHAIN", default_value = "ws://127.0.0.1:9944")]
    chain: String,
    /// The farm this node belongs to.
    #[arg(long, required_unless_present = "teardown")]
    farm: Option<u32>,
    /// Where the node keeps its identity, records and storage.
    #[arg(long)]
    data_dir: PathBuf,
    /// A virtual capacity, `cru=4,mru=8G,sru=200G,hru=1T` [default: what the machine has].
    #[arg(long)]
    capacity: Option<String>,
    /// The 0-db server binary [default: `zdb` next to this binary].
    #[arg(long)]
    zdb_bin: Option<PathBuf>,
    /// The gateway binary [default: `zgw` next to this binary].
    #[arg(long)]
    zgw_bin: Option<PathBuf>,
    /// The user networks' WireGuard binary [default: `znet` next to this binary].
    #[arg(long)]
    znet_bin: Option<PathBuf>,
    /// The OCI runtime that runs containers (`runc`; crun 1.8 refuses hybrid cgroup layouts).
    #[arg(long, default_value = "runc")]
    runtime: String,
    /// The node's interface on the farm's public network: public IPs (`ip` workloads) are given
    /// to machines on it.
    #[arg(long)]
    public_iface: Option<String>,
    /// The address this node's services (0-db, its networks' WireGuard devices) listen on and
    /// report.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Do not give user networks a way out through this node (NATed, as Zero-OS does): for an agent
    /// sharing a host it must not change (it turns forwarding on and adds an nftables table).
    #[arg(long)]
    no_outbound_nat: bool,
    /// Remove every workload this node runs (machines, volumes, networks, its 0-db server) and
    /// exit, without asking the chain: for taking a node out of service.
    #[arg(long)]
    teardown: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut args = Args::parse();
    // Absolute from here on: the container runtime resolves paths from the bundle, not from here.
    args.data_dir = std::path::absolute(&args.data_dir).context("--data-dir")?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store = Arc::new(Store::open(&args.data_dir.join("zos.redb"))?);
    let machines = Machines {
        containers: Containers::new(args.data_dir.join("containers"), args.runtime.clone()),
        vms: Vms::new(args.data_dir.join("vms")),
    };
    let volumes = Volumes::new(args.data_dir.join("volumes"));
    if args.teardown {
        return teardown::run(
            &store,
            &machines,
            &volumes,
            &Networks::new(&args.data_dir),
            &args.data_dir.join("zdb"),
            &args.data_dir.join("gateway"),
        );
    }
    let key = identity::load_or_create(&args.data_dir.join("identity/seed"))?;
    tracing::info!(account = %key.account(), "node identity");
    let capacity = match &args.capacity {
        Some(text) => capacity::parse(text).context("--capacity")?,
        None => capacity::detect(&args.data_dir)?,
    };
    let beside = |name: &str| std::env::current_exe().map(|exe| exe.with_file_name(name));
    let zdb_bin = match args.zdb_bin {
        Some(path) => path,
        None => beside("zdb")?,
    };
    let zgw_bin = match args.zgw_bin {
        Some(path) => path,
        None => beside("zgw")?,
    };
    let farm_id = args.farm.context("--farm is required")?;
    let znet_bin = match args.znet_bin {
        Some(path) => path,
        None => beside("znet")?,
    };
    let networks =
        Networks::new(&args.data_dir).with_overlay(znet_bin, &args.host, !args.no_outbound_nat);
    let config = Config {
        networks: networks.clone(),
        farm_id,
        capacity,
    };
    let zdb = ZdbServer::new(zdb_bin, args.data_dir.join("zdb"), args.host);
    let unavailable =
        |runtime: &dyn MachineRuntime| runtime.available().err().map(|e| format!("{e:#}"));
    let containers_unavailable = unavailable(&machines.containers);
    let vms_unavailable = unavailable(&machines.vms);
    match (&containers_unavailable, &vms_unavailable) {
        (None, None) => tracing::info!(
            "features: zdb, zmachine (containers and VMs), volumes, networks, public IPs, gateways"
        ),
        (None, Some(why)) => tracing::warn!(
            "features: zdb, zmachine (containers), volumes, networks, public IPs, gateways; no VMs: {why}"
        ),
        (Some(why), _) => tracing::warn!("features: zdb, gateways; no containers: {why}"),
    }
    let images = Images::new(args.data_dir.join("images"));
    let chain = ChainSession::new(&args.chain, key.clone());
    let gateway = Gateway::new(zgw_bin, args.data_dir.join("gateway"));
    agent::run(config, chain.clone(), key.clone(), store, move |node_id| {
        Engine {
            chain,
            key,
            node_id,
            total: capacity,
            primitives: NodePrimitives {
                zdb,
                volumes: volumes.clone(),
                networks: networks.clone().on_node(node_id),
                ips: PublicIps,
                machines: MachinePrimitive {
                    machines,
                    networks: networks.clone(),
                    images,
                    volumes,
                    public_iface: args.public_iface.clone(),
                    containers_unavailable: containers_unavailable.clone(),
                    vms_unavailable,
                },
                gateway: GatewayPrimitive {
                    gateway,
                    networks,
                    public_iface: args.public_iface.clone(),
                    node_id,
                },
            },
            containers_unavailable,
            public_iface: args.public_iface,
        }
    })
    .await
}
