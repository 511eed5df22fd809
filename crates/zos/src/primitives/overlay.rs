//! The WireGuard side of a node's part of a user network: the `znet` config a `network` workload
//! means here (pure: [`config`]), and the `znet` process per network that carries it out. Like
//! `zgw`, each process's run directory (`<data>/networks/<namespace>/`) keeps its config, PID and
//! port; a process outlives the agent and is adopted by the next one, a changed peer list reaches
//! it by SIGHUP (sessions of the peers that stayed go on), and one that died is started again by
//! [`Overlay::revive`] on the same port.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustix::process::Signal;
use tfgrid_types::deployment::Network;
use znet::{Config, HIDDEN_KEEPALIVE, PeerConfig};

use super::{alive, recorded_pid, signal, start_service, stop_service};

/// How long `znet` may take to come up.
const ZNET_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped `znet` may take to exit before it is killed.
const ZNET_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The node's WireGuard address in a network: `100.64.b.c/16` for its subnet `a.b.c.0/24`, as
/// Zero-OS gives it.
pub fn wg_address(subnet: &str) -> Result<String> {
    let (gw, _) = super::network::gateway(subnet)?;
    let [_, b, c, _] = gw.octets();
    Ok(format!("{}/16", Ipv4Addr::new(100, 64, b, c)))
}

