//! A project's private network across its nodes, planned by the client, pure. The network's range
//! `a.N.0.0/16`, one /24 `a.N.k.0/24` and one WireGuard key pair (X25519, standard base64, as `wg`
//! writes them) per member node, both kept as long as the node stays a member; listen port 0 (the
//! node picks a port, reports it and keeps it); and each member's peers. Public members (a public
//! config on the chain) form a full mesh; the access node (the public member with the lowest id)
//! also peers with the hidden members and the user's access peers, which dial in, and its entry on
//! the other public members routes them; a hidden member has one peer, the access node, for the
//! whole range. A member with subnet `a.N.k.0/24` has the WireGuard address `100.64.N.k`.
//!
//! The deployer hands in what exists: the members with their reported endpoints, and what earlier
//! versions assigned, read back from the deployments on the chain ([`previous`]). What the chain
//! holds beyond Zero-OS's fields is in each network workload's metadata ([`Meta`]): the member's
//! public key (its private key is sealed to the node, and kept sealed across versions), and on the
//! access node the access peers. [`rendezvous`] decides which members to update once the nodes
//! have reported their endpoints.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use tfgrid_types::NodeId;
use tfgrid_types::deployment::{
    self as zos, Deployment, ResultData, ResultState, Secret, Workload, WorkloadData,
    WorkloadResult,
};

/// The highest /24 index a network hands out: members and access peers take `a.N.1.0/24` to
/// `a.N.254.0/24`.
pub const SUBNET_INDEX_MAX: u8 = 254;
/// The keepalive a user's machine (behind NAT, like a hidden node) sends its access node.
pub const KEEPALIVE_S: u16 = 25;
/// Every member's and access peer's WireGuard address is in it.
pub const WIREGUARD_RANGE: &str = "100.64.0.0/16";
/// The version of the network workload's [`Meta`].
const META_VERSION: u32 = 1;

/// A network's range, a private /16 `a.N.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    a: u8,
    n: u8,
}

impl Range {
    /// `a.N.0.0/16` with `a` not 0.
    pub fn parse(text: &str) -> Option<Range> {
        let (ip, len) = text.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let [a, n, c, d] = ip.octets();
        (len == "16" && c == 0 && d == 0 && a != 0).then_some(Range { a, n })
    }

    pub fn cidr(&self) -> String {
        format!("{}.{}.0.0/16", self.a, self.n)
    }

    /// The first address of /24 number `k`: `a.N.k.0`.
    pub fn subnet_base(&self, k: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.a, self.n, k, 0)
    }

    pub fn subnet(&self, k: u8) -> String {
        format!("{}/24", self.subnet_base(k))
    }

    /// The WireGuard address of the member or access peer with /24 number `k`: `100.64.N.k`.
    pub fn wireguard_ip(&self, k: u8) -> Ipv4Addr {
        Ipv4Addr::new(100, 64, self.n, k)
    }

    /// The number `k` of a /24 `a.N.k.0/24` of the range (1 to [`SUBNET_INDEX_MAX`]).
    pub fn index_of(&self, subnet: &str) -> Option<u8> {
        let (ip, len) = subnet.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        (len == "24" && ip.octets()[3] == 0)
            .then(|| self.index_of_host(ip))
            .flatten()
    }

    /// The number of the /24 of the range that holds `ip`.
    pub fn index_of_host(&self, ip: Ipv4Addr) -> Option<u8> {
        let [a, n, k, _] = ip.octets();
        ((a, n) == (self.a, self.n) && (1..=SUBNET_INDEX_MAX).contains(&k)).then_some(k)
    }
}

/// A WireGuard key pair in standard base64, as `wg genkey` and `wg pubkey` write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub private_key: String,
    pub public_key: String,
}

