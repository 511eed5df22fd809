//! `tfgrid up`: a whole grid on this machine with one command — a dev chain, the explorer with its
//! dashboard, an image hub with a demo image, a farm, and N node agents with virtual capacity, each
//! with its own data — and with `--demo`, a deployment of a 0-db namespace and a container on it.
//! Ctrl-C stops everything it started (by the PIDs it started).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tfchain_client::Client;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::tfgrid::Call as GridCall;
use tfchain_runtime::{Call, Event, balances};
use tfgrid_types::deployment::{Deployment, ResultState, Workload};
use tfgrid_types::{Hash32, Keypair, UNITS_PER_TFT};

const CAPACITY: &str = "cru=4,mru=8G,sru=100G,hru=100G";

/// The processes `up` started, stopped by PID when it ends.
struct Started {
    children: Vec<(String, Child)>,
    node_dirs: Vec<PathBuf>,
}

impl Drop for Started {
    fn drop(&mut self) {
        for (name, child) in self.children.iter_mut().rev() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
            eprintln!("stopped {name}");
        }
        // What the nodes run outlives their agents (as on a real node): tear it down.
        if let Ok(zos) = sibling("zos") {
            for dir in &self.node_dirs {
                let _ = Command::new(&zos)
                    .arg("--teardown")
                    .arg("--data-dir")
                    .arg(dir)
                    .status();
            }
        }
    }
}

fn sibling(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing: build the workspace's binaries (cargo build --bins)",
            path.display()
        );
    }
    Ok(path)
}

fn spawn(started: &mut Started, name: &str, logs: &Path, cmd: &mut Command) -> Result<()> {
    let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    started.children.push((name.to_owned(), child));
    Ok(())
}

