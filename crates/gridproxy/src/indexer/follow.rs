//! Following the chain: subscribe to finalized heads first (so nothing is missed), then fetch every
//! block after the last indexed one by height, a few requests ahead, and apply them in order. A lost
//! connection is made again through the chain's endpoint list after a growing pause (the client
//! starts after the endpoint that failed and refuses one of another chain), and following resumes
//! from the last indexed height: no block missed, none applied twice. A store bound to another chain
//! stops the indexer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use futures::StreamExt;
use tfchain_client::{Backoff, BlockId, BlockView, Client, TfchainApiClient, WsClient};
use tokio::sync::watch;

use super::apply;
use crate::error::Error;
use crate::limits::BLOCKS_FETCHED_AHEAD;
use crate::store::{self, Store};

/// What the indexer has done so far, for `/health`.
#[derive(Debug)]
pub struct Progress {
    /// The last applied height, -1 before the first block.
    pub indexed_height: AtomicI64,
    /// The newest finalized height the chain announced.
    pub chain_height: AtomicU64,
    pub connected: AtomicBool,
    /// The chain's uptime report interval (its `chain_params`), seconds; 60 (the dev chain's)
    /// until the indexer has connected.
    pub uptime_report_interval_s: AtomicU64,
}

impl Progress {
    /// A node is up when its last uptime report is at most this old: three report intervals.
    pub fn up_window_s(&self) -> u64 {
        3 * self.uptime_report_interval_s.load(Ordering::Relaxed)
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            indexed_height: AtomicI64::new(-1),
            chain_height: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            uptime_report_interval_s: AtomicU64::new(60),
        }
    }
}

/// Follows the chain at `url` (one endpoint, or a comma-separated list of the chain's endpoints)
/// until `shutdown` turns true. Returns an error only for what retrying cannot fix (another chain,
/// a gap, a broken store).
pub async fn run(
    store: Arc<dyn Store>,
    url: String,
    progress: Arc<Progress>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let known = blocking(&store, |sql| apply::indexed(sql)).await?;
    if let Some(i) = known {
        progress
            .indexed_height
            .store(i.height as i64, Ordering::Relaxed);
    }
    let mut client = None;
    let mut backoff = Backoff::default();
    loop {
        let result = tokio::select! {
            r = follow(&store, &url, &mut client, &progress, &mut backoff) => r,
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        };
        progress.connected.store(false, Ordering::Relaxed);
        let delay = backoff.next_delay();
        match result {
            Err(e @ (Error::OtherChain { .. } | Error::Gap { .. } | Error::Store(_))) => {
                return Err(e);
            }
            Err(e) => tracing::warn!("following the chain: {e}; retrying in {delay:?}"),
            Ok(()) => tracing::warn!("the chain closed the head subscription; reconnecting"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
    }
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnMut(&mut dyn store::Sql) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store::write(&*store, f))
        .await
        .map_err(|e| Error::Store(format!("store task failed: {e}")))?
}

async fn fetch(rpc: &WsClient, height: u64) -> Result<BlockView, Error> {
    rpc.block(BlockId::Height(height))
        .await?
        .ok_or_else(|| Error::Chain(format!("the chain has no block {height}")))
}

/// One connection's worth of following; returns when the subscription ends. The client is made on
/// the first call and kept: later calls make its connection again through the endpoint list.
async fn follow(
    store: &Arc<dyn Store>,
    url: &str,
    client: &mut Option<Client>,
    progress: &Progress,
    backoff: &mut Backoff,
) -> Result<(), Error> {
    let client = match client {
        Some(client) => {
            client.ensure_connected().await?;
            client
        }
        None => client.insert(Client::connect(url).await?),
    };
    let genesis = client.genesis_hash();
    blocking(store, move |sql| apply::bind_chain(sql, &genesis)).await?;
    let rpc = client.rpc();
    let params = rpc.params().await?;
    progress
        .uptime_report_interval_s
        .store(params.uptime_report_interval_s, Ordering::Relaxed);
    let price = rpc.tft_price().await?;
    blocking(store, move |sql| apply::seed_tft_price(sql, &price)).await?;
    let mut heads = rpc.subscribe_finalized_heads().await?;
    let mut target = rpc.status().await?.height;
    progress.connected.store(true, Ordering::Relaxed);
    backoff.reset();
    tracing::info!(
        "following the chain at {} from its height {target}",
        client.endpoint()
    );
    loop {
        progress.chain_height.fetch_max(target, Ordering::Relaxed);
        let next = (progress.indexed_height.load(Ordering::Relaxed) + 1) as u64;
        if next <= target {
            let mut blocks = futures::stream::iter(next..=target)
                .map(|h| fetch(&rpc, h))
                .buffered(BLOCKS_FETCHED_AHEAD);
            while let Some(block) = blocks.next().await {
                let block = block?;
                let height = block.header.height;
                blocking(store, move |sql| apply::apply_block(sql, &block)).await?;
                progress
                    .indexed_height
                    .store(height as i64, Ordering::Relaxed);
            }
            continue;
        }
        match heads.next().await {
            Some(Ok(head)) => target = target.max(head.height),
            Some(Err(e)) => return Err(Error::Chain(format!("head subscription: {e}"))),
            None => return Ok(()),
        }
    }
}
