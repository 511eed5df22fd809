//! Taking a node out of service: remove every workload it runs (in reverse type order), and stop the
//! 0-db server, the gateway and the networks' WireGuard devices it started, without asking the chain. A contract whose workloads are
//! all gone is forgotten, so a restarted agent provisions again, from the chain, what contracts
//! still command (a 0-db namespace keeps its data: the stopped server's files hold it).

use std::path::Path;
use std::process::Command;

use anyhow::Result;
use tfgrid_types::deployment::WorkloadData;

use crate::primitives::gateway::Gateway;
use crate::primitives::network::Networks;
use crate::primitives::overlay::Overlay;
use crate::primitives::volume::Volumes;
use crate::primitives::workload_id;
use crate::primitives::{Machines, alive, recorded_pid};
use crate::store::Store;

pub fn run(
    store: &Store,
    machines: &Machines,
    volumes: &Volumes,
    networks: &Networks,
    zdb_dir: &Path,
    gateway_dir: &Path,
) -> Result<()> {
    let mut failures = 0;
    for local in store.locals()? {
        let failures_before = failures;
        let mut workloads = local.deployment.workloads.clone();
        workloads.sort_by_key(|w| std::cmp::Reverse(w.data.install_rank()));
        for w in &workloads {
            let id = workload_id(local.twin_id, local.contract_id, &w.name);
            let removed = match w.data {
                WorkloadData::Zmachine(_) => machines
                    .of(&id)
                    .remove(&id)
                    .and_then(|()| networks.detach(&id)),
                WorkloadData::Zmount(_) | WorkloadData::Volume(_) => volumes.remove(&id),
                WorkloadData::Network(_) => {
                    networks.remove(&format!("{}-{}", local.twin_id, w.name))
                }
                _ => Ok(()),
            };
            if let Err(e) = removed {
                failures += 1;
                eprintln!("zos: removing {id}: {e:#}");
            }
        }
        if failures == failures_before {
            store.forget(local.contract_id)?;
        }
    }
    if let Some(pid) = recorded_pid(&zdb_dir.join("pid")) {
        if alive(pid, zdb_dir) {
            let _ = Command::new("kill")
                .arg(pid.to_string())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_file(zdb_dir.join("pid"));
    }
    // Networks no contract holds any more (their agent stopped mid-way) still have their process.
    if let Err(e) = Overlay::teardown(networks.overlay_dir()) {
        failures += 1;
        eprintln!("zos: stopping the networks' WireGuard devices: {e:#}");
    }
    if let Err(e) = Gateway::teardown(gateway_dir) {
        failures += 1;
        eprintln!("zos: stopping the gateway: {e:#}");
    }
    if failures > 0 {
        anyhow::bail!("{failures} workloads could not be removed");
    }
    Ok(())
}
