//! The grid as a newcomer and a user meet it, through the real binaries: `tfgrid up --demo` brings
//! up a whole grid of three nodes, the last hidden behind a NAT router (no public config, a farm
//! without public IPs), and deploys the demo over two nodes (node 1's gateway name serving node 2's
//! container over the project's private network); a container on the hidden node is served by node
//! 1's gateway likewise; then a deployment file is
//! applied, used (the container serves, the 0-db stores), changed (more memory, a second 0-db, a
//! gateway name), made to fail in every way the issue names (malformed file, no node with room,
//! insufficient funds, a node that stops answering, a gateway name someone else holds) without
//! leaving anything, and destroyed; Ctrl-C then stops and cleans up everything. `tfgrid up
//! --validators 4` runs the chain as four validators, and the grid goes on with one of them killed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use testkit::{LocalGrid, fails, ok};
use zos::primitives::network::Networks;

/// Bob's twin: Alice's is 1, Bob's 2 (`up` creates both), the nodes' 3 to 5.
const BOB: u32 = 2;

struct Env<'a> {
    grid: &'a LocalGrid,
    work: PathBuf,
}

impl Env<'_> {
    /// `tfgrid` as `key`, from the work directory (where the state files go).
    fn cli_as(&self, key: &str, args: &[&str]) -> Output {
        self.grid.cli(&self.work, key).args(args).output().unwrap()
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cli_as("//Bob", args)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&ok(self.cli(&all))).unwrap()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.work.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", "-m", "3", &format!("{}{path}", self.grid.explorer)])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    /// Bob's active contracts on the chain.
    /// //Bob's active node contracts.
    fn contracts(&self) -> Vec<u64> {
        let list = self.json(&["contract", "list"]);
        let nodes = list.as_array().unwrap().iter();
        nodes
            .filter(|c| c["contract_type"].get("NodeContract").is_some())
            .map(|c| c["contract_id"].as_u64().unwrap())
            .collect()
    }
}

fn wait(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn app(memory: &str, extra: &str) -> String {
    format!(
        r#"name = "app"

[[container]]
name = "web"
image = "demo"
memory = "{memory}"
public_ip = true
entrypoint = "echo $GREETING > /tmp/index.html; exec httpd -f -p 80 -h /tmp"
env = {{ GREETING = "served by app" }}

[[zdb]]
name = "db"
size = "1 GiB"
password = "app-secret"
{extra}"#
    )
}

/// The web page a container serves in its private network, as seen from inside that network, once
/// it answers (or nothing, after 30 s).
fn fetch(namespace: &str, ip: &str) -> String {
    // A container reported ok has started; its server may take a moment more to listen.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("ip")
            .args(["netns", "exec", namespace, "curl", "-s", "-m", "3"])
            .arg(format!("http://{ip}/"))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if !body.is_empty() || Instant::now() > deadline {
            return body;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// What the gateway at `ip` answers for `fqdn` (status line's code and body), over HTTP or HTTPS
/// (its certificate is self-signed: not checked).
fn through_gateway(fqdn: &str, ip: &str, https: bool) -> (String, String) {
    let (scheme, port) = if https { ("https", 443) } else { ("http", 80) };
    let out = Command::new("curl")
        .args(["-s", "-k", "-m", "5", "-w", "\n%{http_code}", "--resolve"])
        .arg(format!("{fqdn}:{port}:{ip}"))
        .arg(format!("{scheme}://{fqdn}/"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_owned(), body.to_owned())
}

fn zdb(result: &serde_json::Value) -> redis::Connection {
    let data = &result["data"]["zdb"];
    let addr = format!(
        "redis://{}:{}/",
        data["ips"][0].as_str().unwrap(),
        data["port"]
    );
    let mut con = redis::Client::open(addr).unwrap().get_connection().unwrap();
    redis::cmd("SELECT")
        .arg(data["namespace"].as_str().unwrap())
        .arg("app-secret")
        .query::<String>(&mut con)
        .unwrap();
    con
}

fn result<'a>(applied: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let all = applied["workloads"].as_array().unwrap();
    let found = all.iter().find(|w| w["name"] == name);
    found.unwrap_or_else(|| panic!("no result for {name} in {applied}"))
}

/// The PID of the node agent `up` started with `dir` as its data directory.
fn node_pid(dir: &Path) -> u32 {
    let wanted = format!("--data-dir\0{}\0", dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("zos\0") && c.contains(&wanted)
            })
        })
        .expect("the node agent runs")
}

