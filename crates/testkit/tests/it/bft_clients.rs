//! The grid's clients through a validator's death, end to end: four validators under BFT, a node
//! agent and the explorer given the chain's endpoint list with validator 0 first, and connected to
//! it. Validator 0 is killed; a 0-db contract made through another validator is provisioned and
//! reported by the agent, its uptime reports keep landing, and the explorer indexes the blocks after
//! the kill (the chain's head block, the contract, each of its bills) with nothing missed or
//! applied twice. Waits have generous deadlines, only to catch a hang.

use std::time::Duration;

use serde_json::Value;
use testkit::cluster::RPC_PORT;
use testkit::explorer::{Proxy, bills_indexed, bills_on_chain, twin_ids};
use testkit::{Cluster, add_node_at, connected_to, create_farm, ok, tfgrid, wait_for};
use tfchain_client::Client;
use tfchain_client::api::{BlockId, TfchainApiClient};
use tfgrid_types::deployment::ResultState;
use tfgrid_types::{Hash32, Keypair};

use crate::zos::{reported, zdb_file};

/// A deadlock detector, not a timing claim.
const WAIT: Duration = Duration::from_secs(120);
const GIB: u64 = 1024 * 1024 * 1024;

/// Short blocks, uptime reports every 2 s, billing every 10 blocks: much happens after the kill. (A
/// period's bill must come to at least one unit, hence the contract's big 0-db.)
fn fast(spec: &mut serde_json::Value) {
    spec["block_time_ms"] = 300.into();
    spec["genesis"]["params"]["uptime_report_interval_s"] = 2.into();
    spec["genesis"]["params"]["billing_period_blocks"] = 10.into();
}

/// Validator `i`'s RPC address as a TCP peer (`ip:port`).
fn rpc_peer(cluster: &Cluster, i: usize) -> String {
    let host = cluster.nodes[i]
        .host
        .as_ref()
        .expect("cluster nodes have hosts");
    format!("{}:{RPC_PORT}", host.ip)
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits until the explorer's node 1 shows an uptime report made at `after_s` or later.
async fn indexed_uptime_since(proxy: &Proxy, after_s: u64) -> Value {
    let port = proxy.port;
    wait_for(
        "the explorer to index an uptime report",
        WAIT,
        || async move {
            let node = testkit::explorer::get(port, "/nodes/1").await.ok()?;
            let node = (node.status == 200).then(|| node.json())?;
            (node["lastUptimeReport"].as_u64()? >= after_s).then_some(node)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_agent_and_the_explorer_keep_working_while_their_validator_is_killed() {
    let mut cluster = Cluster::start(4, 0, fast).await;
    let endpoints = cluster.endpoints();
    let first = cluster.nodes[0].rpc_url();
    assert!(endpoints.starts_with(&format!("{first},")), "{endpoints}");
    let home = tempfile::tempdir().unwrap();
    create_farm(home.path(), &endpoints);

    // The agent and the explorer on the list, both on validator 0.
    let survivor = cluster.client(1).await;
    let data = tempfile::tempdir().unwrap();
    let seed = Hash32::of("bft clients test", b"node 1").0;
    let capacity = "cru=4,mru=8G,sru=100G,hru=1000G";
    let zos = add_node_at(&survivor, &endpoints, None, 1, seed, capacity, data.path()).await;
    let mut proxy = Proxy::start(&endpoints).await;
    indexed_uptime_since(&proxy, 1).await;
    assert_eq!(
        proxy.json("/nodes/1").await["status"],
        "up",
        "{}",
        proxy.log()
    );
    assert!(
        proxy
            .log()
            .contains(&format!("following the chain at {first}")),
        "{}",
        proxy.log()
    );
    let (zos_pid, proxy_pid) = (zos.pid().unwrap(), proxy.pid().unwrap());
    let dead = rpc_peer(&cluster, 0);
    for (who, pid) in [("the agent", zos_pid), ("the explorer", proxy_pid)] {
        assert!(connected_to(pid, &dead), "{who} is not on validator 0");
    }

    // Validator 0 killed: the other three go on.
    cluster.kill(0);
    let killed_at_s = now_s();
    let live = [1, 2, 3];
    let killed_at = cluster.wait_blocks(&live, 2, WAIT).await;

    // A 0-db contract made through validator 1 alone is provisioned and reported by the agent.
    let via = |i: usize, args: &[&str]| ok(tfgrid(home.path(), &cluster.nodes[i].rpc_url(), args));
    via(1, &["--key", "//Bob", "twin", "create"]);
    let file = zdb_file(home.path(), "db", 800 * GIB, "pw-1");
    via(
        1,
        &["--key", "//Bob", "contract", "create", "--node", "1", &file],
    );
    wait_for("the agent's report on contract 1", WAIT, || async {
        survivor.rpc().contract(1).await.ok()??.deployment_state
    })
    .await;
    let result = reported(&survivor, 1, "db").await;
    assert_eq!(
        result.state,
        ResultState::Ok,
        "{}\n{}",
        result.message,
        zos.log()
    );
    // Its uptime reports land, and the explorer indexes them.
    let node = indexed_uptime_since(&proxy, killed_at_s + 1).await;
    assert_eq!(node["status"], "up");
    let others: Vec<String> = live.iter().map(|&i| rpc_peer(&cluster, i)).collect();
    for (who, pid) in [("the agent", zos_pid), ("the explorer", proxy_pid)] {
        assert!(
            others.iter().any(|peer| connected_to(pid, peer)),
            "{who} is on no live validator"
        );
    }

    // Billed, then canceled through validator 2 (billing stops): the explorer against the chain.
    let bob = Keypair::from_uri("//Bob").unwrap().account();
    let bob = survivor
        .rpc()
        .twin_by_account(bob)
        .await
        .unwrap()
        .unwrap()
        .id;
    wait_for("a bill of contract 1", WAIT, || async {
        let billed = survivor
            .rpc()
            .twin_consumption(bob)
            .await
            .ok()?
            .total_billed;
        (billed > 0).then_some(())
    })
    .await;
    via(2, &["--key", "//Bob", "contract", "cancel", "1"]);
    let survivor = Client::connect(&cluster.nodes[3].rpc_url()).await.unwrap();
    proxy.caught_up(&survivor).await;
    let health = proxy.json("/health").await;
    let height = health["indexed_height"].as_u64().unwrap();
    assert!(height > killed_at, "{health}");
    let block = survivor
        .rpc()
        .block(BlockId::Height(height))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(health["indexed_hash"], block.hash.to_string());
    let on_chain = bills_on_chain(&survivor, height).await;
    assert!(
        on_chain.contains_key(&1),
        "contract 1 was never billed: {on_chain:?}"
    );
    assert_eq!(bills_indexed(&proxy, &[1]).await, on_chain);
    let contracts = proxy.json("/contracts").await;
    let contracts = contracts.as_array().unwrap();
    assert_eq!(contracts.len(), 1, "{contracts:?}");
    assert_eq!(
        (
            &contracts[0]["contract_id"],
            &contracts[0]["state"],
            &contracts[0]["details"]["nodeId"]
        ),
        (&1.into(), &"Deleted".into(), &1.into())
    );
    let (indexed, on_chain) = twin_ids(&proxy, &survivor).await;
    assert_eq!(indexed, on_chain);
    assert!(proxy.running(), "{}", proxy.log());
}
