//! Helpers for end-to-end tests: find the workspace's built binaries, start a dev chain as a real
//! process on a free loopback port, kill it hard, restart it on the same data, and run the CLI; a
//! LAN of network namespaces (`lan`); a BFT network of validators on such a LAN (`cluster`); a
//! whole `tfgrid up` grid (`local`); the explorer as a process (`explorer`); a PostgreSQL server
//! (`postgres`); a farm and node agents on a chain's endpoint list; where a container's cgroup is,
//! on cgroup v1, v2 or hybrid hosts. Waits are on conditions with deadlines, never fixed sleeps.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tfchain_client::Client;

pub mod cluster;
pub mod explorer;
pub mod local;
pub mod postgres;
pub use cluster::Cluster;
pub use hostnet::{Host, Lan};
pub use local::LocalGrid;
pub use postgres::PgServer;

/// A binary of the workspace, built next to the test executable (`cargo nextest run --workspace`
/// and `cargo xtask test` build every binary first).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("address")
        .port()
}

/// A command running the workspace binary `program` in `host`'s namespace (the test's own when
/// `None`), its output appended to `log`.
fn daemon(host: Option<&Host>, program: &str, log: &Path) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut command = match host {
        Some(host) => host.command(bin(program)),
        None => Command::new(bin(program)),
    };
    command.stdout(Stdio::null()).stderr(log);
    command
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `tfchain` process (the dev spec, or one edited from it) with its data in a directory that
/// outlives restarts.
#[derive(Debug)]
pub struct ChainProcess {
    child: Option<Child>,
    pub base_path: PathBuf,
    pub port: u16,
    /// The host namespace it runs in, if not the test's own.
    pub host: Option<Host>,
    /// How it takes part in consensus: `--validator //Alice` alone, or BFT flags.
    pub role: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

/// The dev spec (with `validators` dev accounts as its validators) changed by `edit`.
pub fn dev_spec(validators: usize, edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let out = Command::new(bin("tfchain"))
        .args(["build-spec", "--validators", &validators.to_string()])
        .output()
        .expect("tfchain build-spec");
    assert!(
        out.status.success(),
        "build-spec failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("spec JSON");
    edit(&mut spec);
    spec
}

impl ChainProcess {
    /// Starts a dev chain in a new temporary directory and waits until its RPC answers.
    pub async fn start() -> ChainProcess {
        ChainProcess::start_with(|_| {}).await
    }

    /// Starts a chain whose spec is the dev spec changed by `edit` (on its JSON form).
    pub async fn start_with(edit: impl FnOnce(&mut serde_json::Value)) -> ChainProcess {
        ChainProcess::start_on(None, edit).await
    }

    /// Starts a chain (the dev spec changed by `edit`) inside `host`'s namespace, if given.
    pub async fn start_on(
        host: Option<Host>,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> ChainProcess {
        let role = vec!["--validator".into(), "//Alice".into()];
        let mut chain = ChainProcess::new(host, &dev_spec(1, edit), free_port(), role);
        chain.restart().await;
        chain
    }

    /// A node of the chain `spec` on RPC port `port`, taking part as `role` says; not started.
    pub fn new(
        host: Option<Host>,
        spec: &serde_json::Value,
        port: u16,
        role: Vec<String>,
    ) -> ChainProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("spec.json"),
            serde_json::to_vec_pretty(spec).unwrap(),
        )
        .expect("writing spec");
        ChainProcess {
            child: None,
            base_path: dir.path().to_path_buf(),
            port,
            host,
            role,
            _dir: Some(dir),
        }
    }

    pub fn rpc_url(&self) -> String {
        format!("ws://{}:{}", self.address(), self.port)
    }

    fn address(&self) -> String {
        self.host
            .as_ref()
            .map_or("127.0.0.1".into(), |h| h.ip.clone())
    }

    /// (Re)starts the process on the same data and port, and waits until its RPC answers.
    pub async fn restart(&mut self) {
        self.spawn();
        let url = self.rpc_url();
        wait_for("the chain's RPC", Duration::from_secs(30), || {
            let url = url.clone();
            async move { Client::connect(&url).await.ok() }
        })
        .await;
    }

    /// Starts the process on its data and port, without waiting for it.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "the chain is still running");
        let child = daemon(
            self.host.as_ref(),
            "tfchain",
            &self.base_path.join("tfchain.log"),
        )
        .arg("--chain")
        .arg(self.base_path.join("spec.json"))
        .args(&self.role)
        .args(["--rpc-addr", &format!("{}:{}", self.address(), self.port)])
        .arg("--base-path")
        .arg(self.base_path.join("data"))
        .spawn()
        .expect("starting tfchain");
        self.child = Some(child);
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// A connected client.
    pub async fn client(&self) -> Client {
        Client::connect(&self.rpc_url())
            .await
            .expect("connecting to the chain")
    }

    /// Kills the process with SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaping tfchain");
        }
    }

    /// The node's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.base_path.join("tfchain.log")).unwrap_or_default()
    }
}

