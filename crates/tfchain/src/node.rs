//! Wiring of a running node: open the store and chain, start the verifier, the RPC server and the
//! consensus engine, and stop them in order on shutdown (the block being sealed is finished first).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use jsonrpsee::server::ServerHandle;
use tfchain_client::api::TfchainApiServer;
use tfgrid_types::Keypair;
use tokio::sync::{broadcast, watch};

use crate::chain::Chain;
use crate::consensus::{Consensus, Solo};
use crate::limits::SUBSCRIPTION_BUFFER;
use crate::listener::{self, ConnectionLimits};
use crate::rpc::RpcServer;
use crate::spec::ChainSpec;
use crate::store::Store;
use crate::verify::Verifier;

/// A running node.
#[derive(Debug)]
pub struct Node {
    pub rpc_addr: SocketAddr,
    rpc: ServerHandle,
    consensus: tokio::task::JoinHandle<Result<()>>,
    shutdown: watch::Sender<bool>,
}

impl Node {
    /// Starts a node for `spec` with its data in `base_path`, sealing with `validator`.
    pub async fn start(
        spec: ChainSpec,
        base_path: &Path,
        rpc_addr: SocketAddr,
        validator: Keypair,
    ) -> Result<Node> {
        anyhow::ensure!(
            spec.genesis.validators.contains(&validator.account()),
            "{} is not a validator of chain {:?}",
            validator.account(),
            spec.id
        );
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
        };
        let (rpc_addr, rpc) =
            listener::start(rpc_addr, server.into_rpc(), ConnectionLimits::from_env()?)
                .await
                .with_context(|| format!("listening for RPC on {rpc_addr}"))?;
        tracing::info!(%rpc_addr, "RPC listening (HTTP and WebSocket)");

        let engine: Box<dyn Consensus> = Box::new(Solo {
            block_time: Duration::from_millis(spec.block_time_ms),
        });
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
