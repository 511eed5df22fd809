//! The workload types of Zero-OS v3, their validation rules and the capacity each one takes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::{Capacity, DeploymentError, Secret};

pub const GIB: u64 = 1024 * 1024 * 1024;
pub const MIB: u64 = 1024 * 1024;
/// A zmachine needs at least this much memory.
pub const ZMACHINE_MEMORY_MIN: u64 = 250 * MIB;
const WORKLOAD_NAME_LEN_MAX: usize = 36;

macro_rules! wire {
    ($($item:item)*) => {$(
        #[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
        $item
    )*};
}

wire! {
    /// One workload of a deployment.
    pub struct Workload {
        pub version: u32,
        pub name: String,
        #[serde(default)]
        pub metadata: String,
        #[serde(default)]
        pub description: String,
        #[serde(flatten)]
        pub data: WorkloadData,
    }

    /// What a workload is, with its type's fields (`type` and `data` in JSON, as in Zero-OS).
    #[serde(tag = "type", content = "data", rename_all = "kebab-case")]
    pub enum WorkloadData {
        Zmachine(Zmachine),
        Zmount(Zmount),
        Volume(Volume),
        Network(Network),
        Zdb(Zdb),
        Ip(Ip),
        GatewayNameProxy(GatewayNameProxy),
        GatewayFqdnProxy(GatewayFqdnProxy),
        Zlogs(Zlogs),
    }

    /// A container, or a full VM when its image holds a disk image.
    pub struct Zmachine {
        /// The image: a content-addressed archive by URL.
        pub flist: String,
        /// blake3 of the image archive, checked by the node before use.
        #[serde(default)]
        pub flist_hash: String,
        pub network: ZmachineNetwork,
        /// Root filesystem size in bytes (0: the minimum).
        #[serde(default)]
        pub size: u64,
        pub compute_capacity: ComputeCapacity,
        #[serde(default)]
        pub mounts: Vec<Mount>,
        #[serde(default)]
        pub entrypoint: String,
        /// Environment; values are secrets.
        #[serde(default)]
        pub env: BTreeMap<String, Secret>,
        #[serde(default)]
        pub corex: bool,
    }

    pub struct ZmachineNetwork {
        /// The name of an `ip` workload of the same deployment, if the machine has a public IP.
        #[serde(default)]
        pub public_ip: String,
        pub interfaces: Vec<NetworkInterface>,
    }

    pub struct NetworkInterface {
        /// The name of a `network` workload.
        pub network: String,
        pub ip: String,
    }

    pub struct ComputeCapacity {
        pub cpu: u8,
        /// Bytes.
        pub memory: u64,
    }

    pub struct Mount {
        /// The name of a `zmount` or `volume` workload.
        pub name: String,
        pub mountpoint: String,
    }

    /// A disk for a zmachine.
    pub struct Zmount { pub size: u64 }

    /// A shared directory for zmachines.
    pub struct Volume { pub size: u64 }

    /// A node's part of a user's private network: a WireGuard overlay.
    pub struct Network {
        /// The network's whole range, a /16.
        pub ip_range: String,
        /// This node's /24 within it.
        pub subnet: String,
        pub wireguard_private_key: Secret,
        /// The UDP port of the node's WireGuard device; 0 lets the node pick a free one (it
        /// reports it in the workload's result and keeps it).
        pub wireguard_listen_port: u16,
        #[serde(default)]
        pub peers: Vec<Peer>,
    }

    pub struct Peer {
        pub subnet: String,
        pub wireguard_public_key: String,
        pub allowed_ips: Vec<String>,
        /// `ip:port` where the peer listens; empty when it has none known (a hidden node, a
        /// user's machine, a node not reported yet): the peer dials in and is answered.
        #[serde(default)]
        pub endpoint: String,
    }

    /// A 0-db namespace.
    pub struct Zdb {
        pub size: u64,
        pub mode: ZdbMode,
        pub password: Secret,
        #[serde(default)]
        pub public: bool,
    }

    #[derive(Copy)]
    #[serde(rename_all = "lowercase")]
    pub enum ZdbMode { User, Seq }

    /// A public IP from the farm (v4, reserved by the contract) and/or the node's IPv6.
    pub struct Ip {
        #[serde(default)]
        pub v4: bool,
        #[serde(default)]
        pub v6: bool,
    }

    /// `<name>.<gateway domain>` proxied to backends.
    pub struct GatewayNameProxy {
        pub name: String,
        #[serde(default)]
        pub tls_passthrough: bool,
        pub backends: Vec<String>,
        #[serde(default)]
        pub network: Option<String>,
    }

    /// A user's own domain proxied to backends.
    pub struct GatewayFqdnProxy {
        pub fqdn: String,
        #[serde(default)]
        pub tls_passthrough: bool,
        pub backends: Vec<String>,
        #[serde(default)]
        pub network: Option<String>,
    }

    /// Streams a zmachine's logs to a redis or websocket URL.
    pub struct Zlogs {
        pub zmachine: String,
        pub output: String,
    }
}