impl KeyPair {
    /// A new key pair; the private key clamped as `wg genkey` writes it.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> KeyPair {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        KeyPair::from_bytes(bytes)
    }

    /// The pair of a private key in base64, if it is one (32 bytes).
    pub fn from_private(private_key: &str) -> Option<KeyPair> {
        let bytes: [u8; 32] = BASE64.decode(private_key).ok()?.try_into().ok()?;
        Some(KeyPair::from_bytes(bytes))
    }

    fn from_bytes(bytes: [u8; 32]) -> KeyPair {
        let secret = x25519_dalek::StaticSecret::from(bytes);
        let public = x25519_dalek::PublicKey::from(&secret);
        KeyPair {
            private_key: BASE64.encode(bytes),
            public_key: BASE64.encode(public.as_bytes()),
        }
    }
}

/// A member's key as a deployment holds it: the private key in the clear when this client made
/// it, sealed when read back from the chain (and then kept sealed, as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberKey {
    pub public_key: String,
    pub private_key: Secret,
}

impl MemberKey {
    fn generate(rng: &mut (impl RngCore + CryptoRng)) -> MemberKey {
        let pair = KeyPair::generate(rng);
        MemberKey {
            public_key: pair.public_key,
            private_key: Secret::Plain(pair.private_key),
        }
    }
}

/// A node of the network, as the deployer finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node_id: NodeId,
    /// It has a public config on the chain; else it is hidden.
    pub public: bool,
    /// Where it listens, `ip:port`, as it reported it; empty when not known.
    pub endpoint: String,
    /// The /24 number the file asks for (a container's address in it), if any.
    pub subnet: Option<u8>,
}

/// A user's machine in the network: a /24 of the range and a public key (its private key is the
/// user's), reached through the access node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPeer {
    pub subnet_index: u8,
    pub public_key: String,
}

/// What an earlier version assigned to a member node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub subnet: u8,
    /// None when its public key is not known (it is then made anew).
    pub key: Option<MemberKey>,
}

/// What earlier versions assigned: the members' /24s and keys, and the access peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Previous {
    pub members: BTreeMap<NodeId, Kept>,
    pub access: Vec<AccessPeer>,
}

/// A member as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub node_id: NodeId,
    pub subnet: u8,
    pub public: bool,
    pub endpoint: String,
    pub key: MemberKey,
}

/// The network as planned: its members (by node id) and access peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    pub range: Range,
    pub members: Vec<Planned>,
    pub access: Vec<AccessPeer>,
}

/// What the network workload's metadata holds (JSON, versioned): the member's public key, and on
/// the access node the access peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub version: u32,
    pub wireguard_public_key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<AccessPeer>,
}

impl Meta {
    pub fn parse(metadata: &str) -> Option<Meta> {
        serde_json::from_str::<Meta>(metadata)
            .ok()
            .filter(|m| m.version == META_VERSION)
    }
}

/// Whether the network needs an access node that no member provides: no member is public and a
/// hidden one must be reached (by another hidden member or by an access peer).
pub fn needs_access_node(members: &[Member], access_peers: usize) -> bool {
    let hidden = members.iter().filter(|m| !m.public).count();
    !members.iter().any(|m| m.public) && (hidden >= 2 || (hidden == 1 && access_peers > 0))
}

