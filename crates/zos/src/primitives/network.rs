//! The `network` primitive, on one node: a user network's part here is a network namespace holding a
//! bridge at the first address of the node's subnet, with forwarding on, a way out through the node
//! ([`uplink`](super::uplink), NATed), and a WireGuard device
//! (a `znet` process, see [`overlay`](super::overlay)) joining it to the network's other nodes;
//! each container of the network gets a namespace of its own joined to that bridge by a veth pair,
//! with the address its deployment asks for and a default route through the bridge. The workload's
//! result says where the node's device listens: `<host>:<port>` when the node has a public config
//! (it is reachable), nothing when it is hidden (it dials its peers, keeping the way open).

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context, Result, bail};
use tfgrid_types::deployment::{ResultData, Workload, WorkloadData};

use super::overlay::{self, Overlay};
use super::uplink;
use super::{Op, Primitive, Target, nothing};
use crate::store::Local;

fn ip(args: &[&str]) -> Result<()> {
    znet::ip(args).map(drop)
}

fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/var/run/netns").join(name).exists()
}

/// A short, stable name (network interface names hold at most 15 bytes).
fn short(prefix: &str, id: &str) -> String {
    let hash = blake3::hash(id.as_bytes()).to_hex();
    format!("{prefix}{}", &hash[..10])
}

/// The gateway (first host address) and prefix length of a `a.b.c.d/n` subnet.
pub(crate) fn gateway(subnet: &str) -> Result<(Ipv4Addr, u8)> {
    let (addr, len) = subnet
        .split_once('/')
        .context("the subnet has no prefix length")?;
    let addr: Ipv4Addr = addr.parse().context("the subnet is not IPv4")?;
    let len: u8 = len.parse().context("bad prefix length")?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((Ipv4Addr::from((u32::from(addr) & mask) + 1), len))
}

/// The network primitive of one node. Every namespace and link it makes is named from a hash of
/// the node's tag (its data directory) and the workload, so several nodes on one machine (`tfgrid
/// up`, the tests) never share a name.
#[derive(Debug, Clone)]
pub struct Networks {
    node: String,
    overlay: Overlay,
    /// The address the node's WireGuard devices are reached at, when it has a public config.
    host: String,
    /// The node on the chain, once registered (its public config says whether it is hidden).
    node_id: tfgrid_types::NodeId,
    /// Whether networks get a way out through the node (see [`uplink`]).
    outbound_nat: bool,
}

impl Networks {
    /// The primitive of the node whose data directory is `data_dir` (running the `znet` beside
    /// this program, reached at 127.0.0.1, until told otherwise).
    pub fn new(data_dir: &std::path::Path) -> Networks {
        let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        Networks {
            node: dir.display().to_string(),
            overlay: Overlay::new("znet".into(), dir.join("networks")),
            host: "127.0.0.1".into(),
            node_id: 0,
            outbound_nat: false,
        }
    }

    /// Runs the `znet` at `bin`, reached at `host`; NATs what networks send out of the node when
    /// `outbound_nat`.
    pub fn with_overlay(
        mut self,
        bin: std::path::PathBuf,
        host: &str,
        outbound_nat: bool,
    ) -> Networks {
        self.overlay = Overlay::new(bin, self.overlay_dir().to_owned());
        self.host = host.to_owned();
        self.outbound_nat = outbound_nat;
        self
    }

    /// For registered node `node_id`.
    pub fn on_node(mut self, node_id: tfgrid_types::NodeId) -> Networks {
        self.node_id = node_id;
        self
    }

    /// Where the `znet` processes keep their run directories.
    pub fn overlay_dir(&self) -> &std::path::Path {
        self.overlay.dir()
    }

    /// The name of network `id`'s WireGuard device.
    pub fn tun(&self, id: &str) -> String {
        self.name("w-", id)
    }

    /// Starts again the networks' WireGuard processes that are gone.
    pub async fn revive(&self) -> Result<()> {
        self.overlay.revive().await
    }

