//! The `tfchain` binary: runs a ledger node (`tfchain --dev` alone; `--p2p-addr` and `--peer` for a
//! BFT validator or full node), or prints a chain spec to edit (`tfchain build-spec --dev > spec.json`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tfchain::node::{Node, Role};
use tfchain::spec::ChainSpec;
use tfgrid_types::Keypair;

#[derive(Parser, Debug)]
#[command(version, about = "TFChain ledger node")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run the development chain: 1 s blocks, //Alice to //Ferdie funded, Alice validator and council.
    #[arg(long, global = true, conflicts_with = "chain")]
    dev: bool,
    /// A chain spec file (JSON).
    #[arg(long, global = true)]
    chain: Option<PathBuf>,
    /// Where the chain's data lives [default: ~/.local/share/tfchain/<chain id>].
    #[arg(long)]
    base_path: Option<PathBuf>,
    /// Address of the JSON-RPC server (HTTP and WebSocket).
    #[arg(long, default_value = "127.0.0.1:9944")]
    rpc_addr: SocketAddr,
    /// Secret URI of the validator key: a BIP39 phrase with optional //junctions, a 0x seed, or a dev
    /// URI like //Alice [default with --dev and no --p2p-addr: //Alice]. Without it, a node with
    /// --p2p-addr is a full node: it follows the chain and serves RPC, and never votes.
    #[arg(long, env = "TFCHAIN_VALIDATOR")]
    validator: Option<String>,
    /// Take part in BFT consensus, listening for peers on this TCP address (e.g. 0.0.0.0:30333).
    #[arg(long)]
    p2p_addr: Option<SocketAddr>,
    /// Another node's --p2p-addr to stay connected to (repeat for each, or a comma-separated list).
    #[arg(long, value_delimiter = ',', requires = "p2p_addr")]
    peer: Vec<SocketAddr>,
    /// Another node's RPC URL, to relay the transactions clients submit here (repeat for each, or
    /// a comma-separated list): whichever validator proposes next then has them.
    #[arg(long, value_delimiter = ',', requires = "p2p_addr")]
    relay_to: Vec<String>,
    /// Fault injection for tests: sign a second, conflicting proposal when proposing at these
    /// heights (a comma-separated list).
    #[arg(long, hide = true, value_delimiter = ',', requires = "validator")]
    equivocate_at: Vec<u64>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the chain spec as JSON, to edit into a spec for another network.
    BuildSpec {
        /// The dev spec with the first N dev accounts (//Alice, //Bob, ...) as its validators.
        #[arg(long, value_name = "N")]
        validators: Option<usize>,
    },
}

fn spec(args: &Args) -> Result<ChainSpec> {
    if let Some(Command::BuildSpec {
        validators: Some(count),
    }) = args.command
    {
        anyhow::ensure!(
            args.chain.is_none(),
            "build-spec --validators writes a dev spec: it takes no --chain"
        );
        return ChainSpec::dev_with_validators(count);
    }
    match &args.chain {
        Some(path) => ChainSpec::load(path),
        None if args.dev => Ok(ChainSpec::dev()),
        None => anyhow::bail!("choose a chain: --dev, or --chain <spec.json>"),
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,arc_malachitebft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let spec = spec(&args)?;
    if let Some(Command::BuildSpec { .. }) = args.command {
        println!("{}", serde_json::to_string_pretty(&spec)?);
        return Ok(());
    }
    let key = |uri: &str| Keypair::from_uri(uri).context("reading the validator key");
    let role = match (args.p2p_addr, &args.validator) {
        (Some(listen), validator) => Role::Bft {
            key: validator.as_deref().map(key).transpose()?,
            listen,
            peers: args.peer.clone(),
            relay_to: args.relay_to.clone(),
            equivocate_at: args.equivocate_at.clone(),
        },
        (None, Some(uri)) => Role::Solo(key(uri)?),
        (None, None) if args.dev => Role::Solo(key("//Alice")?),
        (None, None) => anyhow::bail!(
            "a validator key is needed (--validator <secret uri>), or --p2p-addr to follow as a full node"
        ),
    };
    let base_path = match &args.base_path {
        Some(path) => path.clone(),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set: pass --base-path")?;
            PathBuf::from(home)
                .join(".local/share/tfchain")
                .join(&spec.id)
        }
    };
    let node = Node::start(spec, &base_path, args.rpc_addr, role).await?;
    node.run_until(shutdown_signal()).await
}
