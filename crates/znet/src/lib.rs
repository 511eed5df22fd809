//! A node's part of a user network, as the `znet` process carries it out: the [`Config`] the node
//! agent writes (the network's namespace, the WireGuard key, listen port and address, the peers
//! with their allowed IPs and endpoints), WireGuard keys in their standard base64 form, the routes
//! a config asks for and how they change from one config to the next, and `ip` run as a command.
//! The data plane itself (gotatun over a TUN device) is in the binary (`main.rs`, `device.rs`).
//!
//! The run directory of a network holds `config.json` (written by the agent, re-read on SIGHUP),
//! and `port` (written by `znet` once its UDP socket is bound: the port it listens on).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

pub mod offload;

/// The MTU of the overlay's TUN device: 1500 less WireGuard's 80 bytes of IPv6, UDP and framing.
pub const MTU: u16 = 1420;
/// The keepalive a node without a public address keeps towards peers it dials (seconds): it holds
/// NAT mappings open so that the peers' packets reach it.
pub const HIDDEN_KEEPALIVE: u16 = 25;
/// What `znet run` prints on its standard output, followed by the port, once it is up.
pub const READY: &str = "znet: listening on ";
/// The file of a run directory holding the config.
pub const CONFIG_FILE: &str = "config.json";
/// The file of a run directory where `znet` writes the port it listens on.
pub const PORT_FILE: &str = "port";

/// What one `znet` process carries out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The network namespace the TUN device is moved into (its routes live there).
    pub netns: String,
    /// The TUN device's name: unique on the host while it is created, kept in the namespace.
    pub tun: String,
    /// The device's private key, standard base64 (as `wg genkey` prints it).
    pub private_key: String,
    /// The UDP port, bound in the namespace `znet` runs in; 0 picks a free one.
    pub listen_port: u16,
    /// The device's own address with the overlay's prefix, e.g. `100.64.3.1/16`.
    pub address: String,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConfig {
    /// Standard base64.
    pub public_key: String,
    /// Where the peer listens; `None` when it dials in.
    pub endpoint: Option<SocketAddr>,
    /// CIDRs routed to the peer and accepted from it.
    pub allowed_ips: Vec<String>,
    /// Seconds between keepalives, if any.
    pub keepalive: Option<u16>,
}

impl Config {
    /// Reads a run directory's config.
    pub fn load(dir: &Path) -> Result<Config> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let config: Config =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config.check()?;
        Ok(config)
    }

    /// Writes the config into `dir` whole or not at all (a reader never sees half of it).
    pub fn store(&self, dir: &Path) -> Result<()> {
        self.check()?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{CONFIG_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, dir.join(CONFIG_FILE))?;
        Ok(())
    }

    /// Every key decodes, every allowed IP and the address parse, no public key is given twice.
    pub fn check(&self) -> Result<()> {
        key(&self.private_key).context("the private key")?;
        self.address
            .parse::<ipnetwork::IpNetwork>()
            .with_context(|| format!("the address {:?} is not a CIDR", self.address))?;
        if self.tun.is_empty() || self.tun.len() > 15 {
            bail!("the TUN device's name {:?} is not 1 to 15 bytes", self.tun);
        }
        let mut keys = BTreeSet::new();
        for p in &self.peers {
            key(&p.public_key).with_context(|| format!("peer key {:?}", p.public_key))?;
            if !keys.insert(&p.public_key) {
                bail!("peer {} is listed twice", p.public_key);
            }
            for a in &p.allowed_ips {
                a.parse::<ipnetwork::IpNetwork>()
                    .with_context(|| format!("allowed IP {a:?} of peer {}", p.public_key))?;
            }
        }
        Ok(())
    }

    /// The routes the config asks for in its namespace: every peer's allowed IPs, each once,
    /// normalised to its network address.
    pub fn routes(&self) -> BTreeSet<String> {
        self.peers
            .iter()
            .flat_map(|p| &p.allowed_ips)
            .filter_map(|a| a.parse::<ipnetwork::IpNetwork>().ok())
            .map(|n| format!("{}/{}", n.network(), n.prefix()))
            .collect()
    }
}

/// The routes to delete and to add when the config `old` becomes `new`.
pub fn route_changes(old: &Config, new: &Config) -> (Vec<String>, Vec<String>) {
    let (old, new) = (old.routes(), new.routes());
    (
        old.difference(&new).cloned().collect(),
        new.difference(&old).cloned().collect(),
    )
}

