//! The SDK's projects over several nodes, through `tfgrid`, on a grid of two nodes. A project whose
//! 0-dbs name two nodes has a contract on each, tagged with the project, found again without the
//! state file; a node that no longer runs anything of the project has its contract canceled;
//! destroy cancels them all. An apply whose second node never answers cancels what it created on
//! the first too, and says so. Containers on a public and a hidden node share a private network
//! whose peers meet through the chain (the hidden node's deployment is updated with the endpoint
//! the public one reported), and `tfgrid network access` adds the user's machine as a peer of the
//! access node, kept by later applies with or without the state file. (Traffic over the overlay
//! is tested in `overlay.rs`.)

use std::path::Path;
use std::process::Output;

use serde_json::json;
use testkit::{Grid, ZosProcess, ok};
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::types::{ContractData, ContractState};
use tfgrid_sdk::deployer::network::KeyPair;
use tfgrid_types::deployment::{Network, WorkloadData};
use tfgrid_types::{ContractId, Hash32, Keypair, NodeId};

use crate::zos::{Guard, serve_busybox};

/// A grid of nodes 1 and 2, Bob's twin, and a directory for their data.
async fn grid_with_two_nodes(data: &Path) -> (Grid, ZosProcess, ZosProcess) {
    let grid = Grid::start(|spec| spec["block_time_ms"] = json!(200)).await;
    let capacity = "cru=4,mru=8G,sru=100G,hru=50G";
    let one = Hash32::of("sdk multinode test", b"node 1").0;
    let two = Hash32::of("sdk multinode test", b"node 2").0;
    let zos1 = grid.add_node(1, one, capacity, &data.join("node1")).await;
    let zos2 = grid.add_node(2, two, capacity, &data.join("node2")).await;
    ok(grid.cli(&["--key", "//Bob", "twin", "create"]));
    (grid, zos1, zos2)
}

/// Project `pair`: 0-db `a` on node 1 (the project's `[node]`), and `b` on node 2 unless left out.
fn pair(with_b: bool) -> String {
    let mut text = "name = \"pair\"\n\n[node]\nid = 1\n\n[[zdb]]\nname = \"a\"\nsize = \"1 GiB\"\n\
                    password = \"pa\"\n"
        .to_owned();
    if with_b {
        text.push_str("\n[[zdb]]\nname = \"b\"\nsize = \"1 GiB\"\npassword = \"pb\"\nnode = 2\n");
    }
    text
}