/// The `znet` config of network workload `n` (its private key opened) with its device `tun` in
/// namespace `netns`: its peers as the deployment lists them, a keepalive towards those with an
/// endpoint when this node is `hidden` (no public address: it must keep its way out open), and the
/// workload's listen port, else the one the network listened on before (`port`), else any.
pub fn config(n: &Network, netns: &str, tun: &str, hidden: bool, port: u16) -> Result<Config> {
    let private_key = match &n.wireguard_private_key {
        tfgrid_types::deployment::Secret::Plain(k) => k.clone(),
        tfgrid_types::deployment::Secret::Sealed(_) => bail!("the WireGuard key is still sealed"),
    };
    let peers = n
        .peers
        .iter()
        .map(|p| {
            let endpoint = match p.endpoint.as_str() {
                "" => None,
                e => Some(e.parse().with_context(|| format!("peer endpoint {e:?}"))?),
            };
            Ok(PeerConfig {
                public_key: p.wireguard_public_key.clone(),
                endpoint,
                allowed_ips: p.allowed_ips.clone(),
                keepalive: (hidden && endpoint.is_some()).then_some(HIDDEN_KEEPALIVE),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let config = Config {
        netns: netns.to_owned(),
        tun: tun.to_owned(),
        private_key,
        listen_port: match n.wireguard_listen_port {
            0 => port,
            p => p,
        },
        address: wg_address(&n.subnet)?,
        peers,
    };
    config.check()?;
    Ok(config)
}

/// The `znet` processes of a node.
#[derive(Debug, Clone)]
pub struct Overlay {
    bin: PathBuf,
    /// Holds one run directory per network, named after its namespace.
    dir: PathBuf,
}

impl Overlay {
    pub fn new(bin: PathBuf, dir: PathBuf) -> Overlay {
        Overlay { bin, dir }
    }

    /// Where the run directories are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn run_dir(&self, netns: &str) -> PathBuf {
        self.dir.join(netns)
    }

    /// The port network `netns` listened on last, 0 if none.
    pub fn port(&self, netns: &str) -> u16 {
        std::fs::read_to_string(self.run_dir(netns).join(znet::PORT_FILE))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0)
    }

    fn running(&self, netns: &str) -> Option<u32> {
        let dir = self.run_dir(netns);
        recorded_pid(&dir.join("pid")).filter(|pid| alive(*pid, &dir))
    }

    /// Runs `config` for its network; returns the port it listens on. A running process whose
    /// device is the same is told to re-read its peers; otherwise it is replaced.
    pub async fn apply(&self, config: &Config) -> Result<u16> {
        let dir = self.run_dir(&config.netns);
        if let Some(pid) = self.running(&config.netns) {
            let old = Config::load(&dir).ok();
            let same_device = old.as_ref().is_some_and(|o| {
                (&o.tun, &o.private_key, &o.address)
                    == (&config.tun, &config.private_key, &config.address)
            });
            if same_device && old.as_ref() == Some(config) {
                return Ok(self.port(&config.netns));
            }
            if same_device
                && (config.listen_port == 0 || config.listen_port == self.port(&config.netns))
            {
                let mut config = config.clone();
                config.listen_port = self.port(&config.netns);
                config.store(&dir)?;
                signal(pid, Signal::HUP, "znet")?;
                return Ok(config.listen_port);
            }
            stop_service(pid, &dir, ZNET_STOP_TIMEOUT, "znet")?;
        }
        self.start(config).await
    }

    async fn start(&self, config: &Config) -> Result<u16> {
        let dir = self.run_dir(&config.netns);
        config.store(&dir)?;
        let (pid, port) = start_service(
            tokio::process::Command::new(&self.bin).arg("run").arg(&dir),
            &self.bin.display().to_string(),
            znet::READY,
            ZNET_START_TIMEOUT,
        )
        .await?;
        std::fs::write(dir.join("pid"), pid.to_string())?;
        let port: u16 = port.parse().context("znet printed no port")?;
        // Kept, so that a restart listens where the peers know it to be.
        let mut kept = config.clone();
        kept.listen_port = port;
        kept.store(&dir)?;
        tracing::info!(pid, port, netns = %config.netns, "started znet");
        Ok(port)
    }

    /// Starts again every network's `znet` that is gone (it died, or was killed).
    pub async fn revive(&self) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let netns = entry.file_name().to_string_lossy().into_owned();
            if self.running(&netns).is_some() || !Path::new("/var/run/netns").join(&netns).exists()
            {
                continue;
            }
            if let Ok(config) = Config::load(&entry.path()) {
                tracing::warn!(%netns, "znet is gone: starting it again");
                self.start(&config).await?;
            }
        }
        Ok(())
    }

    /// Stops network `netns`'s `znet` and forgets it.
    pub fn remove(&self, netns: &str) -> Result<()> {
        Overlay::remove_run_dir(&self.run_dir(netns))
    }

    fn remove_run_dir(dir: &Path) -> Result<()> {
        if let Some(pid) = recorded_pid(&dir.join("pid")).filter(|pid| alive(*pid, dir)) {
            stop_service(pid, dir, ZNET_STOP_TIMEOUT, "znet")?;
        }
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Stops every network's `znet` (for `zos --teardown`).
    pub fn teardown(dir: &Path) -> Result<()> {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            Overlay::remove_run_dir(&entry.path())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfgrid_types::deployment::{Peer, Secret};

    fn network(peers: Vec<Peer>, port: u16) -> Network {
        Network {
            ip_range: "10.3.0.0/16".into(),
            subnet: "10.3.2.0/24".into(),
            wireguard_private_key: Secret::Plain(znet::key_text(&[5; 32])),
            wireguard_listen_port: port,
            peers,
        }
    }

    fn peer(n: u8, endpoint: &str) -> Peer {
        Peer {
            subnet: format!("10.3.{n}.0/24"),
            wireguard_public_key: znet::key_text(&[n; 32]),
            allowed_ips: vec![format!("10.3.{n}.0/24"), format!("100.64.3.{n}/32")],
            endpoint: endpoint.into(),
        }
    }

    #[test]
    fn addresses_follow_the_subnet() {
        assert_eq!(wg_address("10.3.2.0/24").unwrap(), "100.64.3.2/16");
        assert_eq!(wg_address("10.20.255.0/24").unwrap(), "100.64.20.255/16");
    }

    #[test]
    fn a_hidden_node_keeps_alive_towards_peers_it_dials() {
        let n = network(vec![peer(1, "192.168.1.5:4000"), peer(3, "")], 0);
        let public = config(&n, "n-a", "w-a", false, 0).unwrap();
        assert!(public.peers.iter().all(|p| p.keepalive.is_none()));
        let hidden = config(&n, "n-a", "w-a", true, 0).unwrap();
        assert_eq!(hidden.peers[0].keepalive, Some(HIDDEN_KEEPALIVE));
        assert_eq!(hidden.peers[1].keepalive, None, "no endpoint: it dials in");
        assert_eq!(
            hidden.peers[0].endpoint,
            Some("192.168.1.5:4000".parse().unwrap())
        );
        assert_eq!(hidden.address, "100.64.3.2/16");
    }

    #[test]
    fn the_port_is_the_workloads_else_the_one_kept() {
        assert_eq!(
            config(&network(vec![], 0), "n", "w", false, 0)
                .unwrap()
                .listen_port,
            0
        );
        assert_eq!(
            config(&network(vec![], 0), "n", "w", false, 4711)
                .unwrap()
                .listen_port,
            4711
        );
        assert_eq!(
            config(&network(vec![], 9000), "n", "w", false, 4711)
                .unwrap()
                .listen_port,
            9000
        );
    }

    #[test]
    fn sealed_keys_and_bad_endpoints_are_refused() {
        let mut n = network(vec![], 0);
        n.wireguard_private_key = Secret::Sealed(vec![1, 2]);
        assert!(config(&n, "n", "w", false, 0).is_err());
        let n = network(vec![peer(1, "not-an-endpoint")], 0);
        assert!(config(&n, "n", "w", false, 0).is_err());
    }
}
