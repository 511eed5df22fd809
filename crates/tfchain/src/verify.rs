//! Signature checks of submitted transactions, batched: submissions queue up, and a worker checks all
//! that are waiting in one batch (split over the cores), which is about twice as fast per signature as
//! checking one at a time. Under light load a batch is a single transaction, so nothing waits.

use std::sync::Arc;

use tfchain_runtime::SignedTransaction;
use tfgrid_types::Hash32;
use tfgrid_types::keys::verify_batch;
use tokio::sync::{mpsc, oneshot};

use crate::limits::{VERIFY_BATCH_MAX, VERIFY_QUEUE_MAX};

type Job = (Arc<SignedTransaction>, oneshot::Sender<bool>);

/// A handle to the verification worker.
#[derive(Debug, Clone)]
pub struct Verifier {
    queue: mpsc::Sender<Job>,
}

/// Checks the signatures of `txs` for the chain `genesis_hash`; returns one verdict per transaction.
pub fn check_all(txs: &[Arc<SignedTransaction>], genesis_hash: &Hash32) -> Vec<bool> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(txs.len().max(1));
    let chunk = txs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = txs
            .chunks(chunk)
            .map(|part| scope.spawn(move || check_chunk(part, genesis_hash)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("verifier thread"))
            .collect()
    })
}

fn check_chunk(txs: &[Arc<SignedTransaction>], genesis_hash: &Hash32) -> Vec<bool> {
    let payloads: Vec<Vec<u8>> = txs
        .iter()
        .map(|t| t.tx.signing_payload(genesis_hash))
        .collect();
    let items: Vec<_> = txs
        .iter()
        .zip(&payloads)
        .map(|(t, p)| (t.tx.signer, p.as_slice(), t.signature))
        .collect();
    let mut verdicts = vec![true; txs.len()];
    if let Err(bad) = verify_batch(&items, rand::thread_rng()) {
        for i in bad {
            verdicts[i] = false;
        }
    }
    verdicts
}

impl Verifier {
    /// Starts the worker for the chain `genesis_hash`.
    pub fn start(genesis_hash: Hash32) -> Verifier {
        let (queue, mut jobs) = mpsc::channel::<Job>(VERIFY_QUEUE_MAX);
        tokio::spawn(async move {
            while let Some(first) = jobs.recv().await {
                let mut batch = vec![first];
                while batch.len() < VERIFY_BATCH_MAX {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let txs: Vec<Arc<SignedTransaction>> =
                    batch.iter().map(|(t, _)| t.clone()).collect();
                let Ok(verdicts) =
                    tokio::task::spawn_blocking(move || check_all(&txs, &genesis_hash)).await
                else {
                    return;
                };
                for ((_, reply), ok) in batch.into_iter().zip(verdicts) {
                    let _ = reply.send(ok);
                }
            }
        });
        Verifier { queue }
    }

    /// Whether the transaction carries a valid signature of its signer for this chain.
    pub async fn check(&self, tx: Arc<SignedTransaction>) -> bool {
        let (reply, verdict) = oneshot::channel();
        if self.queue.send((tx, reply)).await.is_err() {
            return false;
        }
        verdict.await.unwrap_or(false)
    }
}
