//! Benchmark of signed transfers: through the runtime alone (batch signature checks, then apply and
//! seal), and through RPC into sealed blocks of a running node. Prints the medians and the physical
//! bound: signature checks per second per core, one by one and batched.
//! Run with `cargo xtask bench chain` (or `cargo bench -p tfchain --bench chain -- [transfers]`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tfchain::node::Node;
use tfchain::spec::ChainSpec;
use tfchain::verify::check_all;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::genesis::Endowment;
use tfchain_runtime::{Call, Genesis, Runtime, SignedTransaction, Transaction, balances};
use tfgrid_types::{Hash32, Keypair, UNITS_PER_TFT, keys};

const ROUNDS: usize = 5;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// `n` funded accounts and a genesis that funds them.
fn setup(n: usize) -> (Vec<Keypair>, Genesis) {
    let keys: Vec<Keypair> = (0..n)
        .map(|i| Keypair::from_seed(Hash32::of("bench key", &(i as u64).to_le_bytes()).0))
        .collect();
    let mut genesis = Genesis::dev();
    genesis.balances.extend(keys.iter().map(|k| Endowment {
        account: k.account(),
        amount: 1_000 * UNITS_PER_TFT,
    }));
    (keys, genesis)
}

/// One transfer from each account to the next, with nonce `nonce`.
fn transfers(keys: &[Keypair], nonce: u64, genesis_hash: &Hash32) -> Vec<SignedTransaction> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            let dest = keys[(i + 1) % keys.len()].account();
            let call = Call::Balances(balances::Call::Transfer {
                dest,
                amount: UNITS_PER_TFT,
            });
            Transaction {
                signer: key.account(),
                nonce,
                call,
            }
            .sign(key, genesis_hash)
        })
        .collect()
}

fn signature_bounds(txs: &[SignedTransaction], genesis_hash: &Hash32) -> (f64, f64) {
    let sample = &txs[..txs.len().min(4000)];
    let payloads: Vec<Vec<u8>> = sample
        .iter()
        .map(|t| t.tx.signing_payload(genesis_hash))
        .collect();
    let start = Instant::now();
    for (t, p) in sample.iter().zip(&payloads) {
        assert!(keys::verify(&t.tx.signer, p, &t.signature));
    }
    let single = sample.len() as f64 / start.elapsed().as_secs_f64();
    let items: Vec<_> = sample
        .iter()
        .zip(&payloads)
        .map(|(t, p)| (t.tx.signer, p.as_slice(), t.signature))
        .collect();
    let start = Instant::now();
    keys::verify_batch(&items, rand::thread_rng()).unwrap();
    let batch = sample.len() as f64 / start.elapsed().as_secs_f64();
    (single, batch)
}

fn runtime_bench(keys: &[Keypair], genesis: &Genesis) -> f64 {
    let genesis_hash = Hash32::of("bench chain", b"runtime");
    let mut rates = Vec::new();
    let mut runtime = Runtime::new(genesis.build().unwrap().state);
    for round in 0..ROUNDS {
        let txs: Vec<Arc<SignedTransaction>> = transfers(keys, round as u64, &genesis_hash)
            .into_iter()
            .map(Arc::new)
            .collect();
        let lens: Vec<usize> = txs.iter().map(|t| t.encode().len()).collect();
        let start = Instant::now();
        assert!(check_all(&txs, &genesis_hash).into_iter().all(|ok| ok));
        runtime.begin_block(round as u64 + 1, 1_000 * (round as u64 + 1));
        for (tx, len) in txs.iter().zip(&lens) {
            let receipt = runtime.apply_tx(tx, *len).unwrap();
            assert!(receipt.error.is_none());
        }
        runtime.finish_block();
        rates.push(txs.len() as f64 / start.elapsed().as_secs_f64());
    }
    median(rates)
}

async fn rpc_bench(keys: &[Keypair], genesis: Genesis, clients: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ChainSpec::dev();
    spec.genesis = genesis;
    let node = Node::start(
        spec,
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        Keypair::from_uri("//Alice").unwrap(),
    )
    .await
    .unwrap();
    let url = format!("ws://{}", node.rpc_addr);
    let client = tfchain_client::Client::connect(&url).await.unwrap();
    let genesis_hash = client.genesis_hash();
    let txs: Vec<String> = transfers(keys, 0, &genesis_hash)
        .iter()
        .map(|t| format!("0x{}", hex::encode(t.encode())))
        .collect();
    let start_height = client.rpc().status().await.unwrap().height;
    let start = Instant::now();
    let chunk = txs.len().div_ceil(clients);
    let mut tasks = Vec::new();
    for part in txs.chunks(chunk) {
        let part = part.to_vec();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = tfchain_client::Client::connect(&url).await.unwrap();
            // Keep a window of requests in flight on each connection.
            let mut inflight = futures::stream::FuturesUnordered::new();
            use futures::StreamExt;
            for tx in part {
                inflight.push(client.rpc().submit(tx));
                if inflight.len() >= 64 {
                    inflight.next().await.unwrap().unwrap();
                }
            }
            while let Some(r) = inflight.next().await {
                r.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Wait until a sealed block holds the last of them.
    loop {
        let status = client.rpc().status().await.unwrap();
        if status.pending_txs == 0 {
            let elapsed = start.elapsed().as_secs_f64();
            drop(node);
            return (txs.len() as f64 / elapsed, status.height - start_height);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("signed transfers, {n} per round, {cores} cores");
    let (keys, genesis) = setup(n);
    let genesis_hash = Hash32::of("bench chain", b"runtime");
    let (single, batch) = signature_bounds(&transfers(&keys, 0, &genesis_hash), &genesis_hash);
    println!("signature checks, one core: {single:>10.0}/s one by one, {batch:>10.0}/s batched");
    println!(
        "physical bound ({cores} cores, batched): {:>10.0} transfers/s",
        batch * cores as f64
    );
    let runtime_rate = runtime_bench(&keys, &genesis);
    println!(
        "runtime (batch verify + apply + state root), median of {ROUNDS}: {runtime_rate:>10.0} transfers/s = {:.2} of the bound; target 20000: {}",
        runtime_rate / (batch * cores as f64),
        if runtime_rate >= 20_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rpc_rate, blocks) = rt.block_on(rpc_bench(&keys, genesis, 8));
    println!(
        "RPC submit into sealed blocks (8 WebSocket clients): {rpc_rate:>10.0} transfers/s over {blocks} blocks"
    );
}