fn signal(pid: u32, sig: &str) {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
}

/// What `up` printed: three nodes, the last hidden, and the demo over nodes 1 and 2, its gateway
/// name answering at node 1 with node 2's page (HTTP and HTTPS). Returns the nodes' LAN (`up`'s
/// own address on it).
fn the_grid_and_its_demo(output: &str) -> String {
    for expected in [
        "nodes    1 to 3",
        "public   nodes 1 and 2",
        "hidden   node 3 at 192.168.",
        "farm     2 \"home-farm\" of //Alice, no public IPs: node 3",
        // The demo over two nodes; the name contract of its gateway name is 1.
        "demo applied in",
        "on 2 nodes",
        "contract 2 on node 1 (",
        "contract 3 on node 2 (",
        "private address 10.20.2.2",
        "node 1's gateway, proxying over the project's private network to the container on node 2",
    ] {
        assert!(
            output.contains(expected),
            "missing {expected:?} in:\n{output}"
        );
    }
    // As root, every node is a host of its own on a LAN, which goes away with the grid.
    let lan = output
        .split_once("network namespace) on ")
        .and_then(|(_, rest)| rest.split_once("/24"))
        .map(|(here, _)| here.to_owned())
        .expect("the nodes' LAN in the output");
    // The demo's web server under its gateway name, on the public address of node 1, whose gateway
    // reaches the container on node 2 over the project's network.
    let (fqdn, gateway_ip) = output
        .split_once("curl --resolve ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|spec| {
            let mut parts = spec.split(':');
            Some((parts.next()?.to_owned(), parts.nth(1)?.to_owned()))
        })
        .expect("the demo's gateway in the output");
    assert_eq!(
        (fqdn.as_str(), gateway_ip.as_str()),
        ("demo.node1.grid.local", "185.206.122.101")
    );
    for https in [false, true] {
        assert_eq!(
            through_gateway(&fqdn, &gateway_ip, https),
            ("200".into(), "hello from the grid\n".into()),
            "https: {https}"
        );
    }
    lan
}