/// Plans the network of `members` (one each per node) in `range`: each keeps the /24 and key it
/// had (`previous`) unless it asks for another /24; new ones take the lowest free /24 and a new
/// key. Access peers keep theirs (their users' configurations name them). Fails when a /24 asked
/// for is taken, or the range has none left.
pub fn plan(
    range: Range,
    previous: &Previous,
    members: &[Member],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<NetworkPlan, String> {
    let mut members: Vec<&Member> = members.iter().collect();
    members.sort_by_key(|m| m.node_id);
    assert!(
        members.windows(2).all(|w| w[0].node_id != w[1].node_id),
        "one member per node"
    );
    let mut taken: BTreeMap<u8, String> = BTreeMap::new();
    let mut access = Vec::new();
    for a in &previous.access {
        if let Entry::Vacant(e) = taken.entry(a.subnet_index) {
            e.insert("a user's access peer".into());
            access.push(a.clone());
        }
    }
    let mut subnets = BTreeMap::new();
    let kept = |m: &Member| previous.members.get(&m.node_id).map(|k| k.subnet);
    for m in &members {
        let Some(k) = m.subnet else { continue };
        let holder = members
            .iter()
            .find(|o| o.node_id != m.node_id && o.subnet.is_none() && kept(o) == Some(k))
            .map(|o| format!("node {} (a member keeps its /24)", o.node_id));
        if let Some(by) = taken.get(&k).cloned().or(holder) {
            return Err(format!(
                "node {} asks for {}, held by {by}",
                m.node_id,
                range.subnet(k)
            ));
        }
        taken.insert(k, format!("node {}", m.node_id));
        subnets.insert(m.node_id, k);
    }
    for m in members.iter().filter(|m| m.subnet.is_none()) {
        if let Some(k) = kept(m).filter(|k| !taken.contains_key(k)) {
            taken.insert(k, format!("node {}", m.node_id));
            subnets.insert(m.node_id, k);
        }
    }
    for m in &members {
        if let Entry::Vacant(e) = subnets.entry(m.node_id) {
            let k = free_index(&taken).ok_or_else(|| full(range))?;
            taken.insert(k, format!("node {}", m.node_id));
            e.insert(k);
        }
    }
    let planned = members
        .iter()
        .map(|m| Planned {
            node_id: m.node_id,
            subnet: subnets[&m.node_id],
            public: m.public,
            endpoint: m.endpoint.clone(),
            key: previous
                .members
                .get(&m.node_id)
                .and_then(|k| k.key.clone())
                .unwrap_or_else(|| MemberKey::generate(rng)),
        })
        .collect();
    Ok(NetworkPlan {
        range,
        members: planned,
        access,
    })
}

fn free_index(taken: &BTreeMap<u8, String>) -> Option<u8> {
    (1..=SUBNET_INDEX_MAX).find(|k| !taken.contains_key(k))
}

fn full(range: Range) -> String {
    format!(
        "the range {} has no /24 left ({SUBNET_INDEX_MAX} at most)",
        range.cidr()
    )
}

impl NetworkPlan {
    pub fn member(&self, node_id: NodeId) -> Option<&Planned> {
        self.members.iter().find(|m| m.node_id == node_id)
    }

    /// The public member with the lowest node id.
    pub fn access_node(&self) -> Option<&Planned> {
        self.members
            .iter()
            .filter(|m| m.public)
            .min_by_key(|m| m.node_id)
    }

    /// A /24 and its WireGuard address, as allowed IPs.
    fn host(&self, k: u8) -> [String; 2] {
        [
            self.range.subnet(k),
            format!("{}/32", self.range.wireguard_ip(k)),
        ]
    }

    /// What the access node routes for the others: the hidden members and the access peers.
    fn behind_access(&self) -> impl Iterator<Item = (u8, &str)> {
        let hidden = self.members.iter().filter(|m| !m.public);
        hidden.map(|m| (m.subnet, m.key.public_key.as_str())).chain(
            self.access
                .iter()
                .map(|a| (a.subnet_index, a.public_key.as_str())),
        )
    }

    fn peer(&self, k: u8, public_key: &str, allowed_ips: Vec<String>, endpoint: &str) -> zos::Peer {
        zos::Peer {
            subnet: self.range.subnet(k),
            wireguard_public_key: public_key.to_owned(),
            allowed_ips,
            endpoint: endpoint.to_owned(),
        }
    }

    /// Member `node_id`'s part of the network, with its peers.
    pub fn network(&self, node_id: NodeId) -> Option<zos::Network> {
        let me = self.member(node_id)?;
        let access = self.access_node().map(|a| a.node_id);
        let mut peers = Vec::new();
        if me.public {
            for other in self
                .members
                .iter()
                .filter(|o| o.public && o.node_id != node_id)
            {
                let mut allowed = self.host(other.subnet).to_vec();
                if Some(other.node_id) == access {
                    allowed.extend(self.behind_access().flat_map(|(k, _)| self.host(k)));
                }
                let key = &other.key.public_key;
                peers.push(self.peer(other.subnet, key, allowed, &other.endpoint));
            }
            if Some(node_id) == access {
                for (k, key) in self.behind_access() {
                    peers.push(self.peer(k, key, self.host(k).to_vec(), ""));
                }
            }
        } else if let Some(a) = self.access_node() {
            let allowed = vec![self.range.cidr(), WIREGUARD_RANGE.to_owned()];
            peers.push(self.peer(a.subnet, &a.key.public_key, allowed, &a.endpoint));
        }
        Some(zos::Network {
            ip_range: self.range.cidr(),
            subnet: self.range.subnet(me.subnet),
            wireguard_private_key: me.key.private_key.clone(),
            wireguard_listen_port: 0,
            peers,
        })
    }

    /// Member `node_id`'s network workload `name`, its [`Meta`] as metadata.
    pub fn workload(&self, name: &str, node_id: NodeId) -> Option<Workload> {
        let network = self.network(node_id)?;
        let me = self.member(node_id)?;
        let is_access = self.access_node().map(|a| a.node_id) == Some(node_id);
        let meta = Meta {
            version: META_VERSION,
            wireguard_public_key: me.key.public_key.clone(),
            access: if is_access {
                self.access.clone()
            } else {
                vec![]
            },
        };
        Some(Workload {
            version: 0,
            name: name.to_owned(),
            metadata: serde_json::to_string(&meta).expect("metadata serializes"),
            description: String::new(),
            data: WorkloadData::Network(network),
        })
    }

    /// The plan with the endpoints members reported (those that did not keep theirs).
    pub fn with_endpoints(&self, reported: &BTreeMap<NodeId, String>) -> NetworkPlan {
        let mut next = self.clone();
        for m in &mut next.members {
            if let Some(endpoint) = reported.get(&m.node_id) {
                m.endpoint = endpoint.clone();
            }
        }
        next
    }

    /// Adds a user's access peer with `public_key`: it takes the lowest /24 no member or other
    /// access peer holds; returns that /24's number.
    pub fn add_access_peer(&mut self, public_key: String) -> Result<u8, String> {
        let taken: BTreeMap<u8, String> = self
            .members
            .iter()
            .map(|m| m.subnet)
            .chain(self.access.iter().map(|a| a.subnet_index))
            .map(|k| (k, String::new()))
            .collect();
        let k = free_index(&taken).ok_or_else(|| full(self.range))?;
        self.access.push(AccessPeer {
            subnet_index: k,
            public_key,
        });
        Ok(k)
    }
}

/// What earlier versions assigned, read back from the project's deployments (by node) on the
/// chain: each member's /24 and key (the public key from the workload's [`Meta`]; none when the
/// metadata does not say, or the /24 is not of `range`), and the access peers its access node
/// lists.
pub fn previous<'a>(
    name: &str,
    range: Range,
    deployments: impl IntoIterator<Item = (NodeId, &'a Deployment)>,
) -> Previous {
    let mut out = Previous::default();
    let mut seen = BTreeSet::new();
    for (node_id, d) in deployments {
        let Some(w) = d.workload(name) else { continue };
        let WorkloadData::Network(n) = &w.data else {
            continue;
        };
        let Some(subnet) = range.index_of(&n.subnet) else {
            continue;
        };
        let meta = Meta::parse(&w.metadata);
        let key = meta.as_ref().map(|m| MemberKey {
            public_key: m.wireguard_public_key.clone(),
            private_key: n.wireguard_private_key.clone(),
        });
        out.members.insert(node_id, Kept { subnet, key });
        for a in meta.into_iter().flat_map(|m| m.access) {
            if seen.insert(a.subnet_index) {
                out.access.push(a);
            }
        }
    }
    out
}

/// Where a member listens, as its report of the network workload `name` says (`ip:port`, empty
/// when hidden); none when it did not report it so.
pub fn endpoint_of(results: &[WorkloadResult], name: &str) -> Option<String> {
    results.iter().find_map(|r| match &r.data {
        ResultData::Network { endpoint, .. } if r.name == name && r.state == ResultState::Ok => {
            Some(endpoint.clone())
        }
        _ => None,
    })
}

/// Once the nodes reported where they listen (`reported`, by node, for those that reported): the
/// plan with those endpoints, and the members whose peers lack one or hold a stale one, to update.
/// Nothing changed, nothing to update.
pub fn rendezvous(
    plan: &NetworkPlan,
    reported: &BTreeMap<NodeId, String>,
) -> (NetworkPlan, Vec<NodeId>) {
    let next = plan.with_endpoints(reported);
    let stale = plan
        .members
        .iter()
        .map(|m| m.node_id)
        .filter(|&n| plan.network(n) != next.network(n))
        .collect();
    (next, stale)
}

/// The `wg-quick` configuration of access peer number `k`, holding `private_key`, reaching the
/// network through `access` (the access node).
pub fn wg_quick(range: Range, k: u8, private_key: &str, access: &Planned) -> String {
    let endpoint = match access.endpoint.as_str() {
        "" => format!(
            "# Endpoint: node {} has not reported where it listens yet; add\n\
             # Endpoint = <ip>:<port> once `tfgrid status` shows it\n",
            access.node_id
        ),
        e => format!("Endpoint = {e}\n"),
    };
    format!(
        "[Interface]\n\
         Address = {}/16\n\
         PrivateKey = {private_key}\n\
         \n\
         [Peer]\n\
         # node {}, the network's access node\n\
         PublicKey = {}\n\
         {endpoint}\
         AllowedIPs = {}, {WIREGUARD_RANGE}\n\
         PersistentKeepalive = {KEEPALIVE_S}\n",
        range.wireguard_ip(k),
        access.node_id,
        access.key.public_key,
        range.cidr(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn range() -> Range {
        Range::parse("10.20.0.0/16").unwrap()
    }

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    /// Node `id`, public with an endpoint `192.0.2.<id>:5000` when `public`.
    fn member(id: NodeId, public: bool) -> Member {
        Member {
            node_id: id,
            public,
            endpoint: match public {
                true => format!("192.0.2.{id}:5000"),
                false => String::new(),
            },
            subnet: None,
        }
    }

    /// The plan's peers as text, one line per member: `<node> <subnet>: <peer> [<allowed>] @<endpoint>`,
    /// each peer named by the node (`n<id>`) or access peer (`u<k>`) its key is.
    fn show(plan: &NetworkPlan) -> String {
        let who = |key: &str| {
            let member = plan.members.iter().find(|m| m.key.public_key == key);
            let user = plan.access.iter().find(|a| a.public_key == key);
            match (member, user) {
                (Some(m), _) => format!("n{}", m.node_id),
                (_, Some(a)) => format!("u{}", a.subnet_index),
                _ => "?".into(),
            }
        };
        let mut lines = Vec::new();
        for m in &plan.members {
            let n = plan.network(m.node_id).unwrap();
            assert_eq!(n.wireguard_listen_port, 0);
            assert_eq!(n.ip_range, "10.20.0.0/16");
            let peers: Vec<String> = n
                .peers
                .iter()
                .map(|p| {
                    let at = match p.endpoint.as_str() {
                        "" => String::new(),
                        e => format!(" @{e}"),
                    };
                    let allowed = p
                        .allowed_ips
                        .join(" ")
                        .replace("10.20.", "")
                        .replace("100.64.20.", "w");
                    format!("{} [{allowed}]{at}", who(&p.wireguard_public_key))
                })
                .collect();
            let peers = match peers.is_empty() {
                true => "no peers".to_owned(),
                false => peers.join("; "),
            };
            lines.push(format!("{} {}: {peers}", m.node_id, n.subnet));
        }
        lines.join("\n")
    }

    fn check(members: &[Member], access: &[&str], expect: &str) -> NetworkPlan {
        let previous = Previous {
            members: BTreeMap::new(),
            access: access
                .iter()
                .enumerate()
                .map(|(i, key)| AccessPeer {
                    subnet_index: 200 + i as u8,
                    public_key: key.to_string(),
                })
                .collect(),
        };
        let plan = plan(range(), &previous, members, &mut rng()).unwrap();
        assert_eq!(show(&plan), expect.trim());
        plan
    }

    #[test]
    fn keys_are_x25519_in_standard_base64() {
        // RFC 7748, 6.1: Alice's private and public keys.
        let private =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap();
        let public =
            hex::decode("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
                .unwrap();
        let pair = KeyPair::from_private(&BASE64.encode(&private)).unwrap();
        assert_eq!(pair.public_key, BASE64.encode(&public));
        let made = KeyPair::generate(&mut rng());
        assert_eq!(made.private_key.len(), 44, "32 bytes in padded base64");
        assert_eq!(KeyPair::from_private(&made.private_key), Some(made.clone()));
        let bytes = BASE64.decode(&made.private_key).unwrap();
        assert_eq!(
            (bytes[0] & 7, bytes[31] & 0xc0),
            (0, 0x40),
            "clamped as wg genkey"
        );
        assert_eq!(KeyPair::from_private("not base64"), None);
    }

    #[test]
    fn full_mesh_among_public_members() {
        check(
            &[member(3, true), member(1, true), member(2, true)],
            &[],
            "
1 10.20.1.0/24: n2 [2.0/24 w2/32] @192.0.2.2:5000; n3 [3.0/24 w3/32] @192.0.2.3:5000
2 10.20.2.0/24: n1 [1.0/24 w1/32] @192.0.2.1:5000; n3 [3.0/24 w3/32] @192.0.2.3:5000
3 10.20.3.0/24: n1 [1.0/24 w1/32] @192.0.2.1:5000; n2 [2.0/24 w2/32] @192.0.2.2:5000",
        );
        // One member alone has no peers.
        check(&[member(4, false)], &[], "4 10.20.1.0/24: no peers");
    }

    #[test]
    fn hidden_members_and_access_peers_go_through_the_access_node() {
        // Node 2 is the lowest public one: the access node. Hidden 1 and 4 and the user's machine
        // (u200) reach the network through it, and node 3 routes them through it.
        let plan = check(
            &[
                member(1, false),
                member(2, true),
                member(3, true),
                member(4, false),
            ],
            &["user-key"],
            "
1 10.20.1.0/24: n2 [0.0/16 100.64.0.0/16] @192.0.2.2:5000
2 10.20.2.0/24: n3 [3.0/24 w3/32] @192.0.2.3:5000; n1 [1.0/24 w1/32]; n4 [4.0/24 w4/32]; u200 [200.0/24 w200/32]
3 10.20.3.0/24: n2 [2.0/24 w2/32 1.0/24 w1/32 4.0/24 w4/32 200.0/24 w200/32] @192.0.2.2:5000
4 10.20.4.0/24: n2 [0.0/16 100.64.0.0/16] @192.0.2.2:5000",
        );
        assert_eq!(plan.access_node().map(|a| a.node_id), Some(2));
        // Only the access node lists the access peers in its metadata.
        let meta = |node| Meta::parse(&plan.workload("p_net", node).unwrap().metadata).unwrap();
        assert_eq!(meta(2).access, plan.access);
        assert!(meta(3).access.is_empty());
        assert_eq!(
            meta(3).wireguard_public_key,
            plan.member(3).unwrap().key.public_key
        );
    }

    #[test]
    fn an_access_node_is_needed_when_no_public_member_reaches_the_hidden_ones() {
        let hidden = |n| member(n, false);
        assert!(
            !needs_access_node(&[hidden(1)], 0),
            "alone, nobody reaches it"
        );
        assert!(needs_access_node(&[hidden(1)], 1), "a user's machine does");
        assert!(needs_access_node(&[hidden(1), hidden(2)], 0));
        assert!(!needs_access_node(&[hidden(1), member(2, true)], 3));
        assert!(!needs_access_node(&[], 0));
    }

    /// The plan's workloads as the deployments on the chain hold them (keys sealed).
    fn on_chain(plan: &NetworkPlan) -> Vec<(NodeId, Deployment)> {
        plan.members
            .iter()
            .map(|m| {
                let mut w = plan.workload("p_net", m.node_id).unwrap();
                if let WorkloadData::Network(n) = &mut w.data {
                    n.wireguard_private_key = Secret::Sealed(vec![m.node_id as u8; 48]);
                }
                let d = Deployment {
                    version: 1,
                    twin_id: 1,
                    metadata: String::new(),
                    description: String::new(),
                    signature_requirement: Deployment::single_signer(1),
                    workloads: vec![w],
                };
                (m.node_id, d)
            })
            .collect()
    }

    #[test]
    fn keys_and_subnets_are_kept_across_plans() {
        let mut first = plan(
            range(),
            &Previous::default(),
            &[member(5, true), member(9, false)],
            &mut rng(),
        )
        .unwrap();
        first.add_access_peer("user-key".into()).unwrap();
        let chain = on_chain(&first);
        let before = previous("p_net", range(), chain.iter().map(|(n, d)| (*n, d)));
        assert_eq!(before.access, first.access);
        // Node 2 joins: the others keep their /24s and keys (sealed as the chain holds them), the
        // access peer its /24; the new node takes the lowest free one and a new key.
        let members = [member(5, true), member(9, false), member(2, true)];
        let again = plan(
            range(),
            &before,
            &members,
            &mut rand::rngs::StdRng::seed_from_u64(8),
        )
        .unwrap();
        let kept = |p: &NetworkPlan, n| {
            let m = p.member(n).unwrap();
            (m.subnet, m.key.public_key.clone())
        };
        assert_eq!(kept(&again, 5), kept(&first, 5));
        assert_eq!(kept(&again, 9), kept(&first, 9));
        assert_eq!(
            again.member(5).unwrap().key.private_key,
            Secret::Sealed(vec![5; 48])
        );
        assert_eq!(again.member(2).unwrap().subnet, 4, "1, 2 and 3 are taken");
        assert_eq!(again.access, first.access);
        // Node 2 is now the access node; the access peer moved to it.
        assert_eq!(again.access_node().unwrap().node_id, 2);
        // A metadata that does not say the public key: a new key.
        let mut bare = chain.clone();
        bare[0].1.workloads[0].metadata = String::new();
        let unknown = previous("p_net", range(), bare.iter().map(|(n, d)| (*n, d)));
        assert_eq!(unknown.members[&5].key, None);
        assert_eq!(unknown.members[&5].subnet, 1);
    }

    #[test]
    fn a_subnet_asked_for_is_given_unless_taken() {
        let mut pinned = member(1, true);
        pinned.subnet = Some(7);
        let p = plan(
            range(),
            &Previous::default(),
            &[pinned.clone(), member(2, true)],
            &mut rng(),
        )
        .unwrap();
        assert_eq!(
            (p.member(1).unwrap().subnet, p.member(2).unwrap().subnet),
            (7, 1)
        );
        let previous = Previous {
            members: BTreeMap::from([(
                2,
                Kept {
                    subnet: 7,
                    key: None,
                },
            )]),
            access: vec![],
        };
        let taken = plan(range(), &previous, &[pinned, member(2, true)], &mut rng());
        assert_eq!(
            taken.unwrap_err(),
            "node 1 asks for 10.20.7.0/24, held by node 2 (a member keeps its /24)"
        );
    }

    #[test]
    fn endpoints_are_filled_once_reported() {
        let mut unknown = [member(1, true), member(2, true), member(3, false)];
        for m in &mut unknown {
            m.endpoint.clear();
        }
        let first = plan(range(), &Previous::default(), &unknown, &mut rng()).unwrap();
        assert!(
            show(&first).lines().all(|l| !l.contains('@')),
            "{}",
            show(&first)
        );
        // The nodes report: 1 and 2 where they listen, hidden 3 nothing. Every member's peers
        // lack an endpoint now known: all three are updated.
        let reported = BTreeMap::from([
            (1, "192.0.2.1:5000".to_owned()),
            (2, "192.0.2.2:5000".to_owned()),
            (3, String::new()),
        ]);
        let (second, stale) = rendezvous(&first, &reported);
        assert_eq!(stale, [1, 2, 3]);
        assert_eq!(
            show(&second),
            "1 10.20.1.0/24: n2 [2.0/24 w2/32] @192.0.2.2:5000; n3 [3.0/24 w3/32]\n\
             2 10.20.2.0/24: n1 [1.0/24 w1/32 3.0/24 w3/32] @192.0.2.1:5000\n\
             3 10.20.3.0/24: n1 [0.0/16 100.64.0.0/16] @192.0.2.1:5000"
        );
        // Reported again, the same: nothing to update.
        assert_eq!(rendezvous(&second, &reported).1, Vec::<NodeId>::new());
        // Node 2 comes back on another port: the peers holding its endpoint (node 1) are updated.
        let moved = BTreeMap::from([(2, "192.0.2.2:6000".to_owned())]);
        assert_eq!(rendezvous(&second, &moved).1, [1]);
        // A node that did not report keeps the endpoint known.
        assert_eq!(
            rendezvous(&second, &BTreeMap::new()).1,
            Vec::<NodeId>::new()
        );
    }

    #[test]
    fn a_member_leaving_is_removed_from_every_peer_list() {
        let all = [
            member(1, true),
            member(2, true),
            member(3, true),
            member(4, false),
        ];
        let first = plan(range(), &Previous::default(), &all, &mut rng()).unwrap();
        let chain = on_chain(&first);
        let before = previous("p_net", range(), chain.iter().map(|(n, d)| (*n, d)));
        let key3 = first.member(3).unwrap().key.public_key.clone();
        let left = plan(
            range(),
            &before,
            &[member(1, true), member(2, true), member(4, false)],
            &mut rng(),
        )
        .unwrap();
        for m in &left.members {
            let n = left.network(m.node_id).unwrap();
            assert!(
                n.peers.iter().all(|p| p.wireguard_public_key != key3
                    && p.allowed_ips
                        .iter()
                        .all(|a| !a.starts_with("10.20.3.") && a != "100.64.20.3/32")),
                "node {}: {:?}",
                m.node_id,
                n.peers
            );
        }
        assert_eq!(
            show(&left),
            "1 10.20.1.0/24: n2 [2.0/24 w2/32] @192.0.2.2:5000; n4 [4.0/24 w4/32]\n\
             2 10.20.2.0/24: n1 [1.0/24 w1/32 4.0/24 w4/32] @192.0.2.1:5000\n\
             4 10.20.4.0/24: n1 [0.0/16 100.64.0.0/16] @192.0.2.1:5000"
        );
    }

    #[test]
    fn an_access_peer_takes_a_free_subnet_and_gets_a_wg_quick_config() {
        let mut p = plan(
            range(),
            &Previous::default(),
            &[member(1, true), member(2, false)],
            &mut rng(),
        )
        .unwrap();
        assert_eq!(p.add_access_peer("user-key".into()), Ok(3));
        let access = p.access_node().unwrap().clone();
        let config = wg_quick(p.range, 3, "cHJpdmF0ZQ==", &access);
        assert_eq!(
            config,
            format!(
                "[Interface]\n\
                 Address = 100.64.20.3/16\n\
                 PrivateKey = cHJpdmF0ZQ==\n\
                 \n\
                 [Peer]\n\
                 # node 1, the network's access node\n\
                 PublicKey = {}\n\
                 Endpoint = 192.0.2.1:5000\n\
                 AllowedIPs = 10.20.0.0/16, 100.64.0.0/16\n\
                 PersistentKeepalive = 25\n",
                access.key.public_key
            )
        );
        let silent = Planned {
            endpoint: String::new(),
            ..access
        };
        let config = wg_quick(p.range, 3, "cHJpdmF0ZQ==", &silent);
        assert!(
            config.contains("# Endpoint: node 1 has not reported where it listens yet"),
            "{config}"
        );
        assert!(!config.contains("\nEndpoint ="), "{config}");
    }

    #[test]
    fn ranges_and_their_subnets() {
        let r = range();
        assert_eq!(r.subnet(3), "10.20.3.0/24");
        assert_eq!(r.wireguard_ip(3), Ipv4Addr::new(100, 64, 20, 3));
        assert_eq!(r.index_of("10.20.3.0/24"), Some(3));
        assert_eq!(r.index_of("10.21.3.0/24"), None);
        assert_eq!(r.index_of("10.20.0.0/24"), None);
        assert_eq!(r.index_of("10.20.3.0/16"), None);
        assert_eq!(r.index_of_host(Ipv4Addr::new(10, 20, 9, 2)), Some(9));
        assert_eq!(Range::parse("10.20.1.0/16"), None);
        assert_eq!(Range::parse("0.20.0.0/16"), None);
    }
}
