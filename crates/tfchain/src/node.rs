//! Wiring of a running node: open the store and chain, start the verifier, the RPC server and the
//! consensus engine (solo, or BFT as a validator or a full node), and stop them in order on shutdown
//! (the block being sealed is finished first).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use jsonrpsee::server::ServerHandle;
use tfchain_client::api::TfchainApiServer;
use tfgrid_types::Keypair;
use tokio::sync::{broadcast, watch};

use crate::bft::Bft;
use crate::chain::Chain;
use crate::consensus::{Consensus, Solo};
use crate::limits::SUBSCRIPTION_BUFFER;
use crate::listener::{self, ConnectionLimits};
use crate::relay::Relay;
use crate::rpc::RpcServer;
use crate::spec::ChainSpec;
use crate::store::Store;
use crate::verify::Verifier;

/// How a node takes part in consensus.
#[derive(Debug)]
pub enum Role {
    /// The only validator, sealing on a timer.
    Solo(Keypair),
    /// One of several validators (with a key) or a full node (without), over BFT.
    Bft {
        key: Option<Keypair>,
        /// Where it listens for its peers.
        listen: SocketAddr,
        peers: Vec<SocketAddr>,
        /// The other nodes' RPC URLs, where the transactions clients submit here are relayed.
        relay_to: Vec<String>,
        /// Fault injection: heights at which this validator equivocates.
        equivocate_at: Vec<u64>,
    },
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    pub rpc_addr: SocketAddr,
    rpc: ServerHandle,
    consensus: tokio::task::JoinHandle<Result<()>>,
    shutdown: watch::Sender<bool>,
}

impl Node {
    /// Starts a node for `spec` with its data in `base_path`, taking part in consensus as `role`.
    pub async fn start(
        spec: ChainSpec,
        base_path: &Path,
        rpc_addr: SocketAddr,
        role: Role,
    ) -> Result<Node> {
        let validators = &spec.genesis.validators;
        let author = match &role {
            Role::Solo(key) => {
                anyhow::ensure!(
                    validators.len() == 1 && validators[0] == key.account(),
                    "{} is not the only validator of chain {:?}: several validators run BFT (--p2p-addr and --peer)",
                    key.account(),
                    spec.id
                );
                key.clone()
            }
            Role::Bft { key: Some(key), .. } => key.clone(),
            // A full node never proposes: its author key is never used.
            Role::Bft { key: None, .. } => Keypair::generate(&mut rand::thread_rng()),
        };
        let validator = author;
        let store = Arc::new(Store::open(&base_path.join("chain.redb"))?);
        let chain = Chain::open(store.clone(), &spec, validator)?;
        let genesis_hash = chain.genesis_hash();
        tracing::info!(chain = %spec.id, height = chain.head().height, %genesis_hash, "chain opened");
        let (finalized, _) = broadcast::channel(SUBSCRIPTION_BUFFER);
        let (shutdown, shutdown_rx) = watch::channel(false);

        let server = RpcServer {
            chain: chain.shared(),
            store,
            verifier: Verifier::start(genesis_hash),
            finalized: finalized.clone(),
            spec: Arc::new(spec.clone()),
            genesis_hash,
            relay: match &role {
                Role::Bft { relay_to, .. } => Some(Relay::start(relay_to.clone())),
                Role::Solo(_) => None,
            },
        };
        let (rpc_addr, rpc) =
            listener::start(rpc_addr, server.into_rpc(), ConnectionLimits::from_env()?)
                .await
                .with_context(|| format!("listening for RPC on {rpc_addr}"))?;
        tracing::info!(%rpc_addr, "RPC listening (HTTP and WebSocket)");

        let block_time = Duration::from_millis(spec.block_time_ms);
        let engine: Box<dyn Consensus> = match role {
            Role::Solo(_) => Box::new(Solo { block_time }),
            Role::Bft {
                key,
                listen,
                peers,
                equivocate_at,
                ..
            } => Box::new(Bft {
                key,
                listen,
                peers,
                equivocate_at,
                dir: base_path.to_path_buf(),
                block_time,
            }),
        };
        let consensus = tokio::spawn(engine.run(chain, finalized, shutdown_rx));
        Ok(Node {
            rpc_addr,
            rpc,
            consensus,
            shutdown,
        })
    }

    /// Runs until the consensus engine stops (an error) or `signal` completes (a clean stop).
    pub async fn run_until(mut self, signal: impl std::future::Future<Output = ()>) -> Result<()> {
        let result = tokio::select! {
            _ = signal => {
                tracing::info!("shutting down");
                let _ = self.shutdown.send(true);
                (&mut self.consensus).await
            }
            r = &mut self.consensus => r,
        };
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
        result.context("the consensus task panicked")?
    }
}
