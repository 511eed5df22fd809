//! Benchmark of signed transfers: through the runtime alone (batch signature checks, then apply and
//! seal), and through RPC into sealed blocks of a running node, one transaction a request and in
//! batch submissions. Prints the medians, the physical bound (signature checks per second per core,
//! one by one and batched), and the latency of a wallet's `account` queries under that load. The
//! `bft` section runs four validators under Tendermint (in this process, on loopback) against the
//! solo node in the same run: transfers per second into final blocks, the CPU time one validator
//! spends per transfer, and the time from submission to finality at the dev spec's 1 s blocks.
//! Run with `cargo xtask bench chain` (or `cargo bench -p tfchain --bench chain -- [transfers]`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tfchain::node::{Node, Role};
use tfchain::spec::ChainSpec;
use tfchain::verify::check_all;
use tfchain_client::api::{Submitted, TfchainApiClient};
use tfchain_runtime::genesis::Endowment;
use tfchain_runtime::{Call, Genesis, Runtime, SignedTransaction, Transaction, balances};
use tfgrid_types::{Hash32, Keypair, UNITS_PER_TFT, keys};

const ROUNDS: usize = 5;
const RPC_ROUNDS: usize = 3;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// The value at fraction `q` of the sorted values (1.0: the largest).
fn percentile(mut xs: Vec<f64>, q: f64) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[((xs.len() - 1) as f64 * q).round() as usize]
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