impl Drop for ChainProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A `zos` node agent with its data in a directory that outlives restarts.
#[derive(Debug)]
pub struct ZosProcess {
    child: Option<Child>,
    args: Vec<String>,
    pub data_dir: PathBuf,
    host: Option<Host>,
}

impl ZosProcess {
    /// Starts `zos` for `farm` on the chain at `rpc_url` with a virtual `capacity`; its identity seed is
    /// written first, so the caller knows (and can fund) the node's account.
    pub fn start(
        rpc_url: &str,
        farm: u32,
        capacity: &str,
        data_dir: &Path,
        seed: [u8; 32],
    ) -> ZosProcess {
        ZosProcess::start_on(None, rpc_url, farm, capacity, data_dir, seed)
    }

    /// Starts `zos` inside `host`'s namespace (its services listen on the host's address), if given.
    pub fn start_on(
        host: Option<Host>,
        rpc_url: &str,
        farm: u32,
        capacity: &str,
        data_dir: &Path,
        seed: [u8; 32],
    ) -> ZosProcess {
        std::fs::create_dir_all(data_dir.join("identity")).expect("zos data dir");
        let seed_path = data_dir.join("identity/seed");
        if !seed_path.exists() {
            std::fs::write(&seed_path, seed).expect("writing the node seed");
        }
        let args = vec![
            "--chain".into(),
            rpc_url.into(),
            "--farm".into(),
            farm.to_string(),
            "--capacity".into(),
            capacity.into(),
            "--data-dir".into(),
            data_dir.to_string_lossy().into_owned(),
            "--zdb-bin".into(),
            bin("zdb").to_string_lossy().into_owned(),
        ];
        let mut args = args;
        match &host {
            Some(host) => args.extend(["--host".to_string(), host.ip.clone()]),
            // This machine's own namespace: leave its forwarding and firewall as they are.
            None => args.push("--no-outbound-nat".into()),
        }
        let mut zos = ZosProcess {
            child: None,
            args,
            data_dir: data_dir.to_path_buf(),
            host,
        };
        zos.restart();
        zos
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "zos is still running");
        let child = daemon(self.host.as_ref(), "zos", &self.data_dir.join("zos.log"))
            .args(&self.args)
            .spawn()
            .expect("starting zos");
        self.child = Some(child);
    }

    /// Starts the agent again knowing its host's LAN interface as the farm's public network
    /// (`--public-iface`), so it can serve gateways and public IPs there.
    pub fn serve_public(&mut self) {
        let iface = self
            .host
            .as_ref()
            .expect("an agent on a host")
            .iface
            .clone();
        self.kill9();
        self.args.extend(["--public-iface".to_string(), iface]);
        self.restart();
    }

    /// Kills the agent with SIGKILL (the 0-db server it started keeps running, as on a real node).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaping zos");
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("zos.log")).unwrap_or_default()
    }

    /// The agent's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The PID of the 0-db server the agent started, if any.
    pub fn zdb_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir.join("zdb/pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for ZosProcess {
    /// Stops the agent, then has it remove everything the node runs (containers, mounts, network
    /// namespaces, its 0-db server), so even a failing test leaves nothing behind.
    fn drop(&mut self) {
        self.kill9();
        let _ = Command::new(bin("zos"))
            .arg("--teardown")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether process `pid` holds an established TCP connection to `peer` (`ip:port`), as `ss` sees
/// it from the test's namespace.
pub fn connected_to(pid: u32, peer: &str) -> bool {
    let out = Command::new("ss")
        .args(["-Htnp", "state", "established"])
        .output()
        .expect("ss");
    assert!(out.status.success(), "ss: {out:?}");
    holds_connection(&String::from_utf8_lossy(&out.stdout), pid, peer)
}

/// Whether a line of `ss -Htnp state established` (receive and send queues, local and peer
/// address, the owning processes) is `pid`'s connection to `peer`.
fn holds_connection(ss: &str, pid: u32, peer: &str) -> bool {
    let owner = format!("pid={pid},");
    ss.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(3) == Some(&peer) && fields.get(4).is_some_and(|p| p.contains(&owner))
    })
}

