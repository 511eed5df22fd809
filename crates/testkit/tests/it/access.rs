//! A project over several nodes as its user reaches it, end to end through `tfgrid apply` of a
//! deployment file, on a LAN of network namespaces: the user's laptop (a namespace of its own,
//! behind a NAT router like a real one) joins the project's network with the configuration
//! `tfgrid network access` prints, run by Debian's `wireguard-go`, and fetches the web page of the
//! container on the public node and of the one on the hidden node (through the access node); and
//! a gateway name on one node serves a container on another, hidden one, over the overlay.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use testkit::{Grid, Host, Lan, ZosProcess, ok, wait_for};
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::types::{ContractData, ContractState};
use tfgrid_sdk::deployer::network::KeyPair;
use tfgrid_types::deployment::{Network, Workload, WorkloadData};
use tfgrid_types::{ContractId, Hash32, Keypair, NodeId};

use crate::zos::{Guard, serve_busybox};

const CAPACITY: &str = "cru=4,mru=8G,sru=100G,hru=50G";

/// A grid on a LAN of network namespaces: the chain on a host of its own, a hub serving busybox
/// on the test's own leg of the LAN (every host reaches it), Bob's twin, and node agents on hosts
/// of the LAN. Dropped in field order: the agents and what they run, the hub, the chain, the LAN.
struct LanGrid {
    /// Agents started again with a public interface (their nodes are in `nodes`).
    nodes: Vec<ZosProcess>,
    _hub: Guard,
    grid: Grid,
    lan: Lan,
    image: String,
    data: TempDir,
    /// The user's directory: deployment files and state files.
    work: TempDir,
}

