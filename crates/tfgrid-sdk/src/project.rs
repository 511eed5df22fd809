//! Deployment files: a project in TOML — containers, 0-db namespaces, volumes, public IPs, gateways
//! — and the node it runs on, by id or by constraints the explorer resolves. [`Project::parse`] reports the
//! line and column of every mistake; [`Project::workloads`] turns the file into Zero-OS workloads.
//! The format, with examples, is in the repository's `examples/` folder.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::Range;

use serde::{Deserialize, Deserializer};
use tfchain_runtime::limits::NAME_CONTRACT_LEN_MIN;
use tfgrid_types::deployment::{
    self as zos, ComputeCapacity, Deployment, GIB, MIB, Mount, NetworkInterface, Secret, Workload,
    WorkloadData, ZdbMode, ZmachineNetwork,
};
use toml::Spanned;

use crate::Error;

/// The longest project name: the private network's workload is `<name>_net`, within Zero-OS's 36.
const PROJECT_NAME_MAX: usize = 32;
/// The longest gateway name: its workload is `<name>_gw`, within Zero-OS's 36.
const GATEWAY_NAME_MAX: usize = 32;

/// A deployment file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Names the deployment: its state, and its contract's metadata on the chain.
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// Where it runs; by default any node that is up and has room.
    #[serde(default)]
    pub node: NodeChoice,
    /// The private network the containers share.
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default, rename = "container")]
    pub containers: Vec<Container>,
    #[serde(default, rename = "zdb")]
    pub zdbs: Vec<Zdb>,
    #[serde(default, rename = "volume")]
    pub volumes: Vec<Volume>,
    #[serde(default, rename = "gateway")]
    pub gateways: Vec<Gateway>,
}

/// The node: by id, or constraints (all must hold) the explorer resolves to a node with room.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeChoice {
    pub id: Option<u32>,
    /// A farm by name.
    pub farm: Option<String>,
    pub farm_id: Option<u32>,
    pub country: Option<String>,
    pub city: Option<String>,
    /// Only certified nodes (true) or only uncertified ones (false).
    pub certified: Option<bool>,
    /// Only nodes of dedicated farms (true: rent the node first) or only shared ones (false).
    pub dedicated: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The network's range, a /16; the node gets the first /24 in it.
    #[serde(default = "default_ip_range")]
    pub ip_range: Spanned<String>,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            ip_range: Spanned::new(0..0, default_ip_range().into_inner()),
        }
    }
}

fn default_ip_range() -> Spanned<String> {
    Spanned::new(0..0, "10.20.0.0/16".to_owned())
}

/// A machine: a container, or a VM when its image holds a kernel (the node decides by the image).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub name: Spanned<String>,
    /// An image: a name the hub knows (`demo`), or the URL of an archive with `image_hash`
    /// (or named `<hash>.tar`).
    pub image: String,
    pub image_hash: Option<String>,
    #[serde(default = "one")]
    pub cpu: u8,
    pub memory: Size,
    /// The root filesystem's size (at least 500 MiB).
    pub disk: Option<Size>,
    #[serde(default)]
    pub entrypoint: String,
    /// Environment variables: sealed to the node, never on the chain in the clear.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Volumes to mount: `{ data = "/data" }`.
    #[serde(default)]
    pub mounts: BTreeMap<String, String>,
    /// A public IPv4 from the farm.
    #[serde(default)]
    pub public_ip: bool,
    /// The address in the private network (default: the next free one).
    pub ip: Option<Spanned<Ipv4Addr>>,
}

fn one() -> u8 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zdb {
    pub name: Spanned<String>,
    pub size: Size,
    #[serde(default = "user_mode")]
    pub mode: ZdbMode,
    pub password: String,
    /// Reachable from outside the node's private networks.
    #[serde(default)]
    pub public: bool,
}

fn user_mode() -> ZdbMode {
    ZdbMode::User
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub name: Spanned<String>,
    pub size: Size,
}