/// The output of a command that must succeed (stdout); panics with everything it printed otherwise.
pub fn ok(out: Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "command failed:\n{all}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that a command failed and that what it printed contains `expect`.
pub fn fails(out: Output, expect: &str) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "command succeeded:\n{all}");
    assert!(all.contains(expect), "expected {expect:?} in:\n{all}");
}

/// A small grid for a test: a chain (the dev spec changed by `edit`), a CLI keystore, and farm 1
/// owned by Alice (twin 1); nodes are added with [`Grid::add_node`].
#[derive(Debug)]
pub struct Grid {
    pub chain: ChainProcess,
    pub client: Client,
    pub home: tempfile::TempDir,
}

impl Grid {
    pub async fn start(edit: impl FnOnce(&mut serde_json::Value)) -> Grid {
        Grid::start_on(None, edit).await
    }

    /// A grid whose chain runs in `host`'s namespace, if given.
    pub async fn start_on(host: Option<Host>, edit: impl FnOnce(&mut serde_json::Value)) -> Grid {
        let chain = ChainProcess::start_on(host, edit).await;
        let client = chain.client().await;
        let grid = Grid {
            chain,
            client,
            home: tempfile::tempdir().expect("temp dir"),
        };
        create_farm(grid.home.path(), &grid.chain.rpc_url());
        grid
    }

    /// Runs the CLI against this grid.
    pub fn cli(&self, args: &[&str]) -> Output {
        tfgrid(self.home.path(), &self.chain.rpc_url(), args)
    }

    /// Funds a node account from Alice, starts `zos` for farm 1 and waits until it registered as
    /// node `node_id`.
    pub async fn add_node(
        &self,
        node_id: u32,
        seed: [u8; 32],
        capacity: &str,
        data_dir: &Path,
    ) -> ZosProcess {
        self.add_node_on(None, node_id, seed, capacity, data_dir)
            .await
    }

    /// [`Grid::add_node`], with the agent in `host`'s namespace, if given.
    pub async fn add_node_on(
        &self,
        host: Option<Host>,
        node_id: u32,
        seed: [u8; 32],
        capacity: &str,
        data_dir: &Path,
    ) -> ZosProcess {
        let rpc_url = self.chain.rpc_url();
        add_node_at(
            &self.client,
            &rpc_url,
            host,
            node_id,
            seed,
            capacity,
            data_dir,
        )
        .await
    }
}

/// Creates Alice's twin (twin 1) and farm 1 through the CLI with its keystore in `home`, on the
/// chain at `rpc_url` (one endpoint or a list).
pub fn create_farm(home: &Path, rpc_url: &str) {
    ok(tfgrid(
        home,
        rpc_url,
        &["--key", "//Alice", "twin", "create"],
    ));
    ok(tfgrid(
        home,
        rpc_url,
        &["--key", "//Alice", "farm", "create", "farm1"],
    ));
}