impl WorkloadData {
    /// The type's name, as Zero-OS writes it.
    pub fn type_name(&self) -> &'static str {
        match self {
            WorkloadData::Zmachine(_) => "zmachine",
            WorkloadData::Zmount(_) => "zmount",
            WorkloadData::Volume(_) => "volume",
            WorkloadData::Network(_) => "network",
            WorkloadData::Zdb(_) => "zdb",
            WorkloadData::Ip(_) => "ip",
            WorkloadData::GatewayNameProxy(_) => "gateway-name-proxy",
            WorkloadData::GatewayFqdnProxy(_) => "gateway-fqdn-proxy",
            WorkloadData::Zlogs(_) => "zlogs",
        }
    }

    /// Order of installation (removal is the reverse), as Zero-OS provisions.
    pub fn install_rank(&self) -> u8 {
        match self {
            WorkloadData::Zmount(_) => 0,
            WorkloadData::Volume(_) => 1,
            WorkloadData::Network(_) => 2,
            WorkloadData::Ip(_) => 3,
            WorkloadData::Zdb(_) => 4,
            WorkloadData::Zmachine(_) => 5,
            WorkloadData::Zlogs(_) => 6,
            WorkloadData::GatewayNameProxy(_) => 7,
            WorkloadData::GatewayFqdnProxy(_) => 8,
        }
    }

    /// Whether an update may change this workload in place (otherwise: remove and add anew).
    pub fn updatable(&self) -> bool {
        matches!(
            self,
            WorkloadData::Zmount(_)
                | WorkloadData::Volume(_)
                | WorkloadData::Zdb(_)
                | WorkloadData::Network(_)
        )
    }

    /// The capacity the workload takes on its node.
    pub fn capacity(&self) -> Capacity {
        match self {
            WorkloadData::Zmachine(m) => Capacity {
                cru: m.compute_capacity.cpu as u64,
                mru: m.compute_capacity.memory,
                sru: m.root_size(),
                ..Capacity::default()
            },
            WorkloadData::Zmount(Zmount { size }) | WorkloadData::Volume(Volume { size }) => {
                Capacity {
                    sru: *size,
                    ..Capacity::default()
                }
            }
            WorkloadData::Zdb(z) => Capacity {
                hru: z.size,
                ..Capacity::default()
            },
            WorkloadData::Ip(ip) => Capacity {
                ipv4u: ip.v4 as u64,
                ..Capacity::default()
            },
            _ => Capacity::default(),
        }
    }

    /// The secrets of the workload, to seal or open.
    pub fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        match self {
            WorkloadData::Zmachine(m) => m.env.values_mut().collect(),
            WorkloadData::Network(n) => vec![&mut n.wireguard_private_key],
            WorkloadData::Zdb(z) => vec![&mut z.password],
            _ => vec![],
        }
    }
}

impl Zmachine {
    /// The root filesystem's size: the asked size, at least 500 MiB (2 GiB for large machines).
    pub fn root_size(&self) -> u64 {
        let c = &self.compute_capacity;
        let min = if (c.cpu as u64).saturating_mul(c.memory) / (8 * GIB) == 0 {
            500 * MIB
        } else {
            2 * GIB
        };
        self.size.max(min)
    }
}

fn invalid(workload: &str, reason: impl Into<String>) -> DeploymentError {
    DeploymentError::InvalidWorkload {
        name: workload.to_owned(),
        reason: reason.into(),
    }
}

fn cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = text.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn valid_host_label(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks a workload name: 1 to 36 letters, digits and '_'.
pub fn check_name(name: &str) -> Result<(), DeploymentError> {
    let ok = !name.is_empty()
        && name.len() <= WORKLOAD_NAME_LEN_MAX
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(name, "a name is 1 to 36 letters, digits and '_'"))
    }
}

/// A network workload's own rules: its range and subnet, its key, its peers.
fn check_network(name: &str, n: &Network) -> Result<(), DeploymentError> {
    let (range_ip, range_len) = cidr(&n.ip_range)
        .ok_or_else(|| invalid(name, "ip_range is not a CIDR like 10.20.0.0/16"))?;
    let (subnet_ip, subnet_len) =
        cidr(&n.subnet).ok_or_else(|| invalid(name, "subnet is not a CIDR like 10.20.1.0/24"))?;
    let (IpAddr::V4(range), IpAddr::V4(subnet)) = (range_ip, subnet_ip) else {
        return Err(invalid(name, "ip_range and subnet must be IPv4"));
    };
    let mask = |len: u8| if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if subnet_len < range_len
        || u32::from(subnet) & mask(range_len) != u32::from(range) & mask(range_len)
    {
        return Err(invalid(name, "subnet is not inside ip_range"));
    }
    if n.wireguard_private_key.is_empty() {
        return Err(invalid(name, "wireguard_private_key is empty"));
    }
    for peer in &n.peers {
        if peer.wireguard_public_key.is_empty() || cidr(&peer.subnet).is_none() {
            return Err(invalid(name, "a peer needs a public key and a subnet"));
        }
        if peer.allowed_ips.iter().any(|a| cidr(a).is_none()) {
            return Err(invalid(name, "a peer's allowed IP is not a CIDR"));
        }
        if !peer.endpoint.is_empty() && peer.endpoint.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                name,
                format!("peer endpoint {:?} is not ip:port", peer.endpoint),
            ));
        }
    }
    Ok(())
}