/// A gateway: a host name the node serves over HTTP and HTTPS, proxied to a container of the
/// project (or to addresses given in full). Without `fqdn`, `name` is a gateway name served as
/// `<name>.<the node's gateway domain>`, held by a name contract the apply creates; with `fqdn`,
/// the user's own domain is served (its DNS must point at the node) and `name` only names it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    pub name: Spanned<String>,
    pub fqdn: Option<Spanned<String>>,
    /// `<container>:<port>`: a container of the project, reached in its private network.
    pub backend: Option<Spanned<String>>,
    /// Backends in full instead: `http://ip[:port]`, or `ip:port` with `tls_passthrough`.
    #[serde(default)]
    pub backends: Vec<String>,
    /// Hand TLS connections to the backend as they are (it holds the certificate), chosen by SNI.
    #[serde(default)]
    pub tls_passthrough: bool,
}

impl Gateway {
    /// The workload that serves it: `<name>_gw`, with '-' written '_'.
    pub fn workload_name(&self) -> String {
        format!("{}_gw", self.name.get_ref().replace('-', "_"))
    }

    /// The gateway name it holds a name contract for (none with its own `fqdn`).
    pub fn gateway_name(&self) -> Option<&str> {
        self.fqdn.is_none().then(|| self.name.get_ref().as_str())
    }
}

/// A size in bytes, written as a number of bytes or as text: "256 MiB", "2GiB", "1 GB".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(text: &str) -> Result<Size, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        if number.is_empty() {
            return Err(format!("{text:?} is not a size such as \"256 MiB\""));
        }
        let unit_bytes: u64 = match unit.trim() {
            "" | "B" => 1,
            "K" | "KiB" => 1 << 10,
            "M" | "MiB" => 1 << 20,
            "G" | "GiB" => 1 << 30,
            "T" | "TiB" => 1 << 40,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            other => {
                return Err(format!(
                    "unknown size unit {other:?}: use B, KiB, MiB, GiB or TiB (or KB, MB, GB, TB)"
                ));
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a size such as \"256 MiB\""))?;
        let bytes = value * unit_bytes as f64;
        if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) {
            return Err(format!("{text:?} is out of range"));
        }
        Ok(Size(bytes as u64))
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        match b {
            _ if b >= GIB && b.is_multiple_of(GIB / 4) => {
                write!(f, "{} GiB", b as f64 / GIB as f64)
            }
            _ if b >= MIB && b.is_multiple_of(MIB) => write!(f, "{} MiB", b / MIB),
            _ => write!(f, "{b} B"),
        }
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("a size is a number of bytes or text such as \"256 MiB\"")
        })? {
            Raw::Bytes(b) => Ok(Size(b)),
            Raw::Text(t) => Size::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Where an image is and its hash, as the node fetches and checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    pub url: String,
    pub hash: String,
}