async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {timeout:?}: see the logs");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds the demo image from Debian's static busybox, if it is installed.
fn demo_image(dir: &Path) -> Result<Option<PathBuf>> {
    let busybox = Path::new("/usr/bin/busybox");
    if !busybox.exists() {
        return Ok(None);
    }
    let root = dir.join("demo-rootfs");
    for sub in ["bin", "tmp", "proc", "dev", "sys", "etc"] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    std::fs::copy(busybox, root.join("bin/busybox"))?;
    for tool in ["sh", "sleep", "cat", "echo", "ls", "httpd", "ping", "wget"] {
        let link = root.join("bin").join(tool);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    let archive = dir.join("demo.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()?;
    if !status.success() {
        bail!("tar failed to pack the demo image");
    }
    Ok(Some(archive))
}

pub async fn up(
    nodes: u32,
    dir: PathBuf,
    demo: bool,
    rpc_port: u16,
    hub_port: u16,
    explorer_port: u16,
) -> Result<()> {
    let rpc = format!("ws://127.0.0.1:{rpc_port}");
    let hub = format!("127.0.0.1:{hub_port}");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut started = Started {
        children: Vec::new(),
        node_dirs: Vec::new(),
    };

    eprintln!("starting the chain...");
    spawn(
        &mut started,
        "tfchain",
        &logs,
        Command::new(sibling("tfchain")?)
            .args([
                "--dev",
                "--rpc-addr",
                &format!("127.0.0.1:{rpc_port}"),
                "--base-path",
            ])
            .arg(dir.join("chain")),
    )?;
    let client = wait_until(
        &format!("the chain's start (is port {rpc_port} taken?)"),
        Duration::from_secs(30),
        || async { Client::connect(&rpc).await.ok() },
    )
    .await?;

    let hub_dir = dir.join("hub");
    std::fs::create_dir_all(&hub_dir)?;
    let image = match demo_image(&dir)? {
        Some(archive) => Some(crate::hub::push(&archive, &hub_dir)?),
        None => None,
    };
    spawn(
        &mut started,
        "hub",
        &logs,
        Command::new(std::env::current_exe()?)
            .args(["hub", "serve", "--listen", &hub, "--dir"])
            .arg(&hub_dir),
    )?;

    let explorer = format!("127.0.0.1:{explorer_port}");
    spawn(
        &mut started,
        "gridproxy",
        &logs,
        Command::new(sibling("gridproxy")?)
            .args(["--chain", &rpc, "--listen", &explorer, "--data-dir"])
            .arg(dir.join("gridproxy")),
    )?;

    eprintln!("creating the farm...");
    let alice = Keypair::from_uri("//Alice")?;
    let tc = GridCall::UserAcceptTc {
        document_link: "https://grid.tf/terms".into(),
        document_hash: "local".into(),
    };
    client.execute(&alice, Call::Tfgrid(tc)).await?;
    client
        .execute(
            &alice,
            Call::Tfgrid(GridCall::CreateTwin {
                relay: None,
                pk: None,
            }),
        )
        .await?;
    client
        .execute(
            &alice,
            Call::Tfgrid(GridCall::CreateFarm {
                name: "local-farm".into(),
                public_ips: vec![],
            }),
        )
        .await?;

    for n in 1..=nodes {
        eprintln!("starting node {n}...");
        let seed = Hash32::of("tfgrid up node", &n.to_le_bytes()).0;
        let node_dir = dir.join(format!("node{n}"));
        std::fs::create_dir_all(node_dir.join("identity"))?;
        std::fs::write(node_dir.join("identity/seed"), seed)?;
        let fund = balances::Call::Transfer {
            dest: Keypair::from_seed(seed).account(),
            amount: UNITS_PER_TFT,
        };
        client.execute(&alice, Call::Balances(fund)).await?;
        spawn(
            &mut started,
            &format!("node{n}"),
            &logs,
            Command::new(sibling("zos")?)
                .args([
                    "--chain",
                    &rpc,
                    "--farm",
                    "1",
                    "--capacity",
                    CAPACITY,
                    "--data-dir",
                ])
                .arg(&node_dir),
        )?;
        started.node_dirs.push(node_dir);
        wait_until(
            &format!("node {n}'s registration"),
            Duration::from_secs(60),
            || async { client.rpc().node(n).await.ok()? },
        )
        .await?;
    }

    println!("\nlocal grid up:");
    println!("  chain    {rpc} (dev chain, 1 s blocks; http:// works too)");
    match &image {
        Some(p) => println!(
            "  hub      http://{hub}  demo image http://{hub}/{} (flist_hash {})",
            p.file, p.hash
        ),
        None => println!("  hub      http://{hub}  (no demo image: install busybox-static)"),
    }
    println!(
        "  explorer http://{explorer}/  (dashboard; REST API: /nodes, /farms, /contracts, ...; /openapi.json)"
    );
    println!("  farm     1 \"local-farm\" of //Alice (the dev council)");
    println!("  nodes    1 to {nodes}, each {CAPACITY}");
    println!("  accounts //Alice, //Bob, //Charlie, //Dave, //Eve, //Ferdie (funded)");
    println!("  logs     {}", logs.display());

    if demo {
        run_demo(
            &client,
            image
                .as_ref()
                .map(|p| (format!("http://{hub}/{}", p.file), p.hash.clone())),
        )
        .await?;
    }
    println!(
        "\nTry: tfgrid --rpc {rpc} --key //Bob contract list; tfgrid --rpc {rpc} node list. Ctrl-C stops the grid."
    );
    tokio::signal::ctrl_c().await?;
    drop(started);
    Ok(())
}

/// Deploys a 0-db namespace and (with the demo image) a container on node 1 as //Bob.
async fn run_demo(client: &Client, image: Option<(String, String)>) -> Result<()> {
    eprintln!("\ndeploying the demo as //Bob on node 1...");
    let bob = Keypair::from_uri("//Bob")?;
    let tc = GridCall::UserAcceptTc {
        document_link: "https://grid.tf/terms".into(),
        document_hash: "local".into(),
    };
    client.execute(&bob, Call::Tfgrid(tc)).await?;
    client
        .execute(
            &bob,
            Call::Tfgrid(GridCall::CreateTwin {
                relay: None,
                pk: None,
            }),
        )
        .await?;
    let twin = client
        .rpc()
        .twin_by_account(bob.account())
        .await?
        .context("Bob's twin")?
        .id;
    let mut workloads = vec![
        serde_json::json!({ "version": 0, "name": "db", "type": "zdb",
        "data": { "size": 1u64 << 30, "mode": "user", "password": { "plain": "demo-password" } } }),
    ];
    if let Some((url, hash)) = &image {
        workloads.push(
            serde_json::json!({ "version": 0, "name": "net", "type": "network", "data": {
            "ip_range": "10.20.0.0/16", "subnet": "10.20.1.0/24",
            "wireguard_private_key": { "plain": "demo" }, "wireguard_listen_port": 3000 } }),
        );
        workloads.push(serde_json::json!({ "version": 0, "name": "web", "type": "zmachine", "data": {
            "flist": url, "flist_hash": hash,
            "network": { "interfaces": [{ "network": "net", "ip": "10.20.1.2" }] },
            "compute_capacity": { "cpu": 1, "memory": 268435456 },
            "entrypoint": "echo hello from the grid > /tmp/index.html; exec httpd -f -p 80 -h /tmp" } }));
    }
    let workloads: Vec<Workload> = serde_json::from_value(serde_json::Value::Array(workloads))?;
    let node = client.rpc().node(1).await?.context("node 1")?;
    let node_account = client
        .rpc()
        .twin(node.node.twin_id)
        .await?
        .context("node 1's twin")?
        .account_id;
    let mut d = Deployment {
        version: 0,
        twin_id: twin,
        metadata: String::new(),
        description: "the tfgrid up demo".into(),
        signature_requirement: Deployment::single_signer(twin),
        workloads,
    };
    d.seal_secrets(&node_account, &mut rand::rngs::OsRng)?;
    d.sign(twin, &bob);
    let started = Instant::now();
    let included = client
        .execute(
            &bob,
            Call::SmartContract(ScCall::CreateNodeContract {
                node_id: 1,
                deployment: d.clone(),
            }),
        )
        .await?;
    let id = included
        .events
        .iter()
        .find_map(|e| match &e.event {
            Event::ContractCreated(c) => Some(c.contract_id),
            _ => None,
        })
        .context("no contract created")?;
    let results = wait_until(
        "the demo's deployment",
        Duration::from_secs(120),
        || async {
            let state = client.rpc().contract(id).await.ok()??.deployment_state?;
            (state.workloads.len() == d.workloads.len()).then_some(state.workloads)
        },
    )
    .await?;
    println!(
        "\ndemo: contract {id} on node 1, ready in {:.1} s:",
        started.elapsed().as_secs_f64()
    );
    for r in &results {
        let detail = if r.state == ResultState::Ok {
            serde_json::to_string(&r.data)?
        } else {
            r.message.clone()
        };
        println!("  {:<4} {:?}: {detail}", r.name, r.state);
    }
    println!("  the 0-db: redis-cli -p <port> SELECT <namespace> demo-password");
    println!("  details:  tfgrid contract show {id}");
    Ok(())
}
