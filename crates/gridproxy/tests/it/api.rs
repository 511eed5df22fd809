//! Every endpoint against the chain's own answers: a farm with two public IPs, two nodes (one up,
//! one a gateway put in standby), a deployer with node and name contracts that are reported, billed
//! and cancelled.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::wait_for;
use tfchain_client::Client;
use tfchain_client::api::{Page, TfchainApiClient};
use tfchain_runtime::Call;
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::tfgrid::Call as GridCall;
use tfchain_runtime::types::*;
use tfgrid_types::Keypair;
use tfgrid_types::capacity;

use crate::harness::*;

fn ids(v: &Value, key: &str) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x[key].as_u64().unwrap())
        .collect()
}

/// `path` answers 400 with a body naming `param`.
async fn bad(proxy: &Proxy, path: &str, param: &str) {
    let reply = proxy.reply(path).await;
    assert_eq!(reply.status, 400, "GET {path}: {}", reply.body);
    let error = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains(param), "GET {path}: {error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_agree_with_the_chain_on_sqlite() {
    endpoints_agree_with_the_chain(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_agree_with_the_chain_on_postgres() {
    let pg = PgServer::start().await;
    endpoints_agree_with_the_chain(Some(pg.url())).await;
}

/// Once the index has caught up, each contract's cost per hour and the twin's total equal the
/// chain's; returns contract 1's and the total.
async fn costs_agree(proxy: &Proxy, client: &Client, twin_id: u32, ids: &[u64]) -> (u128, u128) {
    let rpc = client.rpc();
    proxy.caught_up(client).await;
    let mut first = 0;
    for id in ids {
        let view = rpc.contract(*id).await.unwrap().unwrap();
        let ours = proxy.json(&format!("/contracts/{id}")).await;
        assert_eq!(
            ours["cost_per_hour"],
            view.cost_per_hour.to_string(),
            "contract {id}"
        );
        let listed = proxy.json(&format!("/contracts?contract_id={id}")).await;
        assert_eq!(listed[0]["cost_per_hour"], ours["cost_per_hour"]);
        if *id == 1 {
            first = view.cost_per_hour;
        }
    }
    let total = rpc.twin_consumption(twin_id).await.unwrap().cost_per_hour;
    assert!(total > 0);
    let consumption = proxy.json(&format!("/twins/{twin_id}/consumption")).await;
    assert_eq!(consumption["cost_per_hour"], total.to_string());
    (first, total)
}

async fn endpoints_agree_with_the_chain(db: Option<String>) {
    let chain = fast_chain().await;
    let client = chain.client().await;
    let rpc = client.rpc();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| cli(home.path(), &chain, args);
    let alice = Keypair::from_uri("//Alice").unwrap();

    run(&["--key", "//Alice", "twin", "create"]);
    run(&[
        "--key",
        "//Alice",
        "farm",
        "create",
        "farm1",
        "--ip",
        "185.206.122.33/24=185.206.122.1",
    ]);
    // The explorer starts while the grid is being built: it indexes history, then follows.
    let proxy = Proxy::start_on(&chain.rpc_url(), db).await;
    run(&[
        "--key",
        "//Alice",
        "farm",
        "add-ip",
        "farm1",
        "185.206.122.34/24",
        "185.206.122.1",
    ]);
    let node1 = Keypair::from_uri("//Node1").unwrap();
    let node2 = Keypair::from_uri("//Node2").unwrap();
    let small = NODE_RESOURCES;
    let big = Resources {
        hru: 2000 * GIB,
        sru: 1000 * GIB,
        cru: 16,
        mru: 64 * GIB,
    };
    register_node(&client, &node1, small, "Ghent", "Belgium").await;
    register_node(&client, &node2, big, "Cairo", "Egypt").await;
    report_uptime(&client, &node1).await;
    client
        .execute(
            &alice,
            Call::Tfgrid(GridCall::AddNodePublicConfig {
                farm_id: 1,
                node_id: 2,
                public_config: Some(PublicConfig {
                    ip4: Ip4Config {
                        ip: "185.206.122.50/24".into(),
                        gw: "185.206.122.1".into(),
                    },
                    ip6: None,
                    domain: Some("gw.example.com".into()),
                }),
            }),
        )
        .await
        .unwrap();
    client
        .execute(
            &alice,
            Call::Tfgrid(GridCall::ChangePowerTarget {
                node_id: 2,
                target: Power::Down,
            }),
        )
        .await
        .unwrap();

    run(&["--key", "//Bob", "twin", "create"]);
    let bob_twin = rpc
        .twin_by_account(Keypair::from_uri("//Bob").unwrap().account())
        .await
        .unwrap()
        .unwrap()
        .id;
    let db = zdb_file(home.path(), "db.json", 10, true);
    run(&["--key", "//Bob", "contract", "create", "--node", "1", &db]);
    report_contract(&client, &node1, 1, 10 * GIB).await;
    run(&["--key", "//Bob", "contract", "name", "my-site"]);
    let db2 = zdb_file(home.path(), "db2.json", 5, false);
    run(&["--key", "//Bob", "contract", "create", "--node", "1", &db2]);
    // A bill covers time up to the node's last uptime report: the node goes on reporting.
    wait_for(
        "two bills of contract 1, its node reporting",
        Duration::from_secs(30),
        || async {
            report_uptime(&client, &node1).await;
            (rpc.contract_bills(1).await.ok()?.len() >= 2).then_some(())
        },
    )
    .await;
    proxy.caught_up(&client).await;

    // Twins.
    let twins = proxy.json("/twins").await;
    let chain_twins = rpc.twins(Page::default()).await.unwrap();
    assert_eq!(twins.as_array().unwrap().len(), chain_twins.len());
    for (ours, theirs) in twins.as_array().unwrap().iter().zip(&chain_twins) {
        assert_eq!(ours["twinId"], theirs.id);
        assert_eq!(ours["accountId"], theirs.account_id.to_string());
    }
    let reply = proxy.reply("/twins?ret_count=true&size=1&page=2").await;
    assert_eq!(reply.headers["count"], chain_twins.len().to_string());
    assert_eq!(reply.headers["pages"], chain_twins.len().to_string());
    assert_eq!(ids(&reply.json(), "twinId"), vec![chain_twins[1].id as u64]);
    let bob_account = Keypair::from_uri("//Bob").unwrap().account().to_string();
    assert_eq!(
        ids(
            &proxy
                .json(&format!("/twins?account_id={bob_account}"))
                .await,
            "twinId"
        ),
        vec![bob_twin as u64]
    );

    // Farms and their IPs: the first is reserved by contract 1.
    let farms = proxy.json("/farms").await;
    let chain_farm = rpc.farm(1).await.unwrap().unwrap();
    assert_eq!(farms.as_array().unwrap().len(), 1);
    let farm = &farms[0];
    assert_eq!(farm["name"], chain_farm.name);
    assert_eq!(farm["twinId"], chain_farm.twin_id);
    assert_eq!(farm["dedicated"], chain_farm.dedicated_farm);
    let ours: BTreeSet<(String, u64)> = farm["publicIps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| {
            (
                ip["ip"].as_str().unwrap().to_owned(),
                ip["contract_id"].as_u64().unwrap(),
            )
        })
        .collect();
    let theirs: BTreeSet<(String, u64)> = chain_farm
        .public_ips
        .iter()
        .map(|ip| (ip.ip.clone(), ip.contract_id))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(farm["free_ips"], 1);
    assert_eq!(
        ids(&proxy.json("/farms?free_ips=1").await, "farmId"),
        vec![1]
    );
    assert!(ids(&proxy.json("/farms?free_ips=2").await, "farmId").is_empty());
    assert_eq!(
        ids(&proxy.json("/farms?name=FARM1").await, "farmId"),
        vec![1]
    );
    assert!(ids(&proxy.json("/farms?name_contains=zz").await, "farmId").is_empty());

    // Public IPs.
    let ips = proxy.json("/public_ips").await;
    assert_eq!(ips.as_array().unwrap().len(), chain_farm.public_ips.len());
    let used = proxy.json("/public_ips?free=false").await;
    assert_eq!(ids(&used, "contract_id"), vec![1]);
    assert_eq!(
        proxy
            .json("/public_ips?free=true")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Nodes: totals, location, used = the deployments of active contracts, free as the node counts.
    let nodes = proxy.json("/nodes").await;
    let chain_nodes = rpc.nodes(Page::default()).await.unwrap();
    assert_eq!(ids(&nodes, "nodeId"), vec![1, 2]);
    for (ours, theirs) in nodes.as_array().unwrap().iter().zip(&chain_nodes) {
        let n = &theirs.node;
        assert_eq!(ours["farmId"], n.farm_id);
        assert_eq!(ours["twinId"], n.twin_id);
        assert_eq!(ours["country"], n.location.country);
        assert_eq!(ours["city"], n.location.city);
        assert_eq!(
            ours["total_resources"],
            json!({ "cru": n.resources.cru, "mru": n.resources.mru,
                    "sru": n.resources.sru, "hru": n.resources.hru })
        );
        let mut used = tfgrid_types::deployment::Capacity::default();
        for c in rpc.contracts_by_node(n.id).await.unwrap() {
            if let ContractData::NodeContract(nc) = &c.contract_type {
                used = used + nc.deployment.capacity();
            }
        }
        assert_eq!(
            ours["used_resources"],
            json!({ "cru": used.cru, "mru": used.mru, "sru": used.sru, "hru": used.hru })
        );
        let free = capacity::free(
            n.resources.mru,
            n.resources.sru,
            n.resources.hru,
            used.mru,
            used.sru,
            used.hru,
        );
        assert_eq!(
            ours["free_resources"],
            json!({ "mru": free.mru, "sru": free.sru, "hru": free.hru })
        );
        let uptime = theirs.uptime.as_ref().map_or(0, |u| u.uptime_s);
        assert_eq!(ours["uptime"], uptime);
        assert_eq!(ours["farm_free_ips"], 1);
    }
    assert!(nodes[0]["used_resources"]["hru"].as_u64().unwrap() > 0);
    assert_eq!(nodes[0]["status"], "up");
    assert_eq!(nodes[1]["status"], "standby");
    assert_eq!(nodes[1]["power"]["target"], "Down");
    assert_eq!(nodes[1]["publicConfig"]["domain"], "gw.example.com");

    // Node filters, one by one.
    let free_hru_1 = nodes[0]["free_resources"]["hru"].as_u64().unwrap();
    for (query, expect) in [
        ("status=up", vec![1]),
        ("status=standby", vec![2]),
        ("status=down", vec![]),
        ("status=up,standby", vec![1, 2]),
        (&format!("free_hru={free_hru_1}") as &str, vec![1, 2]),
        (&format!("free_hru={}", free_hru_1 + 1), vec![2]),
        (&format!("free_mru={}", 20 * GIB), vec![2]),
        ("total_cru=9", vec![2]),
        ("farm_ids=1", vec![1, 2]),
        ("farm_ids=2,3", vec![]),
        ("country=belgium", vec![1]),
        ("country_contains=gyp", vec![2]),
        ("city=Cairo", vec![2]),
        ("city_contains=hen", vec![1]),
        ("domain=true", vec![2]),
        ("domain=false", vec![1]),
        ("ipv4=true", vec![2]),
        ("free_ips=1", vec![1, 2]),
        ("free_ips=2", vec![]),
        ("rented=false", vec![1, 2]),
        ("rentable=true", vec![]),
        ("dedicated=false", vec![1, 2]),
        (&format!("available_for={bob_twin}"), vec![1, 2]),
        (&format!("rented_by={bob_twin}"), vec![]),
        ("node_ids=2", vec![2]),
        ("excluded=1", vec![2]),
        ("farm_name=farm1", vec![1, 2]),
        ("certification_type=Diy", vec![1, 2]),
        ("sort_by=free_mru&sort_order=desc", vec![2, 1]),
        ("sort_by=node_id&sort_order=desc&size=1", vec![2]),
    ] {
        let got = proxy.json(&format!("/nodes?{query}")).await;
        assert_eq!(ids(&got, "nodeId"), expect, "/nodes?{query}");
    }
    let reply = proxy.reply("/nodes?size=1&page=2&ret_count=true").await;
    assert_eq!(ids(&reply.json(), "nodeId"), vec![2]);
    assert_eq!(
        (
            reply.headers["count"].as_str(),
            reply.headers["pages"].as_str()
        ),
        ("2", "2")
    );
    let one = proxy.json("/nodes/1").await;
    assert_eq!(one["nodeId"], 1);
    assert_eq!(one["num_contracts"], 2);
    assert_eq!(ids(&proxy.json("/gateways").await, "nodeId"), vec![2]);
    assert_eq!(proxy.json("/gateways/2").await["nodeId"], 2);
    assert_eq!(proxy.reply("/gateways/1").await.status, 404);
    assert_eq!(proxy.reply("/nodes/99").await.status, 404);

    // Bad parameters are named.
    bad(&proxy, "/nodes?free_mru=lots", "free_mru").await;
    bad(&proxy, "/nodes?status=sideways", "status").await;
    bad(&proxy, "/nodes?colour=red", "colour").await;
    bad(&proxy, "/nodes?size=0", "size").await;
    bad(&proxy, "/nodes?sort_by=price", "sort_by").await;
    bad(&proxy, "/nodes?farm_ids=1,x", "farm_ids").await;
    bad(&proxy, "/nodes/abc", "id").await;
    bad(&proxy, "/contracts?state=Paused", "state").await;
    bad(&proxy, "/farms?dedicated=maybe", "dedicated").await;
    bad(&proxy, "/stats?status=gone", "status").await;

    // Contracts against the chain's view.
    let contracts = proxy.json("/contracts").await;
    assert_eq!(ids(&contracts, "contract_id"), vec![1, 2, 3]);
    for c in contracts.as_array().unwrap() {
        let id = c["contract_id"].as_u64().unwrap();
        let view = rpc.contract(id).await.unwrap().unwrap();
        assert_eq!(c["twin_id"], view.contract.twin_id);
        let state = match view.contract.state {
            ContractState::Created => "Created",
            ContractState::GracePeriod { .. } => "GracePeriod",
            ContractState::Deleted(_) => "Deleted",
        };
        assert_eq!(c["state"], state);
        assert_eq!(
            c["cost_per_hour"],
            view.cost_per_hour.to_string(),
            "contract {id}"
        );
        match &view.contract.contract_type {
            ContractData::NodeContract(nc) => {
                assert_eq!(c["type"], "node");
                assert_eq!(c["details"]["nodeId"], nc.node_id);
                assert_eq!(
                    c["details"]["deployment_hash"],
                    nc.deployment_hash.to_string()
                );
                assert_eq!(c["details"]["number_of_public_ips"], nc.public_ips);
                assert_eq!(c["details"]["farm_id"], 1);
            }
            ContractData::NameContract { name } => {
                assert_eq!(c["type"], "name");
                assert_eq!(c["details"]["name"], name.as_str());
            }
            ContractData::RentContract { .. } => panic!("no rent contract was made"),
        }
    }
    assert_eq!(
        ids(&proxy.json("/contracts?type=name").await, "contract_id"),
        vec![2]
    );
    assert_eq!(
        ids(
            &proxy
                .json("/contracts?node_id=1&number_of_public_ips=1")
                .await,
            "contract_id"
        ),
        vec![1]
    );
    assert_eq!(
        ids(
            &proxy
                .json(&format!("/contracts?twin_id={bob_twin}&state=Created"))
                .await,
            "contract_id"
        ),
        vec![1, 2, 3]
    );
    let one = proxy.json("/contracts/1").await;
    let view = rpc.contract(1).await.unwrap().unwrap();
    let reported = view.deployment_state.unwrap();
    assert_eq!(
        one["workloads"].as_array().unwrap().len(),
        reported.workloads.len()
    );
    assert_eq!(one["workloads"][0]["name"], "db");
    assert_eq!(one["workloads"][0]["state"], "ok");
    assert_eq!(
        one["workloads"][0]["result"],
        serde_json::to_value(&reported.workloads[0].data).unwrap()
    );
    let ContractData::NodeContract(nc) = &view.contract.contract_type else {
        panic!()
    };
    assert_eq!(
        one["details"]["deployment"],
        serde_json::to_value(&nc.deployment).unwrap()
    );
    assert_eq!(one["details"]["reported_resources"]["hru"], 10 * GIB);
    assert_eq!(one["cost_per_hour"], view.cost_per_hour.to_string());
    assert_eq!(proxy.reply("/contracts/42").await.status, 404);

    // Bills: every bill the chain keeps is in the index.
    let chain_bills = rpc.contract_bills(1).await.unwrap();
    proxy.caught_up(&client).await;
    let bills = proxy.json("/contracts/1/bills?size=1000").await;
    let ours: BTreeSet<(u64, String, u64)> = bills
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["timestamp"].as_u64().unwrap(),
                b["amountBilled"].as_str().unwrap().to_owned(),
                b["creditedSeconds"].as_u64().unwrap(),
            )
        })
        .collect();
    for b in &chain_bills {
        assert!(
            ours.contains(&(b.timestamp_s, b.amount_billed.to_string(), b.credited_s)),
            "bill {b:?} missing from {ours:?}"
        );
    }

    // Stats.
    let stats = proxy.json("/stats").await;
    assert_eq!(stats["nodes"], 2);
    assert_eq!(stats["farms"], 1);
    assert_eq!(stats["twins"], chain_twins.len());
    assert_eq!(stats["countries"], 2);
    assert_eq!(stats["publicIps"], 2);
    assert_eq!(stats["gateways"], 1);
    assert_eq!(stats["accessNodes"], 1);
    assert_eq!(stats["dedicatedNodes"], 0);
    assert_eq!(stats["contracts"], 3);
    assert_eq!(stats["workloads_number"], 1);
    assert_eq!(stats["totalMru"], small.mru + big.mru);
    assert_eq!(
        stats["nodesDistribution"],
        json!({ "Belgium": 1, "Egypt": 1 })
    );
    assert_eq!(proxy.json("/stats?status=up").await["nodes"], 1);

    // Costs per hour follow the chain's: a rented node (its capacity at the dedication discount), a
    // new TFT price, and the twin's total.
    run(&["--key", "//Bob", "contract", "rent", "2"]);
    costs_agree(&proxy, &client, bob_twin, &[1, 2, 3, 4]).await;
    assert_ne!(proxy.json("/contracts/4").await["cost_per_hour"], "0");
    client
        .execute(
            &alice,
            tfchain_runtime::council::Call::propose(
                &Call::SmartContract(ScCall::SetTftPrice { price_musd: 50 }),
                1,
                "a new TFT price",
            ),
        )
        .await
        .unwrap();
    let (cost_1, _) = costs_agree(&proxy, &client, bob_twin, &[1, 2, 3, 4]).await;
    assert_ne!(cost_1, view.cost_per_hour, "the price change is not seen");

    // Cancel everything: states, freed IPs, used capacity back to zero, consumption equal to the
    // chain's.
    for id in ["1", "2", "3", "4"] {
        run(&["--key", "//Bob", "contract", "cancel", id]);
    }
    proxy.caught_up(&client).await;
    let one = proxy.json("/contracts/1").await;
    assert_eq!(one["state"], "Deleted");
    assert_eq!(one["cause"], "CanceledByUser");
    assert_eq!(
        proxy
            .json("/public_ips?free=true")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        proxy.json("/nodes/1").await["used_resources"],
        json!({"cru": 0, "mru": 0, "sru": 0, "hru": 0})
    );
    let consumption = proxy.json(&format!("/twins/{bob_twin}/consumption")).await;
    let chain_consumption = rpc.twin_consumption(bob_twin).await.unwrap();
    assert_eq!(
        consumption["total_billed"],
        chain_consumption.total_billed.to_string()
    );
    assert_eq!(consumption["last_bill_s"], chain_consumption.last_bill_s);
    assert_eq!(consumption["active_contracts"], 0);
    assert_eq!(consumption["cost_per_hour"], "0");
    assert_eq!(
        consumption["cost_per_hour"],
        chain_consumption.cost_per_hour.to_string()
    );
    assert_eq!(proxy.json("/contracts/1").await["cost_per_hour"], "0");
    assert_eq!(proxy.json("/stats").await["contracts"], 0);

    // The API describes itself.
    let doc = proxy.json("/openapi.json").await;
    for path in ["/contracts", "/contracts/{id}", "/twins/{id}/consumption"] {
        let schema =
            &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let fields = schema.get("items").unwrap_or(schema);
        assert_eq!(
            fields["properties"]["cost_per_hour"]["type"], "string",
            "{path}: {schema}"
        );
    }
    assert!(
        doc["paths"]["/nodes"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .len()
            > 20
    );
}
