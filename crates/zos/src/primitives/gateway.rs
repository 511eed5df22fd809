//! The gateway primitive. A node whose public config (set by its farmer on the chain) names a domain
//! serves `gateway-name-proxy` workloads as `<name>.<domain>`; any node with a public config serves
//! `gateway-fqdn-proxy` workloads for a user's own domain. The node runs one `zgw` process listening
//! on the public config's IPv4 (ports 80 and 443), which the agent puts on the node's public
//! interface; each workload is one route file (`zgw::route`), and the agent signals `zgw` (SIGHUP)
//! to reload after every change. The process outlives agent restarts: its PID and address are kept
//! in the data directory, and a restarted agent adopts it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use zgw::route::Route;

use super::{alive as ours, recorded_pid, signal, stop_service};
use znet::ip;

use crate::limits::{GATEWAY_START_TIMEOUT, GATEWAY_STOP_TIMEOUT};

#[derive(Debug)]
pub struct Gateway {
    bin: PathBuf,
    dir: PathBuf,
    /// The running `zgw`: its PID and the address it listens on.
    running: Option<(u32, String)>,
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

impl Gateway {
    /// The primitive of a node keeping its gateway's state in `dir`, running the `zgw` at `bin`.
    pub fn new(bin: PathBuf, dir: PathBuf) -> Gateway {
        Gateway {
            bin,
            dir,
            running: None,
        }
    }

    fn routes(&self) -> PathBuf {
        self.dir.join("routes")
    }

    /// Serves `route` as workload `id`, with `zgw` on `cidr`'s address (the node's public IPv4, put
    /// on `iface` if it is not there yet).
    pub async fn apply(&mut self, id: &str, route: &Route, cidr: &str, iface: &str) -> Result<()> {
        if let Some(other) = self.served_by_other(&route.fqdn, id) {
            bail!(
                "{} is already served on this node by workload {other}",
                route.fqdn
            );
        }
        route.write(&self.routes(), id)?;
        let served = match self.ensure(cidr, iface).await {
            Ok(()) => self.reload(),
            Err(e) => Err(e),
        };
        if served.is_err() {
            // Nothing the workload does not run may be served later by a revived gateway.
            let _ = Route::remove(&self.routes(), id);
        }
        served
    }

    /// Stops serving workload `id`.
    pub fn remove(&mut self, id: &str) -> Result<()> {
        Route::remove(&self.routes(), id)?;
        self.reload()
    }

    /// Pauses (503 to every request) or resumes workload `id`'s route.
    pub fn set_paused(&mut self, id: &str, paused: bool) -> Result<()> {
        let path = Route::path(&self.routes(), id);
        let mut route = Route::read(&path)?;
        route.paused = paused;
        route.write(&self.routes(), id)?;
        self.reload()
    }

