//! Provisioning latency through the real programs: a dev chain (1 s blocks, as users run it), a
//! `zos` node, and a series of contracts, each with one workload: for each, the time from the block
//! holding the contract to the block holding the node's state report (block timestamps), and the
//! time a client waits from submitting the contract to seeing the report. Prints the medians.
//! Run with `cargo xtask bench provision [rounds]` (zdb and container workloads; containers need root).

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{Grid, wait_for};
use tfchain_client::Client;
use tfchain_client::api::{BlockId, TfchainApiClient};
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::{Call, Event};
use tfgrid_types::deployment::{Deployment, ResultState, Workload};
use tfgrid_types::{Hash32, Keypair};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

async fn block_time_of(client: &Client, from: u64, f: impl Fn(&Event) -> bool) -> (u64, u64) {
    let head = client.rpc().status().await.unwrap().height;
    for height in from..=head {
        let block = client
            .rpc()
            .block(BlockId::Height(height))
            .await
            .unwrap()
            .unwrap();
        if block.events.iter().any(|r| f(&r.event)) {
            return (height, block.header.timestamp_ms);
        }
    }
    panic!("event not found from block {from}");
}

/// Deploys `workload` `rounds` times (one contract each, canceled after); returns the medians of
/// (contract block → report block in ms, submit → report seen in ms).
async fn measure(
    client: &Client,
    user: &Keypair,
    twin: u32,
    node: &Keypair,
    rounds: usize,
    workload: impl Fn(usize) -> Workload,
) -> (f64, f64) {
    let (mut chain_ms, mut client_ms) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut d = Deployment {
            version: 0,
            twin_id: twin,
            metadata: String::new(),
            description: String::new(),
            signature_requirement: Deployment::single_signer(twin),
            workloads: vec![workload(round)],
        };
        d.seal_secrets(&node.account(), &mut rand::thread_rng())
            .unwrap();
        d.sign(twin, user);
        let from = client.rpc().status().await.unwrap().height;
        let started = Instant::now();
        let included = client
            .execute(
                user,
                Call::SmartContract(ScCall::CreateNodeContract {
                    node_id: 1,
                    deployment: d,
                }),
            )
            .await
            .unwrap();
        let id = included.events.iter().find_map(|e| match &e.event {
            Event::ContractCreated(c) => Some(c.contract_id),
            _ => None,
        });
        let id = id.expect("contract created");
        let state = wait_for("the node's report", Duration::from_secs(60), || async {
            let view = client.rpc().contract(id).await.ok()??;
            let s = view.deployment_state?;
            s.workloads.first().map(|r| r.state)
        })
        .await;
        client_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(state, ResultState::Ok, "round {round} failed");
        let (_, created_ms) = block_time_of(
            client,
            from,
            |e| matches!(e, Event::ContractCreated(c) if c.contract_id == id),
        )
        .await;
        let (_, reported_ms) = block_time_of(client, from, |e| matches!(e, Event::DeploymentStateReported { contract_id, .. } if *contract_id == id)).await;
        chain_ms.push((reported_ms - created_ms) as f64);
        client
            .execute(
                user,
                Call::SmartContract(ScCall::CancelContract { contract_id: id }),
            )
            .await
            .unwrap();
    }
    (median(chain_ms), median(client_ms))
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(9);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let grid = Grid::start(|_| {}).await;
        assert!(
            grid.cli(&["--key", "//Bob", "twin", "create"])
                .status
                .success()
        );
        let client = &grid.client;
        let seed = Hash32::of("provision bench", b"node").0;
        let node = Keypair::from_seed(seed);
        let data = tempfile::tempdir().unwrap();
        let zos = grid
            .add_node(1, seed, "cru=8,mru=16G,sru=200G,hru=200G", data.path())
            .await;
        let bob = Keypair::from_uri("//Bob").unwrap();
        let zdb = |round: usize| -> Workload {
            serde_json::from_value(
                json!({ "version": 0, "name": format!("db{round}"), "type": "zdb",
                "data": { "size": 1u64 << 30, "mode": "user", "password": { "plain": "pw" } } }),
            )
            .unwrap()
        };
        let twin = client
            .rpc()
            .twin_by_account(bob.account())
            .await
            .unwrap()
            .expect("Bob's twin")
            .id;
        let (chain_ms, client_ms) = measure(client, &bob, twin, &node, rounds, zdb).await;
        println!("zdb workload, {rounds} deployments on a dev chain (1 s blocks):");
        println!(
            "  contract block to state-report block: median {chain_ms:.0} ms (target < 1000 ms)"
        );
        println!("  client: submit to report seen: median {client_ms:.0} ms");
        // The node's own work per deployment: from the job's start to its reports' inclusion.
        let jobs: Vec<f64> = zos
            .log()
            .lines()
            .filter(|l| l.contains("job done") && l.contains("Deploy"))
            .filter_map(|l| {
                l.split("took_ms=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        let provisioned: Vec<f64> = zos
            .log()
            .lines()
            .filter(|l| l.contains(" provisioned"))
            .filter_map(|l| {
                l.split("provision_ms=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        if !provisioned.is_empty() {
            println!(
                "  node: event to report submitted (checks and provisioning): median {:.0} ms",
                median(provisioned)
            );
        }
        if !jobs.is_empty() {
            println!(
                "  node: deploy job (checks, provisioning, reports included): median {:.0} ms",
                median(jobs)
            );
        }
    });
}
