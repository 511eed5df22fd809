//! The node agent end to end: a chain, a farm, and a real `zos` process with a virtual capacity that
//! registers itself and runs 0-db namespaces for contracts. A user deploys through the CLI and uses
//! the namespace with a redis client at the reported endpoint; over-commitment is refused naming the
//! resource; the agent restarts with its workloads kept, and so does the 0-db server; a cancel
//! leaves no namespace behind.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{Grid, ok, wait_for};
use tfchain_client::Client;
use tfchain_client::api::{BlockId, ContractView, TfchainApiClient};
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::types::ContractData;
use tfchain_runtime::{Call, Event, Transaction, balances};
use tfgrid_types::deployment::{Deployment, ResultData, ResultState, WorkloadResult};
use tfgrid_types::{Hash32, Keypair, UNITS_PER_TFT};
use zos::primitives::network::Networks;

const GIB: u64 = 1024 * 1024 * 1024;

/// The result the node reported for `workload` of `contract`, once it reported one.
pub async fn reported(client: &Client, contract: u64, workload: &str) -> WorkloadResult {
    wait_for(
        &format!("the node's report on {workload}"),
        Duration::from_secs(30),
        || async {
            let view: ContractView = client.rpc().contract(contract).await.ok()??;
            view.deployment_state?
                .workloads
                .into_iter()
                .find(|r| r.name == workload)
        },
    )
    .await
}

