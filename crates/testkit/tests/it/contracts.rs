//! Contracts end to end on a fast chain (0.2 s blocks, billed every 5 blocks): a farmer with a public
//! IP, a node registered the way Zero-OS registers (through the client), and a user who deploys from
//! a file with the CLI, sees the node's report, updates, is billed, and cancels.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use testkit::{ChainProcess, fails, ok, tfgrid, wait_for};
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::Call;
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::types::*;
use tfgrid_types::Keypair;
use tfgrid_types::deployment::{ResultData, ResultState, WorkloadResult};

fn write(dir: &Path, name: &str, value: serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn zdb_deployment(size_gib: u64, with_ip: bool) -> serde_json::Value {
    let mut workloads = vec![json!({
        "version": 0, "name": "db", "type": "zdb",
        "data": { "size": size_gib * 1024 * 1024 * 1024, "mode": "user", "password": { "plain": "s3cret-pass" } }
    })];
    if with_ip {
        workloads
            .push(json!({ "version": 0, "name": "pip", "type": "ip", "data": { "v4": true } }));
    }
    json!({ "description": "a 0-db", "workloads": workloads })
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_report_bill_update_cancel() {
    let chain = ChainProcess::start_with(|spec| {
        spec["block_time_ms"] = json!(200);
        spec["genesis"]["params"]["billing_period_blocks"] = json!(5);
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let url = chain.rpc_url();
    let cli = |args: &[&str]| tfgrid(home.path(), &url, args);
    let client = chain.client().await;

    ok(cli(&["--key", "//Alice", "twin", "create"]));
    ok(cli(&[
        "--key",
        "//Alice",
        "farm",
        "create",
        "farm1",
        "--ip",
        "185.206.122.33/24=185.206.122.1",
    ]));
    let node = Keypair::from_uri("//Node1").unwrap();
    let gib = 1024 * 1024 * 1024;
    let resources = Resources {
        hru: 1000 * gib,
        sru: 500 * gib,
        cru: 8,
        mru: 16 * gib,
    };
    testkit::register_node(&client, &node, resources, "Ghent", "Belgium").await;
    ok(cli(&["--key", "//Bob", "twin", "create"]));

    // A malformed file is refused with its line and column; nothing is created.
    let bad = home.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"workloads\": [ {\"name\": \"db\",, } ]\n}").unwrap();
    fails(
        cli(&[
            "--key",
            "//Bob",
            "contract",
            "create",
            "--node",
            "1",
            bad.to_str().unwrap(),
        ]),
        "line 2 column",
    );
    let two_ips = write(
        home.path(),
        "two.json",
        json!({ "workloads": [
        { "version": 0, "name": "a", "type": "ip", "data": { "v4": true } },
        { "version": 0, "name": "b", "type": "ip", "data": { "v4": true } } ] }),
    );
    fails(
        cli(&[
            "--key", "//Bob", "contract", "create", "--node", "1", &two_ips,
        ]),
        "farm 1 has 1 free public IPs, the deployment needs 2",
    );
    fails(
        cli(&[
            "--key", "//Bob", "contract", "create", "--node", "7", &two_ips,
        ]),
        "there is no node 7",
    );

    // Deploy: the password is sealed to the node, not on the ledger in the clear.
    let file = write(home.path(), "db.json", zdb_deployment(10, true));
    let shown = ok(cli(&[
        "--key", "//Bob", "contract", "create", "--node", "1", &file,
    ]));
    assert!(
        shown.contains("waiting for the node") && shown.contains("185.206.122.33/24"),
        "{shown}"
    );
    let view = client.rpc().contract(1).await.unwrap().unwrap();
    let ContractData::NodeContract(nc) = &view.contract.contract_type else {
        panic!()
    };
    assert!(
        !serde_json::to_string(&view)
            .unwrap()
            .contains("s3cret-pass")
    );
    let opened = nc.deployment.open_secrets(&node).unwrap();
    assert!(
        serde_json::to_string(&opened)
            .unwrap()
            .contains("s3cret-pass")
    );
    assert_eq!(
        nc.deployment
            .verify_signatures(|t| (t == 3).then(|| Keypair::from_uri("//Bob").unwrap().account())),
        Ok(())
    );

    // The node reports what it provisioned and what it uses; the CLI shows it.
    let result = WorkloadResult {
        name: "db".into(),
        created: 0,
        state: ResultState::Ok,
        message: String::new(),
        data: ResultData::Zdb {
            namespace: "3-1-db".into(),
            ips: vec!["10.10.0.2".into()],
            port: 9900,
        },
    };
    client
        .execute(
            &node,
            Call::SmartContract(ScCall::ReportDeploymentState {
                contract_id: 1,
                version: 0,
                workloads: vec![result],
            }),
        )
        .await
        .unwrap();
    let used = Resources {
        hru: 10 * 1024 * 1024 * 1024,
        ..Resources::default()
    };
    client
        .execute(
            &node,
            Call::SmartContract(ScCall::ReportContractResources {
                resources: vec![ContractResources {
                    contract_id: 1,
                    used,
                }],
            }),
        )
        .await
        .unwrap();
    let shown = ok(cli(&["contract", "show", "1"]));
    assert!(shown.contains("ok") && shown.contains("3-1-db"), "{shown}");
    // Only the contract's node may report.
    let charlie_report = Call::SmartContract(ScCall::ReportContractResources {
        resources: vec![ContractResources {
            contract_id: 1,
            used,
        }],
    });
    let err = client
        .execute(&Keypair::from_uri("//Alice").unwrap(), charlie_report)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no node"), "{err}");

    // Billing every 5 blocks: bills appear, and the twin's consumption adds them up.
    let rpc = client.rpc();
    wait_for("two bills", Duration::from_secs(20), || async {
        (rpc.contract_bills(1).await.ok()?.len() >= 2).then_some(())
    })
    .await;
    let bills = ok(cli(&["contract", "bills", "1"]));
    assert!(
        bills.contains("None") || bills.contains("Default") || bills.contains("Gold"),
        "{bills}"
    );
    let consumption: serde_json::Value = serde_json::from_str(&ok(cli(&[
        "--key",
        "//Bob",
        "--json",
        "twin",
        "consumption",
    ])))
    .unwrap();
    assert!(
        consumption["total_billed"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
            > 0
    );
    assert_eq!(consumption["active_contracts"], 1);

    // Update: a larger 0-db is the next version; the unchanged IP keeps its version.
    let file2 = write(home.path(), "db2.json", zdb_deployment(20, true));
    ok(cli(&["--key", "//Bob", "contract", "update", "1", &file2]));
    let view = client.rpc().contract(1).await.unwrap().unwrap();
    let ContractData::NodeContract(nc) = &view.contract.contract_type else {
        panic!()
    };
    assert_eq!(nc.deployment.version, 1);
    assert_eq!(nc.deployment.workload("pip").unwrap().version, 0);
    assert_eq!(nc.deployment.workload("db").unwrap().version, 1);
    fails(
        cli(&["--key", "//Alice", "contract", "update", "1", &file2]),
        "does not own contract 1",
    );

    // Lists, names, and the cancel that frees the IP.
    assert!(ok(cli(&["--key", "//Bob", "contract", "list"])).contains("node 1"));
    assert!(ok(cli(&["contract", "list", "--node", "1"])).contains("node 1"));
    ok(cli(&["--key", "//Bob", "contract", "name", "my-site"]));
    fails(
        cli(&["--key", "//Alice", "contract", "name", "my-site"]),
        "name \"my-site\" is taken by contract 2",
    );
    ok(cli(&["--key", "//Bob", "contract", "cancel", "1"]));
    fails(cli(&["contract", "show", "1"]), "unknown contract 1");
    assert!(ok(cli(&["farm", "show", "farm1"])).contains("free"));
    ok(cli(&["--key", "//Bob", "contract", "cancel", "2"]));
}
