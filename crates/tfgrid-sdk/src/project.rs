//! Deployment files: a project in TOML — containers, 0-db namespaces, volumes, public IPs, gateways
//! — and the nodes it runs on, by id or by constraints the explorer resolves: the project's `[node]`,
//! or a container's, 0-db's or gateway's own (`node = 3`, `[container.node]`); parts naming the
//! same choice share a node ([`Project::groups`]). [`Project::parse`] reports the line and column
//! of every mistake; [`Project::workloads`] turns the file into Zero-OS workloads, a deployment per
//! node, once the deployer has placed the groups and planned the private network. The format, with
//! examples, is in the repository's `examples/` folder.

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
use crate::deployer::network::{NetworkPlan, Range as NetRange, SUBNET_INDEX_MAX};
use tfgrid_types::NodeId;

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
    /// Where it runs (the parts that name no node of their own); by default any node that is up
    /// and has room.
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
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

impl NodeChoice {
    fn constrained(&self) -> bool {
        self.farm.is_some()
            || self.farm_id.is_some()
            || self.country.is_some()
            || self.city.is_some()
            || self.certified.is_some()
            || self.dedicated.is_some()
    }
}

/// The node a container, 0-db or gateway names for itself: an id (`node = 3`), or a table of the
/// constraints `[node]` takes (`[container.node]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartNode(pub NodeChoice);