    /// The workload other than `id` whose route serves `fqdn`, if one does.
    fn served_by_other(&self, fqdn: &str, id: &str) -> Option<String> {
        let entries = std::fs::read_dir(self.routes()).ok()?;
        entries.filter_map(|e| e.ok()).find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let other = name.strip_suffix(".json")?;
            (other != id && !name.starts_with('.'))
                .then(|| Route::read(&e.path()).ok())
                .flatten()
                .filter(|r| r.fqdn == fqdn)
                .map(|_| other.to_owned())
        })
    }

    /// Makes the running `zgw` read its routes again: the one this agent started, or the one a
    /// previous agent did. A `zgw` that is gone reads them when it is started again.
    fn reload(&mut self) -> Result<()> {
        let pid = match &self.running {
            Some((pid, _)) => Some(*pid),
            None => recorded_pid(&self.dir.join("pid")),
        };
        match pid.filter(|pid| ours(*pid, &self.dir)) {
            Some(pid) => signal(pid, rustix::process::Signal::HUP, "zgw"),
            None => {
                self.running = None;
                Ok(())
            }
        }
    }

    /// `zgw` listening on `cidr`'s address, started (or adopted from a previous agent) on first use,
    /// restarted when the address changed.
    async fn ensure(&mut self, cidr: &str, iface: &str) -> Result<()> {
        let address = cidr.split('/').next().unwrap_or(cidr).to_owned();
        if self
            .running
            .as_ref()
            .is_some_and(|(pid, a)| *a == address && ours(*pid, &self.dir))
        {
            return Ok(());
        }
        self.running = None;
        std::fs::create_dir_all(&self.dir)?;
        // What `revive` starts it on again.
        std::fs::write(self.dir.join("listen"), format!("{cidr} {iface}"))?;
        let pid_path = self.dir.join("pid");
        let recorded = recorded_pid(&pid_path);
        let recorded_address = read_trimmed(&self.dir.join("address"));
        if let Some(pid) = recorded.filter(|pid| ours(*pid, &self.dir)) {
            if recorded_address.as_deref() == Some(&address) {
                tracing::info!(pid, %address, "adopted the running zgw");
                self.running = Some((pid, address));
                // Routes may have changed while no agent ran.
                return self.reload();
            }
            // The public config changed: serve on the new address.
            let _ = signal(pid, rustix::process::Signal::TERM, "zgw");
        }
        self.put_address(cidr, iface)?;
        let routes = self.routes();
        let certs = self.dir.join("certs");
        std::fs::create_dir_all(&routes)?;
        let (pid, _) = super::start_service(
            tokio::process::Command::new(&self.bin)
                .arg("--routes")
                .arg(&routes)
                .arg("--certs")
                .arg(&certs)
                .args(["--http", &format!("{address}:80")])
                .args(["--https", &format!("{address}:443")]),
            &self.bin.display().to_string(),
            "zgw: listening on",
            GATEWAY_START_TIMEOUT,
        )
        .await?;
        std::fs::write(&pid_path, pid.to_string())?;
        std::fs::write(self.dir.join("address"), &address)?;
        tracing::info!(pid, %address, "started zgw");
        self.running = Some((pid, address));
        Ok(())
    }

    /// Starts `zgw` again if it serves routes and is gone (it died, or was killed).
    pub async fn revive(&mut self) -> Result<()> {
        let serving = std::fs::read_dir(self.routes()).is_ok_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json")))
        });
        let listen = read_trimmed(&self.dir.join("listen"));
        if let (true, Some((cidr, iface))) =
            (serving, listen.as_deref().and_then(|l| l.split_once(' ')))
        {
            self.ensure(cidr, iface).await?;
        }
        Ok(())
    }

    /// Puts the node's public address on its public interface, once; recorded for the teardown.
    /// An address put there for an earlier public config is taken off.
    fn put_address(&self, cidr: &str, iface: &str) -> Result<()> {
        let added = self.dir.join("added-address");
        if let Some(earlier) = read_trimmed(&added)
            && earlier != format!("{cidr} {iface}")
            && let Some((old_cidr, old_iface)) = earlier.split_once(' ')
        {
            let _ = ip(&["addr", "del", old_cidr, "dev", old_iface]);
            std::fs::remove_file(&added)?;
        }
        let address = cidr.split('/').next().unwrap_or(cidr);
        let present = ip(&["-o", "addr", "show", "dev", iface])?
            .split_whitespace()
            .any(|word| word.split('/').next() == Some(address));
        if !present {
            ip(&["addr", "add", cidr, "dev", iface])
                .with_context(|| format!("putting the node's public address {cidr} on {iface}"))?;
            std::fs::write(&added, format!("{cidr} {iface}"))?;
        }
        Ok(())
    }

    /// Takes the gateway down (for `zos --teardown`): stops `zgw`, removes every route and the
    /// address the agent added.
    pub fn teardown(dir: &Path) -> Result<()> {
        if let Some(pid) = recorded_pid(&dir.join("pid"))
            && ours(pid, dir)
        {
            stop_service(pid, dir, GATEWAY_STOP_TIMEOUT, "zgw")?;
        }
        if let Some(added) = read_trimmed(&dir.join("added-address"))
            && let Some((cidr, iface)) = added.split_once(' ')
        {
            // The interface may be gone with its namespace already.
            let _ = ip(&["addr", "del", cidr, "dev", iface]);
        }
        for name in ["pid", "address", "listen", "added-address"] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        match std::fs::remove_dir_all(dir.join("routes")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
