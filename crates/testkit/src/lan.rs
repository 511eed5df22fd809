//! A test LAN of network namespaces, so a grid's programs run like separate hosts: a "switch"
//! namespace holding a bridge, one namespace per host with an address on it, and a veth from the
//! test's own namespace, so the test reaches every host. Servers listen only inside these
//! namespaces. Everything is deleted when the LAN is dropped.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static LANS: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Debug)]
pub struct Lan {
    prefix: String,
    names: Vec<String>,
    switch: String,
    hosts: u8,
}

/// A host on a LAN: its namespace and address.
#[derive(Debug, Clone)]
pub struct Host {
    pub netns: String,
    pub ip: String,
}

impl Host {
    /// A command that runs `program` inside this host's namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).arg(program);
        cmd
    }
}

impl Lan {
    pub fn new() -> Lan {
        let n = LANS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:x}", (std::process::id() * 7 + n) % 0xfffff);
        let subnet = 100 + (std::process::id() + n * 37) % 150;
        let switch = format!("tg{tag}s");
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        let lan = Lan {
            prefix: format!("10.213.{subnet}"),
            names: vec![switch.clone()],
            switch,
            hosts: 1,
        };
        // The test's own leg: the host side stays here with the first address.
        let (here, there) = (format!("tg{tag}r"), format!("tg{tag}p"));
        ip(&["link", "add", &here, "type", "veth", "peer", "name", &there]);
        ip(&["link", "set", &there, "netns", &lan.switch]);
        ip(&["-n", &lan.switch, "link", "set", &there, "master", "br0"]);
        ip(&["-n", &lan.switch, "link", "set", &there, "up"]);
        ip(&["addr", "add", &format!("{}.1/24", lan.prefix), "dev", &here]);
        ip(&["link", "set", &here, "up"]);
        lan
    }

    /// The test's own address on the LAN.
    pub fn here(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// Adds a host namespace with the next address.
    pub fn host(&mut self) -> Host {
        self.hosts += 1;
        let ns = format!("{}{}", &self.switch[..self.switch.len() - 1], self.hosts);
        let (inner, outer) = (format!("{ns}i"), format!("{ns}o"));
        ip(&["netns", "add", &ns]);
        self.names.push(ns.clone());
        ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ]);
        ip(&["link", "set", &inner, "netns", &ns]);
        ip(&["link", "set", &outer, "netns", &self.switch]);
        ip(&["-n", &self.switch, "link", "set", &outer, "master", "br0"]);
        ip(&["-n", &self.switch, "link", "set", &outer, "up"]);
        let addr = format!("{}.{}", self.prefix, self.hosts);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &inner,
        ]);
        ip(&["-n", &ns, "link", "set", &inner, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        Host {
            netns: ns,
            ip: addr,
        }
    }
}

impl Default for Lan {
    fn default() -> Self {
        Lan::new()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting the switch also deletes the test's veth (its peer lives there).
        for ns in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}
