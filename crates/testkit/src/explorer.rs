//! The explorer as a process for end-to-end tests: `gridproxy` started on a chain's endpoint list
//! with its index in SQLite (or a PostgreSQL URL), killed with SIGKILL and restarted on the same
//! data; a tiny HTTP client for its API; and the bills the chain's blocks hold against those the
//! index holds, to show no block was missed or applied twice.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tfchain_client::Client;
use tfchain_client::api::{BlockId, TfchainApiClient};
use tfchain_runtime::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{bin, free_port, wait_for};

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

    /// The process's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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

/// Bills per contract and total billed per contract, read from every block up to `height`.
pub async fn bills_on_chain(client: &Client, height: u64) -> BTreeMap<u64, (u64, u128)> {
    let mut out: BTreeMap<u64, (u64, u128)> = BTreeMap::new();
    for h in 0..=height {
        let block = client
            .rpc()
            .block(BlockId::Height(h))
            .await
            .unwrap()
            .unwrap();
        for record in block.events {
            if let Event::ContractBilled {
                contract_id,
                amount_billed,
                ..
            } = record.event
            {
                let entry = out.entry(contract_id).or_default();
                entry.0 += 1;
                entry.1 += amount_billed;
            }
        }
    }
    out
}

/// The index's bills per contract (count and total), at the height it reports.
pub async fn bills_indexed(proxy: &Proxy, contracts: &[u64]) -> BTreeMap<u64, (u64, u128)> {
    let mut out = BTreeMap::new();
    for id in contracts {
        let bills = proxy
            .json(&format!("/contracts/{id}/bills?size=1000"))
            .await;
        let bills = bills.as_array().unwrap();
        if bills.is_empty() {
            continue;
        }
        let total = bills
            .iter()
            .map(|b| b["amountBilled"].as_str().unwrap().parse::<u128>().unwrap())
            .sum();
        out.insert(*id, (bills.len() as u64, total));
    }
    out
}

/// The twins the index holds and those the chain holds, by id in order: equal when none was missed
/// and none applied twice.
pub async fn twin_ids(proxy: &Proxy, client: &Client) -> (Vec<u64>, Vec<u64>) {
    let twins = proxy.json("/twins").await;
    let indexed = twins
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["twinId"].as_u64().unwrap())
        .collect();
    let on_chain = client.rpc().twins(Default::default()).await.unwrap();
    (indexed, on_chain.iter().map(|t| u64::from(t.id)).collect())
}
