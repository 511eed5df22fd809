//! `tfgrid`: the grid's command line. Keys, balances and transfers, twins, farms and their public
//! IPs, nodes, the chain's status and the key-value store, against the chain at `--rpc`. Human output
//! by default, `--json` for scripts; an error says what was wrong, exits non-zero and changes nothing.

mod commands;
mod contracts;
mod deploy;
mod hub;
mod images;
mod keystore;
mod output;
mod up;

use clap::{Parser, Subcommand};
use tfchain_client::ClientError;

#[derive(Parser, Debug)]
#[command(version, about = "The ThreeFold Grid command line")]
pub struct Cli {
    /// The chain's RPC endpoint, or a comma-separated list of one chain's endpoints to fail over
    /// through (ws://a:9944,ws://b:9944).
    #[arg(
        long,
        global = true,
        env = "TFGRID_RPC",
        default_value = "ws://127.0.0.1:9944"
    )]
    pub rpc: String,
    /// The key to act with: a stored key name, or a secret URI such as //Alice or a phrase.
    #[arg(long, global = true, env = "TFGRID_KEY")]
    pub key: Option<String>,
    /// The explorer (gridproxy), where nodes are found.
    #[arg(
        long,
        global = true,
        env = "TFGRID_EXPLORER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub explorer: String,
    /// The image hub, where image names are looked up.
    #[arg(
        long,
        global = true,
        env = "TFGRID_HUB",
        default_value = "http://127.0.0.1:8090"
    )]
    pub hub: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// What applying a deployment file would create, change and remove, and its cost.
    Plan(ProjectArgs),
    /// Deploy a file: create or update its contracts (one per node) and wait until every workload
    /// runs.
    Apply {
        #[command(flatten)]
        project: ProjectArgs,
        /// Keep the contract when a workload fails (to look at it), instead of canceling it.
        #[arg(long)]
        keep_on_error: bool,
        /// Seconds to wait for each node to report every workload.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// What a deployment file's project runs now.
    Status(ProjectArgs),
    /// Cancel a deployment file's contracts: the nodes remove everything.
    Destroy(ProjectArgs),
    /// A project's private network.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Manage keys kept in $TFGRID_HOME (default ~/.config/tfgrid).
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Show the balance of an account (default: the --key account).
    Balance { account: Option<String> },
    /// Send TFT to an account: `tfgrid transfer 5F... 12.5`.
    Transfer { to: String, amount: String },
    #[command(subcommand)]
    Twin(TwinCmd),
    #[command(subcommand)]
    Farm(FarmCmd),
    #[command(subcommand)]
    Node(NodeCmd),
    #[command(subcommand)]
    Chain(ChainCmd),
    /// Your account's key-value store on the chain.
    #[command(subcommand)]
    Kv(KvCmd),
    /// Contracts: deployments on nodes, names, rented nodes.
    #[command(subcommand)]
    Contract(ContractCmd),
    /// Images for machines: store an archive (tar) in a hub directory, named by its blake3 hash, or
    /// build a VM image.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Serve a hub directory over HTTP.
    #[command(subcommand)]
    Hub(HubCmd),
    /// Start a whole grid on this machine: dev chain, image hub, farm, node agents.
    Up {
        /// How many nodes (as root, the last of two or more is hidden behind a NAT router).
        #[arg(long, default_value_t = up::NODES)]
        nodes: u32,
        /// How many validators: 1 is a solo dev chain; 2 to 6 (//Alice, //Bob, ...) run under
        /// Tendermint BFT, each a host of its own on the nodes' LAN (as root), and every client
        /// is given all their endpoints.
        #[arg(long, default_value_t = up::VALIDATORS)]
        validators: u32,
        /// Where the grid keeps its data (cleared first).
        #[arg(long, default_value = ".tfgrid-local")]
        data: std::path::PathBuf,
        /// Also deploy examples/demo.toml: a web container on node 2, served under a gateway name
        /// by node 1 (with a 0-db) over the project's private network. As root, 2 nodes or more.
        #[arg(long)]
        demo: bool,
        /// The chain's RPC port: on loopback, or each validator's on its own address.
        #[arg(long, default_value_t = up::RPC_PORT)]
        rpc_port: u16,
        #[arg(long, default_value_t = 8090)]
        hub_port: u16,
        #[arg(long, default_value_t = 8080)]
        explorer_port: u16,
    },
}