/// Funds a node account from Alice through `client`, starts `zos` for farm 1 on the chain at
/// `rpc_url` (one endpoint, or the chain's comma-separated endpoint list) in `host`'s namespace, if
/// given, and waits until it registered as node `node_id`.
pub async fn add_node_at(
    client: &Client,
    rpc_url: &str,
    host: Option<Host>,
    node_id: u32,
    seed: [u8; 32],
    capacity: &str,
    data_dir: &Path,
) -> ZosProcess {
    use tfchain_client::api::TfchainApiClient;
    let alice = tfgrid_types::Keypair::from_uri("//Alice").expect("dev key");
    let dest = tfgrid_types::Keypair::from_seed(seed).account();
    let fund = tfchain_runtime::balances::Call::Transfer {
        dest,
        amount: tfgrid_types::UNITS_PER_TFT,
    };
    client
        .execute(&alice, tfchain_runtime::Call::Balances(fund))
        .await
        .expect("funding the node");
    let zos = ZosProcess::start_on(host, rpc_url, 1, capacity, data_dir, seed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.rpc().node(node_id).await.ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "node {node_id} did not register:\n{}",
            zos.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    zos
}

/// Registers a node as Zero-OS does (funded by Alice, terms, twin, node in farm 1).
pub async fn register_node(
    client: &Client,
    node: &tfgrid_types::Keypair,
    resources: tfchain_runtime::types::Resources,
    city: &str,
    country: &str,
) {
    let alice = tfgrid_types::Keypair::from_uri("//Alice").unwrap();
    client
        .execute(
            &alice,
            tfchain_runtime::Call::Balances(tfchain_runtime::balances::Call::Transfer {
                dest: node.account(),
                amount: tfgrid_types::UNITS_PER_TFT,
            }),
        )
        .await
        .unwrap();
    let tc = tfchain_runtime::tfgrid::Call::UserAcceptTc {
        document_link: "https://zos.tf/terms/v0.1".into(),
        document_hash: "h".into(),
    };
    client
        .execute(node, tfchain_runtime::Call::Tfgrid(tc))
        .await
        .unwrap();
    client
        .execute(
            node,
            tfchain_runtime::Call::Tfgrid(tfchain_runtime::tfgrid::Call::CreateTwin {
                relay: None,
                pk: None,
            }),
        )
        .await
        .unwrap();
    let spec = tfchain_runtime::types::NodeSpec {
        farm_id: 1,
        resources,
        location: tfchain_runtime::types::Location {
            city: city.into(),
            country: country.into(),
            latitude: "51.05".into(),
            longitude: "3.71".into(),
        },
        interfaces: vec![],
        secure_boot: false,
        virtualized: true,
        serial_number: None,
    };
    client
        .execute(
            node,
            tfchain_runtime::Call::Tfgrid(tfchain_runtime::tfgrid::Call::CreateNode(spec)),
        )
        .await
        .unwrap();
}

/// Runs the `tfgrid` CLI against a chain with a keystore in `home`.
pub fn tfgrid(home: &Path, rpc_url: &str, args: &[&str]) -> Output {
    Command::new(bin("tfgrid"))
        .args(args)
        .env("TFGRID_HOME", home)
        .env("TFGRID_RPC", rpc_url)
        .env_remove("TFGRID_KEY")
        .output()
        .expect("running tfgrid")
}

/// The directories that may hold a zos container's cgroup (`/zos/<id>`, as runc makes it): the
/// memory controller's on a v1 or hybrid host, the unified hierarchy's on a v2 or hybrid one.
pub fn container_cgroups(id: &str) -> [PathBuf; 3] {
    ["memory/", "", "unified/"].map(|tree| PathBuf::from(format!("/sys/fs/cgroup/{tree}zos/{id}")))
}

/// Whether any cgroup of the container is left on the host, whichever hierarchy holds it.
pub fn container_cgroup_left(id: &str) -> bool {
    container_cgroups(id).iter().any(|dir| dir.exists())
}

/// The memory limit of a zos container's cgroup in bytes: v1's `memory.limit_in_bytes`, or v2's
/// `memory.max` where the host has no v1 memory controller.
pub fn container_memory_limit(id: &str) -> Option<u64> {
    let [v1, v2, hybrid] = container_cgroups(id);
    [
        v1.join("memory.limit_in_bytes"),
        v2.join("memory.max"),
        hybrid.join("memory.max"),
    ]
    .iter()
    .find_map(|file| std::fs::read_to_string(file).ok()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::holds_connection;

    #[test]
    fn a_connection_is_the_process_s_to_that_peer() {
        let ss = "0 0 10.0.0.1:40000 10.0.0.2:9944 users:((\"zos\",pid=42,fd=9))\n\
                  0 0 10.0.0.1:40002 10.0.0.3:9944 users:((\"gridproxy\",pid=421,fd=7))\n";
        let check = |pid, peer, expect| assert_eq!(holds_connection(ss, pid, peer), expect);
        check(42, "10.0.0.2:9944", true);
        check(42, "10.0.0.3:9944", false);
        check(421, "10.0.0.3:9944", true);
        check(4, "10.0.0.2:9944", false);
        // The local address is not the peer.
        check(42, "10.0.0.1:40000", false);
    }
}