/// How the peers change from config `old` to `new`: the public keys gone, the peers new, and
/// the peers whose entry changed. Peers whose entry is the same are in none: their sessions, and
/// the endpoint they roamed to, are left alone.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PeerChanges {
    pub removed: Vec<String>,
    pub added: Vec<PeerConfig>,
    pub changed: Vec<PeerConfig>,
}

pub fn peer_changes(old: &Config, new: &Config) -> PeerChanges {
    let before = |key: &str| old.peers.iter().find(|p| p.public_key == key);
    let mut changes = PeerChanges {
        removed: old
            .peers
            .iter()
            .filter(|p| !new.peers.iter().any(|n| n.public_key == p.public_key))
            .map(|p| p.public_key.clone())
            .collect(),
        ..PeerChanges::default()
    };
    for p in &new.peers {
        match before(&p.public_key) {
            None => changes.added.push(p.clone()),
            Some(o) if o != p => changes.changed.push(p.clone()),
            Some(_) => {}
        }
    }
    changes
}

/// A 32-byte key from its standard base64.
pub fn key(text: &str) -> Result<[u8; 32]> {
    let bytes = STANDARD
        .decode(text.trim())
        .context("a WireGuard key is standard base64")?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("a WireGuard key has 32 bytes, not {}", b.len()))
}

/// A key's standard base64.
pub fn key_text(key: &[u8; 32]) -> String {
    STANDARD.encode(key)
}

/// Runs `ip` with `args`; its output, or an error with what it said.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(peers: Vec<PeerConfig>) -> Config {
        Config {
            netns: "n-x".into(),
            tun: "w-x".into(),
            private_key: key_text(&[7; 32]),
            listen_port: 0,
            address: "100.64.3.1/16".into(),
            peers,
        }
    }

    fn peer(n: u8, allowed: &[&str]) -> PeerConfig {
        PeerConfig {
            public_key: key_text(&[n; 32]),
            endpoint: None,
            allowed_ips: allowed.iter().map(|s| s.to_string()).collect(),
            keepalive: None,
        }
    }

    #[test]
    fn routes_and_their_changes() {
        let old = config(vec![
            peer(1, &["10.3.2.0/24", "100.64.3.2/32"]),
            peer(2, &["10.3.3.7/24", "100.64.3.3/32"]),
        ]);
        assert_eq!(
            old.routes().into_iter().collect::<Vec<_>>(),
            [
                "10.3.2.0/24",
                "10.3.3.0/24",
                "100.64.3.2/32",
                "100.64.3.3/32"
            ]
        );
        let new = config(vec![
            peer(1, &["10.3.2.0/24", "100.64.3.2/32", "10.3.9.0/24"]),
            peer(3, &["10.3.4.0/24"]),
        ]);
        let (gone, added) = route_changes(&old, &new);
        assert_eq!(gone, ["10.3.3.0/24", "100.64.3.3/32"]);
        assert_eq!(added, ["10.3.4.0/24", "10.3.9.0/24"]);
    }

    #[test]
    fn only_changed_peers_are_touched() {
        let old = config(vec![peer(1, &["10.3.2.0/24"]), peer(2, &["10.3.3.0/24"])]);
        let mut moved = peer(2, &["10.3.3.0/24", "10.3.9.0/24"]);
        moved.keepalive = Some(25);
        let new = config(vec![peer(1, &["10.3.2.0/24"]), moved.clone(), peer(3, &[])]);
        let changes = peer_changes(&old, &new);
        assert_eq!(changes.changed, vec![moved]);
        assert_eq!(changes.added, vec![peer(3, &[])]);
        assert!(changes.removed.is_empty());
        let gone = peer_changes(&new, &old);
        assert_eq!(gone.removed, vec![key_text(&[3; 32])]);
        assert_eq!(peer_changes(&old, &old), PeerChanges::default());
    }

    #[test]
    fn checks() {
        assert!(config(vec![peer(1, &["10.3.2.0/24"])]).check().is_ok());
        let twice = config(vec![peer(1, &[]), peer(1, &[])]);
        assert!(twice.check().unwrap_err().to_string().contains("twice"));
        let bad = config(vec![peer(1, &["10.3.2.0/33"])]);
        assert!(bad.check().is_err());
        let mut short = config(vec![]);
        short.private_key = STANDARD.encode([1u8; 31]);
        assert!(format!("{:#}", short.check().unwrap_err()).contains("32 bytes"));
        assert_eq!(key(&key_text(&[9; 32])).unwrap(), [9; 32]);
    }

    #[test]
    fn configs_are_stored_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(vec![peer(1, &["10.3.2.0/24"])]);
        c.store(dir.path()).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), c);
        assert!(!dir.path().join("config.json.tmp").exists());
    }
}