pub fn zdb_file(dir: &std::path::Path, name: &str, size: u64, password: &str) -> String {
    let path = dir.join(format!("{name}.json"));
    let file = json!({ "workloads": [{ "version": 0, "name": name, "type": "zdb",
        "data": { "size": size, "mode": "user", "password": { "plain": password } } }] });
    std::fs::write(&path, file.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

async fn namespace(
    port: u16,
    ns: &str,
    password: &str,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut con = client.get_multiplexed_async_connection().await?;
    redis::cmd("SELECT")
        .arg(ns)
        .arg(password)
        .query_async::<()>(&mut con)
        .await?;
    Ok(con)
}

#[tokio::test(flavor = "multi_thread")]
async fn zos_provisions_zdb_namespaces_from_contracts() {
    let grid = Grid::start(|spec| spec["block_time_ms"] = json!(200)).await;
    let (client, home) = (&grid.client, grid.home.path());
    let cli = |args: &[&str]| grid.cli(args);
    let data = tempfile::tempdir().unwrap();
    let seed = Hash32::of("zos test", b"node 1").0;
    let mut zos = grid
        .add_node(1, seed, "cru=4,mru=8G,sru=100G,hru=50G", data.path())
        .await;
    let node = client.rpc().node(1).await.unwrap().unwrap();
    assert_eq!(
        (node.node.id, node.node.farm_id, node.node.resources.hru),
        (1, 1, 50 * GIB)
    );

    // Deploy a 0-db namespace and use it at the reported endpoint, with its password.
    ok(cli(&["--key", "//Bob", "twin", "create"]));
    let started = Instant::now();
    ok(cli(&[
        "--key",
        "//Bob",
        "contract",
        "create",
        "--node",
        "1",
        &zdb_file(home, "db", 10 * GIB, "pw-1"),
    ]));
    let result = reported(client, 1, "db").await;
    let provision_time = started.elapsed();
    assert_eq!(
        result.state,
        ResultState::Ok,
        "{}\n{}",
        result.message,
        zos.log()
    );
    let ResultData::Zdb {
        namespace: ns,
        ips,
        port,
    } = result.data
    else {
        panic!("{result:?}")
    };
    assert_eq!(
        (ns.as_str(), ips),
        ("3-1-db", vec!["127.0.0.1".to_string()])
    );
    let mut con = namespace(port, &ns, "pw-1").await.unwrap();
    redis::cmd("SET")
        .arg("hello")
        .arg("grid")
        .query_async::<Vec<u8>>(&mut con)
        .await
        .unwrap();
    let value: String = redis::cmd("GET")
        .arg("hello")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, "grid");
    assert!(
        namespace(port, &ns, "wrong").await.is_err(),
        "a wrong password is refused"
    );
    // The node's own `default` namespace is not open to its network: a client without the admin
    // password cannot write it.
    let mut anyone = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let refused = redis::cmd("SET")
        .arg("filler")
        .arg("x")
        .query_async::<Vec<u8>>(&mut anyone)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("read-only") || refused.to_string().contains("protected"),
        "{refused}"
    );
    let view = client.rpc().contract(1).await.unwrap().unwrap();
    assert_eq!(
        view.resources.map(|r| r.hru),
        Some(10 * GIB),
        "the node reports what the contract uses"
    );

    // Latency from the block holding the contract to the block holding the node's report.
    let created_at = find_event_height(
        client,
        |e| matches!(e, Event::ContractCreated(c) if c.contract_id == 1),
    )
    .await;
    let reported_at = find_event_height(client, |e| {
        matches!(e, Event::DeploymentStateReported { contract_id: 1, .. })
    })
    .await;
    eprintln!(
        "provisioning: contract in block {created_at}, state report in block {reported_at} (200 ms blocks); CLI to report {provision_time:?}"
    );

    // A deployment that names a required co-signer who did not sign is refused by the chain, with
    // the reason, before any node sees it.
    let bob = Keypair::from_uri("//Bob").unwrap();
    let bob_twin = client
        .rpc()
        .twin_by_account(bob.account())
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut unsigned: Deployment = serde_json::from_value(json!({
        "version": 0, "twin_id": bob_twin,
        "signature_requirement": { "requests": [
            { "twin_id": bob_twin, "required": true, "weight": 1 },
            { "twin_id": 1, "required": true, "weight": 1 } ], "weight_required": 2 },
        "workloads": [{ "version": 0, "name": "x", "type": "zdb",
            "data": { "size": 1024, "mode": "user", "password": { "plain": "p" } } }] }))
    .unwrap();
    unsigned
        .seal_secrets(&node_key_account(client, 1).await, &mut rand::thread_rng())
        .unwrap();
    unsigned.sign(bob_twin, &bob);
    let refused = client
        .execute(
            &bob,
            Call::SmartContract(ScCall::CreateNodeContract {
                node_id: 1,
                deployment: unsigned,
            }),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("the signature of required twin 1 is missing"),
        "{refused}"
    );

    // Over-commitment is refused with the resource named: 50 GiB HDD, 10 used.
    ok(cli(&[
        "--key",
        "//Bob",
        "contract",
        "create",
        "--node",
        "1",
        &zdb_file(home, "big", 45 * GIB, "pw-2"),
    ]));
    let big = reported(client, 2, "big").await;
    assert_eq!(big.state, ResultState::Error);
    assert!(big.message.contains("not enough HDD"), "{}", big.message);

    // The agent restarts (SIGKILL): the namespace keeps its data and is reported again as running.
    zos.kill9();
    zos.restart();
    let mut con = namespace(port, &ns, "pw-1").await.unwrap();
    let value: String = redis::cmd("GET")
        .arg("hello")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, "grid");

    // The 0-db server dies (SIGKILL): the agent starts it again on its port, with its data.
    let zdb_pid = std::fs::read_to_string(data.path().join("zdb/pid")).unwrap();
    std::process::Command::new("kill")
        .args(["-9", zdb_pid.trim()])
        .status()
        .unwrap();
    let value: String = wait_for(
        "the 0-db server's return",
        Duration::from_secs(30),
        || async {
            let mut con = namespace(port, &ns, "pw-1").await.ok()?;
            redis::cmd("GET")
                .arg("hello")
                .query_async(&mut con)
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(value, "grid");

    // Cancel: the namespace is gone.
    ok(cli(&["--key", "//Bob", "contract", "cancel", "1"]));
    wait_for(
        "the namespace's removal",
        Duration::from_secs(30),
        || async { namespace(port, &ns, "pw-1").await.is_err().then_some(()) },
    )
    .await;
    let view = client.rpc().contract(2).await.unwrap().unwrap();
    assert!(matches!(
        view.contract.contract_type,
        ContractData::NodeContract(_)
    ));
}

/// The account of node `node_id`'s twin: what secrets are sealed to.
async fn node_key_account(client: &Client, node_id: u32) -> tfgrid_types::AccountId {
    let node = client.rpc().node(node_id).await.unwrap().unwrap();
    client
        .rpc()
        .twin(node.node.twin_id)
        .await
        .unwrap()
        .unwrap()
        .account_id
}

/// The height of the first block with an event matching `f`.
async fn find_event_height(client: &Client, f: impl Fn(&Event) -> bool) -> u64 {
    let head = client.rpc().status().await.unwrap().height;
    for height in 1..=head {
        let block = client
            .rpc()
            .block(BlockId::Height(height))
            .await
            .unwrap()
            .unwrap();
        if block.events.iter().any(|r| f(&r.event)) {
            return height;
        }
    }
    panic!("no such event up to block {head}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grace_period_pauses_and_top_up_resumes() {
    // Bills cover time up to the node's last uptime report: the node reports every 2 s.
    let grid = Grid::start(|spec| {
        spec["block_time_ms"] = json!(200);
        spec["genesis"]["params"]["billing_period_blocks"] = json!(5);
        spec["genesis"]["params"]["uptime_report_interval_s"] = json!(2);
    })
    .await;
    let (client, home) = (&grid.client, grid.home.path());
    let cli = |args: &[&str]| grid.cli(args);
    let alice = Keypair::from_uri("//Alice").unwrap();
    let data = tempfile::tempdir().unwrap();
    let seed = Hash32::of("zos test", b"node grace").0;
    let zos = grid
        .add_node(1, seed, "cru=4,mru=8G,sru=100G,hru=2T", data.path())
        .await;

    // A user with 1 TFT deploys a 1 TB 0-db (about 0.5 TFT an hour, billed every second).
    let user = Keypair::from_uri("//GraceUser").unwrap();
    fund(client, &user, UNITS_PER_TFT).await;
    ok(cli(&["--key", "//GraceUser", "twin", "create"]));
    let file = zdb_file(home, "db", 1024 * GIB, "pw");
    wait_for("the node", Duration::from_secs(30), || async {
        client.rpc().node(1).await.ok()?
    })
    .await;
    ok(cli(&[
        "--key",
        "//GraceUser",
        "contract",
        "create",
        "--node",
        "1",
        &file,
    ]));
    let result = reported(client, 1, "db").await;
    assert_eq!(
        result.state,
        ResultState::Ok,
        "{}\n{}",
        result.message,
        zos.log()
    );
    let ResultData::Zdb {
        namespace: ns,
        port,
        ..
    } = result.data
    else {
        panic!()
    };
    let write = |value: &'static str| {
        let ns = ns.clone();
        async move {
            let mut con = namespace(port, &ns, "pw").await?;
            redis::cmd("SET")
                .arg("k")
                .arg(value)
                .query_async::<Vec<u8>>(&mut con)
                .await
        }
    };
    write("before").await.unwrap();

    // The user spends everything: the next bill cannot be paid, the contract enters its grace
    // period, and the node pauses the namespace (read-only).
    spend_everything(client, &user, &alice).await;
    wait_for("the pause", Duration::from_secs(30), || async {
        write("paused").await.is_err().then_some(())
    })
    .await;
    wait_for("the paused report", Duration::from_secs(30), || async {
        (reported(client, 1, "db").await.state == ResultState::Paused).then_some(())
    })
    .await;

    // A top-up restores the contract at the next bill, and the node resumes the namespace.
    fund(client, &user, 10 * UNITS_PER_TFT).await;
    wait_for("the resume", Duration::from_secs(30), || async {
        write("after").await.ok()
    })
    .await;
    let mut con = namespace(port, &ns, "pw").await.unwrap();
    let value: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, "after");
}

