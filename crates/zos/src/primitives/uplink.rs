//! A network's way out of the node, as Zero-OS gives each user network one through its NAT
//! namespace: a veth pair between the network's namespace (`pub0`, its default route) and the
//! node's own, on a /30 of `100.127.0.0/16` that no other network of the node holds. What leaves
//! is masqueraded twice: in the network's namespace to its `100.127` address (user networks on one
//! node may use the same ranges, so only this address tells them apart on the way back), and in the
//! node's namespace to the node's own address. The /30 is recorded in the network's run directory
//! (`uplink`), and is free again once the run directory goes.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use hostnet::run_in;
use znet::ip;

/// The /30s the networks' uplinks take, `100.127.0.0/16`.
const BASE: u32 = u32::from_be_bytes([100, 127, 0, 0]);
/// How many /30s there are in it.
const SLOTS: u32 = 1 << 14;
/// The file of a run directory holding its uplink's /30 number.
const SLOT_FILE: &str = "uplink";
/// The uplink's name inside a network's namespace.
pub const INNER: &str = "pub0";

/// The node's and the network's address on /30 number `slot`.
pub fn addresses(slot: u32) -> (Ipv4Addr, Ipv4Addr) {
    let base = BASE + 4 * slot;
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// The lowest /30 number not `taken`.
pub fn free_slot(taken: &BTreeSet<u32>) -> Option<u32> {
    (0..SLOTS).find(|s| !taken.contains(s))
}

/// The /30 of the network whose run directory is `dir` (under `root`, beside the others'): the one
/// recorded, else the lowest free one, recorded now.
fn slot(root: &Path, dir: &Path) -> Result<u32> {
    let read = |d: &Path| {
        std::fs::read_to_string(d.join(SLOT_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    if let Some(slot) = read(dir) {
        return Ok(slot);
    }
    let taken: BTreeSet<u32> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| read(&e.path()))
        .collect();
    let slot = free_slot(&taken).context("every uplink address of 100.127.0.0/16 is taken")?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(SLOT_FILE), slot.to_string())?;
    Ok(slot)
}

/// Gives network namespace `ns` (run directory `root/<ns>`) its way out through the node, with
/// the node's leg named `outer` (idempotent).
pub fn ensure(root: &Path, ns: &str, outer: &str) -> Result<()> {
    let slot = slot(root, &root.join(ns))?;
    let (node, net) = addresses(slot);
    let present = Command::new("ip")
        .args(["-n", ns, "link", "show", INNER])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        // A leg left here by an earlier namespace of this name would block the new pair.
        let _ = Command::new("ip")
            .args(["link", "delete", outer])
            .stderr(std::process::Stdio::null())
            .status();
        let inner = format!("{outer}p");
        ip(&["link", "add", outer, "type", "veth", "peer", "name", &inner])?;
        ip(&["link", "set", &inner, "netns", ns])?;
        ip(&["-n", ns, "link", "set", &inner, "name", INNER])?;
        ip(&["addr", "add", &format!("{node}/30"), "dev", outer])?;
        ip(&["-n", ns, "addr", "add", &format!("{net}/30"), "dev", INNER])?;
    }
    ip(&["link", "set", outer, "up"])?;
    ip(&["-n", ns, "link", "set", INNER, "up"])?;
    ip(&[
        "-n",
        ns,
        "route",
        "replace",
        "default",
        "via",
        &node.to_string(),
    ])?;
    masquerade(Some(ns), &format!("oifname \"{INNER}\""))?;
    masquerade(None, "ip saddr 100.127.0.0/16")?;
    sysctl(None, "net.ipv4.ip_forward=1")
}

/// Masquerades what matches `selector` on its way out of namespace `ns` (the node's own when
/// `None`), once: a table `zos_nat` holds the rule.
fn masquerade(ns: Option<&str>, selector: &str) -> Result<()> {
    let listed = run_in(ns, "nft", &["list", "table", "ip", "zos_nat"], None);
    if listed.is_ok() {
        return Ok(());
    }
    let rules = format!(
        "table ip zos_nat {{\n chain post {{\n  type nat hook postrouting priority srcnat;\n  \
         {selector} masquerade\n }}\n}}\n"
    );
    run_in(ns, "nft", &["-f", "-"], Some(&rules))
        .context("masquerading a network's traffic (is nftables installed?)")
}

/// Sets a kernel parameter in namespace `ns` (the node's own when `None`).
pub fn sysctl(ns: Option<&str>, setting: &str) -> Result<()> {
    Ok(run_in(ns, "sysctl", &["-qw", setting], None)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_point_to_point_pairs() {
        assert_eq!(
            addresses(0),
            (Ipv4Addr::new(100, 127, 0, 1), Ipv4Addr::new(100, 127, 0, 2))
        );
        assert_eq!(
            addresses(64),
            (Ipv4Addr::new(100, 127, 1, 1), Ipv4Addr::new(100, 127, 1, 2))
        );
        assert_eq!(addresses(SLOTS - 1).1, Ipv4Addr::new(100, 127, 255, 254));
        assert_eq!(free_slot(&BTreeSet::from([0, 1, 3])), Some(2));
        assert_eq!(free_slot(&(0..SLOTS).collect()), None);
    }

    #[test]
    fn a_slot_is_kept_and_the_next_network_takes_another() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("n-a"), root.path().join("n-b"));
        assert_eq!(slot(root.path(), &a).unwrap(), 0);
        assert_eq!(slot(root.path(), &a).unwrap(), 0);
        assert_eq!(slot(root.path(), &b).unwrap(), 1);
        std::fs::remove_dir_all(&a).unwrap();
        assert_eq!(slot(root.path(), &root.path().join("n-c")).unwrap(), 0);
    }
}