    /// Bytes network `id` carried out of the node and back since its devices started: to and from
    /// its other nodes (its WireGuard device) and the world outside (its uplink).
    pub fn outside_traffic(&self, id: &str) -> Option<u64> {
        let ns = self.namespace(id);
        let overlay = counters(&ns, &self.tun(id));
        let uplink = counters(&ns, uplink::INNER);
        overlay
            .or(uplink)
            .map(|_| overlay.unwrap_or(0) + uplink.unwrap_or(0))
    }

    /// The name of what this node makes for `id`, with `prefix` (at most 15 bytes in all).
    fn name(&self, prefix: &str, id: &str) -> String {
        short(prefix, &format!("{}\n{id}", self.node))
    }

    /// The namespace of a network (`id` names it uniquely on the node).
    pub fn namespace(&self, id: &str) -> String {
        self.name("n-", id)
    }

    /// The namespace of container `id`.
    pub fn container(&self, id: &str) -> String {
        self.name("c-", id)
    }

    /// Creates the network's namespace and bridge (idempotent).
    pub fn ensure(&self, id: &str, subnet: &str) -> Result<()> {
        let ns = self.namespace(id);
        let (gw, len) = gateway(subnet)?;
        if !netns_exists(&ns) {
            ip(&["netns", "add", &ns])?;
        }
        let in_ns = |args: &[&str]| {
            let mut full = vec!["-n", ns.as_str()];
            full.extend_from_slice(args);
            ip(&full)
        };
        in_ns(&["link", "set", "lo", "up"])?;
        let has_bridge = Command::new("ip")
            .args(["-n", &ns, "link", "show", "br0"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !has_bridge {
            in_ns(&["link", "add", "br0", "type", "bridge"])?;
            in_ns(&["addr", "add", &format!("{gw}/{len}"), "dev", "br0"])?;
        }
        in_ns(&["link", "set", "br0", "up"])?;
        // It routes between its machines, the overlay and (on an access node) its peers.
        uplink::sysctl(Some(&ns), "net.ipv4.ip_forward=1")?;
        // IPv4 only: no IPv6 chatter (router and multicast listener messages) leaves through the
        // overlay or the uplink, to be counted as the contract's traffic.
        for conf in ["all", "default"] {
            uplink::sysctl(Some(&ns), &format!("net.ipv6.conf.{conf}.disable_ipv6=1"))?;
        }
        if self.outbound_nat {
            uplink::ensure(self.overlay_dir(), &ns, &self.name("u-", id))?;
        }
        Ok(())
    }

    /// Joins network `id` (its namespace made) to its other nodes; the workload's result.
    async fn connect(
        &self,
        at: Target<'_>,
        id: &str,
        n: &tfgrid_types::deployment::Network,
    ) -> Result<ResultData> {
        let hidden = at.chain.public_config(self.node_id).await?.is_none();
        let ns = self.namespace(id);
        let config = overlay::config(n, &ns, &self.tun(id), hidden, self.overlay.port(&ns))?;
        let port = self.overlay.apply(&config).await?;
        Ok(ResultData::Network {
            listen_port: port,
            endpoint: match hidden {
                true => String::new(),
                false => format!("{}:{port}", self.host),
            },
        })
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let ns = self.namespace(id);
        self.overlay.remove(&ns)?;
        if netns_exists(&ns) {
            ip(&["netns", "delete", &ns])?;
        }
        Ok(())
    }

    /// Gives container `id` a namespace joined to network `network_id` with address `addr`; returns
    /// the namespace's path, for the runtime.
    pub fn attach(&self, id: &str, network_id: &str, subnet: &str, addr: &str) -> Result<String> {
        let (gw, len) = gateway(subnet)?;
        let addr: Ipv4Addr = addr.parse().context("the interface address is not IPv4")?;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        if u32::from(addr) & mask != u32::from(gw) & mask || addr == gw {
            bail!(
                "address {addr} is not a host address of the node's subnet {subnet} (the first is the gateway)"
            );
        }
        let (ns, net) = (self.container(id), self.namespace(network_id));
        let (outer, inner) = (self.name("vo", id), self.name("vi", id));
        self.detach(id)?;
        // A leg left in the network by an earlier run of this container (its namespace gone,
        // the kernel not done with the pair, or an agent killed mid-way) would block the new one.
        let _ = Command::new("ip")
            .args(["-n", &net, "link", "delete", &outer])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ])?;
        ip(&["link", "set", &inner, "netns", &ns])?;
        ip(&["link", "set", &outer, "netns", &net])?;
        ip(&["-n", &net, "link", "set", &outer, "master", "br0"])?;
        ip(&["-n", &net, "link", "set", &outer, "up"])?;
        ip(&["-n", &ns, "link", "set", &inner, "name", "eth0"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/{len}"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "route", "add", "default", "via", &gw.to_string()])?;
        Ok(format!("/var/run/netns/{ns}"))
    }

    /// Bytes a container sent and received since it was attached (its veth's counters).
    pub fn traffic(&self, id: &str, network_id: &str) -> Option<u64> {
        counters(&self.namespace(network_id), &self.name("vo", id))
    }

    /// Bytes a container sent and received on its public IP since it got it (its public
    /// interface's counters), if it has one.
    pub fn public_traffic(&self, id: &str) -> Option<u64> {
        counters(&self.container(id), "eth1")
    }

    /// The path of a container's namespace, once attached.
    pub fn container_namespace(&self, id: &str) -> String {
        format!("/var/run/netns/{}", self.container(id))
    }

    /// Gives container `id` (attached to its private network already) the public address `cidr`
    /// on the node's public interface `iface` (a macvlan in bridge mode, so other hosts on that
    /// network reach it), with its default route through the farm's `gateway`. The interface's MAC
    /// address derives from the IP, so a machine created anew on the same IP keeps it and
    /// neighbours' ARP caches stay right.
    pub fn attach_public(&self, id: &str, iface: &str, cidr: &str, gateway: &str) -> Result<()> {
        let (ns, link) = (self.container(id), self.name("vp", id));
        let addr: Ipv4Addr = cidr
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .with_context(|| format!("the public IP {cidr:?} is not IPv4"))?;
        let [a, b, c, d] = addr.octets();
        let mac = format!("02:00:{a:02x}:{b:02x}:{c:02x}:{d:02x}");
        ip(&[
            "link", "add", "link", iface, "name", &link, "address", &mac, "type", "macvlan",
            "mode", "bridge",
        ])?;
        ip(&["link", "set", &link, "netns", &ns])?;
        ip(&["-n", &ns, "link", "set", &link, "name", "eth1"])?;
        ip(&["-n", &ns, "addr", "add", cidr, "dev", "eth1"])?;
        ip(&["-n", &ns, "link", "set", "eth1", "up"])?;
        ip(&["-n", &ns, "route", "replace", "default", "via", gateway])
    }

    /// Turns machine `id`'s namespace (attached already) into a VM's: its veth and a TAP device
    /// `tap0` (for the hypervisor) joined by a bridge, the address taken off, since the guest holds
    /// it. Idempotent, so a restarted VM finds its TAP device again.
    pub fn bridge_vm(&self, id: &str) -> Result<()> {
        let ns = self.container(id);
        let in_ns = |args: &[&str]| {
            let mut full = vec!["-n", ns.as_str()];
            full.extend_from_slice(args);
            ip(&full)
        };
        let exists = |link: &str| {
            Command::new("ip")
                .args(["-n", &ns, "link", "show", link])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !exists("br0") {
            in_ns(&["addr", "flush", "dev", "eth0"])?;
            in_ns(&["link", "add", "br0", "type", "bridge"])?;
            in_ns(&["link", "set", "eth0", "master", "br0"])?;
        }
        if !exists("tap0") {
            in_ns(&["tuntap", "add", "dev", "tap0", "mode", "tap"])?;
            in_ns(&["link", "set", "tap0", "master", "br0"])?;
        }
        for link in ["eth0", "tap0", "br0"] {
            in_ns(&["link", "set", link, "up"])?;
        }
        Ok(())
    }

    /// Removes a container's namespace (and so its veth pair).
    pub fn detach(&self, id: &str) -> Result<()> {
        let ns = self.container(id);
        if netns_exists(&ns) {
            ip(&["netns", "delete", &ns])?;
        }
        Ok(())
    }
}

/// The received and sent bytes of link `link` in namespace `ns`.
fn counters(ns: &str, link: &str) -> Option<u64> {
    let out = Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", link])
        .output()
        .ok()?;
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let stats = &links.get(0)?["stats64"];
    Some(stats["rx"]["bytes"].as_u64()? + stats["tx"]["bytes"].as_u64()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_and_names() {
        assert_eq!(
            gateway("10.20.1.0/24").unwrap(),
            (Ipv4Addr::new(10, 20, 1, 1), 24)
        );
        assert_eq!(
            gateway("10.20.1.77/24").unwrap(),
            (Ipv4Addr::new(10, 20, 1, 1), 24)
        );
        assert!(short("vo", "3-17-a-very-long-workload-name").len() <= 15);
        assert_ne!(short("c-", "a"), short("c-", "b"));
    }
}

/// The public IP of `ip` workload `name`: the n-th IP the contract reserved for the n-th IPv4 `ip`
/// workload; (address with prefix, gateway).
pub(crate) fn public_ip(local: &Local, name: &str) -> Result<(String, String)> {
    let index = local
        .deployment
        .workloads
        .iter()
        .filter(|w| matches!(&w.data, WorkloadData::Ip(ip) if ip.v4))
        .position(|w| w.name == name)
        .with_context(|| format!("{name:?} is not an ip workload with v4 of the deployment"))?;
    local.public_ips.get(index).cloned().with_context(|| {
        format!("the contract reserved no public IP for {name:?} (its farm has none free?)")
    })
}

/// The `ip` primitive: a public IPv4 the contract reserved, given to the machine that names it
/// (the machine's primitive puts it on the machine; this one only hands it out).
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicIps;

impl Primitive for PublicIps {
    fn install<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ResultData> {
        let ip = public_ip(at.local, &w.name);
        Box::pin(async move {
            let (ip, gateway) = ip?;
            Ok(ResultData::Ip {
                ip,
                ip6: String::new(),
                gateway,
            })
        })
    }

    fn remove<'a>(&'a mut self, _: Target<'a>, _: &'a Workload) -> Op<'a, ()> {
        nothing()
    }

    fn pause<'a>(&'a mut self, _: Target<'a>, _: &'a Workload, _: bool) -> Op<'a, ()> {
        nothing()
    }
}

impl Primitive for Networks {
    fn install<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ResultData> {
        Box::pin(async move {
            let WorkloadData::Network(n) = &w.data else {
                bail!("{} is not a network", w.name);
            };
            let id = format!("{}-{}", at.local.twin_id, w.name);
            self.ensure(&id, &n.subnet)?;
            self.connect(at, &id, n).await
        })
    }

    /// Removes the network's part here unless another deployment of the twin on this node uses it.
    fn remove<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ()> {
        let shared = at.others.iter().any(|l| {
            l.twin_id == at.local.twin_id
                && l.deployment
                    .workloads
                    .iter()
                    .any(|o| o.name == w.name && matches!(o.data, WorkloadData::Network(_)))
        });
        let removed = match shared {
            true => Ok(()),
            false => Networks::remove(self, &format!("{}-{}", at.local.twin_id, w.name)),
        };
        Box::pin(async move { removed })
    }

    fn pause<'a>(&'a mut self, _: Target<'a>, _: &'a Workload, _: bool) -> Op<'a, ()> {
        nothing()
    }
}
