//! The relay: under BFT any validator may propose the next block, so the transactions a node admits
//! from its clients go on to the other nodes' RPC (`tx_relay`, which does not relay further). One task
//! per target batches what is waiting into one request and reconnects when the target is down;
//! what a target misses stays in this node's pool, and this node includes it when it proposes.

use std::sync::Arc;
use std::time::Duration;

use tfchain_client::Client;
use tfchain_client::api::TfchainApiClient;
use tokio::sync::broadcast;

use crate::limits::{RELAY_BUFFER, SUBMIT_BATCH_MAX};

/// A handle to the relay tasks.
#[derive(Debug, Clone)]
pub struct Relay {
    queue: broadcast::Sender<Arc<Vec<String>>>,
}

impl Relay {
    /// Starts one task per target RPC URL.
    pub fn start(targets: Vec<String>) -> Relay {
        let (queue, _) = broadcast::channel(RELAY_BUFFER);
        for target in targets {
            tokio::spawn(relay_to(target, queue.subscribe()));
        }
        Relay { queue }
    }

    /// Relays admitted transactions (0x and the hex of each encoding).
    pub fn send(&self, txs: Vec<String>) {
        if !txs.is_empty() {
            // No target is not an error.
            let _ = self.queue.send(Arc::new(txs));
        }
    }
}

async fn relay_to(target: String, mut queue: broadcast::Receiver<Arc<Vec<String>>>) {
    loop {
        let client = match Client::connect(&target).await {
            Ok(client) => client,
            Err(e) => {
                tracing::debug!(%target, "relay: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let mut batch: Vec<String> = match queue.recv().await {
                Ok(txs) => txs.to_vec(),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(%target, missed, "relay: fell behind");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            while batch.len() < SUBMIT_BATCH_MAX {
                match queue.try_recv() {
                    Ok(txs) => batch.extend(txs.iter().cloned()),
                    Err(_) => break,
                }
            }
            let mut failed = false;
            for chunk in batch.chunks(SUBMIT_BATCH_MAX) {
                if let Err(e) = client.rpc().relay(chunk.to_vec()).await {
                    tracing::debug!(%target, "relay: {e}");
                    failed = true;
                    break;
                }
            }
            if failed {
                break;
            }
        }
    }
}