fn drain_call(to: &Keypair, amount: u128) -> Call {
    Call::Balances(balances::Call::Transfer {
        dest: to.account(),
        amount,
    })
}

/// //Alice sends `amount` to `user`.
pub async fn fund(client: &Client, user: &Keypair, amount: u128) {
    let alice = Keypair::from_uri("//Alice").unwrap();
    client
        .execute(&alice, drain_call(user, amount))
        .await
        .unwrap();
}

/// `user` sends all it has, less the fee and a few seconds of bills, to `to`: its bills soon
/// cannot be paid. (The margin lets a bill land between reading the balance and spending it; if
/// more than that lands, it tries again.)
pub async fn spend_everything(client: &Client, user: &Keypair, to: &Keypair) {
    const MARGIN: u128 = UNITS_PER_TFT / 5000;
    let mut attempts = 0;
    loop {
        let free = client.rpc().account(user.account()).await.unwrap().free;
        let probe = Transaction {
            signer: user.account(),
            nonce: 0,
            call: drain_call(to, free),
        }
        .sign(user, &client.genesis_hash());
        let fee = client
            .rpc()
            .dry_run(format!("0x{}", hex::encode(probe.encode())))
            .await
            .unwrap()
            .fee;
        match client
            .execute(user, drain_call(to, free - fee - MARGIN))
            .await
        {
            Ok(_) => break,
            Err(e) if attempts < 10 && e.to_string().contains("insufficient funds") => {
                attempts += 1
            }
            Err(e) => panic!("draining the user: {e}"),
        }
    }
}

