//! The `zdb` primitive: the node runs one 0-db server over its storage and gives each zdb workload a
//! namespace of its own (mode, password, public flag, size limit). Pausing locks the namespace;
//! deleting removes it. The server outlives agent restarts: its PID and port are kept in the data
//! directory, and a restarted agent adopts it. Its `default` namespace is protected (written only
//! with the admin password) and bounded, so the node's network cannot fill the disk through it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::RngCore;
use tfgrid_types::deployment::{ResultData, Secret, Workload, WorkloadData, Zdb, ZdbMode};

use super::{Op, Primitive, Target, alive, recorded_pid};
use crate::limits::{ZDB_DEFAULT_MAXSIZE, ZDB_START_TIMEOUT};

#[derive(Debug)]
pub struct ZdbServer {
    bin: PathBuf,
    dir: PathBuf,
    /// The address clients reach the server on.
    pub host: String,
    running: Option<Running>,
}

#[derive(Debug, Clone)]
struct Running {
    pid: u32,
    port: u16,
    admin: String,
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

impl ZdbServer {
    pub fn new(bin: PathBuf, dir: PathBuf, host: String) -> ZdbServer {
        ZdbServer {
            bin,
            dir,
            host,
            running: None,
        }
    }

    /// Starts the server again if it was started once and is gone (it died, or was killed): its
    /// namespaces are in its data, so they serve again.
    pub async fn revive(&mut self) -> Result<()> {
        if self.dir.join("pid").exists() {
            self.ensure().await?;
        }
        Ok(())
    }

    /// The server, started (or adopted from a previous agent) on first use, and started again when
    /// it is gone.
    async fn ensure(&mut self) -> Result<Running> {
        if let Some(running) = &self.running {
            if alive(running.pid, &self.dir) {
                return Ok(running.clone());
            }
            tracing::warn!(pid = running.pid, "zdb is gone: starting it again");
            self.running = None;
        }
        std::fs::create_dir_all(&self.dir)?;
        let admin_path = self.dir.join("admin");
        let admin = match read_trimmed(&admin_path) {
            Some(admin) => admin,
            None => {
                let mut bytes = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                let admin: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                std::fs::write(&admin_path, &admin)?;
                admin
            }
        };
        // Adopt the server a previous agent started, if it still answers.
        if let (Some(pid), Some(port)) = (
            recorded_pid(&self.dir.join("pid")),
            read_trimmed(&self.dir.join("port")),
        ) {
            let port: u16 = port.parse().context("damaged zdb port file")?;
            let running = Running {
                pid,
                port,
                admin: admin.clone(),
            };
            if alive(pid, &self.dir) && self.admin(&running).await.is_ok() {
                tracing::info!(pid, port, "adopted the running zdb");
                self.running = Some(running.clone());
                return Ok(running);
            }
        }
        let port = read_trimmed(&self.dir.join("port"))
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0);
        let (pid, address) = super::start_service(
            tokio::process::Command::new(&self.bin)
                .args([
                    "--listen",
                    &self.host,
                    "--port",
                    &port.to_string(),
                    "--admin",
                    &admin,
                    "--sync",
                    // The default namespace: written only with the admin password, and bounded.
                    "--protect",
                    "--maxsize",
                    &ZDB_DEFAULT_MAXSIZE.to_string(),
                ])
                .arg("--data")
                .arg(self.dir.join("data"))
                .arg("--index")
                .arg(self.dir.join("index")),
            &self.bin.display().to_string(),
            "zdb: listening on tcp ",
            ZDB_START_TIMEOUT,
        )
        .await?;
        let port: u16 = address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("zdb printed no port")?;
        std::fs::write(self.dir.join("pid"), pid.to_string())?;
        std::fs::write(self.dir.join("port"), port.to_string())?;
        tracing::info!(pid, port, "started zdb");
        let running = Running { pid, port, admin };
        self.running = Some(running.clone());
        Ok(running)
    }

    async fn admin(&self, running: &Running) -> Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://{}:{}/", self.host, running.port))?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .context("connecting to zdb")?;
        redis::cmd("AUTH")
            .arg(&running.admin)
            .query_async::<()>(&mut con)
            .await
            .context("zdb admin login")?;
        Ok(con)
    }

    async fn nsset(
        con: &mut redis::aio::MultiplexedConnection,
        ns: &str,
        prop: &str,
        value: &str,
    ) -> Result<()> {
        redis::cmd("NSSET")
            .arg(ns)
            .arg(prop)
            .arg(value)
            .query_async::<()>(con)
            .await
            .with_context(|| format!("zdb NSSET {prop}"))
    }

    /// Creates (or updates) a namespace; returns the port clients use.
    pub async fn apply(&mut self, namespace: &str, zdb: &Zdb, password: &str) -> Result<u16> {
        let running = self.ensure().await?;
        let mut con = self.admin(&running).await?;
        let created: redis::RedisResult<()> = redis::cmd("NSNEW")
            .arg(namespace)
            .query_async(&mut con)
            .await;
        match created {
            Ok(()) => {
                let mode = match zdb.mode {
                    ZdbMode::User => "user",
                    ZdbMode::Seq => "seq",
                };
                Self::nsset(&mut con, namespace, "mode", mode).await?;
            }
            Err(e) if e.to_string().contains("not available") => {} // exists: update its settings
            Err(e) => bail!("zdb refused namespace {namespace}: {e}"),
        }
        Self::nsset(&mut con, namespace, "maxsize", &zdb.size.to_string()).await?;
        Self::nsset(
            &mut con,
            namespace,
            "password",
            if password.is_empty() { "*" } else { password },
        )
        .await?;
        Self::nsset(
            &mut con,
            namespace,
            "public",
            if zdb.public { "1" } else { "0" },
        )
        .await?;
        Ok(running.port)
    }

    /// Locks a namespace read-only (pause) or unlocks it.
    pub async fn lock(&mut self, namespace: &str, locked: bool) -> Result<()> {
        let running = self.ensure().await?;
        let mut con = self.admin(&running).await?;
        Self::nsset(&mut con, namespace, "lock", if locked { "1" } else { "0" }).await
    }

    pub async fn remove(&mut self, namespace: &str) -> Result<()> {
        let running = self.ensure().await?;
        let mut con = self.admin(&running).await?;
        let removed: redis::RedisResult<()> = redis::cmd("NSDEL")
            .arg(namespace)
            .query_async(&mut con)
            .await;
        match removed {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("doesn't exists") => Ok(()),
            Err(e) => bail!("zdb could not remove namespace {namespace}: {e}"),
        }
    }
}

impl Primitive for ZdbServer {
    fn install<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ResultData> {
        Box::pin(async move {
            let WorkloadData::Zdb(z) = &w.data else {
                bail!("{} is not a zdb", w.name);
            };
            let password = match &z.password {
                Secret::Plain(p) => p.clone(),
                Secret::Sealed(_) => String::new(),
            };
            let namespace = at.id(&w.name);
            let port = self.apply(&namespace, z, &password).await?;
            Ok(ResultData::Zdb {
                namespace,
                ips: vec![self.host.clone()],
                port,
            })
        })
    }

    fn remove<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ()> {
        Box::pin(async move { ZdbServer::remove(self, &at.id(&w.name)).await })
    }

    fn pause<'a>(&'a mut self, at: Target<'a>, w: &'a Workload, pause: bool) -> Op<'a, ()> {
        Box::pin(async move { self.lock(&at.id(&w.name), pause).await })
    }
}
