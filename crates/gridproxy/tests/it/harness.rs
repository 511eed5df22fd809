//! What the tests share: a tiny HTTP client, `gridproxy` as a process (start, SIGKILL, restart on
//! the same data), and a small grid on a fast chain (farmer, nodes, a deployer with contracts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
pub use testkit::PgServer;
use testkit::{ChainProcess, bin, free_port, tfgrid, wait_for};
use tfchain_client::Client;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::Call;
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::tfgrid::Call as GridCall;
use tfchain_runtime::types::*;
use tfgrid_types::Keypair;
use tfgrid_types::deployment::{ResultData, ResultState, WorkloadResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const GIB: u64 = 1 << 30;

/// The capacity of the tests' nodes (a second, bigger one is made where sizes must differ).
pub const NODE_RESOURCES: Resources = Resources {
    hru: 1000 * GIB,
    sru: 500 * GIB,
    cru: 8,
    mru: 16 * GIB,
};

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// GET over HTTP/1.0 (one request per connection, no chunking).
pub async fn get(port: u16, path: &str) -> std::io::Result<Reply> {
    request(port, "GET", path).await
}

/// A request without a body over HTTP/1.0 (one request per connection, no chunking).
pub async fn request(port: u16, method: &str, path: &str) -> std::io::Result<Reply> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// A `gridproxy` process with its data directory, which outlives restarts.
#[derive(Debug)]
pub struct Proxy {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    chain_url: String,
    /// A PostgreSQL URL, or none for SQLite in `data_dir`.
    db: Option<String>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    pub async fn start(chain_url: &str) -> Proxy {
        Proxy::start_on(chain_url, None).await
    }

    /// Starts with the index in `db` (a PostgreSQL URL) or, without one, in SQLite.
    pub async fn start_on(chain_url: &str, db: Option<String>) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let mut proxy = Proxy {
            child: None,
            port: free_port(),
            data_dir: dir.path().join("data"),
            chain_url: chain_url.to_owned(),
            db,
            _dir: dir,
        };
        proxy.restart().await;
        proxy
    }

    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "gridproxy is still running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self._dir.path().join("gridproxy.log"))
            .unwrap();
        let mut command = Command::new(bin("gridproxy"));
        command
            .args(["--chain", &self.chain_url, "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir);
        if let Some(db) = &self.db {
            command.args(["--db", db]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting gridproxy");
        self.child = Some(child);
        let port = self.port;
        wait_for("gridproxy's API", Duration::from_secs(30), || async move {
            get(port, "/health").await.ok().filter(|r| r.status == 200)
        })
        .await;
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("gridproxy.log")).unwrap_or_default()
    }

    /// GET that must answer 200; returns the JSON.
    pub async fn json(&self, path: &str) -> Value {
        let reply = get(self.port, path).await.unwrap();
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        reply.json()
    }

    pub async fn reply(&self, path: &str) -> Reply {
        get(self.port, path).await.unwrap()
    }

    /// Waits until the index has reached the chain's current height.
    pub async fn caught_up(&self, client: &Client) -> u64 {
        let height = client.rpc().status().await.unwrap().height;
        let port = self.port;
        wait_for(
            &format!("gridproxy to index height {height}"),
            Duration::from_secs(30),
            || async move {
                let health = get(port, "/health").await.ok()?.json();
                let indexed = health["indexed_height"].as_u64()?;
                (indexed >= height).then_some(indexed)
            },
        )
        .await
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A chain with 0.2 s blocks billing every 5 blocks.
pub async fn fast_chain() -> ChainProcess {
    ChainProcess::start_with(|spec| {
        spec["block_time_ms"] = 200.into();
        spec["genesis"]["params"]["billing_period_blocks"] = 5.into();
    })
    .await
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub use testkit::register_node;

pub async fn report_uptime(client: &Client, node: &Keypair) {
    client
        .execute(
            node,
            Call::Tfgrid(GridCall::ReportUptime {
                uptime_s: 1000,
                timestamp_hint_s: now_s(),
            }),
        )
        .await
        .unwrap();
}

/// The node reports its 0-db workload and the resources the contract uses.
pub async fn report_contract(client: &Client, node: &Keypair, contract_id: u64, hru: u64) {
    let result = WorkloadResult {
        name: "db".into(),
        created: now_s(),
        state: ResultState::Ok,
        message: String::new(),
        data: ResultData::Zdb {
            namespace: format!("{contract_id}-db"),
            ips: vec!["10.10.0.2".into()],
            port: 9900,
        },
    };
    client
        .execute(
            node,
            Call::SmartContract(ScCall::ReportDeploymentState {
                contract_id,
                version: 0,
                workloads: vec![result],
            }),
        )
        .await
        .unwrap();
    client
        .execute(
            node,
            Call::SmartContract(ScCall::ReportContractResources {
                resources: vec![ContractResources {
                    contract_id,
                    used: Resources {
                        hru,
                        ..Resources::default()
                    },
                }],
            }),
        )
        .await
        .unwrap();
}

/// A deployment file with a 0-db of `size_gib` and, if asked, a public IP.
pub fn zdb_file(dir: &Path, name: &str, size_gib: u64, with_ip: bool) -> String {
    let mut workloads = vec![json!({
        "version": 0, "name": "db", "type": "zdb",
        "data": { "size": size_gib * GIB, "mode": "user", "password": { "plain": "s3cret-pass" } }
    })];
    if with_ip {
        workloads
            .push(json!({ "version": 0, "name": "pip", "type": "ip", "data": { "v4": true } }));
    }
    let path = dir.join(name);
    std::fs::write(
        &path,
        serde_json::to_string(&json!({ "description": name, "workloads": workloads })).unwrap(),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs the CLI against `chain` with the keystore in `home`.
pub fn cli(home: &Path, chain: &ChainProcess, args: &[&str]) -> String {
    ok(tfgrid(home, &chain.rpc_url(), args))
}