/// A process killed when the test ends.
pub struct Guard(pub std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A hub serving the busybox image, listening on `ip`: the hub (stopped when dropped), its
/// address, and the image's hash.
pub fn serve_busybox(grid: &Grid, ip: &str) -> (Guard, String, String) {
    let home = grid.home.path();
    let hub_dir = home.join("hub");
    let pushed: serde_json::Value = serde_json::from_str(&ok(grid.cli(&[
        "--json",
        "image",
        "push",
        busybox_image(home).to_str().unwrap(),
        "--hub-dir",
        hub_dir.to_str().unwrap(),
    ])))
    .unwrap();
    let addr = format!("{ip}:{}", testkit::free_port());
    let hub = Guard(
        std::process::Command::new(testkit::bin("tfgrid"))
            .args(["hub", "serve", "--dir", hub_dir.to_str().unwrap()])
            .args(["--listen", &addr])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    (hub, addr, pushed["hash"].as_str().unwrap().to_owned())
}

/// A busybox image (Debian's static busybox), as a tar archive.
pub fn busybox_image(dir: &std::path::Path) -> std::path::PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "tmp", "proc", "dev", "sys", "etc"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static is installed");
    for tool in ["sh", "sleep", "cat", "echo", "env", "ls", "head", "ping"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
    }
    let archive = dir.join("image.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-cf"])
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    archive
}

fn runc_status(data: &std::path::Path, id: &str) -> Option<(String, u64)> {
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(data.join("containers/.runc"))
        .args(["state", id])
        .output()
        .ok()?;
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((state["status"].as_str()?.to_owned(), state["pid"].as_u64()?))
}

