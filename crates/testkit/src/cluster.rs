//! A BFT network for tests: validators (and full nodes) of one chain, each a `tfchain` process on a
//! host of its own on a LAN of network namespaces, all connected to each other and relaying the
//! transactions they take to the others. A node can be killed and restarted on its data, or cut off
//! the LAN and joined again; the test reads every node's blocks through its RPC to compare them.

use std::time::Duration;

use tfchain_client::Client;
use tfchain_client::api::{BlockId, TfchainApiClient};
use tfchain_runtime::genesis::DEV_ACCOUNTS;
use tfgrid_types::Hash32;

use crate::{ChainProcess, Host, Lan, wait_for};

/// The peer-to-peer port of every node (each has an address of its own).
pub const P2P_PORT: u16 = 30333;
/// The RPC port of every node.
pub const RPC_PORT: u16 = 9944;

#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<ChainProcess>,
    /// How many of the nodes (the first ones) are validators.
    pub validators: usize,
    pub lan: Lan,
}

/// What a node's chain looks like at one height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockAt {
    pub hash: Hash32,
    pub state_root: Hash32,
}

impl Cluster {
    /// Starts `validators` validators (//Alice, //Bob, ... in the spec) and `full_nodes` full nodes
    /// of the dev spec with that many validators, changed by `edit`; returns once every RPC answers.
    pub async fn start(
        validators: usize,
        full_nodes: usize,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Cluster {
        let mut cluster = Cluster::new(validators, full_nodes, edit);
        cluster.start_all().await;
        cluster
    }

    /// The cluster `start` makes, not started yet: a test may change a node's arguments first.
    pub fn new(
        validators: usize,
        full_nodes: usize,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Cluster {
        let spec = crate::dev_spec(validators, edit);
        let mut lan = Lan::new().expect("a LAN of namespaces (needs root)");
        let hosts: Vec<Host> = (0..validators + full_nodes)
            .map(|_| lan.host().expect("a host on the LAN"))
            .collect();
        let nodes = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let others = hosts.iter().filter(|h| h.ip != host.ip);
                let peers: Vec<String> = others
                    .clone()
                    .map(|h| format!("{}:{P2P_PORT}", h.ip))
                    .collect();
                // Transactions go to the validators, whoever took them.
                let relay: Vec<String> = hosts[..validators]
                    .iter()
                    .filter(|h| h.ip != host.ip)
                    .map(|h| format!("ws://{}:{RPC_PORT}", h.ip))
                    .collect();
                let mut role = vec![
                    "--p2p-addr".to_string(),
                    format!("{}:{P2P_PORT}", host.ip),
                    "--peer".into(),
                    peers.join(","),
                    "--relay-to".into(),
                    relay.join(","),
                ];
                if i < validators {
                    role.extend(["--validator".into(), format!("//{}", DEV_ACCOUNTS[i])]);
                }
                ChainProcess::new(Some(host.clone()), &spec, RPC_PORT, role)
            })
            .collect();
        Cluster {
            nodes,
            validators,
            lan,
        }
    }

    /// Starts every node, and waits until each RPC answers.
    pub async fn start_all(&mut self) {
        for node in &mut self.nodes {
            node.spawn();
        }
        for i in 0..self.nodes.len() {
            self.wait_rpc(i).await;
        }
    }

    async fn wait_rpc(&self, i: usize) {
        let url = self.nodes[i].rpc_url();
        wait_for(&format!("node {i}'s RPC"), Duration::from_secs(30), || {
            let url = url.clone();
            async move { Client::connect(&url).await.ok() }
        })
        .await;
    }

    /// Every node's RPC URL, as one comma-separated endpoint list.
    pub fn endpoints(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(|n| n.rpc_url()).collect();
        urls.join(",")
    }

    /// A client of node `i` alone.
    pub async fn client(&self, i: usize) -> Client {
        Client::connect(&self.nodes[i].rpc_url())
            .await
            .unwrap_or_else(|e| panic!("node {i}: {e}\n{}", self.nodes[i].log()))
    }

    /// Node `i`'s head height, if it answers.
    pub async fn height(&self, i: usize) -> Option<u64> {
        let client = Client::connect(&self.nodes[i].rpc_url()).await.ok()?;
        Some(client.rpc().status().await.ok()?.height)
    }

    /// Waits until every running node in `which` has a head at `height` or above.
    pub async fn wait_height(&self, which: &[usize], height: u64, timeout: Duration) {
        for &i in which {
            wait_for(
                &format!("node {i} at height {height}"),
                timeout,
                || async move { (self.height(i).await? >= height).then_some(()) },
            )
            .await;
        }
    }

    /// Waits until node `i` is at `blocks` blocks past the highest of the others in `which` now.
    pub async fn wait_blocks(&self, which: &[usize], blocks: u64, timeout: Duration) -> u64 {
        let mut top = 0;
        for &i in which {
            top = top.max(self.height(i).await.unwrap_or(0));
        }
        self.wait_height(which, top + blocks, timeout).await;
        top + blocks
    }

    /// The block node `i` holds at `height`.
    pub async fn block(&self, i: usize, height: u64) -> Option<BlockAt> {
        let client = Client::connect(&self.nodes[i].rpc_url()).await.ok()?;
        let block = client.rpc().block(BlockId::Height(height)).await.ok()??;
        Some(BlockAt {
            hash: block.hash,
            state_root: block.header.state_root,
        })
    }

    /// The validators' commit of the block at `height`, as node `i` holds it.
    pub async fn commit(&self, i: usize, height: u64) -> tfchain_runtime::Commit {
        self.client(i)
            .await
            .rpc()
            .commit(height)
            .await
            .unwrap_or_else(|e| panic!("node {i}: chain_getCommit: {e}"))
            .unwrap_or_else(|| panic!("node {i} has no commit at height {height}"))
    }

    /// Asserts that the nodes in `which` hold the same block, with the same state root, at every
    /// height from 1 to `upto`.
    pub async fn assert_agree(&self, which: &[usize], upto: u64) {
        for height in 1..=upto {
            let mut seen: Option<(usize, BlockAt)> = None;
            for &i in which {
                let block = self
                    .block(i, height)
                    .await
                    .unwrap_or_else(|| panic!("node {i} has no block {height}"));
                match seen {
                    None => seen = Some((i, block)),
                    Some((first, expected)) => assert_eq!(
                        block, expected,
                        "nodes {first} and {i} differ at height {height}"
                    ),
                }
            }
        }
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill9();
    }

    /// Starts node `i` again on its data, and waits until its RPC answers.
    pub async fn restart(&mut self, i: usize) {
        self.nodes[i].spawn();
        self.wait_rpc(i).await;
    }

    /// Cuts node `i` off the LAN (its link goes down), or joins it again.
    pub fn set_linked(&self, i: usize, linked: bool) {
        let host = self.nodes[i]
            .host
            .as_ref()
            .expect("cluster nodes have hosts");
        let state = if linked { "up" } else { "down" };
        let out = std::process::Command::new("ip")
            .args(["-n", &host.netns, "link", "set", &host.iface, state])
            .output()
            .expect("ip");
        assert!(out.status.success(), "ip link set {state}: {out:?}");
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let log = n.log();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- node {i}\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