/// Nodes 1 and 2 are public (a public config on the chain); node 3 is hidden, in the home farm.
/// The demo's contracts, one on each of its two nodes.
fn nodes_and_the_demos_contracts(env: &Env) {
    for (node, public, farm) in [(1, true, 1), (2, true, 1), (3, false, 2)] {
        let shown = env.json(&["node", "show", &node.to_string()]);
        assert_eq!(shown["public_config"].is_object(), public, "{shown}");
        assert_eq!(shown["farm_id"], farm, "{shown}");
    }
    // The demo was applied from another directory: its contracts are found by their tag on the
    // chain, one on each of its two nodes.
    let demo_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo.toml");
    let status = env.json(&["status", demo_file]);
    let on: Vec<(u64, u64)> = status["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let contract = &c["contract"];
            let node = &contract["contract_type"]["NodeContract"]["node_id"];
            (
                contract["contract_id"].as_u64().unwrap(),
                node.as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(on, [(2, 1), (3, 2)], "{status}");
    assert_eq!(env.contracts(), [2, 3]);
}

/// A container on the hidden node served by a public node's gateway: the hidden node reports no
/// WireGuard endpoint, and node 1, its access node, reaches the container over the network.
fn a_hidden_container_behind_a_public_gateway(env: &Env) {
    let far = env.file(
        "far.toml",
        "name = \"far\"\n[node]\nid = 1\n\n[[container]]\nname = \"web\"\nimage = \"demo\"\n\
         memory = \"256 MiB\"\nnode = 3\nentrypoint = \"echo behind a router > /tmp/index.html; \
         exec httpd -f -p 80 -h /tmp\"\n\n[[gateway]]\nname = \"far\"\nbackend = \"web:80\"\n",
    );
    let applied = env.json(&["apply", &far]);
    let hidden = applied["contracts"].as_array().unwrap().iter();
    let hidden = hidden
        .flat_map(|c| {
            c["workloads"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |w| (c, w))
        })
        .find(|(c, w)| c["node_id"] == 3 && w["name"] == "far_net")
        .map(|(_, w)| w["data"]["network"]["endpoint"].clone());
    assert_eq!(hidden, Some("".into()), "{applied}");
    let far_fqdn = result(&applied, "far_gw")["data"]["gateway-name-proxy"]["fqdn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        through_gateway(&far_fqdn, "185.206.122.101", false),
        ("200".into(), "behind a router\n".into())
    );
    ok(env.cli(&["destroy", &far]));
    assert_eq!(env.contracts(), [2, 3]);
}

#[test]
fn up_apply_change_fail_destroy_and_ctrl_c() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // Dropped before `data`: a failing test still stops the grid while its records exist.
    let mut up = LocalGrid::start(3, true, data.path());
    let lan = the_grid_and_its_demo(&up.output);
    let env = Env {
        grid: &up,
        work: work.path().to_owned(),
    };
    nodes_and_the_demos_contracts(&env);
    a_hidden_container_behind_a_public_gateway(&env);

    // Apply a container and a 0-db, and use them.
    let file = env.file("app.toml", &app("256 MiB", ""));
    let plan = ok(env.cli(&["plan", &file]));
    assert!(
        plan.contains("create") && plan.contains("TFT an hour"),
        "{plan}"
    );
    let applied = env.json(&["apply", &file]);
    let contract = applied["contract_id"].as_u64().unwrap();
    assert_eq!(applied["version"], 0);
    let web_ip = result(&applied, "web")["data"]["zmachine"]["ip"]
        .as_str()
        .unwrap()
        .to_owned();
    let node_dir = |id: &serde_json::Value| data.path().join(format!("node{id}"));
    let net = Networks::new(&node_dir(&applied["node_id"])).namespace(&format!("{BOB}-app_net"));
    assert_eq!(fetch(&net, &web_ip), "served by app\n");
    // And on its public IP, the farm's first free one, from outside the node.
    let public = result(&applied, "web_ip")["data"]["ip"]["ip"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(public, "185.206.122.33/24");
    let public_page = |ip: &str| {
        let out = Command::new("curl")
            .args(["-s", "-m", "3", &format!("http://{ip}/")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(public_page("185.206.122.33"), "served by app\n");
    let db_ip = result(&applied, "db")["data"]["zdb"]["ips"][0]
        .as_str()
        .unwrap();
    assert_eq!(
        db_ip.rsplit_once('.').map(|(net, _)| net),
        lan.rsplit_once('.').map(|(net, _)| net),
        "the 0-db listens on its node's LAN address"
    );
    let mut db = zdb(result(&applied, "db"));
    redis::cmd("SET")
        .arg("greeting")
        .arg("kept across updates")
        .query::<Vec<u8>>(&mut db)
        .unwrap();
    assert!(work.path().join(".tfgrid/app.json").exists());

    // Change it: more memory (the container is replaced), a second 0-db (the first keeps its
    // data), and the web server under a gateway name.
    let changed = env.file(
        "app.toml",
        &app(
            "512 MiB",
            "\n[[zdb]]\nname = \"db2\"\nsize = \"2 GiB\"\nmode = \"seq\"\npassword = \"app-secret\"\n\
             \n[[gateway]]\nname = \"app-web\"\nbackend = \"web:80\"\n",
        ),
    );
    let plan = ok(env.cli(&["plan", &changed]));
    for expected in [
        "replace",
        "unchanged",
        "create",
        "(now ",
        "gateway name \"app-web\": create",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in:\n{plan}");
    }
    let applied = env.json(&["apply", &changed]);
    assert_eq!(applied["contract_id"].as_u64(), Some(contract));
    assert_eq!(applied["version"], 2);
    assert_eq!(
        testkit::container_memory_limit(&format!("{BOB}-{contract}-web")),
        Some(512 << 20)
    );
    assert_eq!(fetch(&net, &web_ip), "served by app\n");
    assert_eq!(public_page("185.206.122.33"), "served by app\n");
    let value: String = redis::cmd("GET")
        .arg("greeting")
        .query(&mut zdb(result(&applied, "db")))
        .unwrap();
    assert_eq!(value, "kept across updates");
    let app_fqdn = result(&applied, "app_web_gw")["data"]["gateway-name-proxy"]["fqdn"]
        .as_str()
        .unwrap()
        .to_owned();
    let app_gateway = format!("185.206.122.{}", 100 + applied["node_id"].as_u64().unwrap());
    assert_eq!(
        through_gateway(&app_fqdn, &app_gateway, false),
        ("200".into(), "served by app\n".into())
    );
    // The gateway dies (SIGKILL): the node starts it again and the name answers again.
    let gateway_pid =
        std::fs::read_to_string(node_dir(&applied["node_id"]).join("gateway/pid")).unwrap();
    signal(gateway_pid.trim().parse().unwrap(), "-KILL");
    wait("the gateway's return", Duration::from_secs(30), || {
        through_gateway(&app_fqdn, &app_gateway, false).1 == "served by app\n"
    });
    let name_contract = |name: &str| {
        let all = env.json(&["contract", "list"]);
        all.as_array().unwrap().iter().find_map(|c| {
            (c["contract_type"]["NameContract"]["name"] == name).then(|| c["contract_id"].clone())
        })
    };
    assert!(name_contract("app-web").is_some(), "no name contract");
    let mut db2 = zdb(result(&applied, "db2"));
    // A sequential namespace names what it stores.
    let id: Vec<u8> = redis::cmd("SET").arg("").arg("x").query(&mut db2).unwrap();
    let stored: String = redis::cmd("GET").arg(&id).query(&mut db2).unwrap();
    assert_eq!(stored, "x");
    // Applying again changes nothing; a changed secret alone (sealed on the chain) is seen too.
    let again = ok(env.cli(&["plan", &changed]));
    assert!(again.contains("nothing to change"), "{again}");
    let text = std::fs::read_to_string(&changed).unwrap();
    let regreeted = env.file(
        "regreet.toml",
        &text.replace("served by app", "served anew"),
    );
    let plan = ok(env.cli(&["plan", &regreeted]));
    let row = |name: &str| {
        let line = plan.lines().find(|l| l.contains(&format!("│ {name} ")));
        line.unwrap_or_else(|| panic!("no row for {name} in:\n{plan}"))
            .to_owned()
    };
    assert!(row("web").contains("replace"), "{plan}");
    assert!(row("db").contains("unchanged"), "{plan}");

    // A malformed file: the line and column of the mistake, nothing created.
    let bad = env.file(
        "bad.toml",
        "name = \"bad\"\n\n[[zdb]]\nname = \"db\"\nsize = \"lots\"\npassword = \"p\"\n",
    );
    fails(env.cli(&["apply", &bad]), "line 5, column 8");
    // No node with room: said with what was asked, nothing created.
    let huge = env.file(
        "huge.toml",
        &app("64 GiB", "").replace("\"app\"", "\"huge\""),
    );
    fails(
        env.cli(&["apply", &huge]),
        "no node can take huge: it needs 1 cpu, 64 GiB memory",
    );
    // Insufficient funds: an account with a twin and a hundredth of a TFT, less than an hour of the app.
    ok(env.cli_as("//Alice", &["transfer", "//Poor", "0.01"]));
    ok(env.cli_as("//Poor", &["twin", "create"]));
    let poor = env.file(
        "poor.toml",
        &app("256 MiB", "").replace("\"app\"", "\"poor\""),
    );
    fails(
        env.cli_as("//Poor", &["apply", &poor]),
        "insufficient funds",
    );
    let poor_contracts = env.cli_as("//Poor", &["--json", "contract", "list"]);
    assert_eq!(ok(poor_contracts).trim(), "[]");
    // A gateway name another twin holds.
    let taken = env.file(
        "taken.toml",
        &app(
            "256 MiB",
            "\n[[gateway]]\nname = \"demo\"\nbackend = \"web:80\"\n",
        )
        .replace("\"app\"", "\"taken\""),
    );
    fails(
        env.cli_as("//Alice", &["apply", &taken]),
        "the gateway name \"demo\" is held by twin 2",
    );
    // A node that stops answering mid-apply: the apply says so and cancels what it created.
    let node1 = node_pid(&data.path().join("node1"));
    signal(node1, "-STOP");
    let stuck = env.file(
        "stuck.toml",
        "name = \"stuck\"\n[node]\nid = 1\n[[zdb]]\nname = \"db\"\nsize = \"1 GiB\"\npassword = \"p\"\n",
    );
    let out = env.cli(&["apply", "--timeout", "4", &stuck]);
    signal(node1, "-CONT");
    fails(out, "node 1 did not report version 0");
    let out = env.cli(&["apply", "--timeout", "4", &stuck]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(env.cli(&["destroy", &stuck]));
    let active = env.contracts();
    assert_eq!(active, [2, 3, contract], "only the demo and the app remain");

    // A gateway name whose name contract ends is no longer served, and the node says why.
    let name_id = name_contract("app-web").expect("the name contract");
    ok(env.cli(&["contract", "cancel", &name_id.to_string()]));
    wait(
        "the gateway to stop serving",
        Duration::from_secs(30),
        || through_gateway(&app_fqdn, &app_gateway, false).0 == "404",
    );
    wait("the node's word on it", Duration::from_secs(30), || {
        ok(env.cli(&["status", &changed])).contains("the name contract of \"app-web\" has ended")
    });

    // Destroy: the chain, the explorer and the node hold nothing of it.
    let out = ok(env.cli(&["destroy", &changed]));
    assert!(
        out.contains(&format!("contract {contract} canceled")),
        "{out}"
    );
    assert_eq!(env.contracts(), [2, 3]);
    assert!(!work.path().join(".tfgrid/app.json").exists());
    wait(
        "the explorer's view of the deletion",
        Duration::from_secs(30),
        || env.get(&format!("/contracts/{contract}"))["state"] == "Deleted",
    );
    wait("the public IP's release", Duration::from_secs(30), || {
        env.get("/farms")[0]["free_ips"] == 3
    });
    assert_eq!(public_page("185.206.122.33"), "");
    assert!(
        name_contract("app-web").is_none(),
        "the name contract is left"
    );
    let (code, body) = through_gateway(&app_fqdn, &app_gateway, false);
    assert_eq!(code, "404", "{body}");
    wait("the node's cleanup", Duration::from_secs(30), || {
        !Path::new("/var/run/netns").join(&net).exists()
            && !testkit::container_cgroup_left(&format!("{BOB}-{contract}-web"))
    });
    let gone = redis::Client::open(format!(
        "redis://{}:{}/",
        result(&applied, "db")["data"]["zdb"]["ips"][0]
            .as_str()
            .unwrap(),
        result(&applied, "db")["data"]["zdb"]["port"]
    ))
    .unwrap()
    .get_connection()
    .and_then(|mut c| {
        redis::cmd("SELECT")
            .arg(format!("{BOB}-{contract}-db"))
            .arg("app-secret")
            .query::<String>(&mut c)
    });
    assert!(gone.is_err(), "the 0-db namespace is still there");
    let status = ok(env.cli(&["status", &changed]));
    assert!(status.contains("app is not deployed"), "{status}");

    // Farmers see their farm's nodes.
    let farm = ok(env.cli_as("//Alice", &["farm", "nodes", "local-farm"]));
    assert!(farm.contains("2 nodes") && farm.contains("up"), "{farm}");

    // Ctrl-C: everything stops and nothing is left behind.
    drop(env);
    assert!(up.stop(), "tfgrid up did not exit cleanly");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(&*data.path().to_string_lossy()),
        "mounts left behind"
    );
    // The demo's network on both its nodes, and its container on node 2.
    let node = |id: u32| Networks::new(&data.path().join(format!("node{id}")));
    for ns in [
        node(1).namespace(&format!("{BOB}-demo_net")),
        node(2).namespace(&format!("{BOB}-demo_net")),
        node(2).container(&format!("{BOB}-3-web")),
    ] {
        assert!(
            !Path::new("/var/run/netns").join(&ns).exists(),
            "network namespace {ns} left behind"
        );
    }
    let addresses = Command::new("ip").args(["-br", "addr"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&addresses.stdout).contains(&format!("{lan}/24")),
        "the nodes' LAN is left behind"
    );
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains(&*data.path().to_string_lossy()),
        "processes left behind"
    );
}

/// //Poor's free balance, in units.
fn poor_balance(env: &Env) -> u128 {
    let view = env.json(&["balance", "//Poor"]);
    view["free"].as_str().unwrap().parse().unwrap()
}

/// `tfgrid up --validators 4 --nodes 1`: four validators, each a host of its own, named with their
/// addresses; the CLI works through the endpoints `up` printed. With //Alice's validator killed
/// (the first endpoint, which every client connected to first) blocks are still decided, a
/// transfer is final, and a 0-db is deployed through the explorer onto the node, both following
/// the chain through another validator. Ctrl-C stops every validator.
#[test]
fn four_validators_keep_the_grid_going_with_one_killed() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut up = LocalGrid::start_with_validators(1, 4, data.path());
    let endpoints: Vec<&str> = up.rpc.split(',').collect();
    assert_eq!(endpoints.len(), 4, "{}", up.output);
    assert!(
        up.output
            .contains("chain    4 validators under Tendermint BFT"),
        "{}",
        up.output
    );
    for (name, url) in ["//Alice", "//Bob", "//Charlie", "//Dave"]
        .iter()
        .zip(&endpoints)
    {
        let line = format!("{name:<9} {url} (pid ");
        assert!(
            up.output.contains(&line),
            "missing {line:?} in:\n{}",
            up.output
        );
    }
    let env_file = std::fs::read_to_string(data.path().join("env")).unwrap();
    assert!(
        env_file.contains(&format!("TFGRID_RPC={} ", up.rpc)),
        "{env_file}"
    );
    let env = Env {
        grid: &up,
        work: work.path().to_owned(),
    };
    ok(env.cli_as("//Alice", &["transfer", "//Poor", "1"]));
    let once = poor_balance(&env);
    assert_eq!(once, tfgrid_types::UNITS_PER_TFT);

    let pid = |name: &str| -> u32 {
        let file = data.path().join(format!("run/tfchain-{name}.pid"));
        std::fs::read_to_string(file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    signal(pid("alice"), "-KILL");
    let height = || env.json(&["chain", "status"])["height"].as_u64().unwrap();
    let before = height();
    wait(
        "blocks decided without //Alice",
        Duration::from_secs(60),
        || height() >= before + 3,
    );
    ok(env.cli_as("//Alice", &["transfer", "//Poor", "1"]));
    assert_eq!(poor_balance(&env), 2 * once);
    let db = env.file(
        "db.toml",
        "name = \"db\"\n[[zdb]]\nname = \"db\"\nsize = \"1 GiB\"\npassword = \"p\"\n",
    );
    let applied = env.json(&["apply", &db]);
    assert_eq!(applied["node_id"], 1, "{applied}");
    ok(env.cli(&["destroy", &db]));

    let pids: Vec<u32> = ["alice", "bob", "charlie", "dave"].map(pid).into();
    drop(env);
    assert!(up.stop(), "tfgrid up did not exit cleanly");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "validator {pid} is left running"
        );
    }
    let left = std::fs::read_dir(data.path().join("run")).unwrap().count();
    assert_eq!(left, 0, "PID files left behind");
}
