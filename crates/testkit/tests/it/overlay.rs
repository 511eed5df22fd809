//! A user network across nodes, end to end: four nodes on a LAN of network namespaces, one of them
//! hidden behind a NAT router, each running a web container in the network the SDK's planner laid
//! out. The nodes report where their WireGuard devices listen (the hidden one reports nothing), the
//! client writes those endpoints into the peers' deployments, and then every container reaches
//! every other over HTTP, the hidden node's through the access node, and the world outside through
//! its node (NATed); the traffic that left a node is billed; a node's WireGuard device killed is
//! revived on its port, and a node lost and a node's contract canceled leave the rest working.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use testkit::{Grid, Host, ok, wait_for};
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::Call;
use tfchain_runtime::tfgrid::Call as GridCall;
use tfchain_runtime::types::{Ip4Config, PublicConfig};
use tfgrid_sdk::deployer::network::{Member, NetworkPlan, Previous, Range, plan};
use tfgrid_types::deployment::{ResultData, ResultState};
use tfgrid_types::{Hash32, Keypair};
use zos::primitives::network::Networks;

use crate::zos::serve_busybox;

const RANGE: &str = "10.50.0.0/16";

/// Waits until `contract`'s node reported version `version` with every workload ok, and returns
/// the network workload's endpoint.
async fn endpoint(grid: &Grid, contract: u64, version: u32) -> String {
    let state = wait_for(
        &format!("contract {contract} at version {version}, all ok"),
        Duration::from_secs(60),
        || async {
            let view = grid.client.rpc().contract(contract).await.ok()??;
            let state = view.deployment_state?;
            let failed = state
                .workloads
                .iter()
                .find(|w| w.state == ResultState::Error);
            assert!(failed.is_none(), "{failed:?}");
            (state.version >= version && state.workloads.iter().all(|w| w.state == ResultState::Ok))
                .then_some(state)
        },
    )
    .await;
    state
        .workloads
        .iter()
        .find_map(|w| match &w.data {
            ResultData::Network { endpoint, .. } => Some(endpoint.clone()),
            _ => None,
        })
        .expect("a network result")
}

/// Node `node`'s deployment file: its part of the network and a web server saying its name.
fn deployment(plan: &NetworkPlan, node: u32, image: &str, image_hash: &str) -> serde_json::Value {
    let net = plan.workload("net", node).expect("a member");
    let subnet = plan.range.subnet(plan.member(node).unwrap().subnet);
    let ip = subnet.replace(".0/24", ".2");
    json!({ "workloads": [net, {
        "version": 0, "name": "web", "type": "zmachine", "data": {
        "flist": image, "flist_hash": image_hash,
        "network": { "interfaces": [{ "network": "net", "ip": ip }] },
        "compute_capacity": { "cpu": 1, "memory": 268435456 },
        "entrypoint": format!("mkdir -p /www; echo node{node} > /www/index.html; exec busybox httpd -f -p 80 -h /www") } }] })
}

/// What `from`'s container gets from `ip`'s web server, over the network.
fn fetch(networks: &Networks, twin: u32, contract: u64, ip: &str) -> Option<String> {
    fetch_url(networks, twin, contract, &format!("http://{ip}/"))
}

