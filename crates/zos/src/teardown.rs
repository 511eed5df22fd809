//! Taking a node out of service: remove every workload it runs (in reverse type order), and stop the
//! 0-db server and the gateway it started, without asking the chain. The records stay, so a restarted agent
//! reconciles with the chain and provisions again what contracts still command.

use std::path::Path;
use std::process::Command;

use anyhow::Result;
use tfgrid_types::deployment::WorkloadData;

use crate::primitives::Machines;
use crate::primitives::gateway::Gateway;
use crate::primitives::network::Networks;
use crate::primitives::volume::Volumes;
use crate::primitives::workload_id;
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
    }
    if let Ok(pid) = std::fs::read_to_string(zdb_dir.join("pid")) {
        let _ = Command::new("kill")
            .arg(pid.trim())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_file(zdb_dir.join("pid"));
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
