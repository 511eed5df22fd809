//! The daemon's repair loop. Every `repair.interval_secs` it re-reads the config, probes every data
//! backend, and rebuilds each stored file that has a shard on a backend unreachable for at least
//! `repair.backend_down_secs` or no longer in the config. A backend that comes back before then is
//! forgiven: short outages cost nothing.

use crate::config::{BackendId, Config};
use crate::zdb::Conn;
use crate::{Error, Zstor};
use futures::future::join_all;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the loop remembers between sweeps: since when each backend has been unreachable.
#[derive(Debug, Default)]
pub struct Repairer {
    down_since: HashMap<BackendId, Instant>,
}

/// What one sweep did.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub files: usize,
    pub rebuilt: Vec<String>,
    pub failed: Vec<String>,
}

impl Repairer {
    /// Probes the data backends and returns those lost at `now`.
    async fn lost(&mut self, zstor: &Zstor, now: Instant) -> Vec<BackendId> {
        let config = zstor.config();
        let backends: Vec<_> = config.data_backends().collect();
        let probes = join_all(backends.iter().map(|b| Conn::connect(b))).await;
        let down_for = Duration::from_secs(config.repair.backend_down_secs);
        let mut lost = Vec::new();
        self.down_since
            .retain(|id, _| backends.iter().any(|b| b.id() == *id));
        for (backend, probe) in backends.iter().zip(probes) {
            let id = backend.id();
            match probe {
                Ok(_) => {
                    self.down_since.remove(&id);
                }
                Err(e) => {
                    let since = *self.down_since.entry(id.clone()).or_insert(now);
                    tracing::warn!("backend {id} unreachable for {:?}: {e}", now - since);
                    if now - since >= down_for {
                        lost.push(id);
                    }
                }
            }
        }
        lost
    }

    /// One sweep: rebuild every file with a shard on a lost or unconfigured backend.
    pub async fn sweep(&mut self, zstor: &Zstor) -> Result<SweepReport, Error> {
        let lost = self.lost(zstor, Instant::now()).await;
        let store = zstor.metastore();
        let mut report = SweepReport::default();
        for meta_key in store.list().await? {
            report.files += 1;
            let meta = match store.load_record(&meta_key).await {
                Ok(loaded) => loaded.meta,
                Err(e) => {
                    report.failed.push(format!("{meta_key}: {e}"));
                    continue;
                }
            };
            let needs = meta.shards.iter().any(|s| {
                lost.contains(&s.backend) || zstor.config().data_backend(&s.backend).is_none()
            });
            if !needs {
                continue;
            }
            match zstor.rebuild(&meta.key).await {
                Ok(done) => {
                    tracing::info!(
                        "rebuilt {:?}: {} pieces written, shards moved {:?}",
                        done.key,
                        done.pieces_written,
                        done.moved
                    );
                    report.rebuilt.push(meta.key);
                }
                Err(e) => {
                    tracing::error!("rebuilding {:?}: {e}", meta.key);
                    report.failed.push(format!("{}: {e}", meta.key));
                }
            }
        }
        Ok(report)
    }
}

/// Runs sweeps until `shutdown` resolves, re-reading the config at `path` before each one (a bad
/// edit is logged and the previous config kept).
pub async fn run(path: &Path, mut zstor: Zstor, shutdown: impl std::future::Future<Output = ()>) {
    let mut repairer = Repairer::default();
    tokio::pin!(shutdown);
    loop {
        match Config::load(path).map_err(Error::from).and_then(Zstor::new) {
            Ok(fresh) => zstor = fresh,
            Err(e) => tracing::error!("keeping the previous config: {e}"),
        }
        match repairer.sweep(&zstor).await {
            Ok(report) => tracing::info!(
                "sweep: {} files, {} rebuilt, {} failed",
                report.files,
                report.rebuilt.len(),
                report.failed.len()
            ),
            Err(e) => tracing::error!("sweep failed: {e}"),
        }
        let interval = Duration::from_secs(zstor.config().repair.interval_secs);
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut shutdown => return,
        }
    }
}