#[tokio::test(flavor = "multi_thread")]
async fn zos_runs_containers_from_verified_images() {
    let grid = Grid::start(|spec| {
        spec["block_time_ms"] = json!(200);
        spec["genesis"]["params"]["uptime_report_interval_s"] = json!(2);
    })
    .await;
    let (client, home) = (&grid.client, grid.home.path());
    let cli = |args: &[&str]| grid.cli(args);

    // The image goes to a hub, named by its hash.
    let (_hub, hub_addr, hash) = serve_busybox(&grid, "127.0.0.1");

    let seed = Hash32::of("zos test", b"node containers").0;
    let data = tempfile::tempdir().unwrap();
    let zos = grid
        .add_node(1, seed, "cru=4,mru=8G,sru=100G,hru=50G", data.path())
        .await;
    ok(cli(&["--key", "//Bob", "twin", "create"]));

    let machine = |name: &str, image_hash: &str| {
        json!({ "version": 0, "name": name, "type": "zmachine", "data": {
            "flist": format!("http://{hub_addr}/{hash}.tar"), "flist_hash": image_hash,
            "network": { "interfaces": [{ "network": "net", "ip": "10.20.1.2" }] },
            "compute_capacity": { "cpu": 1, "memory": 268435456 },
            "mounts": [{ "name": "vol", "mountpoint": "/data" }],
            "entrypoint": "echo $GREETING > /tmp/greeting; echo $GREETING > /data/greeting; \
                head -c 100000000 /dev/zero > /data/big; echo $? > /data/fill-status; exec sleep 1000",
            "env": { "GREETING": { "plain": "hello grid" } } } })
    };
    let file = home.join("vm.json");
    let network = json!({ "version": 0, "name": "net", "type": "network", "data": {
        "ip_range": "10.20.0.0/16", "subnet": "10.20.1.0/24",
        "wireguard_private_key": { "plain": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" }, "wireguard_listen_port": 3000 } });
    let peer = json!({ "version": 0, "name": "peer", "type": "zmachine", "data": {
        "flist": format!("http://{hub_addr}/{hash}.tar"), "flist_hash": hash,
        "network": { "interfaces": [{ "network": "net", "ip": "10.20.1.3" }] },
        "compute_capacity": { "cpu": 1, "memory": 268435456 },
        "entrypoint": "ping -c 3 -W 5 10.20.1.2 > /tmp/ping; echo $? > /tmp/ping-status; exec sleep 1000" } });
    let volume = json!({ "version": 0, "name": "vol", "type": "volume", "data": { "size": 64 * 1024 * 1024 } });
    std::fs::write(
        &file,
        json!({ "workloads": [machine("web", &hash), volume.clone(), network.clone(), peer] })
            .to_string(),
    )
    .unwrap();
    ok(cli(&[
        "--key",
        "//Bob",
        "contract",
        "create",
        "--node",
        "1",
        file.to_str().unwrap(),
    ]));
    let result = reported(client, 1, "web").await;
    assert_eq!(
        result.state,
        ResultState::Ok,
        "{}\n{}",
        result.message,
        zos.log()
    );
    let id = "3-1-web";

    // Running, with its memory limit and its (sealed on chain, opened by the node) environment.
    let (status, pid) = runc_status(data.path(), id).expect("the container exists");
    assert_eq!(status, "running");
    assert_eq!(testkit::container_memory_limit(id), Some(268435456));
    let greeting = data
        .path()
        .join(format!("containers/{id}/rootfs/tmp/greeting"));
    let text = wait_for(
        "the entrypoint's output",
        Duration::from_secs(10),
        || async { std::fs::read_to_string(&greeting).ok() },
    )
    .await;
    assert_eq!(text, "hello grid\n");
    // The volume holds what the container wrote, and its size is enforced: 100 MB do not fit in 64 MiB.
    let volume_dir = data.path().join("volumes/3-1-vol/mnt");
    let status = wait_for("the fill attempt", Duration::from_secs(20), || async {
        std::fs::read_to_string(volume_dir.join("fill-status")).ok()
    })
    .await;
    assert_ne!(
        status.trim(),
        "0",
        "writing past the volume's size must fail"
    );
    assert!(std::fs::metadata(volume_dir.join("big")).unwrap().len() < 64 * 1024 * 1024);
    assert_eq!(
        std::fs::read_to_string(volume_dir.join("greeting")).unwrap(),
        "hello grid\n"
    );
    // The two machines share the network: the peer reaches the web machine at its address.
    let ping = data
        .path()
        .join("containers/3-1-peer/rootfs/tmp/ping-status");
    let ping_status = wait_for("the peer's ping", Duration::from_secs(30), || async {
        std::fs::read_to_string(&ping).ok()
    })
    .await;
    assert_eq!(
        ping_status.trim(),
        "0",
        "ping from 10.20.1.3 to 10.20.1.2 failed"
    );
    // Traffic between machines of one node never left it: two reports later, none was billed.
    let after = client
        .rpc()
        .node(1)
        .await
        .unwrap()
        .unwrap()
        .uptime
        .unwrap()
        .reported_at_s;
    wait_for("two more reports", Duration::from_secs(30), || async {
        let uptime = client.rpc().node(1).await.ok()??.uptime?;
        (uptime.reported_at_s >= after + 4).then_some(())
    })
    .await;
    let billing = client
        .rpc()
        .contract(1)
        .await
        .unwrap()
        .unwrap()
        .billing
        .unwrap();
    assert_eq!(
        billing.last_nru_report_s, 0,
        "no network usage: {billing:?}"
    );
    let result = reported(client, 1, "web").await;
    assert_eq!(
        result.data,
        ResultData::Zmachine {
            id: id.to_string(),
            ip: "10.20.1.2".into()
        }
    );

    // A container that exits is restarted.
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_for("the restart", Duration::from_secs(30), || async {
        runc_status(data.path(), id)
            .filter(|(s, p)| s == "running" && *p != pid)
            .map(|_| ())
    })
    .await;
    let restarted = wait_for("the restart's report", Duration::from_secs(30), || async {
        let r = reported(client, 1, "web").await;
        r.message.contains("restarted").then_some(r)
    })
    .await;
    assert_eq!(restarted.state, ResultState::Ok);

    // An image whose bytes do not match the deployment's hash is refused.
    let bad = home.join("bad.json");
    std::fs::write(
        &bad,
        json!({ "workloads": [machine("other", &"0".repeat(64)), volume, network] }).to_string(),
    )
    .unwrap();
    ok(cli(&[
        "--key",
        "//Bob",
        "contract",
        "create",
        "--node",
        "1",
        bad.to_str().unwrap(),
    ]));
    let refused = reported(client, 2, "other").await;
    assert_eq!(refused.state, ResultState::Error);
    assert!(
        refused.message.contains("the deployment expects"),
        "{}",
        refused.message
    );

    // Cancel: nothing left behind: no container, no mounts, no files.
    ok(cli(&["--key", "//Bob", "contract", "cancel", "1"]));
    let container_dir = data.path().join(format!("containers/{id}"));
    wait_for(
        "the container's removal",
        Duration::from_secs(30),
        || async { (!container_dir.exists()).then_some(()) },
    )
    .await;
    assert!(runc_status(data.path(), id).is_none());
    wait_for("the volume's removal", Duration::from_secs(30), || async {
        (!volume_dir.exists()).then_some(())
    })
    .await;
    ok(cli(&["--key", "//Bob", "contract", "cancel", "2"]));
    let other_volume = data.path().join("volumes/3-2-vol");
    wait_for(
        "the other volume's removal",
        Duration::from_secs(30),
        || async { (!other_volume.exists()).then_some(()) },
    )
    .await;
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(&*data.path().to_string_lossy()),
        "mounts left behind"
    );
    let networks = Networks::new(data.path());
    for ns in [
        networks.namespace("3-net"),
        networks.container("3-1-web"),
        networks.container("3-1-peer"),
    ] {
        assert!(
            !std::path::Path::new("/var/run/netns").join(&ns).exists(),
            "network namespace {ns} left behind"
        );
    }
    assert!(!testkit::container_cgroup_left(id), "cgroup left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_each_run_only_their_own_contracts() {
    let grid = Grid::start(|spec| spec["block_time_ms"] = json!(200)).await;
    let (client, home) = (&grid.client, grid.home.path());
    let cli = |args: &[&str]| grid.cli(args);
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut nodes = Vec::new();
    for (i, dir) in [&dir1, &dir2].into_iter().enumerate() {
        let seed = Hash32::of("zos test two nodes", &[i as u8]).0;
        nodes.push(
            grid.add_node(
                i as u32 + 1,
                seed,
                "cru=4,mru=8G,sru=100G,hru=50G",
                dir.path(),
            )
            .await,
        );
    }
    ok(cli(&["--key", "//Bob", "twin", "create"]));
    ok(cli(&[
        "--key",
        "//Bob",
        "contract",
        "create",
        "--node",
        "2",
        &zdb_file(home, "db", GIB, "pw"),
    ]));
    let result = reported(client, 1, "db").await;
    assert_eq!(result.state, ResultState::Ok, "{}", result.message);
    let ResultData::Zdb {
        namespace: ns,
        port,
        ..
    } = result.data
    else {
        panic!()
    };
    // Node 2 serves it; node 1 has no 0-db at all.
    assert!(namespace(port, &ns, "pw").await.is_ok());
    assert!(
        nodes[0].zdb_pid().is_none(),
        "node 1 started a 0-db for node 2's contract"
    );
    assert_eq!(
        std::fs::read_to_string(dir2.path().join("zdb/port"))
            .unwrap()
            .trim(),
        port.to_string()
    );
    // The chain restarts (SIGKILL): the agents reconnect and take new contracts.
    let mut grid = grid;
    grid.chain.kill9();
    grid.chain.restart().await;
    let client = grid.chain.client().await;
    let cli = |args: &[&str]| grid.cli(args);
    ok(cli(&[
        "--key",
        "//Bob",
        "contract",
        "create",
        "--node",
        "1",
        &zdb_file(grid.home.path(), "db2", GIB, "pw"),
    ]));
    let result = reported(&client, 2, "db2").await;
    assert_eq!(
        result.state,
        ResultState::Ok,
        "{}\n{}",
        result.message,
        nodes[0].log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn chain_and_nodes_in_network_namespaces() {
    // Separate hosts on a LAN of network namespaces; the test reaches them over its own leg.
    let mut lan = testkit::Lan::new().unwrap();
    let mut host = || lan.host().unwrap();
    let (chain_host, host1, host2) = (host(), host(), host());
    let grid = Grid::start_on(Some(chain_host.clone()), |spec| {
        spec["block_time_ms"] = json!(200)
    })
    .await;
    assert!(grid.chain.rpc_url().contains(&chain_host.ip));
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let capacity = "cru=4,mru=8G,sru=100G,hru=50G";
    let _node1 = grid
        .add_node_on(
            Some(host1),
            1,
            Hash32::of("lan", b"1").0,
            capacity,
            dir1.path(),
        )
        .await;
    let node2 = grid
        .add_node_on(
            Some(host2.clone()),
            2,
            Hash32::of("lan", b"2").0,
            capacity,
            dir2.path(),
        )
        .await;
    ok(grid.cli(&["--key", "//Bob", "twin", "create"]));
    ok(grid.cli(&[
        "--key",
        "//Bob",
        "contract",
        "create",
        "--node",
        "2",
        &zdb_file(grid.home.path(), "db", GIB, "pw"),
    ]));
    let result = reported(&grid.client, 1, "db").await;
    assert_eq!(
        result.state,
        ResultState::Ok,
        "{}\n{}",
        result.message,
        node2.log()
    );
    let ResultData::Zdb {
        namespace: ns,
        ips,
        port,
    } = result.data
    else {
        panic!()
    };
    // The namespace is served at node 2's own address on the LAN.
    assert_eq!(ips, vec![host2.ip.clone()]);
    let client = redis::Client::open(format!("redis://{}:{port}/", host2.ip)).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SELECT")
        .arg(&ns)
        .arg("pw")
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg("over the lan")
        .query_async::<Vec<u8>>(&mut con)
        .await
        .unwrap();
    let value: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, "over the lan");
}

/// A node whose report was lost (the chain killed after the node installed the deployment, before
/// a block held the report) sends it again once the chain is back: an installed deployment is not
/// left unreported because the node had already recorded it.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_report_is_sent_again_after_a_chain_restart() {
    // Long blocks: the report waits in the pool for a block when the chain is killed.
    let mut grid = Grid::start(|spec| spec["block_time_ms"] = json!(3000)).await;
    let home = grid.home.path().to_path_buf();
    let data = tempfile::tempdir().unwrap();
    let seed = Hash32::of("zos test", b"lost report").0;
    let zos = grid
        .add_node(1, seed, "cru=4,mru=8G,sru=100G,hru=50G", data.path())
        .await;
    ok(grid.cli(&["--key", "//Bob", "twin", "create"]));
    let file = zdb_file(&home, "db", GIB, "pw");
    ok(grid.cli(&["--key", "//Bob", "contract", "create", "--node", "1", &file]));
    wait_for("the node to provision", Duration::from_secs(30), || async {
        zos.log().contains("provisioned").then_some(())
    })
    .await;
    grid.chain.kill9();
    grid.chain.restart().await;
    let client = grid.chain.client().await;
    let result = reported(&client, 1, "db").await;
    assert_eq!(
        result.state,
        ResultState::Ok,
        "{}\n{}",
        result.message,
        zos.log()
    );
}
