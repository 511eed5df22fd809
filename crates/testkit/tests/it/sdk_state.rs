//! The SDK's plan and apply through `tfgrid`, on a grid of one node. A lost state file loses
//! nothing: an apply after the project's state file is deleted still cancels the name contract of
//! a gateway name the project created and no longer serves, and still applies a changed secret
//! (the chain holds secrets sealed, so the SDK cannot see that one is unchanged: it re-seals and
//! updates). A plan refuses a node named in the file that has not the room, before anything is
//! created.

use std::path::Path;
use std::process::Output;

use serde_json::json;
use testkit::{Grid, ok};
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::types::ContractState;
use tfgrid_types::Hash32;

/// A grid of one node (node 1), Bob's twin, and a work directory for files and the state file.
async fn grid_with_node(data: &Path) -> (Grid, testkit::ZosProcess) {
    let grid = Grid::start(|spec| spec["block_time_ms"] = json!(200)).await;
    let seed = Hash32::of("sdk state test", b"node 1").0;
    let zos = grid
        .add_node(1, seed, "cru=4,mru=8G,sru=100G,hru=50G", data)
        .await;
    ok(grid.cli(&["--key", "//Bob", "twin", "create"]));
    (grid, zos)
}

/// A project on node 1 with a 0-db and `extra` TOML.
fn project(password: &str, extra: &str) -> String {
    format!(
        "name = \"kept\"\n\n[node]\nid = 1\n\n[[zdb]]\nname = \"db\"\nsize = \"1 GiB\"\n\
         password = \"{password}\"\n{extra}"
    )
}

/// `tfgrid --json --key //Bob apply` of `text`, with its state file in `dir`.
fn apply(grid: &Grid, dir: &Path, text: &str, more: &[&str]) -> Output {
    run(grid, "apply", dir, text, more)
}

/// `tfgrid --json --key //Bob <command>` of `text`, with its state file in `dir`.
fn run(grid: &Grid, command: &str, dir: &Path, text: &str, more: &[&str]) -> Output {
    let file = dir.join("kept.toml");
    std::fs::write(&file, text).unwrap();
    let state = dir.join("kept.json");
    let mut args = vec!["--json", "--key", "//Bob", command, "--state"];
    args.push(state.to_str().unwrap());
    args.extend_from_slice(more);
    args.push(file.to_str().unwrap());
    grid.cli(&args)
}

fn forget_state(dir: &Path) {
    std::fs::remove_file(dir.join("kept.json")).expect("the state file was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_its_state_file_a_dropped_gateway_name_is_canceled() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (grid, zos) = grid_with_node(data.path()).await;
    // The project creates the name contract of its gateway name. This node has no interface on a
    // public network, so it cannot serve the gateway: the apply keeps what it made on purpose.
    let gateway = "\n[[gateway]]\nname = \"kept-web\"\nbackends = [\"http://10.9.0.2:80\"]\n";
    let out = apply(
        &grid,
        work.path(),
        &project("pw", gateway),
        &["--keep-on-error"],
    );
    assert!(!out.status.success(), "the node cannot serve gateways");
    let rpc = grid.client.rpc();
    let name = rpc.contract_by_name("kept-web".into()).await.unwrap();
    let name = name.expect("the project created the name contract");
    // Alice is twin 1, the node 2, Bob 3.
    assert_eq!(name.twin_id, 3);

    // Without the state file, the project drops the gateway: its name contract is canceled.
    forget_state(work.path());
    let applied: serde_json::Value =
        serde_json::from_str(&ok(apply(&grid, work.path(), &project("pw", ""), &[]))).unwrap();
    assert_eq!(applied["workloads"][0]["state"], "ok", "{}", zos.log());
    let view = rpc.contract(name.contract_id).await.unwrap();
    let state = view.map(|v| v.contract.state);
    assert!(
        matches!(state, None | Some(ContractState::Deleted(_))),
        "the name contract {} is still {state:?}",
        name.contract_id
    );
    assert_eq!(rpc.contract_by_name("kept-web".into()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_its_state_file_a_changed_password_is_applied() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (grid, zos) = grid_with_node(data.path()).await;
    let first: serde_json::Value =
        serde_json::from_str(&ok(apply(&grid, work.path(), &project("pw-1", ""), &[]))).unwrap();
    assert_eq!(first["version"], 0);

    forget_state(work.path());
    let second: serde_json::Value =
        serde_json::from_str(&ok(apply(&grid, work.path(), &project("pw-2", ""), &[]))).unwrap();
    assert_eq!(second["version"], 1, "the deployment was not updated");
    // The node opened the new password, and the namespace takes it.
    let db = &second["workloads"][0];
    assert_eq!(db["state"], "ok", "{}", zos.log());
    let zdb = &db["data"]["zdb"];
    let url = format!("redis://127.0.0.1:{}/", zdb["port"]);
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let selected = redis::cmd("SELECT")
        .arg(zdb["namespace"].as_str().unwrap())
        .arg("pw-2")
        .query::<String>(&mut con);
    assert!(
        selected.is_ok(),
        "the new password is refused: {selected:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_node_without_room_is_refused_at_plan() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (grid, _zos) = grid_with_node(data.path()).await;
    // The node has 50 GiB of HDD; the 0-db asks for 60.
    let big = project("pw", "").replace("1 GiB", "60 GiB");
    let said = "node 1, named in the file, has not the room: it needs 60.0 GiB hdd (50.0 GiB free)";
    let rpc = grid.client.rpc();
    let bob = rpc.twin(3).await.unwrap().expect("Bob's twin").account_id;
    let nonce = rpc.account(bob).await.unwrap().nonce;
    testkit::fails(run(&grid, "plan", work.path(), &big, &[]), said);
    testkit::fails(apply(&grid, work.path(), &big, &[]), said);
    // Bob signed nothing: no contract was created (and canceled again).
    assert_eq!(rpc.account(bob).await.unwrap().nonce, nonce);
    assert_eq!(rpc.contracts_by_node(1).await.unwrap(), vec![]);
}
