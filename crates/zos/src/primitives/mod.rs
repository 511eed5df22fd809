//! Primitives: what turns a workload into something running on the node. This node runs `zdb`
//! workloads, `zmachine`s as containers, the `zmount`s and `volume`s mounted into them, their
//! private networks, public IPv4s (`ip`, on the node's public interface) and gateways (names and
//! FQDNs, on its public config's address); the other types are refused with a message saying so,
//! until their primitive exists.

pub mod container;
pub mod gateway;
pub mod network;
pub mod volume;
pub mod zdb;

use std::time::Duration;

use anyhow::{Context, Result};
use tfgrid_types::deployment::{Workload, WorkloadData};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts a service the node runs beside the agent (its 0-db server, its gateway) and waits until
/// it prints a line starting with `ready` on its standard output; returns its PID and the rest of
/// that line. The service outlives the agent: its output keeps being drained, and nothing kills
/// it when the agent stops.
pub async fn start_service(
    command: &mut tokio::process::Command,
    name: &str,
    ready: &str,
    timeout: Duration,
) -> Result<(u32, String)> {
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let rest = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix(ready) {
                return Ok::<_, std::io::Error>(Some(rest.trim().to_owned()));
            }
        }
        Ok(None)
    })
    .await
    .with_context(|| format!("{name} did not start in time"))??
    .with_context(|| format!("{name} exited before it was ready (see its log above)"))?;
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let pid = child.id().with_context(|| format!("{name} has no pid"))?;
    // Dropping a tokio Child does not kill the process.
    drop(child);
    Ok((pid, rest))
}

/// The name of what a workload creates (namespace, container): `<twin>-<contract>-<name>`, as
/// Zero-OS names workloads.
pub fn workload_id(twin: u32, contract: u64, name: &str) -> String {
    format!("{twin}-{contract}-{name}")
}

/// Why a workload cannot run on this node, if it cannot. `containers` says why containers cannot
/// run here, when they cannot; `public_iface` is the node's interface on the farm's public network.
pub fn unsupported(
    workload: &Workload,
    containers: Option<&str>,
    public_iface: Option<&str>,
) -> Option<String> {
    match workload.data {
        WorkloadData::Zdb(_) => None,
        WorkloadData::Ip(ref ip) if ip.v6 => {
            Some("public IPv6 is not supported by this node yet".into())
        }
        WorkloadData::Ip(_) => match (containers, public_iface) {
            (Some(why), _) => Some(format!("this node cannot give public IPs: {why}")),
            (None, None) => Some(
                "this node has no interface on the farm's public network (zos --public-iface)"
                    .into(),
            ),
            (None, Some(_)) => None,
        },
        WorkloadData::Network(_) => {
            containers.map(|why| format!("this node cannot build networks: {why}"))
        }
        WorkloadData::Zmount(_) | WorkloadData::Volume(_) => {
            containers.map(|why| format!("this node cannot mount volumes: {why}"))
        }
        WorkloadData::Zmachine(_) => {
            containers.map(|why| format!("this node cannot run zmachines: {why}"))
        }
        WorkloadData::GatewayNameProxy(_) | WorkloadData::GatewayFqdnProxy(_) => {
            public_iface.is_none().then(|| {
                "this node cannot serve gateways: it has no interface on the farm's public \
                 network (zos --public-iface)"
                    .to_owned()
            })
        }
        ref other => Some(format!(
            "{} workloads are not supported by this node yet",
            other.type_name()
        )),
    }
}
