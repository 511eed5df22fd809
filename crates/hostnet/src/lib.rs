//! A LAN of network namespaces, so a grid's programs run like separate hosts on one machine: a
//! "switch" namespace holding a bridge, one namespace per host with an address on it, and a veth
//! from the creator's own namespace, so it reaches every host. `tfgrid up` puts its nodes on one;
//! the tests put chains and nodes on them; a host can also sit behind a NAT router of its own
//! ([`Lan::hidden_host`]), as a node without a public address does. Everything is deleted when the
//! LAN is dropped. Needs root, `ip` (iproute2) and `nsenter` (util-linux), and `nft` (nftables) for
//! hidden hosts. [`run_in`] runs a program inside a namespace (the node agent uses it too).

use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static LANS: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[derive(Debug)]
pub struct Lan {
    prefix: String,
    names: Vec<String>,
    switch: String,
    /// This namespace's leg on the LAN.
    leg: String,
    hosts: u8,
}

/// A host on a LAN: its namespace and address.
#[derive(Debug, Clone)]
pub struct Host {
    pub netns: String,
    pub ip: String,
    /// The host's interface on the LAN.
    pub iface: String,
}

impl Host {
    /// A command that runs `program` inside this host's network namespace. It enters only the
    /// network namespace (`nsenter`), not a fresh mount namespace as `ip netns exec` does, whose
    /// remounted /sys hides the cgroup mounts container runtimes need.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/var/run/netns/{}", self.netns))
            .arg("--")
            .arg(program);
        cmd
    }
}

impl Lan {
    pub fn new() -> io::Result<Lan> {
        let n = LANS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:x}", (std::process::id() * 7 + n) % 0xfffff);
        let subnet = 100 + (std::process::id() + n * 37) % 150;
        let switch = format!("tg{tag}s");
        ip(&["netns", "add", &switch])?;
        let lan = Lan {
            prefix: format!("10.213.{subnet}"),
            names: vec![switch.clone()],
            switch,
            leg: format!("tg{tag}r"),
            hosts: 1,
        };
        // From here on, dropping `lan` deletes what was made.
        ip(&["-n", &lan.switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &lan.switch, "link", "set", "br0", "up"])?;
        // The test's own leg: the host side stays here with the first address.
        let (here, there) = (lan.leg.clone(), format!("tg{tag}p"));
        ip(&["link", "add", &here, "type", "veth", "peer", "name", &there])?;
        ip(&["link", "set", &there, "netns", &lan.switch])?;
        ip(&["-n", &lan.switch, "link", "set", &there, "master", "br0"])?;
        ip(&["-n", &lan.switch, "link", "set", &there, "up"])?;
        ip(&["addr", "add", &format!("{}.1/24", lan.prefix), "dev", &here])?;
        ip(&["link", "set", &here, "up"])?;
        Ok(lan)
    }

    /// The test's own address on the LAN.
    pub fn here(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// Gives our own leg on the LAN another address too (`a.b.c.d/n`): a gateway of another
    /// network sharing the LAN's wire.
    pub fn add_address(&self, cidr: &str) -> io::Result<()> {
        ip(&["addr", "add", cidr, "dev", &self.leg])
    }

    /// Adds a host namespace with the next address.
    pub fn host(&mut self) -> io::Result<Host> {
        self.hosts += 1;
        let ns = format!("{}{}", &self.switch[..self.switch.len() - 1], self.hosts);
        let addr = format!("{}.{}", self.prefix, self.hosts);
        let switch = self.switch.clone();
        let (inner, outer) = self.joined(&ns, &switch, &format!("{addr}/24"))?;
        ip(&["-n", &switch, "link", "set", &outer, "master", "br0"])?;
        ip(&["-n", &switch, "link", "set", &outer, "up"])?;
        Ok(Host {
            netns: ns,
            ip: addr,
            iface: inner,
        })
    }

    /// Makes namespace `ns` (deleted with the LAN) with a veth pair to namespace `to`: its leg
    /// `<ns>i` with address `cidr`, up, and the other leg `<ns>o` in `to`, for the caller to set
    /// up. Returns both legs' names.
    fn joined(&mut self, ns: &str, to: &str, cidr: &str) -> io::Result<(String, String)> {
        let (inner, outer) = (format!("{ns}i"), format!("{ns}o"));
        ip(&["netns", "add", ns])?;
        self.names.push(ns.to_owned());
        ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ])?;
        ip(&["link", "set", &inner, "netns", ns])?;
        ip(&["link", "set", &outer, "netns", to])?;
        ip(&["-n", ns, "addr", "add", cidr, "dev", &inner])?;
        ip(&["-n", ns, "link", "set", &inner, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok((inner, outer))
    }
}

impl Lan {
    /// Adds a host behind a NAT router, as a machine on a home or office network is: the router is
    /// a host of the LAN (the next address), the host sits on a link of its own behind it
    /// (`192.168.<n>.2/24`, its default route through the router at `.1`), and the router
    /// masquerades what the host sends out. The host reaches the LAN; nothing on the LAN reaches it
    /// but the answers to what it sent. Needs `nft` (nftables).
    pub fn hidden_host(&mut self) -> io::Result<Host> {
        let router = self.host()?;
        let n = self.hosts;
        let ns = format!("{}h", router.netns);
        let (private, gateway) = (format!("192.168.{n}.2"), format!("192.168.{n}.1"));
        let (inner, outer) = self.joined(&ns, &router.netns, &format!("{private}/24"))?;
        let gateway_cidr = format!("{gateway}/24");
        ip(&[
            "-n",
            &router.netns,
            "addr",
            "add",
            &gateway_cidr,
            "dev",
            &outer,
        ])?;
        ip(&["-n", &router.netns, "link", "set", &outer, "up"])?;
        ip(&["-n", &ns, "route", "add", "default", "via", &gateway])?;
        run_in(
            Some(&router.netns),
            "sysctl",
            &["-qw", "net.ipv4.ip_forward=1"],
            None,
        )?;
        let rules = format!(
            "table ip hidden {{\n chain post {{\n  type nat hook postrouting priority srcnat;\n  \
             oifname \"{}\" masquerade\n }}\n}}\n",
            router.iface
        );
        run_in(Some(&router.netns), "nft", &["-f", "-"], Some(&rules))?;
        Ok(Host {
            netns: ns,
            ip: private,
            iface: inner,
        })
    }
}

/// Runs `program` with `args` in network namespace `ns` (this one's when `None`), with `input` on
/// its standard input, failing with what it said.
pub fn run_in(
    ns: Option<&str>,
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> io::Result<()> {
    use std::io::Write;
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    };
    let mut child = cmd
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running {program}: {e}")))?;
    if let Some(text) = input {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} {}{}: {}",
            args.join(" "),
            ns.map(|ns| format!(" in {ns}")).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl Drop for Lan {
    fn drop(&mut self) {
        // The kernel deletes a namespace's links after `netns delete` returns: delete our leg
        // first, so the LAN is gone from here when the drop returns.
        let _ = Command::new("ip")
            .args(["link", "delete", &self.leg])
            .status();
        for ns in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}