#[derive(clap::Args, Debug)]
pub struct ProjectArgs {
    /// The deployment file (TOML; see examples/).
    pub file: std::path::PathBuf,
    /// The state file (default: .tfgrid/<project>.json in the current directory).
    #[arg(long)]
    pub state: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Add your machine to a deployed project's private network: prints a wg-quick configuration
    /// (its private key only this once) reaching every node through the network's access node.
    Access {
        /// The project's name.
        project: String,
        /// The project's deployment file, to check it is that project's.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The state file (default: .tfgrid/<project>.json in the current directory).
        #[arg(long)]
        state: Option<std::path::PathBuf>,
        /// Seconds to wait for each node to report.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Prints the hash to put in a zmachine's `flist_hash`, and the file name to append to the hub URL.
    Push {
        archive: std::path::PathBuf,
        #[arg(long)]
        hub_dir: std::path::PathBuf,
        /// Also name the image, so deployment files can say `image = "NAME"`.
        #[arg(long)]
        name: Option<String>,
    },
    /// Build a VM image (a busybox root with a kernel and an initrd that follows the node's VM
    /// contract) from this machine's kernel, to push to a hub.
    Vm {
        /// The archive to write.
        out: std::path::PathBuf,
        /// The kernel [default: the newest /boot/vmlinuz-*]; its modules come from
        /// /lib/modules/<version>.
        #[arg(long)]
        kernel: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum HubCmd {
    Serve {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
        /// The URL nodes fetch images from, if not the listen address (a hub behind a proxy, or
        /// nodes on another network).
        #[arg(long)]
        public_url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContractCmd {
    /// Deploy a deployment file (JSON) on a node.
    Create {
        #[arg(long)]
        node: u32,
        file: String,
    },
    /// Replace a node contract's deployment with the file's (its next version).
    Update {
        id: u64,
        file: String,
    },
    /// Reserve a gateway name.
    Name {
        name: String,
    },
    /// Rent a whole node.
    Rent {
        node: u32,
    },
    Cancel {
        id: u64,
    },
    /// A contract with its workloads' states and cost.
    Show {
        id: u64,
    },
    /// Your contracts, a twin's, or a node's.
    List {
        #[arg(long)]
        twin: Option<u32>,
        #[arg(long, conflicts_with = "twin")]
        node: Option<u32>,
    },
    /// The latest bills of a contract.
    Bills {
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Create a key from a new 12-word phrase (printed once: write it down).
    New {
        name: String,
    },
    /// Store a key from a secret phrase or URI.
    Import {
        name: String,
        secret: String,
    },
    /// Show the address of a stored key or secret URI (default: --key).
    Show {
        #[arg(value_name = "KEY")]
        name: Option<String>,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum TwinCmd {
    /// Accept the terms and conditions and create the key's twin.
    Create {
        #[arg(long)]
        relay: Option<String>,
        /// Hex of the public key for encrypted messages.
        #[arg(long)]
        pk: Option<String>,
        #[arg(long, default_value = "https://library.threefold.me/info/legal/#/")]
        terms_link: String,
        #[arg(long, default_value = "ThreefoldTermsV1")]
        terms_hash: String,
    },
    /// Show a twin by id or account (default: the key's twin).
    Show { twin: Option<String> },
    /// What a twin spends (default: the key's twin).
    Consumption { twin: Option<u32> },
}

#[derive(Subcommand, Debug)]
pub enum FarmCmd {
    /// Create a farm: `tfgrid farm create myfarm --ip 185.206.122.33/24=185.206.122.1`.
    Create {
        name: String,
        /// A public IP and its gateway, as IP/PREFIX=GATEWAY; repeat for more.
        #[arg(long = "ip")]
        ips: Vec<String>,
    },
    /// Show a farm by id or name.
    Show {
        farm: String,
    },
    List,
    /// A farm's nodes: status, uptime, capacity in use, contracts and farming rewards (from the
    /// explorer).
    Nodes {
        farm: String,
    },
    /// Add a public IP to a farm.
    AddIp {
        farm: String,
        ip: String,
        gateway: String,
    },
    /// Remove a free public IP from a farm.
    RemoveIp {
        farm: String,
        ip: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// List nodes, optionally of one farm.
    List {
        #[arg(long)]
        farm: Option<String>,
    },
    Show {
        id: u32,
    },
    /// Give a node of your farm a public config, which makes it a gateway: its IPv4 (with prefix)
    /// and gateway, and the domain gateway names are served under (`--clear` removes it).
    PublicConfig {
        node: u32,
        /// The node's public IPv4 with its prefix: 185.206.122.11/24.
        #[arg(long, required_unless_present = "clear")]
        ip4: Option<String>,
        /// The IPv4 gateway of that network.
        #[arg(long, required_unless_present = "clear")]
        gw4: Option<String>,
        /// The node's public IPv6 with its prefix.
        #[arg(long, requires = "gw6")]
        ip6: Option<String>,
        /// The IPv6 gateway of that network.
        #[arg(long)]
        gw6: Option<String>,
        /// The domain gateway names are served under: `<name>.<domain>`.
        #[arg(long)]
        domain: Option<String>,
        /// Remove the node's public config instead.
        #[arg(long, conflicts_with_all = ["ip4", "gw4", "ip6", "gw6", "domain"])]
        clear: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ChainCmd {
    /// The chain's name, height and pool.
    Status,
}

#[derive(Subcommand, Debug)]
pub enum KvCmd {
    Set {
        #[arg(value_name = "KEY")]
        entry: String,
        value: String,
    },
    /// Read a key of your store (or of --account's).
    Get {
        #[arg(value_name = "KEY")]
        entry: String,
        #[arg(long)]
        account: Option<String>,
    },
    Delete {
        #[arg(value_name = "KEY")]
        entry: String,
    },
    List {
        #[arg(long)]
        account: Option<String>,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match commands::run(cli).await {
        Ok(()) => {}
        // The reader of stdout stopped early (`| head`): it has what it wanted.
        Err(error)
            if error
                .chain()
                .any(|cause| cause.is::<output::StdoutClosed>()) => {}
        Err(error) => {
            output::note(format_args!("error: {}", error_line(&error)));
            std::process::exit(1);
        }
    }
}

/// An error as the one line the user reads: a chain that cannot be reached is said once, naming
/// each endpoint tried, with how to start a local one when every endpoint is on this machine;
/// otherwise the causes, outermost first.
fn error_line(error: &anyhow::Error) -> String {
    let unreachable = error.chain().find_map(|cause| match cause.downcast_ref() {
        Some(e @ ClientError::Connect { attempts }) => Some((e, attempts)),
        _ => None,
    });
    match unreachable {
        Some((connect, attempts)) => {
            let mut line = connect.to_string();
            let ports: Option<Vec<u16>> = attempts
                .iter()
                .map(|a| loopback_port(&a.endpoint))
                .collect();
            if let Some(&port) = ports.as_deref().and_then(<[u16]>::first) {
                line.push_str("; start a local grid with `tfgrid up");
                if port != up::RPC_PORT {
                    line.push_str(&format!(" --rpc-port {port}"));
                }
                line.push_str("`, or point --rpc at a running chain");
            }
            line
        }
        None => join_causes(error.chain().map(|cause| cause.to_string())),
    }
}

/// Causes' messages joined by ": ", leaving out one that the message before it already ends with
/// (a step whose message includes its source's).
fn join_causes(messages: impl IntoIterator<Item = String>) -> String {
    let mut line = String::new();
    let mut last = String::new();
    for message in messages {
        if !last.ends_with(&message) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&message);
        }
        last = message;
    }
    line
}

/// The port of a URL on this machine (`ws://127.0.0.1:9944`, `http://localhost:9944/`).
fn loopback_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        .then(|| port.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: anyhow::Error, expect: &str) {
        assert_eq!(error_line(&error), expect);
    }

    fn connect(urls: &[&str]) -> anyhow::Error {
        let attempts = urls
            .iter()
            .map(|url| tfchain_client::Attempt {
                endpoint: url.to_string(),
                reason: "Connection refused (os error 111)".into(),
            })
            .collect();
        ClientError::Connect { attempts }.into()
    }

    #[test]
    fn lines() {
        check(
            connect(&["ws://127.0.0.1:9944"]).context("connecting to the chain"),
            "cannot reach the chain at ws://127.0.0.1:9944: Connection refused (os error 111); \
             start a local grid with `tfgrid up`, or point --rpc at a running chain",
        );
        check(
            connect(&["ws://localhost:19944/"]),
            "cannot reach the chain at ws://localhost:19944/: Connection refused (os error \
             111); start a local grid with `tfgrid up --rpc-port 19944`, or point --rpc at a \
             running chain",
        );
        check(
            connect(&["wss://tfchain.grid.tf:443"]),
            "cannot reach the chain at wss://tfchain.grid.tf:443: Connection refused (os error 111)",
        );
        // Every endpoint of a list is named; the local hint only when all are on this machine.
        check(
            connect(&["ws://127.0.0.1:9944", "ws://10.0.0.2:9944"]),
            "cannot reach the chain at any of its 2 endpoints: ws://127.0.0.1:9944: Connection \
             refused (os error 111); ws://10.0.0.2:9944: Connection refused (os error 111)",
        );
        check(
            connect(&["ws://127.0.0.1:9945", "ws://[::1]:9944"]),
            "cannot reach the chain at any of its 2 endpoints: ws://127.0.0.1:9945: Connection \
             refused (os error 111); ws://[::1]:9944: Connection refused (os error 111); start a \
             local grid with `tfgrid up --rpc-port 9945`, or point --rpc at a running chain",
        );
        // A step that says its cause is not followed by the cause again.
        let step = anyhow::anyhow!("reading x: no such file").context("loading");
        check(step, "loading: reading x: no such file");
        let causes = |all: &[&str]| join_causes(all.iter().map(|m| m.to_string()));
        assert_eq!(
            causes(&["connecting: cannot reach x", "cannot reach x"]),
            "connecting: cannot reach x"
        );
        assert_eq!(causes(&["a", "b", "c"]), "a: b: c");
    }
}