/// Latencies of `account` queries of one client, one at a time every 5 ms, until `stop`: what a
/// wallet or a node sees while the chain is under load.
async fn account_latency(
    url: String,
    account: tfgrid_types::AccountId,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<f64> {
    let client = tfchain_client::Client::connect(&url).await.unwrap();
    let mut latencies = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let start = Instant::now();
        client.rpc().account(account).await.unwrap();
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies
}

/// Transfers per second from RPC submission to sealed blocks, the blocks it took, and the
/// latencies (ms) of a wallet's `account` queries meanwhile.
async fn rpc_bench(
    keys: &[Keypair],
    genesis: Genesis,
    clients: usize,
    batch: usize,
) -> (f64, u64, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ChainSpec::dev();
    spec.genesis = genesis;
    // Blocks as fast as the node makes them (the smallest block time a spec allows): the figure is
    // the node's throughput, not a wait for the next tick.
    spec.block_time_ms = 100;
    let node = Node::start(
        spec,
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        Role::Solo(Keypair::from_uri("//Alice").unwrap()),
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
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = tokio::spawn(account_latency(
        url.clone(),
        keys[0].account(),
        stop.clone(),
    ));
    let start = Instant::now();
    let chunk = txs.len().div_ceil(clients);
    let mut tasks = Vec::new();
    for part in txs.chunks(chunk) {
        let part = part.to_vec();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = tfchain_client::Client::connect(&url).await.unwrap();
            // Keep a window of requests in flight on each connection: single submissions, or
            // batches of `batch`.
            let mut inflight = futures::stream::FuturesUnordered::new();
            use futures::StreamExt;
            for txs in part.chunks(batch) {
                let rpc = client.rpc();
                let txs = txs.to_vec();
                inflight.push(async move {
                    if let [tx] = txs.as_slice() {
                        rpc.submit(tx.clone()).await.map(|_| ())
                    } else {
                        let verdicts = rpc.submit_batch(txs).await?;
                        assert!(verdicts.iter().all(|v| matches!(v, Submitted::Accepted(_))));
                        Ok(())
                    }
                });
                if inflight.len() >= (64 / batch).max(2) {
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
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let latencies = probe.await.unwrap();
            drop(node);
            return (
                txs.len() as f64 / elapsed,
                status.height - start_height,
                latencies,
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running network: solo, or `validators` validators under BFT on loopback.
struct Network {
    nodes: Vec<Node>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Network {
    async fn start(genesis: Genesis, block_time_ms: u64, validators: usize) -> Network {
        let mut spec = ChainSpec::dev();
        spec.genesis = genesis;
        spec.block_time_ms = block_time_ms;
        let keys: Vec<Keypair> = tfchain_runtime::genesis::DEV_ACCOUNTS[..validators]
            .iter()
            .map(|name| Keypair::from_uri(&format!("//{name}")).unwrap())
            .collect();
        spec.genesis.validators = keys.iter().map(Keypair::account).collect();
        let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p2p: Vec<std::net::SocketAddr> = (0..validators)
            .map(|_| free().local_addr().unwrap())
            .collect();
        let rpc: Vec<std::net::SocketAddr> = (0..validators)
            .map(|_| free().local_addr().unwrap())
            .collect();
        let (mut nodes, mut dirs) = (Vec::new(), Vec::new());
        for (i, key) in keys.into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let role = if validators == 1 {
                Role::Solo(key)
            } else {
                let others = |addrs: &[std::net::SocketAddr]| -> Vec<std::net::SocketAddr> {
                    addrs
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, a)| *a)
                        .collect()
                };
                Role::Bft {
                    key: Some(key),
                    listen: p2p[i],
                    peers: others(&p2p),
                    relay_to: others(&rpc).iter().map(|a| format!("ws://{a}")).collect(),
                    equivocate_at: vec![],
                }
            };
            nodes.push(
                Node::start(spec.clone(), dir.path(), rpc[i], role)
                    .await
                    .unwrap(),
            );
            dirs.push(dir);
        }
        Network { nodes, _dirs: dirs }
    }

    fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("ws://{}", n.rpc_addr))
            .collect()
    }
}

/// CPU seconds this process has used (user and system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Transfers per second from batch submissions, spread over the network's nodes, into final blocks
/// on every node, and the CPU seconds spent per transfer.
async fn network_rate(keys: &[Keypair], network: &Network) -> (f64, f64) {
    let urls = network.urls();
    let client = tfchain_client::Client::connect(&urls[0]).await.unwrap();
    let txs: Vec<String> = transfers(keys, 0, &client.genesis_hash())
        .iter()
        .map(|t| format!("0x{}", hex::encode(t.encode())))
        .collect();
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let chunk = txs.len().div_ceil(8);
    let mut tasks = Vec::new();
    for (k, part) in txs.chunks(chunk).enumerate() {
        let (part, url) = (part.to_vec(), urls[k % urls.len()].clone());
        tasks.push(tokio::spawn(async move {
            let client = tfchain_client::Client::connect(&url).await.unwrap();
            for txs in part.chunks(512) {
                let verdicts = client.rpc().submit_batch(txs.to_vec()).await.unwrap();
                assert!(verdicts.iter().all(|v| matches!(v, Submitted::Accepted(_))));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for url in &urls {
        let client = tfchain_client::Client::connect(url).await.unwrap();
        while client.rpc().status().await.unwrap().pending_txs > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    (
        txs.len() as f64 / elapsed,
        (cpu_seconds() - cpu) / txs.len() as f64,
    )
}

/// Milliseconds from submitting a transfer to its final block, one transfer at a time.
async fn commit_latencies(network: &Network, samples: usize) -> Vec<f64> {
    let client = tfchain_client::Client::connect(&network.urls()[0])
        .await
        .unwrap();
    let bob = Keypair::from_uri("//Bob").unwrap();
    let charlie = Keypair::from_uri("//Charlie").unwrap().account();
    let mut latencies = Vec::new();
    for i in 0..samples {
        // Submit at a different point of the block each time.
        tokio::time::sleep(Duration::from_millis(137 * (i as u64 % 7))).await;
        let call = Call::Balances(balances::Call::Transfer {
            dest: charlie,
            amount: UNITS_PER_TFT,
        });
        let start = Instant::now();
        let hash = client.submit(&bob, call).await.unwrap();
        client.wait(hash, Duration::from_secs(60)).await.unwrap();
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    latencies
}

/// Solo against four BFT validators, in one run.
fn bft_section(keys: &[Keypair], genesis: &Genesis, rt: &tokio::runtime::Runtime) {
    const VALIDATORS: usize = 4;
    println!("bft: {VALIDATORS} validators (Tendermint, Malachite) against solo, in this process");
    let mut results = Vec::new();
    for validators in [1, VALIDATORS] {
        let (mut rates, mut cpus) = (Vec::new(), Vec::new());
        for _ in 0..RPC_ROUNDS {
            let network = rt.block_on(Network::start(genesis.clone(), 100, validators));
            let (rate, cpu) = rt.block_on(network_rate(keys, &network));
            rates.push(rate);
            cpus.push(cpu / validators as f64);
        }
        let network = rt.block_on(Network::start(genesis.clone(), 1000, validators));
        let latencies = rt.block_on(commit_latencies(&network, 21));
        results.push((median(rates), median(cpus), latencies));
    }
    let [
        (solo_rate, solo_cpu, solo_lat),
        (bft_rate, bft_cpu, bft_lat),
    ] = <[_; 2]>::try_from(results).unwrap();
    println!(
        "  transfers/s into final blocks (100 ms blocks, batches of 512 over every node), median of {RPC_ROUNDS}: solo {solo_rate:.0}, bft {bft_rate:.0}: ratio {:.2} (goal 0.5: {})",
        bft_rate / solo_rate,
        if bft_rate >= 0.5 * solo_rate {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  CPU per transfer per validator: solo {:.1} µs, bft {:.1} µs: ratio {:.2} (throughput ratio with a machine per validator: {:.2})",
        solo_cpu * 1e6,
        bft_cpu * 1e6,
        bft_cpu / solo_cpu,
        solo_cpu / bft_cpu
    );
    let (solo_median, bft_median) = (median(solo_lat.clone()), median(bft_lat.clone()));
    println!(
        "  submit to final (dev spec, 1 s blocks, 21 transfers): solo median {solo_median:.0} ms (max {:.0}), bft median {bft_median:.0} ms (max {:.0}); goal under 1 s: {}",
        percentile(solo_lat, 1.0),
        percentile(bft_lat, 1.0),
        if bft_median < 1000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
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
    if std::env::args().any(|a| a == "bft") {
        bft_section(&keys, &genesis, &rt);
        return;
    }
    for (mode, batch) in [("one per request", 1), ("batches of 512", 512)] {
        let mut rates = Vec::new();
        let mut latencies = Vec::new();
        for _ in 0..RPC_ROUNDS {
            let (rate, _, mut probe) = rt.block_on(rpc_bench(&keys, genesis.clone(), 8, batch));
            rates.push(rate);
            latencies.append(&mut probe);
        }
        let rate = median(rates);
        println!(
            "RPC submit into sealed blocks (8 WebSocket clients, {mode}), median of {RPC_ROUNDS}: {rate:>10.0} transfers/s = {:.2} of the runtime",
            rate / runtime_rate
        );
        println!(
            "  account query meanwhile ({} queries): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            median(latencies.clone()),
            percentile(latencies.clone(), 0.99),
            percentile(latencies, 1.0)
        );
    }
    bft_section(&keys, &genesis, &rt);
}