/// `tfgrid --key //Bob <command> [--json]` of `text`, with its state file in `dir`.
fn run(grid: &Grid, command: &str, dir: &Path, text: &str, more: &[&str]) -> Output {
    let file = dir.join("pair.toml");
    std::fs::write(&file, text).unwrap();
    let state = dir.join("pair.json");
    let mut args = vec![
        "--key",
        "//Bob",
        command,
        "--state",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    args.push(file.to_str().unwrap());
    grid.cli(&args)
}

/// `apply` of `text` as JSON, which must succeed.
fn apply_json(grid: &Grid, dir: &Path, text: &str) -> serde_json::Value {
    serde_json::from_str(&ok(run(grid, "apply", dir, text, &["--json"]))).unwrap()
}

/// Bob's active node contracts tagged with project `pair`: (node, contract).
async fn active(grid: &Grid) -> Vec<(NodeId, ContractId)> {
    let rpc = grid.client.rpc();
    let bob = Keypair::from_uri("//Bob").unwrap().account();
    let twin = rpc.twin_by_account(bob).await.unwrap().expect("Bob's twin");
    let mut out = Vec::new();
    for c in rpc.contracts_by_twin(twin.id).await.unwrap() {
        if let ContractData::NodeContract(nc) = &c.contract_type
            && !matches!(c.state, ContractState::Deleted(_))
        {
            assert_eq!(nc.deployment.metadata, r#"{"project":"pair"}"#);
            out.push((nc.node_id, c.contract_id));
        }
    }
    out.sort();
    out
}

/// The (node, contract, state of every workload) of an apply's JSON.
fn contracts(applied: &serde_json::Value) -> Vec<(NodeId, ContractId, Vec<String>)> {
    let all = applied["contracts"].as_array().expect("contracts");
    all.iter()
        .map(|c| {
            let states = c["workloads"].as_array().unwrap().iter();
            (
                c["node_id"].as_u64().unwrap() as NodeId,
                c["contract_id"].as_u64().unwrap(),
                states
                    .map(|w| w["state"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_over_two_nodes_has_a_contract_on_each_until_destroyed() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (grid, zos1, _zos2) = grid_with_two_nodes(data.path()).await;
    let dir = work.path();
    let applied = apply_json(&grid, dir, &pair(true));
    let made = contracts(&applied);
    let ok_ = vec!["ok".to_owned()];
    assert_eq!(
        made.iter()
            .map(|(n, _, s)| (*n, s.clone()))
            .collect::<Vec<_>>(),
        [(1, ok_.clone()), (2, ok_.clone())],
        "{applied}\n{}",
        zos1.log()
    );
    let ids: Vec<(NodeId, ContractId)> = made.iter().map(|(n, c, _)| (*n, *c)).collect();
    assert_eq!(active(&grid).await, ids);
    let again = ok(run(&grid, "plan", dir, &pair(true), &[]));
    assert!(again.contains("nothing to change"), "{again}");

    // Without the state file both contracts are found by their tag (their sealed passwords are
    // sealed anew: an update, no new contract).
    std::fs::remove_file(dir.join("pair.json")).unwrap();
    let plan = ok(run(&grid, "plan", dir, &pair(true), &[]));
    for (node, id) in &ids {
        let line = format!("pair: contract {id} on node {node}");
        assert!(plan.contains(&line), "no {line:?} in:\n{plan}");
    }
    apply_json(&grid, dir, &pair(true));
    assert_eq!(active(&grid).await, ids);

    // Node 2 runs nothing of it any more: its contract is canceled, node 1's stays.
    let applied = apply_json(&grid, dir, &pair(false));
    assert_eq!(applied["canceled"], json!([ids[1].1]), "{applied}");
    assert_eq!(active(&grid).await, ids[..1]);
    // And back: a new contract on node 2.
    let applied = apply_json(&grid, dir, &pair(true));
    let back = active(&grid).await;
    assert_eq!(back.len(), 2, "{applied}");
    assert_eq!(back[0], ids[0]);

    let out = ok(run(&grid, "destroy", dir, &pair(true), &[]));
    assert!(
        out.contains(&format!("contracts {}, {} canceled", back[0].1, back[1].1)),
        "{out}"
    );
    assert_eq!(active(&grid).await, []);
    assert!(!dir.join("pair.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_failing_on_its_second_node_leaves_nothing_on_the_first() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (grid, _zos1, mut zos2) = grid_with_two_nodes(data.path()).await;
    // Node 2's agent is gone: its contract is created but never run.
    zos2.kill9();
    let out = run(
        &grid,
        "apply",
        work.path(),
        &pair(true),
        &["--timeout", "4"],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("node 2 did not report version 0"), "{text}");
    assert!(
        text.contains("canceled what this apply created: contract"),
        "{text}"
    );
    assert!(text.contains("on node 1, contract"), "{text}");
    assert_eq!(active(&grid).await, []);
    assert!(!work.path().join("pair.json").exists());
}

/// A busybox image in a hub this test serves: its URL.
fn serve_image(grid: &Grid) -> (Guard, String) {
    let (hub, addr, hash) = serve_busybox(grid, "127.0.0.1");
    (hub, format!("http://{addr}/{hash}.tar"))
}

/// The network workload `mesh_net` of contract `id` as the chain holds it.
async fn network_of(grid: &Grid, id: ContractId) -> (Network, String) {
    let view = grid.client.rpc().contract(id).await.unwrap().unwrap();
    let ContractData::NodeContract(nc) = view.contract.contract_type else {
        panic!("contract {id} is not a node contract");
    };
    let w = nc.deployment.workload("mesh_net").expect("the network");
    match &w.data {
        WorkloadData::Network(n) => (n.clone(), w.metadata.clone()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_network_over_a_public_and_a_hidden_node_meets_through_the_chain_and_takes_an_access_peer()
 {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (grid, zos1, zos2) = grid_with_two_nodes(data.path()).await;
    // Node 1 is public (a public config on the chain): the access node; node 2 is hidden.
    ok(grid.cli(&[
        "--key",
        "//Alice",
        "node",
        "public-config",
        "1",
        "--ip4",
        "185.206.122.11/24",
        "--gw4",
        "185.206.122.1",
    ]));
    let (_hub, image) = serve_image(&grid);
    let container = |name: &str, node: &str| {
        format!(
            "\n[[container]]\nname = \"{name}\"\nimage = \"{image}\"\nmemory = \"256 MiB\"\n\
             entrypoint = \"exec sleep 1000\"\n{node}"
        )
    };
    let text = format!(
        "name = \"mesh\"\n\n[node]\nid = 1\n{}{}",
        container("a", ""),
        container("b", "node = 2\n")
    );
    let dir = work.path();
    let file = dir.join("pair.toml");
    let applied = apply_json(&grid, dir, &text);
    let made = contracts(&applied);
    let states: Vec<_> = made.iter().map(|(n, _, s)| (*n, s.clone())).collect();
    let all_ok = vec!["ok".to_owned(), "ok".to_owned()];
    assert_eq!(
        states,
        [(1, all_ok.clone()), (2, all_ok)],
        "{applied}\n{}\n{}",
        zos1.log(),
        zos2.log()
    );
    let (one, two) = (made[0].1, made[1].1);
    // Node 1 reported where it listens; node 2's peer (node 1) got that endpoint in a second
    // version, while node 1, which waits for hidden node 2 to dial in, needed none.
    let reported = applied["contracts"][0]["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "mesh_net")
        .map(|w| {
            w["data"]["network"]["endpoint"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .expect("node 1's network result");
    let listen: std::net::SocketAddr = reported.parse().expect("ip:port");
    assert!(listen.port() > 0, "{reported}");
    assert_eq!(applied["contracts"][0]["version"], 0, "{applied}");
    assert_eq!(applied["contracts"][1]["version"], 1, "{applied}");
    let (net1, _) = network_of(&grid, one).await;
    let (net2, _) = network_of(&grid, two).await;
    assert_eq!(
        (net1.subnet.as_str(), net2.subnet.as_str()),
        ("10.20.1.0/24", "10.20.2.0/24")
    );
    assert_eq!(net2.peers.len(), 1);
    assert_eq!(net2.peers[0].endpoint, reported);
    assert_eq!(net2.peers[0].allowed_ips, ["10.20.0.0/16", "100.64.0.0/16"]);
    assert_eq!(net1.peers.len(), 1);
    assert_eq!(net1.peers[0].endpoint, "", "node 2 is hidden: it dials in");
    let again = ok(run(&grid, "plan", dir, &text, &[]));
    assert!(again.contains("nothing to change"), "{again}");

    // The user's machine joins through node 1.
    let state = dir.join("pair.json");
    let out = ok(grid.cli(&[
        "--key",
        "//Bob",
        "network",
        "access",
        "mesh",
        "--state",
        state.to_str().unwrap(),
        "--file",
        file.to_str().unwrap(),
    ]));
    for line in [
        "Address = 100.64.20.3/16",
        &format!("Endpoint = {reported}"),
        "AllowedIPs = 10.20.0.0/16, 100.64.0.0/16",
        "PersistentKeepalive = 25",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    let private = out
        .lines()
        .find_map(|l| l.strip_prefix("PrivateKey = "))
        .expect("a private key");
    let public = KeyPair::from_private(private).unwrap().public_key;
    let (net1, meta1) = network_of(&grid, one).await;
    let user = net1.peers.iter().find(|p| p.wireguard_public_key == public);
    let user = user.unwrap_or_else(|| panic!("no access peer in {:?}", net1.peers));
    assert_eq!(user.allowed_ips, ["10.20.3.0/24", "100.64.20.3/32"]);
    assert!(meta1.contains(&public), "{meta1}");
    let recorded = std::fs::read_to_string(&state).unwrap();
    assert!(recorded.contains(&public), "{recorded}");
    // Later applies keep it, with the state file or without it (the chain holds it).
    let again = ok(run(&grid, "plan", dir, &text, &[]));
    assert!(again.contains("nothing to change"), "{again}");
    std::fs::remove_file(&state).unwrap();
    let again = ok(run(&grid, "plan", dir, &text, &[]));
    assert!(again.contains("nothing to change"), "{again}");
    ok(run(&grid, "destroy", dir, &text, &[]));
}
