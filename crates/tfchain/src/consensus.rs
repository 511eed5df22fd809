//! How blocks get decided. The node's side is the [`Chain`]: it builds, executes and commits blocks,
//! and the engine owns it (RPC works on the chain's shared part, apart). A consensus engine decides
//! when a block is made and by whom, and when it is final. The embedded engine is a single
//! validator sealing on a timer, final at once; a BFT engine (Tendermint through Malachite)
//! implements the same trait, proposing through the chain and committing what is decided.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, watch};

use crate::chain::{Chain, Committed};

pub trait Consensus: Send + 'static {
    /// Drives block production until `shutdown` turns true, publishing each finalized block.
    fn run(
        self: Box<Self>,
        chain: Chain,
        finalized: broadcast::Sender<Committed>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<()>>;
}

/// One validator that seals a block every `block_time`, final when committed.
#[derive(Debug)]
pub struct Solo {
    pub block_time: Duration,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

impl Consensus for Solo {
    fn run(
        self: Box<Self>,
        mut chain: Chain,
        finalized: broadcast::Sender<Committed>,
        mut shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let mut ticker = tokio::time::interval(self.block_time);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                let (returned, committed) = tokio::task::spawn_blocking(move || {
                    let committed = chain.produce_block(now_ms());
                    (chain, committed)
                })
                .await?;
                chain = returned;
                let committed = committed?;
                tracing::debug!(
                    height = committed.block.header.height,
                    txs = committed.block.txs.len(),
                    "sealed"
                );
                // No subscriber is not an error.
                let _ = finalized.send(committed);
            }
        })
    }
}