impl<'de> Deserialize<'de> for PartNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PartNode, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PartNode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a node id, or a table of constraints as [node] takes")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PartNode, E> {
                let id =
                    u32::try_from(v).map_err(|_| E::custom(format!("{v} is not a node id")))?;
                Ok(PartNode(NodeChoice {
                    id: Some(id),
                    ..NodeChoice::default()
                }))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PartNode, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(-1))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<PartNode, A::Error> {
                let d = serde::de::value::MapAccessDeserializer::new(map);
                NodeChoice::deserialize(d).map(PartNode)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Parts of a project that run on one node: those naming the same node choice (the project's
/// `[node]` for those that name none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub choice: NodeChoice,
    /// The workloads of its parts: containers (and their `<name>_ip`), 0-dbs, volumes (on the node
    /// of the first container mounting them), gateways (`<name>_gw`).
    pub parts: Vec<String>,
}

/// Where a project runs, as the deployer decided: the node of each of [`Project::groups`] (in that
/// order; two may share one), the private network's plan (when the project has containers), and
/// the deployments running now by node, whose container addresses are kept.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    pub nodes: &'a [NodeId],
    pub network: Option<&'a NetworkPlan>,
    pub old: &'a BTreeMap<NodeId, Deployment>,
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
    /// The address in the private network (default: the next free one of its node's /24; one
    /// given names the /24 of its node).
    pub ip: Option<Spanned<Ipv4Addr>>,
    /// Its node, when not the project's `[node]`.
    pub node: Option<Spanned<PartNode>>,
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
    /// Its node, when not the project's `[node]`.
    pub node: Option<Spanned<PartNode>>,
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
    /// Its node, when not the project's `[node]`; its backend container may be on another node of
    /// the project (the gateway's node then joins the private network).
    pub node: Option<Spanned<PartNode>>,
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

    /// The private network's range.
    pub fn range(&self) -> NetRange {
        NetRange::parse(self.network.ip_range.get_ref()).expect("checked at parse")
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
        self.check_nodes()?;
        if NetRange::parse(self.network.ip_range.get_ref()).is_none() {
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
        }
        self.check_addresses()
    }

    /// The node choices: an id or constraints, not both; a volume on one node.
    fn check_nodes(&self) -> Result<(), (Range<usize>, String)> {
        let both = |c: &NodeChoice| c.id.filter(|_| c.constrained());
        if let Some(id) = both(&self.node) {
            return Err((
                self.name.span(),
                format!("[node] names node {id} and constraints: give one or the other"),
            ));
        }
        let own = self.containers.iter().map(|c| &c.node);
        let own = own.chain(self.zdbs.iter().map(|z| &z.node));
        for n in own.chain(self.gateways.iter().map(|g| &g.node)).flatten() {
            if let Some(id) = both(&n.get_ref().0) {
                return Err((
                    n.span(),
                    format!("node names node {id} and constraints: give one or the other"),
                ));
            }
        }
        for v in &self.volumes {
            let mut mounting = self
                .containers
                .iter()
                .filter(|c| c.mounts.contains_key(v.name.get_ref()));
            let Some(first) = mounting.next() else {
                continue;
            };
            if let Some(other) = mounting.find(|c| self.choice(&c.node) != self.choice(&first.node))
            {
                return Err((
                    other.name.span(),
                    format!(
                        "mounts volume {:?}, which {:?} mounts on another node: a volume is on \
                         one node, with the containers that mount it",
                        v.name.get_ref(),
                        first.name.get_ref()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The containers' own addresses: host addresses of the range, given once; those on one node
    /// in one /24 (its node's), those on others in others.
    fn check_addresses(&self) -> Result<(), (Range<usize>, String)> {
        let range = self.range();
        let mut ips = BTreeSet::new();
        // The /24 a choice's containers asked for, and the first container that asked.
        let mut asked: Vec<(&NodeChoice, u8, &str)> = Vec::new();
        for c in &self.containers {
            let Some(ip) = &c.ip else { continue };
            let at = ip.span();
            let ip = *ip.get_ref();
            let d = ip.octets()[3];
            let Some(k) = range.index_of_host(ip).filter(|_| (2..255).contains(&d)) else {
                return Err((
                    at,
                    format!(
                        "{ip} is not a host address of the network {}: .2 to .254 of a /24 from {} \
                         to {}",
                        range.cidr(),
                        range.subnet(1),
                        range.subnet(SUBNET_INDEX_MAX)
                    ),
                ));
            };
            if !ips.insert(ip) {
                return Err((at, format!("{ip} is given twice")));
            }
            let choice = self.choice(&c.node);
            let name = c.name.get_ref().as_str();
            let clash = asked
                .iter()
                .find(|(ch, kk, _)| (*ch == choice) != (*kk == k));
            if let Some((ch, kk, other)) = clash {
                let why = match *ch == choice {
                    true => format!("{other:?}, on the same node, is in {}", range.subnet(*kk)),
                    false => format!("{other:?}, on another node, is in it"),
                };
                return Err((
                    at,
                    format!(
                        "{ip} is in {}, but {why}: a node's containers share its /24",
                        range.subnet(k)
                    ),
                ));
            }
            asked.push((choice, k, name));
        }
        Ok(())
    }

    /// The node choice of a part: its own, else the project's.
    fn choice<'a>(&'a self, own: &'a Option<Spanned<PartNode>>) -> &'a NodeChoice {
        own.as_ref().map_or(&self.node, |n| &n.get_ref().0)
    }

    /// The groups of parts that share a node, in file order (the project's `[node]` first); a
    /// choice named twice is one group.
    pub fn groups(&self) -> Vec<Group> {
        let mut groups = vec![Group {
            choice: self.node.clone(),
            parts: vec![],
        }];
        let mut put = |choice: &NodeChoice, part: String| match groups
            .iter_mut()
            .find(|g| &g.choice == choice)
        {
            Some(g) => g.parts.push(part),
            None => groups.push(Group {
                choice: choice.clone(),
                parts: vec![part],
            }),
        };
        for c in &self.containers {
            let choice = self.choice(&c.node);
            put(choice, c.name.get_ref().clone());
            if c.public_ip {
                put(choice, format!("{}_ip", c.name.get_ref()));
            }
        }
        for z in &self.zdbs {
            put(self.choice(&z.node), z.name.get_ref().clone());
        }
        for v in &self.volumes {
            let name = v.name.get_ref();
            let mounting = self.containers.iter().find(|c| c.mounts.contains_key(name));
            let choice = mounting.map_or(&self.node, |c| self.choice(&c.node));
            put(choice, name.clone());
        }
        for g in &self.gateways {
            put(self.choice(&g.node), g.workload_name());
        }
        groups.retain(|g| !g.parts.is_empty());
        groups
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
                    // Before addresses are assigned, any host address stands for the container's.
                    backends: self.backends(g, &|_| Ipv4Addr::new(10, 0, 0, 2)),
                    network: None,
                }),
            };
            probe.check().map_err(|e| (at.clone(), e.to_string()))?;
        }
        Ok(())
    }

    /// A gateway's backends: its own, or its container's address and port.
    fn backends(&self, g: &Gateway, address: &dyn Fn(&str) -> Ipv4Addr) -> Vec<String> {
        let Some(backend) = &g.backend else {
            return g.backends.clone();
        };
        let (container, port) = backend
            .get_ref()
            .rsplit_once(':')
            .expect("checked at parse");
        let ip = address(container);
        match g.tls_passthrough {
            true => vec![format!("{ip}:{port}")],
            false => vec![format!("http://{ip}:{port}")],
        }
    }

    /// The Zero-OS workloads of the project by node, all at version 0: each group's parts on its
    /// node, and on each member of the private network its `network` workload. `images` maps each
    /// container's `image` to where the node fetches it.
    pub fn workloads(
        &self,
        images: &BTreeMap<String, ResolvedImage>,
        layout: Layout<'_>,
    ) -> BTreeMap<NodeId, Vec<Workload>> {
        let groups = self.groups();
        assert_eq!(groups.len(), layout.nodes.len(), "a node per group");
        let node_of = |part: &str| {
            let g = groups
                .iter()
                .position(|g| g.parts.iter().any(|p| p == part));
            layout.nodes[g.expect("every part is in a group")]
        };
        let addresses = match layout.network {
            Some(network) => self.addresses(&node_of, network, layout.old),
            None => BTreeMap::new(),
        };
        let mut nodes: BTreeSet<NodeId> = layout.nodes.iter().copied().collect();
        nodes.extend(
            layout
                .network
                .iter()
                .flat_map(|n| n.members.iter().map(|m| m.node_id)),
        );
        let network = self.network_name();
        nodes
            .into_iter()
            .map(|node| {
                let mut out: Vec<Workload> = layout
                    .network
                    .and_then(|n| n.workload(&network, node))
                    .into_iter()
                    .collect();
                out.extend(self.build(images, &|part| node_of(part) == node, &|c| addresses[c]));
                (node, out)
            })
            .collect()
    }

    /// A group's workloads without its network, to size it (before it is placed).
    pub fn group_workloads(
        &self,
        images: &BTreeMap<String, ResolvedImage>,
        group: &Group,
    ) -> Vec<Workload> {
        let placeholder = |_: &str| Ipv4Addr::new(10, 0, 0, 2);
        self.build(
            images,
            &|part| group.parts.iter().any(|p| p == part),
            &placeholder,
        )
    }

    /// The nodes of the private network, given the node of each group: those of containers, and
    /// those of gateways whose backend is a container.
    pub fn network_nodes(&self, nodes: &[NodeId]) -> BTreeSet<NodeId> {
        let groups = self.groups();
        let node_of = |part: &str| {
            let g = groups
                .iter()
                .position(|g| g.parts.iter().any(|p| p == part));
            nodes[g.expect("every part is in a group")]
        };
        let containers = self.containers.iter().map(|c| node_of(c.name.get_ref()));
        let gateways = self.gateways.iter().filter(|g| g.backend.is_some());
        containers
            .chain(gateways.map(|g| node_of(&g.workload_name())))
            .collect()
    }

    /// The /24 the file asks for on each node, given the node of each group: that of its
    /// containers' own addresses. Groups on one node asking for two is a mistake.
    pub fn asked_subnets(&self, nodes: &[NodeId]) -> Result<BTreeMap<NodeId, u8>, String> {
        let groups = self.groups();
        let range = self.range();
        let mut out: BTreeMap<NodeId, (u8, &str)> = BTreeMap::new();
        for c in &self.containers {
            let Some(ip) = &c.ip else { continue };
            let k = range
                .index_of_host(*ip.get_ref())
                .expect("checked at parse");
            let name = c.name.get_ref().as_str();
            let g = groups
                .iter()
                .position(|g| g.parts.iter().any(|p| p == name));
            let node = nodes[g.expect("every part is in a group")];
            match out.get(&node) {
                Some((other, by)) if *other != k => {
                    return Err(format!(
                        "containers {by:?} and {name:?} run on node {node} and ask for two /24s, \
                         {} and {}",
                        range.subnet(*other),
                        range.subnet(k)
                    ));
                }
                _ => {
                    out.insert(node, (k, name));
                }
            }
        }
        Ok(out.into_iter().map(|(n, (k, _))| (n, k)).collect())
    }

    /// The workloads of the parts `on` takes, but the network; `address` gives each container's.
    fn build(
        &self,
        images: &BTreeMap<String, ResolvedImage>,
        on: &dyn Fn(&str) -> bool,
        address: &dyn Fn(&str) -> Ipv4Addr,
    ) -> Vec<Workload> {
        let workload = |name: &str, data: WorkloadData| Workload {
            version: 0,
            name: name.to_owned(),
            metadata: String::new(),
            description: String::new(),
            data,
        };
        let mut out = Vec::new();
        for v in self.volumes.iter().filter(|v| on(v.name.get_ref())) {
            out.push(workload(
                v.name.get_ref(),
                WorkloadData::Volume(zos::Volume { size: v.size.0 }),
            ));
        }
        for z in self.zdbs.iter().filter(|z| on(z.name.get_ref())) {
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
        let network = self.network_name();
        for c in self.containers.iter().filter(|c| on(c.name.get_ref())) {
            let name = c.name.get_ref();
            if c.public_ip {
                out.push(workload(
                    &format!("{name}_ip"),
                    WorkloadData::Ip(zos::Ip {
                        v4: true,
                        v6: false,
                    }),
                ));
            }
            out.push(workload(
                name,
                self.machine(c, &images[&c.image], &network, address(name)),
            ));
        }
        let gateways = self.gateways.iter().filter(|g| on(&g.workload_name()));
        out.extend(gateways.map(|g| self.gateway_workload(g, address)));
        out
    }

    /// A container's machine in `network` at `ip`.
    fn machine(
        &self,
        c: &Container,
        image: &ResolvedImage,
        network: &str,
        ip: Ipv4Addr,
    ) -> WorkloadData {
        WorkloadData::Zmachine(zos::Zmachine {
            flist: image.url.clone(),
            flist_hash: image.hash.clone(),
            network: ZmachineNetwork {
                public_ip: match c.public_ip {
                    true => format!("{}_ip", c.name.get_ref()),
                    false => String::new(),
                },
                interfaces: vec![NetworkInterface {
                    network: network.to_owned(),
                    ip: ip.to_string(),
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
        })
    }

    /// A gateway's workload, its backend at its container's address (on any node of the project).
    fn gateway_workload(&self, g: &Gateway, address: &dyn Fn(&str) -> Ipv4Addr) -> Workload {
        let backends = self.backends(g, address);
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
    }

    /// The gateway names the project holds name contracts for.
    pub fn gateway_names(&self) -> Vec<String> {
        self.gateways
            .iter()
            .filter_map(|g| g.gateway_name().map(str::to_owned))
            .collect()
    }

    /// Each container's private address, in its node's /24: the file's, else the one it has on
    /// that node now, else the lowest free.
    fn addresses<'a>(
        &'a self,
        node_of: &dyn Fn(&str) -> NodeId,
        network: &NetworkPlan,
        old: &BTreeMap<NodeId, Deployment>,
    ) -> BTreeMap<&'a str, Ipv4Addr> {
        let subnet_of = |node: NodeId| {
            let member = network.member(node);
            member.expect("a container's node is in the network").subnet
        };
        let old_ip = |name: &str| -> Option<Ipv4Addr> {
            let node = node_of(name);
            let w = old.get(&node)?.workload(name)?;
            let WorkloadData::Zmachine(m) = &w.data else {
                return None;
            };
            let ip: Ipv4Addr = m.network.interfaces.first()?.ip.parse().ok()?;
            (network.range.index_of_host(ip) == Some(subnet_of(node))).then_some(ip)
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
        for c in &self.containers {
            let name = c.name.get_ref().as_str();
            if !out.contains_key(name) {
                let [a, b, k, _] = network.range.subnet_base(subnet_of(node_of(name))).octets();
                let ip = (2..255u8)
                    .map(|d| Ipv4Addr::new(a, b, k, d))
                    .find(|ip| !taken.contains(ip))
                    .expect("a /24 holds more containers than a deployment");
                taken.insert(ip);
                out.insert(name, ip);
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

    /// The project placed as the deployer would, group `i` on node `i + 1` (every node public),
    /// with its network planned beside `old`: each node's workloads.
    fn place(p: &Project, old: &BTreeMap<NodeId, Deployment>) -> BTreeMap<NodeId, Vec<Workload>> {
        use crate::deployer::network::{self, Member};
        let nodes: Vec<NodeId> = (1..=p.groups().len() as u32).collect();
        let asked = p.asked_subnets(&nodes).unwrap();
        let members: Vec<Member> = p
            .network_nodes(&nodes)
            .into_iter()
            .map(|node_id| Member {
                node_id,
                public: true,
                endpoint: String::new(),
                subnet: asked.get(&node_id).copied(),
            })
            .collect();
        let olds = old.iter().map(|(n, d)| (*n, d));
        let previous = network::previous(&p.network_name(), p.range(), olds);
        let plan = (!members.is_empty()).then(|| {
            network::plan(p.range(), &previous, &members, &mut rand::thread_rng()).unwrap()
        });
        let layout = Layout {
            nodes: &nodes,
            network: plan.as_ref(),
            old,
        };
        p.workloads(&images(p), layout)
    }

    fn deployment(workloads: Vec<Workload>) -> Deployment {
        Deployment {
            version: 0,
            twin_id: 1,
            metadata: String::new(),
            description: String::new(),
            signature_requirement: Deployment::single_signer(1),
            workloads,
        }
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
            for (node, workloads) in place(&p, &BTreeMap::new()) {
                let mut d = deployment(workloads);
                let account = tfgrid_types::Keypair::from_uri("//Alice")
                    .unwrap()
                    .account();
                d.seal_secrets(&account, &mut rand::thread_rng()).unwrap();
                d.check()
                    .unwrap_or_else(|e| panic!("{} on node {node}: {e}", path.display()));
            }
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
        let ws = place(&p, &BTreeMap::new()).remove(&1).unwrap();
        let names: Vec<&str> = ws.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["web_net", "a_ip", "a", "b"]);
        let ip_of = |ws: &[Workload], n: &str| match &ws.iter().find(|w| w.name == n).unwrap().data
        {
            WorkloadData::Zmachine(m) => m.network.interfaces[0].ip.clone(),
            _ => unreachable!(),
        };
        // b asked for .2, so a takes the next free address, and keeps it in a later version.
        assert_eq!(ip_of(&ws, "a"), "10.20.1.3");
        let old = BTreeMap::from([(1, deployment(ws))]);
        let again = place(&p, &old).remove(&1).unwrap();
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
        let ws = place(&p, &BTreeMap::new()).remove(&1).unwrap();
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

    #[test]
    fn parts_naming_the_same_node_share_it_and_a_gateway_reaches_a_container_on_another() {
        let p = Project::parse(
            r#"
name = "multi"
[[container]]
name = "web"
image = "demo"
memory = "256 MiB"
node = 5
[[container]]
name = "api"
image = "demo"
memory = "256 MiB"
mounts = { data = "/data" }
[container.node]
farm_id = 1
[[zdb]]
name = "db"
size = "1 GiB"
password = "p"
[zdb.node]
id = 5
[[volume]]
name = "data"
size = "1 GiB"
[[gateway]]
name = "site"
backend = "api:80"
node = 5
"#,
            "t",
        )
        .unwrap();
        let groups = p.groups();
        let parts: Vec<&[String]> = groups.iter().map(|g| &g.parts[..]).collect();
        // The volume is on the node of the container that mounts it.
        assert_eq!(parts, [&["web", "db", "site_gw"][..], &["api", "data"][..]]);
        assert_eq!(groups[1].choice.farm_id, Some(1));
        let placed = place(&p, &BTreeMap::new());
        let names =
            |n: NodeId| -> Vec<&str> { placed[&n].iter().map(|w| w.name.as_str()).collect() };
        assert_eq!(names(1), ["multi_net", "db", "web", "site_gw"]);
        assert_eq!(names(2), ["multi_net", "data", "api"]);
        let gateway = placed[&1].iter().find(|w| w.name == "site_gw").unwrap();
        // Its backend is api's address on node 2, reached over the project's network.
        assert_eq!(
            gateway.data,
            WorkloadData::GatewayNameProxy(zos::GatewayNameProxy {
                name: "site".into(),
                tls_passthrough: false,
                backends: vec!["http://10.20.2.2:80".into()],
                network: Some("multi_net".into()),
            })
        );
        // A gateway whose node runs no container still joins the network.
        let alone = Project::parse(
            "name = \"g\"\n[[container]]\nname = \"api\"\nimage = \"demo\"\nmemory = \"256 MiB\"\n\
             [[gateway]]\nname = \"site\"\nbackend = \"api:80\"\nnode = 9\n",
            "t",
        )
        .unwrap();
        assert_eq!(alone.network_nodes(&[1, 9]), BTreeSet::from([1, 9]));
        assert_eq!(alone.network_nodes(&[1, 1]), BTreeSet::from([1]));
    }

    #[test]
    fn node_mistakes_name_their_line_and_column() {
        let base =
            "name = \"x\"\n[[container]]\nname = \"a\"\nimage = \"demo\"\nmemory = \"256 MiB\"\n";
        let cases = [
            (
                "node = \"one\"\n",
                "line 6, column 8",
                "a node id, or a table",
            ),
            ("node = -1\n", "line 6", "not a node id"),
            ("[container.node]\nfarn = 1\n", "line 7", "farn"),
            (
                "[container.node]\nid = 2\ncountry = \"BE\"\n",
                "line 6",
                "names node 2 and constraints",
            ),
            (
                "ip = \"10.21.1.2\"\n",
                "line 6, column 6",
                "not a host address of the network 10.20.0.0/16",
            ),
            ("ip = \"10.20.0.2\"\n", "line 6", "not a host address"),
        ];
        for (more, at, what) in cases {
            let e = error(&format!("{base}{more}"));
            assert!(e.contains(at) && e.contains(what), "{more}: {e}");
        }
        let second = |more: &str| {
            format!(
                "{base}ip = \"10.20.1.2\"\n[[container]]\nname = \"b\"\nimage = \"demo\"\nmemory = \"256 MiB\"\n{more}"
            )
        };
        // On one node, one /24; on two, two.
        let e = error(&second("ip = \"10.20.2.2\"\n"));
        assert!(
            e.contains("line 11") && e.contains("\"a\", on the same node, is in 10.20.1.0/24"),
            "{e}"
        );
        let e = error(&second("node = 3\nip = \"10.20.1.3\"\n"));
        assert!(
            e.contains("line 12") && e.contains("\"a\", on another node, is in it"),
            "{e}"
        );
        assert!(Project::parse(&second("node = 3\nip = \"10.20.2.3\"\n"), "t").is_ok());
        // A volume is on one node.
        let volume = "[[volume]]\nname = \"v\"\nsize = 1\n";
        let e = error(&format!(
            "{base}mounts = {{ v = \"/v\" }}\n[[container]]\nname = \"b\"\nimage = \"demo\"\n\
             memory = \"256 MiB\"\nnode = 2\nmounts = {{ v = \"/v\" }}\n{volume}"
        ));
        assert!(e.contains("line 8") && e.contains("on another node"), "{e}");
        // Two groups the deployer puts on one node, asking for two /24s.
        let p = Project::parse(&second("node = 3\nip = \"10.20.2.3\"\n"), "t").unwrap();
        let e = p.asked_subnets(&[1, 1]).unwrap_err();
        assert!(e.contains("run on node 1 and ask for two /24s"), "{e}");
        assert_eq!(
            p.asked_subnets(&[1, 2]),
            Ok(BTreeMap::from([(1, 1), (2, 2)]))
        );
    }
}
