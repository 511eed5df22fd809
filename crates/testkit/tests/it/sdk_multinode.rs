//! The SDK's projects over several nodes, through `tfgrid`, on a grid of two nodes (contracts only:
//! 0-db namespaces, no private network). A project whose 0-dbs name two nodes has a contract on
//! each, tagged with the project, found again without the state file; a node that no longer runs
//! anything of the project has its contract canceled; destroy cancels them all. An apply whose
//! second node never answers cancels what it created on the first too, and says so.

use std::path::Path;
use std::process::Output;

use serde_json::json;
use testkit::{Grid, ZosProcess, ok};
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::types::{ContractData, ContractState};
use tfgrid_types::{ContractId, Hash32, Keypair, NodeId};

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