impl Project {
    /// Parses and checks a deployment file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Project, Error> {
        let project: Project = toml::from_str(text).map_err(|e| Error::File {
            file: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        project.check().map_err(|(span, message)| {
            let (line, column) = line_column(text, span.start);
            Error::File {
                file: origin.to_owned(),
                message: format!("at line {line}, column {column}: {message}"),
            }
        })?;
        Ok(project)
    }

    /// Reads and parses a deployment file.
    pub fn read(path: &std::path::Path) -> Result<Project, Error> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::File {
            file: origin.clone(),
            message: format!("cannot read it: {e}"),
        })?;
        Project::parse(&text, &origin)
    }

    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// The private network's workload name.
    pub fn network_name(&self) -> String {
        format!("{}_net", self.name())
    }

    /// The subnet of the node: the first /24 of the range.
    fn subnet(&self) -> (Ipv4Addr, String) {
        let base: Ipv4Addr = self.range_base().expect("checked at parse");
        let [a, b, _, _] = base.octets();
        (Ipv4Addr::new(a, b, 1, 0), format!("{a}.{b}.1.0/24"))
    }

    fn range_base(&self) -> Option<Ipv4Addr> {
        let (ip, len) = self.network.ip_range.get_ref().split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let [a, b, c, d] = ip.octets();
        (len == "16" && c == 0 && d == 0 && a != 0).then_some(Ipv4Addr::new(a, b, 0, 0))
    }

    /// Every mistake a file can hold beyond its syntax, with where it is.
    fn check(&self) -> Result<(), (Range<usize>, String)> {
        let name = self.name.get_ref();
        let ok_name = !name.is_empty()
            && name.len() <= PROJECT_NAME_MAX
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok_name {
            return Err((
                self.name.span(),
                format!(
                    "the project name {name:?} must be 1 to {PROJECT_NAME_MAX} lowercase letters, digits and '_'"
                ),
            ));
        }
        if self.containers.is_empty() && self.zdbs.is_empty() && self.volumes.is_empty() {
            return Err((
                self.name.span(),
                "the project deploys nothing: add a [[container]], [[zdb]] or [[volume]]".into(),
            ));
        }
        self.check_gateways()?;
        if let Some(id) = self.node.id {
            let n = &self.node;
            let constrained = n.farm.is_some()
                || n.farm_id.is_some()
                || n.country.is_some()
                || n.city.is_some()
                || n.certified.is_some()
                || n.dedicated.is_some();
            if constrained {
                return Err((
                    self.name.span(),
                    format!("[node] names node {id} and constraints: give one or the other"),
                ));
            }
        }
        if self.range_base().is_none() {
            return Err((
                self.network.ip_range.span(),
                format!(
                    "the network's ip_range {:?} must be a private /16 such as \"10.20.0.0/16\"",
                    self.network.ip_range.get_ref()
                ),
            ));
        }
        let mut seen = BTreeSet::from([self.network_name()]);
        let mut names: Vec<&Spanned<String>> = self
            .containers
            .iter()
            .map(|c| &c.name)
            .chain(self.zdbs.iter().map(|z| &z.name))
            .chain(self.volumes.iter().map(|v| &v.name))
            .collect();
        // In file order, so a name given twice is reported where it is given again.
        names.sort_by_key(|n| n.span().start);
        let reserved = |n: &str| n.ends_with("_ip") || n.ends_with("_gw");
        for n in names {
            zos::check_name(n.get_ref()).map_err(|e| (n.span(), e.to_string()))?;
            if reserved(n.get_ref()) || !seen.insert(n.get_ref().clone()) {
                return Err((
                    n.span(),
                    format!(
                        "the name {:?} is taken (names are unique in a project; \
                         <name>_ip, <name>_gw and <project>_net are reserved)",
                        n.get_ref()
                    ),
                ));
            }
        }
        let volumes: BTreeSet<&str> = self
            .volumes
            .iter()
            .map(|v| v.name.get_ref().as_str())
            .collect();
        let (subnet_base, subnet) = self.subnet();
        let mut ips = BTreeSet::new();
        for c in &self.containers {
            let at = c.name.span();
            if c.image.trim().is_empty() {
                return Err((at, "the container has no image".into()));
            }
            if c.cpu == 0 {
                return Err((at, "a container needs at least 1 cpu".into()));
            }
            if c.memory.0 < zos::ZMACHINE_MEMORY_MIN {
                return Err((
                    at,
                    format!(
                        "memory {} is below the minimum of {}",
                        c.memory,
                        Size(zos::ZMACHINE_MEMORY_MIN)
                    ),
                ));
            }
            for (volume, path) in &c.mounts {
                if !volumes.contains(volume.as_str()) {
                    return Err((
                        at.clone(),
                        format!("mounts {volume:?}, which is not a [[volume]] of the project"),
                    ));
                }
                if !path.starts_with('/') {
                    return Err((at.clone(), format!("mount point {path:?} must be absolute")));
                }
            }
            if let Some(ip) = &c.ip {
                let [a, b, c3, d] = ip.get_ref().octets();
                let [sa, sb, sc, _] = subnet_base.octets();
                if (a, b, c3) != (sa, sb, sc) || d < 2 || d == 255 {
                    return Err((
                        ip.span(),
                        format!(
                            "{} is not a host address of the node's subnet {subnet} (from .2)",
                            ip.get_ref()
                        ),
                    ));
                }
                if !ips.insert(*ip.get_ref()) {
                    return Err((ip.span(), format!("{} is given twice", ip.get_ref())));
                }
            }
        }
        Ok(())
    }

    /// The gateways' own rules: names, backends, a domain of their own.
    fn check_gateways(&self) -> Result<(), (Range<usize>, String)> {
        let mut seen = BTreeSet::new();
        for g in &self.gateways {
            let at = g.name.span();
            let name = g.name.get_ref();
            let label_ok = name.len() >= NAME_CONTRACT_LEN_MIN
                && name.len() <= GATEWAY_NAME_MAX
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !label_ok {
                return Err((
                    at,
                    format!(
                        "the gateway name {name:?} must be {NAME_CONTRACT_LEN_MIN} to \
                         {GATEWAY_NAME_MAX} lowercase letters, digits and '-'"
                    ),
                ));
            }
            if !seen.insert(g.workload_name()) {
                return Err((at, format!("a gateway named {name:?} is given twice")));
            }
            if let Some(fqdn) = &g.fqdn {
                let labels: Vec<&str> = fqdn.get_ref().split('.').collect();
                let ok = labels.len() >= 2
                    && labels.iter().all(|l| {
                        !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if !ok {
                    return Err((
                        fqdn.span(),
                        format!("{:?} is not a domain name", fqdn.get_ref()),
                    ));
                }
            }
            match (&g.backend, g.backends.is_empty()) {
                (Some(_), false) | (None, true) => {
                    return Err((
                        at,
                        "a gateway needs either backend = \"<container>:<port>\" or backends = [...]"
                            .into(),
                    ));
                }
                (Some(b), true) => {
                    let target = b.get_ref().rsplit_once(':').and_then(|(c, port)| {
                        let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
                        self.containers
                            .iter()
                            .any(|k| k.name.get_ref() == c)
                            .then_some(port)
                    });
                    if target.is_none() {
                        return Err((
                            b.span(),
                            format!(
                                "backend {:?} must be <container>:<port>, a container of the project",
                                b.get_ref()
                            ),
                        ));
                    }
                }
                (None, false) => {}
            }
            let probe = zos::Workload {
                version: 0,
                name: g.workload_name(),
                metadata: String::new(),
                description: String::new(),
                data: WorkloadData::GatewayFqdnProxy(zos::GatewayFqdnProxy {
                    fqdn: "probe.example.com".into(),
                    tls_passthrough: g.tls_passthrough,
                    backends: self.backends(g, &BTreeMap::new()),
                    network: None,
                }),
            };
            probe.check().map_err(|e| (at.clone(), e.to_string()))?;
        }
        Ok(())
    }

    /// A gateway's backends: its own, or its container's address and port.
    fn backends(&self, g: &Gateway, addresses: &BTreeMap<&str, Ipv4Addr>) -> Vec<String> {
        let Some(backend) = &g.backend else {
            return g.backends.clone();
        };
        let (container, port) = backend
            .get_ref()
            .rsplit_once(':')
            .expect("checked at parse");
        // Before addresses are assigned (at parse), any host address stands for the container's.
        let ip = addresses
            .get(container)
            .copied()
            .unwrap_or(Ipv4Addr::new(10, 0, 0, 2));
        match g.tls_passthrough {
            true => vec![format!("{ip}:{port}")],
            false => vec![format!("http://{ip}:{port}")],
        }
    }

    /// The Zero-OS workloads of the project, all at version 0. `images` maps each container's
    /// `image` to where the node fetches it; `old` is the deployment running now, whose address
    /// assignments are kept.
    pub fn workloads(
        &self,
        images: &BTreeMap<String, ResolvedImage>,
        old: Option<&Deployment>,
        rng: &mut impl rand::RngCore,
    ) -> Vec<Workload> {
        let workload = |name: &str, data: WorkloadData| Workload {
            version: 0,
            name: name.to_owned(),
            metadata: String::new(),
            description: String::new(),
            data,
        };
        let mut out = Vec::new();
        for v in &self.volumes {
            out.push(workload(
                v.name.get_ref(),
                WorkloadData::Volume(zos::Volume { size: v.size.0 }),
            ));
        }
        for z in &self.zdbs {
            out.push(workload(
                z.name.get_ref(),
                WorkloadData::Zdb(zos::Zdb {
                    size: z.size.0,
                    mode: z.mode,
                    password: Secret::Plain(z.password.clone()),
                    public: z.public,
                }),
            ));
        }
        if self.containers.is_empty() {
            out.extend(self.gateway_workloads(&BTreeMap::new()));
            return out;
        }
        let network = self.network_name();
        let (subnet_base, subnet) = self.subnet();
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        out.push(workload(
            &network,
            WorkloadData::Network(zos::Network {
                ip_range: self.network.ip_range.get_ref().clone(),
                subnet,
                wireguard_private_key: Secret::Plain(hex::encode(key)),
                wireguard_listen_port: 3000,
                peers: vec![],
            }),
        ));
        let addresses = self.addresses(subnet_base, old);
        for c in &self.containers {
            let name = c.name.get_ref();
            let image = &images[&c.image];
            let public_ip = if c.public_ip {
                let ip_name = format!("{name}_ip");
                out.push(workload(
                    &ip_name,
                    WorkloadData::Ip(zos::Ip {
                        v4: true,
                        v6: false,
                    }),
                ));
                ip_name
            } else {
                String::new()
            };
            out.push(workload(
                name,
                WorkloadData::Zmachine(zos::Zmachine {
                    flist: image.url.clone(),
                    flist_hash: image.hash.clone(),
                    network: ZmachineNetwork {
                        public_ip,
                        interfaces: vec![NetworkInterface {
                            network: network.clone(),
                            ip: addresses[name.as_str()].to_string(),
                        }],
                    },
                    size: c.disk.map_or(0, |d| d.0),
                    compute_capacity: ComputeCapacity {
                        cpu: c.cpu,
                        memory: c.memory.0,
                    },
                    mounts: c
                        .mounts
                        .iter()
                        .map(|(volume, path)| Mount {
                            name: volume.clone(),
                            mountpoint: path.clone(),
                        })
                        .collect(),
                    entrypoint: c.entrypoint.clone(),
                    env: c
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), Secret::Plain(v.clone())))
                        .collect(),
                    corex: false,
                }),
            ));
        }
        out.extend(self.gateway_workloads(&addresses));
        out
    }

    /// The gateways' workloads, their backends at the containers' addresses.
    fn gateway_workloads(&self, addresses: &BTreeMap<&str, Ipv4Addr>) -> Vec<Workload> {
        self.gateways
            .iter()
            .map(|g| {
                let backends = self.backends(g, addresses);
                let network = g.backend.as_ref().map(|_| self.network_name());
                let data = match &g.fqdn {
                    None => WorkloadData::GatewayNameProxy(zos::GatewayNameProxy {
                        name: g.name.get_ref().clone(),
                        tls_passthrough: g.tls_passthrough,
                        backends,
                        network,
                    }),
                    Some(fqdn) => WorkloadData::GatewayFqdnProxy(zos::GatewayFqdnProxy {
                        fqdn: fqdn.get_ref().to_ascii_lowercase(),
                        tls_passthrough: g.tls_passthrough,
                        backends,
                        network,
                    }),
                };
                Workload {
                    version: 0,
                    name: g.workload_name(),
                    metadata: String::new(),
                    description: String::new(),
                    data,
                }
            })
            .collect()
    }

    /// The gateway names the project holds name contracts for.
    pub fn gateway_names(&self) -> Vec<String> {
        self.gateways
            .iter()
            .filter_map(|g| g.gateway_name().map(str::to_owned))
            .collect()
    }

    /// Each container's private address: the file's, else the one it has now, else the lowest free.
    fn addresses<'a>(
        &'a self,
        subnet_base: Ipv4Addr,
        old: Option<&Deployment>,
    ) -> BTreeMap<&'a str, Ipv4Addr> {
        let old_ip = |name: &str| -> Option<Ipv4Addr> {
            let w = old?.workload(name)?;
            let WorkloadData::Zmachine(m) = &w.data else {
                return None;
            };
            m.network.interfaces.first()?.ip.parse().ok()
        };
        let mut taken: BTreeSet<Ipv4Addr> = self
            .containers
            .iter()
            .filter_map(|c| c.ip.as_ref().map(|i| *i.get_ref()))
            .collect();
        let mut out = BTreeMap::new();
        for c in &self.containers {
            let name = c.name.get_ref().as_str();
            let kept = old_ip(name).filter(|ip| !taken.contains(ip));
            if let Some(ip) = c.ip.as_ref().map(|i| *i.get_ref()).or(kept) {
                taken.insert(ip);
                out.insert(name, ip);
            }
        }
        let [a, b, c3, _] = subnet_base.octets();
        let mut free = (2..255u8)
            .map(|d| Ipv4Addr::new(a, b, c3, d))
            .filter(|ip| !taken.contains(ip));
        for c in &self.containers {
            let name = c.name.get_ref().as_str();
            if !out.contains_key(name) {
                out.insert(
                    name,
                    free.next()
                        .expect("a /24 holds more containers than a deployment"),
                );
            }
        }
        out
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(p: &Project) -> BTreeMap<String, ResolvedImage> {
        p.containers
            .iter()
            .map(|c| {
                (
                    c.image.clone(),
                    ResolvedImage {
                        url: format!("http://hub/{}.tar", "a".repeat(64)),
                        hash: "a".repeat(64),
                    },
                )
            })
            .collect()
    }

    fn error(text: &str) -> String {
        Project::parse(text, "f.toml").unwrap_err().to_string()
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("256 MiB").unwrap().0, 256 * MIB);
        assert_eq!(Size::parse("1.5GiB").unwrap().0, 3 * GIB / 2);
        assert_eq!(Size::parse("1 GB").unwrap().0, 1_000_000_000);
        assert_eq!(Size::parse("4096").unwrap().0, 4096);
        assert!(Size::parse("lots").is_err());
        assert!(
            Size::parse("2 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert_eq!(Size(2 * GIB).to_string(), "2 GiB");
        assert_eq!(Size(256 * MIB).to_string(), "256 MiB");
    }

    #[test]
    fn every_example_parses_and_builds_a_valid_deployment() {
        for entry in
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).unwrap()
        {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let p = Project::read(&path).unwrap();
            let mut d = Deployment {
                version: 0,
                twin_id: 1,
                metadata: String::new(),
                description: String::new(),
                signature_requirement: Deployment::single_signer(1),
                workloads: p.workloads(&images(&p), None, &mut rand::thread_rng()),
            };
            let node = tfgrid_types::Keypair::from_uri("//Alice")
                .unwrap()
                .account();
            d.seal_secrets(&node, &mut rand::thread_rng()).unwrap();
            d.check()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    #[test]
    fn containers_get_addresses_network_and_public_ips() {
        let p = Project::parse(
            r#"
name = "web"
[[container]]
name = "a"
image = "demo"
memory = "256 MiB"
public_ip = true
[[container]]
name = "b"
image = "demo"
memory = "1 GiB"
ip = "10.20.1.2"
"#,
            "t",
        )
        .unwrap();
        let ws = p.workloads(&images(&p), None, &mut rand::thread_rng());
        let names: Vec<&str> = ws.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["web_net", "a_ip", "a", "b"]);
        let ip_of = |ws: &[Workload], n: &str| match &ws.iter().find(|w| w.name == n).unwrap().data
        {
            WorkloadData::Zmachine(m) => m.network.interfaces[0].ip.clone(),
            _ => unreachable!(),
        };
        // b asked for .2, so a takes the next free address, and keeps it in a later version.
        assert_eq!(ip_of(&ws, "a"), "10.20.1.3");
        let old = Deployment {
            version: 0,
            twin_id: 1,
            metadata: String::new(),
            description: String::new(),
            signature_requirement: Deployment::single_signer(1),
            workloads: ws,
        };
        let again = p.workloads(&images(&p), Some(&old), &mut rand::thread_rng());
        assert_eq!(ip_of(&again, "a"), "10.20.1.3");
    }

    #[test]
    fn gateways_proxy_to_their_container_in_the_private_network() {
        let p = Project::parse(
            r#"
name = "site"
[[container]]
name = "web"
image = "demo"
memory = "256 MiB"
[[gateway]]
name = "my-site"
backend = "web:8080"
[[gateway]]
name = "own"
fqdn = "Shop.Example.com"
backends = ["185.206.122.33:443"]
tls_passthrough = true
"#,
            "t",
        )
        .unwrap();
        assert_eq!(p.gateway_names(), ["my-site"]);
        let ws = p.workloads(&images(&p), None, &mut rand::thread_rng());
        let find = |n: &str| &ws.iter().find(|w| w.name == n).unwrap().data;
        assert_eq!(
            find("my_site_gw"),
            &WorkloadData::GatewayNameProxy(zos::GatewayNameProxy {
                name: "my-site".into(),
                tls_passthrough: false,
                backends: vec!["http://10.20.1.2:8080".into()],
                network: Some("site_net".into()),
            })
        );
        assert_eq!(
            find("own_gw"),
            &WorkloadData::GatewayFqdnProxy(zos::GatewayFqdnProxy {
                fqdn: "shop.example.com".into(),
                tls_passthrough: true,
                backends: vec!["185.206.122.33:443".into()],
                network: None,
            })
        );
        let base =
            "name = \"x\"\n[[container]]\nname = \"web\"\nimage = \"demo\"\nmemory = \"256 MiB\"\n";
        let cases = [
            (
                "[[gateway]]\nname = \"ab\"\nbackend = \"web:80\"\n",
                "line 7",
                "lowercase letters",
            ),
            (
                "[[gateway]]\nname = \"abc\"\nbackend = \"db:80\"\n",
                "line 8",
                "a container of the project",
            ),
            (
                "[[gateway]]\nname = \"abc\"\nbackend = \"web\"\n",
                "line 8",
                "<container>:<port>",
            ),
            ("[[gateway]]\nname = \"abc\"\n", "line 7", "either backend"),
            (
                "[[gateway]]\nname = \"abc\"\nbackends = [\"http://127.0.0.1\"]\n",
                "line 7",
                "loopback",
            ),
            (
                "[[gateway]]\nname = \"abc\"\nfqdn = \"nodot\"\nbackend = \"web:80\"\n",
                "line 8",
                "not a domain",
            ),
        ];
        for (gateway, at, what) in cases {
            let e = error(&format!("{base}{gateway}"));
            assert!(e.contains(at) && e.contains(what), "{gateway}: {e}");
        }
    }

    #[test]
    fn mistakes_name_their_line_and_column() {
        let syntax = error("name = \"x\"\n[[container]\n");
        assert!(syntax.contains("line 2"), "{syntax}");
        let size =
            error("name = \"x\"\n[[zdb]]\nname = \"db\"\nsize = \"lots\"\npassword = \"p\"\n");
        assert!(
            size.contains("line 4") && size.contains("not a size"),
            "{size}"
        );
        let unknown = error("name = \"x\"\n[[zdb]]\nname = \"db\"\nsize = 1\npasword = \"p\"\n");
        assert!(
            unknown.contains("line 5") && unknown.contains("pasword"),
            "{unknown}"
        );
        let mount = error(
            "name = \"x\"\n\n[[container]]\nname = \"web\"\nimage = \"demo\"\nmemory = \"1 GiB\"\nmounts = { data = \"/data\" }\n",
        );
        assert!(
            mount.contains("line 4, column 8") && mount.contains("\"data\""),
            "{mount}"
        );
        let twice = error(
            "name = \"x\"\n[[volume]]\nname = \"v\"\nsize = 1\n[[zdb]]\nname = \"v\"\nsize = 1\npassword = \"p\"\n",
        );
        assert!(
            twice.contains("line 6") && twice.contains("taken"),
            "{twice}"
        );
        assert!(
            error("name = \"Bad Name\"\n[[volume]]\nname = \"v\"\nsize = 1\n").contains("line 1")
        );
        assert!(error("name = \"x\"\n").contains("deploys nothing"));
        assert!(
            error(
                "name = \"x\"\n[node]\nid = 1\nfarm = \"f\"\n[[volume]]\nname = \"v\"\nsize = 1\n"
            )
            .contains("one or the other")
        );
    }
}
