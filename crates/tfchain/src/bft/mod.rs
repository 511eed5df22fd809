//! Tendermint BFT through Malachite, in process. The engine (votes, rounds, timeouts, the write-ahead
//! log, libp2p gossip and value sync) runs as Malachite's actors; this module is the application it
//! drives: it proposes blocks through the [`Chain`] when this validator's turn comes, streams them as
//! parts, judges other validators' blocks by executing them, and commits the block more than two
//! thirds of the validators precommitted, with their signatures as the block's [`Commit`]. The
//! validators of each height come from the ledger state, so a council motion changes them. A node
//! without a validator key follows as a full node: it takes decided blocks and serves RPC, and never
//! votes.

mod app;
pub mod context;
pub mod parts;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::future::BoxFuture;
use malachitebft_app_channel::app::config::{
    ConsensusConfig, NodeConfig, P2pConfig, ValueSyncConfig,
};
use malachitebft_app_channel::app::net::Multiaddr;
use malachitebft_app_channel::app::types::Keypair as NetKeypair;
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::{
    ByzantineContext, ConsensusContext, EngineBuilder, NetworkContext, NetworkIdentity,
    RequestContext, Signer, SyncContext, WalContext,
};
use malachitebft_engine_byzantine::{ByzantineConfig, Trigger};
use tfgrid_types::Keypair;
use tokio::sync::{broadcast, watch};

use crate::chain::{Chain, Committed};
use crate::consensus::Consensus;
use context::{Address, BlockId, BorshCodec, KeySigner, KeyVerifier, Ledger};

/// A BFT node: a validator when it has a key, a full node otherwise.
#[derive(Debug)]
pub struct Bft {
    /// The validator key; `None` for a full node.
    pub key: Option<Keypair>,
    /// Where this node listens for its peers (TCP).
    pub listen: SocketAddr,
    /// The peers it keeps connections to.
    pub peers: Vec<SocketAddr>,
    /// Where the write-ahead log lives.
    pub dir: PathBuf,
    pub block_time: Duration,
    /// Fault injection for tests: at these heights this validator signs a second, conflicting
    /// proposal when it proposes, as a faulty or malicious validator would.
    pub equivocate_at: Vec<u64>,
}

/// Malachite's configuration of one node.
#[derive(Clone, Debug)]
struct Config {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl NodeConfig for Config {
    fn moniker(&self) -> &str {
        &self.moniker
    }

    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }

    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }

    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }

    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

/// The libp2p address of a TCP socket address.
pub fn multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
        std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
    };
    format!("{ip}/tcp/{}", addr.port())
        .parse()
        .expect("a valid multiaddr")
}

impl Bft {
    fn config(&self, moniker: String) -> Config {
        let p2p = P2pConfig {
            listen_addr: multiaddr(self.listen),
            persistent_peers: self.peers.iter().copied().map(multiaddr).collect(),
            ..P2pConfig::default()
        };
        let value_sync = ValueSyncConfig {
            enabled: true,
            status_update_interval: self.block_time.max(Duration::from_millis(500)),
            ..ValueSyncConfig::default()
        };
        Config {
            moniker,
            consensus: ConsensusConfig {
                p2p,
                ..ConsensusConfig::default()
            },
            value_sync,
        }
    }

    /// Starts Malachite's actors for this node.
    async fn start(
        &self,
    ) -> Result<(
        malachitebft_app_channel::Channels<Ledger>,
        malachitebft_app_channel::EngineHandle,
        Address,
    )> {
        let key = self
            .key
            .clone()
            .unwrap_or_else(|| Keypair::generate(&mut rand::thread_rng()));
        let address = Address(key.account());
        let net_key = NetKeypair::ed25519_from_bytes(key.seed())
            .map_err(|e| anyhow::anyhow!("a network key from the validator key: {e}"))?;
        let moniker = address.to_string();
        let config = self.config(moniker.clone());
        let identity = if self.key.is_some() {
            let peer_id = net_key.public().to_peer_id().to_bytes();
            let proof = KeySigner(key.clone())
                .sign_validator_proof(key.account().0.to_vec(), peer_id)
                .await
                .map_err(|e| anyhow::anyhow!("signing the validator proof: {e:?}"))?;
            let proof = BorshCodec.encode(&proof)?;
            NetworkIdentity::new_validator(moniker, net_key, address.to_string(), proof)
        } else {
            NetworkIdentity::new(moniker, net_key, None)
        };
        let consensus = match &self.key {
            Some(key) => ConsensusContext::new_validator(
                address,
                Box::new(KeyVerifier),
                Box::new(KeySigner(key.clone())),
            ),
            None => ConsensusContext::new_full_node(address, Box::new(KeyVerifier)),
        };
        let wal = self.dir.join("wal").join("consensus.wal");
        std::fs::create_dir_all(self.dir.join("wal"))
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let builder =
            EngineBuilder::new(Ledger, config).with_default_wal(WalContext::new(wal, BorshCodec));
        let built = if self.equivocate_at.is_empty() {
            builder
                .with_default_network(NetworkContext::new(identity, BorshCodec))
                .with_default_consensus(consensus)
                .with_default_sync(SyncContext::new(BorshCodec))
                .with_default_request(RequestContext::new(100))
                .build()
                .await
        } else {
            tracing::warn!(heights = ?self.equivocate_at, "fault injection: this validator equivocates");
            let trigger = Trigger::AtHeights {
                heights: self.equivocate_at.clone(),
            };
            builder
                .with_byzantine_network(ByzantineContext {
                    identity,
                    codec: BorshCodec,
                    config: ByzantineConfig::default().with_equivocate_proposals(trigger),
                    signer: Box::new(KeySigner(key)),
                    address,
                    // A proposal of a block nobody has: the same hash with its last bit flipped.
                    conflicting_value_fn: Some(Box::new(|id: &BlockId| {
                        let mut hash = id.0;
                        hash.0[31] ^= 1;
                        BlockId(hash)
                    })),
                    conflicting_vote_value_fn: None,
                })
                .await
                .map_err(|e| anyhow::anyhow!("starting the faulty network: {e:#}"))?
                .with_default_consensus(consensus)
                .with_default_sync(SyncContext::new(BorshCodec))
                .with_default_request(RequestContext::new(100))
                .build()
                .await
        };
        let (channels, engine) =
            built.map_err(|e| anyhow::anyhow!("starting the consensus engine: {e:#}"))?;
        Ok((channels, engine, address))
    }
}

impl Consensus for Bft {
    fn run(
        self: Box<Self>,
        chain: Chain,
        finalized: broadcast::Sender<Committed>,
        mut shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let (mut channels, engine, address) = self.start().await?;
            tracing::info!(
                %address,
                listen = %self.listen,
                peers = self.peers.len(),
                validator = self.key.is_some(),
                "BFT consensus started"
            );
            let mut app = app::App::new(chain, address, self.block_time, finalized);
            let result = tokio::select! {
                r = app.run(&mut channels) => r,
                _ = shutdown.changed() => Ok(()),
            };
            engine.actor.stop(None);
            let _ = engine.handle.await;
            result
        })
    }
}
