//! The `zmachine` primitive: fetches and verifies the machine's image, chooses its runtime by what
//! the image holds (a container, or a VM for images with a kernel; a machine whose image changed
//! kind loses the old one), joins it to its private network (and its public IP, if it names one),
//! mounts its volumes, and starts it. A machine that failed to start is removed with its network
//! attachment: what its result says is down, is down. Restarting an exited machine goes the same
//! way from the contract's record.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tfgrid_types::Keypair;
use tfgrid_types::deployment::{ResultData, Workload, WorkloadData, Zmachine};

use super::network::{Networks, public_ip};
use super::volume::{Volumes, mounted};
use super::{MachineNet, Machines, Op, Primitive, Target, workload_id};
use crate::images::Images;
use crate::store::Local;

#[derive(Debug)]
pub struct MachinePrimitive {
    pub machines: Machines,
    pub networks: Networks,
    pub images: Images,
    pub volumes: Volumes,
    /// The node's interface on the farm's public network, for public IPs.
    pub public_iface: Option<String>,
    /// Why containers cannot run on this node, if they cannot (no runtime, not root).
    pub containers_unavailable: Option<String>,
    /// Why VMs cannot run on this node, if they cannot (no QEMU, not root).
    pub vms_unavailable: Option<String>,
}

/// Where machine `id` joins its network: the `network` workload of that name in `local`, or in
/// another deployment (`others`) of the same twin on this node. Returns the network's id on the
/// node, its subnet, and the machine's place in it.
fn machine_net(
    networks: &Networks,
    local: &Local,
    others: &[Local],
    id: &str,
    machine: &Zmachine,
) -> Result<(String, String, MachineNet)> {
    let iface = &machine.network.interfaces[0];
    let network = |l: &Local| {
        l.deployment.workloads.iter().find_map(|w| match &w.data {
            WorkloadData::Network(n) if w.name == iface.network => Some(n.subnet.clone()),
            _ => None,
        })
    };
    let subnet = network(local).or_else(|| {
        others
            .iter()
            .filter(|l| l.twin_id == local.twin_id)
            .find_map(network)
    });
    let subnet = subnet
        .with_context(|| format!("network {:?} is not deployed on this node", iface.network))?;
    let (gateway, len) = super::network::gateway(&subnet)?;
    let net = MachineNet {
        netns: networks.container_namespace(id),
        cidr: format!("{}/{len}", iface.ip),
        gateway: gateway.to_string(),
    };
    Ok((format!("{}-{}", local.twin_id, iface.network), subnet, net))
}

/// The volumes a machine mounts, as (host directory, mountpoint); each must be mounted already
/// (volumes install before machines).
fn mounts(volumes: &Volumes, local: &Local, machine: &Zmachine) -> Result<Vec<(PathBuf, String)>> {
    machine
        .mounts
        .iter()
        .map(|mount| {
            let path = volumes.path(&workload_id(local.twin_id, local.contract_id, &mount.name));
            if !mounted(&path) {
                bail!("the volume {:?} is not ready", mount.name);
            }
            Ok((path, mount.mountpoint.clone()))
        })
        .collect()
}

impl MachinePrimitive {
    /// Starts machine `id` (`name` of `local`, secrets open) as its image asks; blocking.
    fn start(
        &self,
        local: &Local,
        others: &[Local],
        name: &str,
        m: &Zmachine,
    ) -> Result<&'static str> {
        let id = workload_id(local.twin_id, local.contract_id, name);
        let public = match m.network.public_ip.as_str() {
            "" => None,
            ip_name => {
                let (cidr, gateway) = public_ip(local, ip_name)?;
                let iface = self.public_iface.clone().context("no public interface")?;
                Some((iface, cidr, gateway))
            }
        };
        let mounts = mounts(&self.volumes, local, m)?;
        let (network_id, subnet, net) = machine_net(&self.networks, local, others, &id, m)?;
        let root = self.images.root(&m.flist, &m.flist_hash)?;
        let runtime = self.machines.for_image(&root);
        // An image that changed kind: the machine of the other kind goes first.
        let before = self.machines.of(&id);
        if before.kind() != runtime.kind() {
            before.remove(&id)?;
        }
        let vm = runtime.kind() == "VM";
        let why = match vm {
            true => &self.vms_unavailable,
            false => &self.containers_unavailable,
        };
        if let Some(why) = why {
            bail!("this node cannot run a {}: {why}", runtime.kind());
        }
        if vm && public.is_some() {
            bail!("public IPs on VMs are not supported yet");
        }
        let ip = net.cidr.split('/').next().unwrap_or_default();
        self.networks.attach(&id, &network_id, &subnet, ip)?;
        if vm {
            self.networks.bridge_vm(&id)?;
        }
        if let Some((iface, cidr, gateway)) = public {
            self.networks.attach_public(&id, &iface, &cidr, &gateway)?;
        }
        runtime.start(&id, name, m, &root, &mounts, &net)?;
        Ok(runtime.kind())
    }

    /// Starts machine `name` of `local` again from its record; returns its runtime's kind.
    /// Blocking.
    pub fn restart(
        &self,
        key: &Keypair,
        local: &Local,
        others: &[Local],
        name: &str,
    ) -> Result<&'static str> {
        let opened = local.deployment.open_secrets(key)?;
        let Some(WorkloadData::Zmachine(m)) = opened.workload(name).map(|w| w.data.clone()) else {
            bail!("{name} is not a zmachine");
        };
        self.start(local, others, name, &m)
    }
}

impl Primitive for MachinePrimitive {
    fn install<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ResultData> {
        Box::pin(async move {
            let WorkloadData::Zmachine(m) = &w.data else {
                bail!("{} is not a zmachine", w.name);
            };
            let id = at.id(&w.name);
            let started = tokio::task::block_in_place(|| {
                let started = self.start(at.local, at.others, &w.name, m);
                if started.is_err() {
                    let _ = self.machines.of(&id).remove(&id);
                    let _ = self.networks.detach(&id);
                }
                started
            });
            started.map(|_| ResultData::Zmachine {
                id,
                ip: m.network.interfaces[0].ip.clone(),
            })
        })
    }

    fn remove<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ()> {
        let id = at.id(&w.name);
        let removed = tokio::task::block_in_place(|| {
            self.machines.of(&id).remove(&id)?;
            self.networks.detach(&id)
        });
        Box::pin(async move { removed })
    }

    fn pause<'a>(&'a mut self, at: Target<'a>, w: &'a Workload, pause: bool) -> Op<'a, ()> {
        let id = at.id(&w.name);
        let paused = tokio::task::block_in_place(|| self.machines.of(&id).pause(&id, pause));
        Box::pin(async move { paused })
    }
}