/// What `from`'s container gets from `url`.
fn fetch_url(networks: &Networks, twin: u32, contract: u64, url: &str) -> Option<String> {
    let ns = networks.container(&format!("{twin}-{contract}-web"));
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{ns}"))
        .args(["curl", "-s", "-m", "3", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The run directory of the one network of the node whose data directory is `data`.
fn znet_dir(data: &Path) -> PathBuf {
    std::fs::read_dir(data.join("networks"))
        .unwrap()
        .flatten()
        .next()
        .expect("the node runs a network")
        .path()
}

fn znet_pid(data: &Path) -> u32 {
    let pid = std::fs::read_to_string(znet_dir(data).join("pid")).unwrap();
    pid.trim().parse().unwrap()
}

fn znet_port(data: &Path) -> u16 {
    let port = std::fs::read_to_string(znet_dir(data).join("port")).unwrap();
    port.trim().parse().unwrap()
}

fn kill9(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_on_four_nodes_one_hidden_reach_each_other_over_the_overlay() {
    let mut lan = testkit::Lan::new().unwrap();
    let chain_host = lan.host().unwrap();
    let hosts: Vec<Host> = vec![
        lan.host().unwrap(),
        lan.host().unwrap(),
        lan.hidden_host().unwrap(),
        lan.host().unwrap(),
    ];
    let grid = Grid::start_on(Some(chain_host), |spec| {
        spec["block_time_ms"] = json!(200);
        spec["genesis"]["params"]["uptime_report_interval_s"] = json!(2);
    })
    .await;
    let home = grid.home.path();
    // The hub listens on the test's own leg of the LAN, which every node reaches.
    let (_hub, hub_addr, hash) = serve_busybox(&grid, &lan.here());
    let image = format!("http://{hub_addr}/{hash}.tar");

    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let id = i as u32 + 1;
        let seed = Hash32::of("overlay", &[i as u8]).0;
        nodes.push(
            grid.add_node_on(
                Some(host.clone()),
                id,
                seed,
                "cru=4,mru=8G,sru=100G,hru=50G",
                dirs[i].path(),
            )
            .await,
        );
    }
    // Nodes 1, 2 and 4 have a public config: they are reachable. Node 3 is hidden.
    let alice = Keypair::from_uri("//Alice").unwrap();
    for id in [1, 2, 4] {
        let config = GridCall::AddNodePublicConfig {
            farm_id: 1,
            node_id: id,
            public_config: Some(PublicConfig {
                ip4: Ip4Config {
                    ip: format!("185.206.122.{}/24", 100 + id),
                    gw: "185.206.122.1".into(),
                },
                ip6: None,
                domain: None,
            }),
        };
        grid.client
            .execute(&alice, Call::Tfgrid(config))
            .await
            .unwrap();
    }
    ok(grid.cli(&["--key", "//Bob", "twin", "create"]));

    // The client plans the network; the first version has no endpoints.
    let members: Vec<Member> = (1..=4)
        .map(|id| Member {
            node_id: id,
            public: id != 3,
            endpoint: String::new(),
            subnet: None,
        })
        .collect();
    let range = Range::parse(RANGE).unwrap();
    let first = plan(
        range,
        &Previous::default(),
        &members,
        &mut rand::thread_rng(),
    )
    .unwrap();
    assert_eq!(first.access_node().unwrap().node_id, 1);
    let mut contracts = BTreeMap::new();
    for id in 1..=4u32 {
        let file = home.join(format!("node{id}.json"));
        std::fs::write(&file, deployment(&first, id, &image, &hash).to_string()).unwrap();
        let shown = ok(grid.cli(&[
            "--json",
            "--key",
            "//Bob",
            "contract",
            "create",
            "--node",
            &id.to_string(),
            file.to_str().unwrap(),
        ]));
        let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
        contracts.insert(id, shown["contract_id"].as_u64().expect("a contract id"));
    }
    // What only the nodes know comes back through the chain.
    let mut reported = BTreeMap::new();
    for (&id, &contract) in &contracts {
        reported.insert(id, endpoint(&grid, contract, 0).await);
    }
    assert_eq!(reported[&3], "", "the hidden node has no endpoint");
    for id in [1, 2, 4] {
        let ip = &hosts[id as usize - 1].ip;
        assert!(reported[&id].starts_with(&format!("{ip}:")), "{reported:?}");
    }
    // ... and reaches the peers through the chain: the client writes them into the deployments.
    let second = first.with_endpoints(&reported);
    for (&id, &contract) in &contracts {
        let file = home.join(format!("node{id}.json"));
        std::fs::write(&file, deployment(&second, id, &image, &hash).to_string()).unwrap();
        ok(grid.cli(&[
            "--key",
            "//Bob",
            "contract",
            "update",
            &contract.to_string(),
            file.to_str().unwrap(),
        ]));
    }
    for &contract in contracts.values() {
        endpoint(&grid, contract, 1).await;
    }
    let twin = grid
        .client
        .rpc()
        .contract(contracts[&1])
        .await
        .unwrap()
        .unwrap()
        .contract
        .twin_id;

    let networks: Vec<Networks> = dirs.iter().map(|d| Networks::new(d.path())).collect();
    let web_ip = |id: u32| {
        second
            .range
            .subnet(second.member(id).unwrap().subnet)
            .replace(".0/24", ".2")
    };
    let expect = |from: u32, to: u32| {
        let (networks, contract, ip) = (&networks[from as usize - 1], contracts[&from], web_ip(to));
        async move {
            let got = wait_for(
                &format!("node {from}'s container fetching node {to}'s over the overlay"),
                Duration::from_secs(20),
                || async { fetch(networks, twin, contract, &ip) },
            )
            .await;
            assert_eq!(got, format!("node{to}"));
        }
    };
    // Every container reaches every other: public ones directly, the hidden one (3) through the
    // access node (1), both ways.
    for from in 1..=4 {
        for to in 1..=4 {
            if from != to {
                expect(from, to).await;
            }
        }
    }
    // Out of the network, through the node (NATed): the hidden node's container fetches the image
    // from the hub on the LAN.
    let image_size = wait_for(
        "a fetch from outside the network",
        Duration::from_secs(20),
        || async { fetch_url(&networks[2], twin, contracts[&3], &image).map(|body| body.len()) },
    )
    .await;
    assert!(image_size > 100_000, "the image, {image_size} bytes");
    // The traffic that left node 2 over the overlay is on its contract's bill.
    wait_for(
        "node 2's network usage report",
        Duration::from_secs(30),
        || async {
            let billing = grid
                .client
                .rpc()
                .contract(contracts[&2])
                .await
                .ok()??
                .billing?;
            (billing.last_nru_report_s > 0).then_some(())
        },
    )
    .await;

    // Node 2's WireGuard device dies: its agent starts it again, on the same port, and the
    // network works as before.
    let (pid, port) = (znet_pid(dirs[1].path()), znet_port(dirs[1].path()));
    kill9(pid);
    wait_for("node 2's znet revived", Duration::from_secs(20), || async {
        Some(znet_pid(dirs[1].path())).filter(|p| *p != pid)
    })
    .await;
    assert_eq!(znet_port(dirs[1].path()), port);
    expect(1, 2).await;
    expect(3, 2).await;

    // Node 4 is lost (its agent, its WireGuard device and its machines stop; its link goes down):
    // the others go on.
    nodes[3].kill9();
    kill9(znet_pid(dirs[3].path()));
    let h4 = &hosts[3];
    let _ = std::process::Command::new("ip")
        .args(["-n", &h4.netns, "link", "set", &h4.iface, "down"])
        .status();
    expect(3, 2).await;
    expect(2, 3).await;
    // Node 2's contract canceled: nodes 1 and 3 go on.
    ok(grid.cli(&[
        "--key",
        "//Bob",
        "contract",
        "cancel",
        &contracts[&2].to_string(),
    ]));
    wait_for(
        "node 2's network removed",
        Duration::from_secs(30),
        || async {
            (!std::path::Path::new("/var/run/netns")
                .join(networks[1].namespace(&format!("{twin}-net")))
                .exists())
            .then_some(())
        },
    )
    .await;
    expect(1, 3).await;
    expect(3, 1).await;
    drop(nodes);
}