impl Workload {
    /// The type's own rules; references to other workloads are checked by the deployment.
    pub fn check(&self) -> Result<(), DeploymentError> {
        check_name(&self.name)?;
        let name = self.name.as_str();
        match &self.data {
            WorkloadData::Zmachine(m) => {
                if m.flist.is_empty() {
                    return Err(invalid(name, "flist (the image URL) is empty"));
                }
                if m.network.interfaces.len() != 1 {
                    return Err(invalid(
                        name,
                        "a zmachine has exactly one network interface",
                    ));
                }
                let iface = &m.network.interfaces[0];
                if iface.ip.parse::<Ipv4Addr>().is_err() {
                    return Err(invalid(
                        name,
                        format!("interface IP {:?} is not an IPv4 address", iface.ip),
                    ));
                }
                if m.compute_capacity.cpu == 0 {
                    return Err(invalid(name, "cpu must be at least 1"));
                }
                if m.compute_capacity.memory < ZMACHINE_MEMORY_MIN {
                    return Err(invalid(name, "memory must be at least 250 MiB"));
                }
                for mount in &m.mounts {
                    if !mount.mountpoint.starts_with('/') {
                        return Err(invalid(
                            name,
                            format!("mountpoint {:?} is not an absolute path", mount.mountpoint),
                        ));
                    }
                }
                if m.env.keys().any(|k| k.is_empty() || k.contains('=')) {
                    return Err(invalid(
                        name,
                        "an environment variable name is empty or holds '='",
                    ));
                }
            }
            WorkloadData::Zmount(Zmount { size }) | WorkloadData::Volume(Volume { size }) => {
                if *size == 0 {
                    return Err(invalid(name, "size must be more than 0"));
                }
            }
            WorkloadData::Network(n) => check_network(name, n)?,
            WorkloadData::Zdb(z) => {
                if z.size == 0 {
                    return Err(invalid(name, "size must be more than 0"));
                }
            }
            WorkloadData::Ip(ip) => {
                if !ip.v4 && !ip.v6 {
                    return Err(invalid(name, "ask for v4, v6 or both"));
                }
            }
            WorkloadData::GatewayNameProxy(g) => {
                if !valid_host_label(&g.name) {
                    return Err(invalid(
                        name,
                        "the gateway name may only hold letters, digits, '-' and '_'",
                    ));
                }
                check_backends(name, &g.backends, g.tls_passthrough)?;
            }
            WorkloadData::GatewayFqdnProxy(g) => {
                let labels: Vec<&str> = g.fqdn.split('.').collect();
                let ok = labels.len() >= 2
                    && labels.iter().all(|l| valid_host_label(l))
                    && labels.last().is_some_and(|tld| tld.len() >= 2);
                if !ok {
                    return Err(invalid(name, format!("{:?} is not a domain name", g.fqdn)));
                }
                check_backends(name, &g.backends, g.tls_passthrough)?;
            }
            WorkloadData::Zlogs(z) => {
                let scheme = z.output.split_once("://").map(|(s, _)| s);
                if !matches!(scheme, Some("redis" | "ws" | "wss")) {
                    return Err(invalid(
                        name,
                        "output must be a redis://, ws:// or wss:// URL",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_backends(
    name: &str,
    backends: &[String],
    passthrough: bool,
) -> Result<(), DeploymentError> {
    if backends.is_empty() {
        return Err(invalid(name, "a gateway needs at least one backend"));
    }
    for backend in backends {
        let host_port = if passthrough {
            backend.as_str()
        } else {
            backend.strip_prefix("http://").ok_or_else(|| {
                invalid(
                    name,
                    format!("backend {backend:?} must be http://ip[:port]"),
                )
            })?
        };
        let ip_part = match host_port.rsplit_once(':') {
            Some((ip, port)) if port.parse::<u16>().is_ok() => ip,
            _ if passthrough => {
                return Err(invalid(
                    name,
                    format!("backend {backend:?} must be ip:port with TLS passthrough"),
                ));
            }
            _ => host_port,
        };
        let ip: IpAddr = ip_part
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| invalid(name, format!("backend {backend:?} does not name an IP")))?;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if ip.is_loopback() || ip.is_unspecified() {
            return Err(invalid(
                name,
                format!("backend {backend:?} is a loopback or unspecified address"),
            ));
        }
    }
    Ok(())
}