impl LanGrid {
    async fn start() -> LanGrid {
        let mut lan = Lan::new().unwrap();
        let chain_host = lan.host().unwrap();
        let grid = Grid::start_on(Some(chain_host), |spec| {
            spec["block_time_ms"] = json!(200);
        })
        .await;
        let (hub, addr, hash) = serve_busybox(&grid, &lan.here());
        ok(grid.cli(&["--key", "//Bob", "twin", "create"]));
        LanGrid {
            nodes: Vec::new(),
            _hub: hub,
            grid,
            lan,
            image: format!("http://{addr}/{hash}.tar"),
            data: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts node `id`'s agent on `host` and waits until it registered.
    async fn node(&mut self, id: NodeId, host: &Host) {
        let seed = Hash32::of("access test", &id.to_be_bytes()).0;
        let dir = self.data.path().join(format!("node{id}"));
        let zos = (self.grid)
            .add_node_on(Some(host.clone()), id, seed, CAPACITY, &dir)
            .await;
        self.nodes.push(zos);
    }

    /// Node `id` on `host` as a farmer runs a gateway: its agent knows the interface on the farm's
    /// public network (its LAN interface), where it puts its public config's address.
    async fn gateway_node(&mut self, id: NodeId, host: &Host) {
        self.node(id, host).await;
        self.nodes.last_mut().unwrap().serve_public();
    }

    /// The farmer (Alice) gives node `id` a public config: `ip4` (gateway `.1`), and `domain`.
    fn public_config(&self, id: NodeId, ip4: &str, domain: Option<&str>) {
        let gw = ip4.rsplit_once('.').unwrap().0.to_owned() + ".1";
        let id = id.to_string();
        let mut args = vec!["--key", "//Alice", "node", "public-config", &id];
        args.extend(["--ip4", ip4, "--gw4", &gw]);
        if let Some(domain) = domain {
            args.extend(["--domain", domain]);
        }
        ok(self.grid.cli(&args));
    }

    /// `tfgrid --key //Bob <args>`.
    fn tfgrid(&self, args: &[&str]) -> Output {
        let mut all = vec!["--key", "//Bob"];
        all.extend_from_slice(args);
        self.grid.cli(&all)
    }

    /// Project `name`'s deployment file and state file.
    fn files(&self, name: &str) -> (String, String) {
        let at = |ext: &str| self.work.path().join(format!("{name}.{ext}"));
        let path = |p: PathBuf| p.to_str().unwrap().to_owned();
        (path(at("toml")), path(at("json")))
    }

    /// `tfgrid apply` of project `name` written as `text`: what it printed as JSON.
    fn apply(&self, name: &str, text: &str) -> Value {
        let (file, state) = self.files(name);
        std::fs::write(&file, text).unwrap();
        let out = ok(self.tfgrid(&["--json", "apply", "--state", &state, &file]));
        serde_json::from_str(&out).unwrap()
    }

    /// [`LanGrid::apply`], which must make one contract on each of `nodes` holding exactly the
    /// workloads named, all ok, and leave Bob no other contract: its JSON and those contracts.
    async fn apply_on(
        &self,
        name: &str,
        text: &str,
        nodes: &[(NodeId, &[&str])],
    ) -> (Value, Vec<ContractId>) {
        let applied = self.apply(name, text);
        let made = contracts(&applied);
        let states: Vec<_> = made.iter().map(|(n, _, w)| (*n, w.clone())).collect();
        let all_ok = |names: &[&str]| {
            let mut v: Vec<_> = names.iter().map(|n| format!("{n}: ok")).collect();
            v.sort();
            v
        };
        let want: Vec<_> = nodes.iter().map(|(n, names)| (*n, all_ok(names))).collect();
        assert_eq!(states, want, "{applied}");
        let ids: Vec<_> = made.iter().map(|(n, c, _)| (*n, *c)).collect();
        assert_eq!(self.active().await, ids);
        (applied, ids.into_iter().map(|(_, c)| c).collect())
    }

    fn destroy(&self, name: &str) {
        let (file, state) = self.files(name);
        ok(self.tfgrid(&["destroy", "--state", &state, &file]));
    }

    /// Bob's twin.
    async fn bob(&self) -> u32 {
        let bob = Keypair::from_uri("//Bob").unwrap().account();
        let rpc = self.grid.client.rpc();
        rpc.twin_by_account(bob).await.unwrap().expect("a twin").id
    }

    /// Bob's node contracts not deleted: (node, contract).
    async fn active(&self) -> Vec<(NodeId, ContractId)> {
        let rpc = self.grid.client.rpc();
        let all = rpc.contracts_by_twin(self.bob().await).await.unwrap();
        let mut out: Vec<_> = all
            .iter()
            .filter(|c| !matches!(c.state, ContractState::Deleted(_)))
            .filter_map(|c| match &c.contract_type {
                ContractData::NodeContract(nc) => Some((nc.node_id, c.contract_id)),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// Workload `name` of contract `id` as the chain holds it.
    async fn workload(&self, id: ContractId, name: &str) -> Workload {
        let view = self.grid.client.rpc().contract(id).await.unwrap().unwrap();
        let ContractData::NodeContract(nc) = view.contract.contract_type else {
            panic!("contract {id} is not a node contract");
        };
        nc.deployment.workload(name).expect("the workload").clone()
    }

    /// The network workload `name` of contract `id` on the chain.
    async fn network(&self, id: ContractId, name: &str) -> Network {
        match self.workload(id, name).await.data {
            WorkloadData::Network(n) => n,
            other => panic!("{name} is {other:?}"),
        }
    }
}

/// A container `name` of `image` serving `page` over HTTP on port 80, with `extra` lines
/// (`node = 2`).
fn web(name: &str, image: &str, page: &str, extra: &str) -> String {
    format!(
        "\n[[container]]\nname = \"{name}\"\nimage = \"{image}\"\nmemory = \"256 MiB\"\n\
         entrypoint = \"echo {page} > /tmp/index.html; exec busybox httpd -f -p 80 -h /tmp\"\n\
         {extra}"
    )
}

/// An apply's contracts: (node, contract id, its workloads' `name: state` sorted), by node.
fn contracts(applied: &Value) -> Vec<(NodeId, ContractId, Vec<String>)> {
    let all = applied["contracts"].as_array().expect("contracts");
    let mut out: Vec<_> = all
        .iter()
        .map(|c| {
            let workloads = c["workloads"].as_array().unwrap().iter();
            let mut states: Vec<String> = workloads
                .map(|w| {
                    format!(
                        "{}: {}",
                        w["name"].as_str().unwrap(),
                        w["state"].as_str().unwrap()
                    )
                })
                .collect();
            states.sort();
            let node = c["node_id"].as_u64().unwrap() as NodeId;
            (node, c["contract_id"].as_u64().unwrap(), states)
        })
        .collect();
    out.sort();
    out
}

/// Workload `name`'s result data in an apply's JSON.
fn result<'a>(applied: &'a Value, name: &str) -> &'a Value {
    let all = applied["contracts"].as_array().unwrap().iter();
    all.flat_map(|c| c["workloads"].as_array().unwrap())
        .find(|w| w["name"] == name)
        .map(|w| &w["data"])
        .unwrap_or_else(|| panic!("no {name} in {applied}"))
}

/// The private address container `name` reported in an apply's JSON.
fn container_ip(applied: &Value, name: &str) -> String {
    let ip = &result(applied, name)["zmachine"]["ip"];
    ip.as_str().expect("an address").to_owned()
}

/// The values of `key` in a wg-quick configuration, comma-separated lists split.
fn values<'a>(config: &'a str, key: &str) -> Vec<&'a str> {
    config
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .flat_map(|(_, v)| v.split(',').map(str::trim))
        .collect()
}

/// Runs `command`, which must succeed: what it wrote.
fn run(command: &mut Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Debian's `wireguard-go` on the laptop, set up from a wg-quick configuration as a user would:
/// the device made in the laptop's namespace, `wg-quick strip` of the file given to `wg setconf`,
/// the address and a route per allowed IP set with `ip`. Dropped: stopped by its PID (TERM, so it
/// removes its control socket), its device deleted.
struct WireGuard {
    child: Child,
    iface: String,
    netns: String,
}

impl WireGuard {
    async fn up(laptop: &Host, config: &str, dir: &Path) -> WireGuard {
        // The control socket is in /var/run/wireguard, shared by every namespace: a unique name.
        let iface = format!("wgl{:x}", std::process::id());
        let log = std::fs::File::create(dir.join("wireguard-go.log")).unwrap();
        let child = laptop
            .command("wireguard-go")
            .args(["-f", &iface])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let wg = WireGuard {
            child,
            iface,
            netns: laptop.netns.clone(),
        };
        let socket = wg.socket();
        wait_for(
            "wireguard-go's control socket",
            Duration::from_secs(10),
            || async { socket.exists().then_some(()) },
        )
        .await;
        let file = dir.join(format!("{}.conf", wg.iface));
        std::fs::write(&file, config).unwrap();
        let stripped = run(Command::new("wg-quick").arg("strip").arg(&file));
        let setconf = dir.join("setconf.conf");
        std::fs::write(&setconf, stripped).unwrap();
        run(Command::new("wg")
            .args(["setconf", &wg.iface])
            .arg(&setconf));
        let ip = |args: &[&str]| {
            run(Command::new("ip").args(["-n", &wg.netns]).args(args));
        };
        for address in values(config, "Address") {
            ip(&["addr", "add", address, "dev", &wg.iface]);
        }
        ip(&["link", "set", &wg.iface, "mtu", "1420", "up"]);
        for allowed in values(config, "AllowedIPs") {
            ip(&["route", "replace", allowed, "dev", &wg.iface]);
        }
        wg
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/wireguard/{}.sock", self.iface))
    }

    /// Unix seconds of the latest handshake with each peer (0: none yet).
    fn handshakes(&self) -> Vec<u64> {
        let out = Command::new("wg")
            .args(["show", &self.iface, "latest-handshakes"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let seconds = text.lines().filter_map(|l| l.split_whitespace().nth(1));
        seconds.map(|s| s.parse().unwrap()).collect()
    }
}

impl Drop for WireGuard {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
        let _ = Command::new("ip")
            .args(["-n", &self.netns, "link", "delete", &self.iface])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_file(self.socket());
    }
}

/// What `from` (the test's own namespace when `None`) gets from `url` (with `curl` options
/// `more`), if it answers.
fn curl(from: Option<&Host>, url: &str, more: &[&str]) -> Option<String> {
    let mut command = match from {
        Some(host) => host.command("curl"),
        None => Command::new("curl"),
    };
    let out = command
        .args(["-sf", "-m", "3"])
        .args(more)
        .arg(url)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_machine_reaches_every_container_through_network_access() {
    let mut grid = LanGrid::start().await;
    let public = grid.lan.host().unwrap();
    let hidden = grid.lan.hidden_host().unwrap();
    let laptop = grid.lan.hidden_host().unwrap();
    grid.node(1, &public).await;
    grid.node(2, &hidden).await;
    // Node 1 has a public config: the network's access node. Node 2 is hidden behind its router.
    grid.public_config(1, "185.206.122.11/24", None);
    let text = format!(
        "name = \"reach\"\n\n[node]\nid = 1\n\n[network]\nip_range = \"10.41.0.0/16\"\n{}{}",
        web("one", &grid.image, "node1", ""),
        web("two", &grid.image, "node2", "node = 2\n"),
    );
    let nodes: [(NodeId, &[&str]); 2] = [(1, &["reach_net", "one"]), (2, &["reach_net", "two"])];
    let (applied, made) = grid.apply_on("reach", &text, &nodes).await;
    let (one, two) = (made[0], made[1]);
    let endpoint = result(&applied, "reach_net")["network"]["endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        endpoint.starts_with(&format!("{}:", public.ip)),
        "{endpoint}"
    );

    // The user's machine joins the network through node 1.
    let (file, state) = grid.files("reach");
    let config = ok(grid.tfgrid(&[
        "network", "access", "reach", "--state", &state, "--file", &file,
    ]));
    assert_eq!(values(&config, "Endpoint"), [endpoint.as_str()], "{config}");
    assert_eq!(
        values(&config, "AllowedIPs"),
        ["10.41.0.0/16", "100.64.0.0/16"]
    );
    let private = values(&config, "PrivateKey")[0];
    let laptop_key = KeyPair::from_private(private).unwrap().public_key;
    // On the chain: the access node peers with the hidden node and the laptop (both dial in);
    // the hidden node's only peer is the access node, at the endpoint it reported.
    let net1 = grid.network(one, "reach_net").await;
    let peers: Vec<_> = (net1.peers.iter())
        .map(|p| format!("{} at {:?}", p.allowed_ips.join(", "), p.endpoint))
        .collect();
    let dial_in = [
        "10.41.2.0/24, 100.64.41.2/32 at \"\"",
        "10.41.3.0/24, 100.64.41.3/32 at \"\"",
    ];
    assert_eq!(peers, dial_in, "{net1:?}");
    assert_eq!(net1.peers[1].wireguard_public_key, laptop_key);
    let net2 = grid.network(two, "reach_net").await;
    assert_eq!(net2.peers.len(), 1);
    assert_eq!(net2.peers[0].endpoint, endpoint);

    // The laptop, behind its own NAT router, runs wireguard-go with that configuration and
    // fetches both containers' pages: node 2's through the access node.
    let wg = WireGuard::up(&laptop, &config, grid.work.path()).await;
    for (container, page) in [("one", "node1"), ("two", "node2")] {
        let url = format!("http://{}/", container_ip(&applied, container));
        let got = wait_for(
            &format!("{container}'s page from the laptop"),
            Duration::from_secs(30),
            || async { curl(Some(&laptop), &url, &[]) },
        )
        .await;
        assert_eq!(got, page);
    }
    let handshakes = wg.handshakes();
    assert!(handshakes.len() == 1 && handshakes[0] > 0, "{handshakes:?}");
    drop(wg);
    grid.destroy("reach");
    assert_eq!(grid.active().await, []);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_serves_a_container_on_another_node() {
    let mut grid = LanGrid::start().await;
    let gateway = grid.lan.host().unwrap();
    let hidden = grid.lan.hidden_host().unwrap();
    // The farm's public network shares the LAN's wire; the test's leg is its gateway.
    grid.lan.add_address("185.206.124.1/24").unwrap();
    grid.gateway_node(1, &gateway).await;
    grid.node(2, &hidden).await;
    grid.public_config(1, "185.206.124.11/24", Some("gw1.grid.test"));
    let text = format!(
        "name = \"shop\"\n\n[node]\nid = 2\n{}\n[[gateway]]\nname = \"shop\"\nbackend = \"web:80\"\nnode = 1\n",
        web("web", &grid.image, "web-on-node-2", ""),
    );
    let nodes: [(NodeId, &[&str]); 2] = [(1, &["shop_net", "shop_gw"]), (2, &["shop_net", "web"])];
    let (applied, made) = grid.apply_on("shop", &text, &nodes).await;
    let one = made[0];
    // Node 1's gateway proxies to the container's private address on node 2, in the network.
    let web_ip = container_ip(&applied, "web");
    let WorkloadData::GatewayNameProxy(gw) = grid.workload(one, "shop_gw").await.data else {
        panic!("shop_gw is no gateway name");
    };
    assert_eq!(gw.backends, [format!("http://{web_ip}:80")]);
    assert_eq!(gw.network.as_deref(), Some("shop_net"));
    let rpc = grid.grid.client.rpc();
    let name = rpc
        .contract_by_name("shop".into())
        .await
        .unwrap()
        .expect("a name contract");
    assert_eq!(name.twin_id, grid.bob().await);
    let fqdn = result(&applied, "shop_gw")["gateway-name-proxy"]["fqdn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fqdn, "shop.gw1.grid.test");

    // Anyone on the LAN: the gateway's address, the name in the Host header.
    let host = format!("Host: {fqdn}");
    let page = wait_for(
        "the page through the gateway",
        Duration::from_secs(30),
        || async { curl(None, "http://185.206.124.11/", &["-H", &host]) },
    )
    .await;
    assert_eq!(page, "web-on-node-2");
    grid.destroy("shop");
    assert_eq!(grid.active().await, []);
    assert!(rpc.contract_by_name("shop".into()).await.unwrap().is_none());
}
