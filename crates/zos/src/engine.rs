//! The provision engine: runs one job at a time from the persistent queue. Before anything runs it
//! checks that the contract is for this node, that the deployment hashes to the contract's hash, that
//! its signatures meet its requirement, and that its secrets open with this node's key. Then it
//! installs workloads in type order (removals in reverse), refuses what would over-commit memory or
//! disk with a message naming the resource, and reports each workload's state and the resources the
//! contract uses.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tfchain_client::Client;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::Call;
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::types::{
    ContractData, ContractResources, ContractState, PublicConfig, Resources,
};
use tfgrid_types::deployment::{
    Capacity, Deployment, ResultData, ResultState, Secret, Workload, WorkloadData, WorkloadResult,
};
use tfgrid_types::{AccountId, Keypair, NodeId, TwinId};

use crate::images::Images;
use crate::primitives::{
    self, MachineNet, Machines, gateway::Gateway, network::Networks, volume::Volumes,
    zdb::ZdbServer,
};
use crate::store::{Job, Local, Store};

/// How long a report may take to be included.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Engine {
    pub rpc_url: String,
    pub key: Keypair,
    pub node_id: NodeId,
    pub total: Resources,
    pub zdb: ZdbServer,
    pub machines: Machines,
    /// Why containers cannot run on this node, if they cannot (no runtime, not root).
    pub containers_unavailable: Option<String>,
    /// Why VMs cannot run on this node, if they cannot (no QEMU, not root).
    pub vms_unavailable: Option<String>,
    /// The node's interface on the farm's public network, for `ip` workloads.
    pub public_iface: Option<String>,
    pub images: Images,
    pub volumes: Volumes,
    pub networks: Networks,
    pub gateway: Gateway,
    /// How many deployments use each network (`<twin>-<name>`), counted at each job.
    pub network_users: BTreeMap<String, usize>,
    /// The other contracts' records, read at the start of each job.
    pub store_locals: Vec<Local>,
}

/// Every address of this node's network namespace.
fn own_addresses() -> Vec<std::net::IpAddr> {
    let out = std::process::Command::new("ip")
        .args(["-o", "addr", "show"])
        .output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    text.unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The contract's reserved public IPs, as the chain assigned them.
fn public_ips(nc: &tfchain_runtime::types::NodeContract) -> Vec<(String, String)> {
    nc.public_ips_list
        .iter()
        .map(|p| (p.ip.clone(), p.gateway.clone()))
        .collect()
}

/// The public IP of `ip` workload `name`: the n-th reserved IP for the n-th IPv4 `ip` workload.
fn public_ip(local: &Local, name: &str) -> Result<(String, String)> {
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

fn result(name: &str, state: ResultState, message: String, data: ResultData) -> WorkloadResult {
    WorkloadResult {
        name: name.to_owned(),
        created: now_s(),
        state,
        message,
        data,
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// Capacity of the workloads that run (ok or paused).
fn running_capacity(local: &Local) -> Capacity {
    local
        .deployment
        .workloads
        .iter()
        .filter(|w| {
            local.results.iter().any(|r| {
                r.name == w.name && matches!(r.state, ResultState::Ok | ResultState::Paused)
            })
        })
        .fold(Capacity::default(), |acc, w| acc + w.data.capacity())
}

impl Engine {
    async fn client(&self) -> Result<Client> {
        Ok(Client::connect(&self.rpc_url).await?)
    }

    /// Runs a job; returns what the contract's local record becomes (`None`: removed).
    pub async fn run(&mut self, store: &Store, job: Job) -> Result<Option<Local>> {
        let old = store.local(job.contract())?;
        self.store_locals = store
            .locals()?
            .into_iter()
            .filter(|l| l.contract_id != job.contract())
            .collect();
        self.network_users.clear();
        for l in self.store_locals.iter().chain(old.as_ref()) {
            for w in &l.deployment.workloads {
                if let WorkloadData::Network(_) = w.data {
                    *self
                        .network_users
                        .entry(format!("{}-{}", l.twin_id, w.name))
                        .or_default() += 1;
                }
            }
        }
        match job {
            Job::Deploy(id) => self.deploy(store, id, old).await,
            Job::Remove(_) => {
                if let Some(old) = old {
                    self.remove_all(&old).await?;
                }
                Ok(None)
            }
            Job::Names(_) => {
                let Some(mut local) = old else {
                    return Ok(None);
                };
                let client = self.client().await?;
                if self.check_names(&client, &mut local).await? {
                    store.put_local(&local)?;
                    self.report(&client, &local).await?;
                }
                Ok(Some(local))
            }
            Job::Pause(_) | Job::Resume(_) => {
                let Some(mut local) = old else {
                    return Ok(None);
                };
                let pause = matches!(job, Job::Pause(_));
                self.set_paused(&mut local, pause).await?;
                self.report(&self.client().await?, &local).await?;
                Ok(Some(local))
            }
        }
    }

    async fn remove_all(&mut self, local: &Local) -> Result<()> {
        let mut workloads = local.deployment.workloads.clone();
        workloads.sort_by_key(|w| std::cmp::Reverse(w.data.install_rank()));
        for w in &workloads {
            self.uninstall(local, w).await?;
        }
        Ok(())
    }

    async fn uninstall(&mut self, local: &Local, w: &Workload) -> Result<()> {
        let id = primitives::workload_id(local.twin_id, local.contract_id, &w.name);
        match w.data {
            WorkloadData::Zdb(_) => self.zdb.remove(&id).await?,
            WorkloadData::Zmachine(_) => {
                let (machines, networks) = (self.machines.clone(), self.networks.clone());
                tokio::task::spawn_blocking(move || {
                    machines.of(&id).remove(&id)?;
                    networks.detach(&id)
                })
                .await??;
            }
            WorkloadData::Network(_) => {
                let network_id = format!("{}-{}", local.twin_id, w.name);
                let store_shared = self.network_users.get(&network_id).copied().unwrap_or(0);
                if store_shared <= 1 {
                    self.networks.remove(&network_id)?;
                }
            }
            WorkloadData::Zmount(_) | WorkloadData::Volume(_) => {
                let volumes = self.volumes.clone();
                tokio::task::spawn_blocking(move || volumes.remove(&id)).await??;
            }
            WorkloadData::GatewayNameProxy(_) | WorkloadData::GatewayFqdnProxy(_) => {
                self.gateway.remove(&id)?
            }
            _ => {}
        }
        Ok(())
    }

    async fn set_paused(&mut self, local: &mut Local, pause: bool) -> Result<()> {
        for w in &local.deployment.workloads {
            let Some(r) = local.results.iter_mut().find(|r| r.name == w.name) else {
                continue;
            };
            if !matches!(r.state, ResultState::Ok | ResultState::Paused) {
                continue;
            }
            let id = primitives::workload_id(local.twin_id, local.contract_id, &w.name);
            match w.data {
                WorkloadData::Zdb(_) => self.zdb.lock(&id, pause).await?,
                WorkloadData::Zmachine(_) => {
                    tokio::task::block_in_place(|| self.machines.of(&id).pause(&id, pause))?
                }
                WorkloadData::GatewayNameProxy(_) | WorkloadData::GatewayFqdnProxy(_) => {
                    self.gateway.set_paused(&id, pause)?
                }
                _ => {}
            }
            r.state = if pause {
                ResultState::Paused
            } else {
                ResultState::Ok
            };
            r.created = now_s();
        }
        local.paused = pause;
        Ok(())
    }

    async fn accounts(
        client: &Client,
        deployments: &[&Deployment],
    ) -> Result<BTreeMap<TwinId, AccountId>> {
        let mut accounts = BTreeMap::new();
        for d in deployments {
            for request in &d.signature_requirement.requests {
                if let Some(twin) = client.rpc().twin(request.twin_id).await? {
                    accounts.insert(request.twin_id, twin.account_id);
                }
            }
        }
        Ok(accounts)
    }

    async fn deploy(
        &mut self,
        store: &Store,
        contract_id: u64,
        old: Option<Local>,
    ) -> Result<Option<Local>> {
        let started = std::time::Instant::now();
        let client = self.client().await?;
        let Some(view) = client.rpc().contract(contract_id).await? else {
            // The contract ended before we got to it.
            if let Some(old) = &old {
                self.remove_all(old).await?;
            }
            return Ok(None);
        };
        let ContractData::NodeContract(nc) = &view.contract.contract_type else {
            return Ok(old);
        };
        if nc.node_id != self.node_id {
            tracing::warn!(
                contract_id,
                node = nc.node_id,
                "contract is for another node"
            );
            return Ok(old);
        }
        if old.as_ref().is_some_and(|o| o.hash == nc.deployment_hash) {
            return Ok(old);
        }
        let twin_id = view.contract.twin_id;
        let deployment = &nc.deployment;
        let accounts = Self::accounts(&client, &[deployment]).await?;
        let problem = if deployment.hash() != nc.deployment_hash {
            Some(format!(
                "refused: the deployment hashes to {}, the contract holds {}",
                deployment.hash(),
                nc.deployment_hash
            ))
        } else if let Err(e) = deployment.verify_signatures(|t| accounts.get(&t).copied()) {
            Some(format!("refused: {e}"))
        } else {
            None
        };
        let opened = match problem {
            Some(_) => None,
            None => match deployment.open_secrets(&self.key) {
                Ok(d) => Some(d),
                Err(e) => {
                    return self
                        .refuse(
                            &client,
                            contract_id,
                            twin_id,
                            nc,
                            old,
                            format!("refused: {e}"),
                        )
                        .await;
                }
            },
        };
        let Some(opened) = opened else {
            return self
                .refuse(
                    &client,
                    contract_id,
                    twin_id,
                    nc,
                    old,
                    problem.expect("set"),
                )
                .await;
        };

        let others: Capacity = store
            .locals()?
            .iter()
            .filter(|l| l.contract_id != contract_id)
            .fold(Capacity::default(), |acc, l| acc + running_capacity(l));
        let mut used = others;
        let mut local = Local {
            contract_id,
            twin_id,
            hash: nc.deployment_hash,
            deployment: deployment.clone(),
            results: Vec::new(),
            paused: old.as_ref().is_some_and(|o| o.paused),
            public_ips: public_ips(nc),
        };
        // Removals first, in reverse type order.
        if let Some(old) = &old {
            let mut gone: Vec<&Workload> = old
                .deployment
                .workloads
                .iter()
                .filter(|w| deployment.workload(&w.name).is_none())
                .collect();
            gone.sort_by_key(|w| std::cmp::Reverse(w.data.install_rank()));
            for w in gone {
                self.uninstall(old, w).await?;
            }
        }
        let mut order: Vec<&Workload> = opened.workloads.iter().collect();
        order.sort_by_key(|w| w.data.install_rank());
        for w in order {
            let previous = old.as_ref().and_then(|o| {
                let r = o.results.iter().find(|r| r.name == w.name)?;
                let sealed = deployment.workload(&w.name)?;
                (o.deployment.workload(&w.name) == Some(sealed)
                    && matches!(r.state, ResultState::Ok | ResultState::Paused))
                .then(|| r.clone())
            });
            let result = match previous {
                Some(unchanged) => {
                    used = used + w.data.capacity();
                    unchanged
                }
                None => self.install(&client, &local, w, &mut used).await,
            };
            local.results.push(result);
        }
        if local.paused {
            self.set_paused(&mut local, true).await?;
        }
        tracing::info!(
            contract_id,
            provision_ms = started.elapsed().as_millis() as u64,
            "provisioned"
        );
        // Record what runs before waiting on the chain for the report: an agent stopped in
        // between leaves nothing that a teardown or a restart does not know of.
        store.put_local(&local)?;
        self.report(&client, &local).await?;
        Ok(Some(local))
    }

    /// Records a refused deployment: every workload in error with the reason; what ran before stays.
    async fn refuse(
        &mut self,
        client: &Client,
        contract_id: u64,
        twin_id: TwinId,
        nc: &tfchain_runtime::types::NodeContract,
        old: Option<Local>,
        message: String,
    ) -> Result<Option<Local>> {
        tracing::warn!(contract_id, %message, "deployment refused");
        let results = nc
            .deployment
            .workloads
            .iter()
            .map(|w| {
                result(
                    &w.name,
                    ResultState::Error,
                    message.clone(),
                    ResultData::None,
                )
            })
            .collect();
        let local = Local {
            contract_id,
            twin_id,
            hash: nc.deployment_hash,
            deployment: nc.deployment.clone(),
            results,
            paused: false,
            public_ips: public_ips(nc),
        };
        self.report(client, &local).await?;
        // Keep the old record (what still runs) if there was one, so a later good update diffs against it.
        Ok(old.or(Some(local)))
    }

    /// Installs one workload (secrets open) and says how it went.
    async fn install(
        &mut self,
        client: &Client,
        local: &Local,
        w: &Workload,
        used: &mut Capacity,
    ) -> WorkloadResult {
        if let Some(message) = primitives::unsupported(
            w,
            self.containers_unavailable.as_deref(),
            self.public_iface.as_deref(),
        ) {
            return result(&w.name, ResultState::Error, message, ResultData::None);
        }
        let need = w.data.capacity();
        let total = self.total;
        // The same free capacity the explorer offers, so a node it offers does not refuse.
        let free = tfgrid_types::capacity::free(
            total.mru, total.sru, total.hru, used.mru, used.sru, used.hru,
        );
        let checks = [
            ("memory", need.mru, free.mru, total.mru),
            ("SSD", need.sru, free.sru, total.sru),
            ("HDD", need.hru, free.hru, total.hru),
        ];
        for (what, need, free, total) in checks {
            if need > free {
                let message = format!(
                    "not enough {what}: the workload needs {}, the node has {} free of {}",
                    gib(need),
                    gib(free),
                    gib(total)
                );
                return result(&w.name, ResultState::Error, message, ResultData::None);
            }
        }
        let namespace = primitives::workload_id(local.twin_id, local.contract_id, &w.name);
        let outcome = match &w.data {
            WorkloadData::Zdb(z) => {
                let password = match &z.password {
                    Secret::Plain(p) => p.clone(),
                    Secret::Sealed(_) => String::new(),
                };
                self.zdb
                    .apply(&namespace, z, &password)
                    .await
                    .map(|port| ResultData::Zdb {
                        namespace: namespace.clone(),
                        ips: vec![self.zdb.host.clone()],
                        port,
                    })
            }
            WorkloadData::Zmount(tfgrid_types::deployment::Zmount { size })
            | WorkloadData::Volume(tfgrid_types::deployment::Volume { size }) => {
                let (volumes, id, size) = (self.volumes.clone(), namespace.clone(), *size);
                let made = tokio::task::spawn_blocking(move || volumes.ensure(&id, size))
                    .await
                    .context("the volume task");
                match (made, &w.data) {
                    (Ok(Ok(_)), WorkloadData::Zmount(_)) => Ok(ResultData::Zmount {
                        volume_id: namespace.clone(),
                    }),
                    (Ok(Ok(_)), _) => Ok(ResultData::Volume {
                        id: namespace.clone(),
                    }),
                    (Ok(Err(e)), _) | (Err(e), _) => Err(e),
                }
            }
            WorkloadData::Ip(_) => public_ip(local, &w.name).map(|(ip, gateway)| ResultData::Ip {
                ip,
                ip6: String::new(),
                gateway,
            }),
            WorkloadData::Network(n) => {
                let network_id = format!("{}-{}", local.twin_id, w.name);
                self.networks
                    .ensure(&network_id, &n.subnet)
                    .map(|()| ResultData::None)
            }
            WorkloadData::Zmachine(m) => {
                let joined = self.machine_net(local, &namespace, m);
                let public = match m.network.public_ip.as_str() {
                    "" => Ok(None),
                    name => public_ip(local, name).and_then(|(cidr, gateway)| {
                        let iface = self.public_iface.clone().context("no public interface")?;
                        Ok(Some((iface, cidr, gateway)))
                    }),
                };
                let mounts = self.mounts(local, m);
                let unavailable = (
                    self.containers_unavailable.clone(),
                    self.vms_unavailable.clone(),
                );
                let (images, machines, networks, machine, id, name) = (
                    self.images.clone(),
                    self.machines.clone(),
                    self.networks.clone(),
                    m.clone(),
                    namespace.clone(),
                    w.name.clone(),
                );
                let ip = machine.network.interfaces[0].ip.clone();
                let started = tokio::task::spawn_blocking(move || {
                    let (mounts, public) = (mounts?, public?);
                    let (network_id, subnet, net) = joined?;
                    let root = images.root(&machine.flist, &machine.flist_hash)?;
                    let runtime = machines.for_image(&root);
                    // An image that changed kind: the machine of the other kind goes first.
                    let before = machines.of(&id);
                    if before.kind() != runtime.kind() {
                        before.remove(&id)?;
                    }
                    let vm = runtime.kind() == "VM";
                    let why = if vm { unavailable.1 } else { unavailable.0 };
                    if let Some(why) = why {
                        bail!("this node cannot run a {}: {why}", runtime.kind());
                    }
                    if vm && public.is_some() {
                        bail!("public IPs on VMs are not supported yet");
                    }
                    let ip = net.cidr.split('/').next().unwrap_or_default();
                    networks.attach(&id, &network_id, &subnet, ip)?;
                    if vm {
                        networks.bridge_vm(&id)?;
                    }
                    if let Some((iface, cidr, gateway)) = public {
                        networks.attach_public(&id, &iface, &cidr, &gateway)?;
                    }
                    runtime.start(&id, &name, &machine, &root, &mounts, &net)
                })
                .await
                .context("the machine task");
                match started {
                    Ok(Ok(())) => Ok(ResultData::Zmachine {
                        id: namespace.clone(),
                        ip,
                    }),
                    Ok(Err(e)) | Err(e) => {
                        tokio::task::block_in_place(|| {
                            let _ = self.machines.of(&namespace).remove(&namespace);
                            let _ = self.networks.detach(&namespace);
                        });
                        Err(e)
                    }
                }
            }
            WorkloadData::GatewayNameProxy(g) => {
                let fqdn = self.name_fqdn(client, local, &g.name).await;
                let served = match fqdn {
                    Ok(fqdn) => self
                        .serve(client, local, &namespace, &fqdn, g)
                        .await
                        .map(|()| ResultData::GatewayNameProxy { fqdn }),
                    Err(e) => Err(e),
                };
                if served.is_err() {
                    // What an earlier version of it served must not stay served.
                    let _ = self.gateway.remove(&namespace);
                }
                served
            }
            WorkloadData::GatewayFqdnProxy(g) => {
                let proxy = tfgrid_types::deployment::GatewayNameProxy {
                    name: String::new(),
                    tls_passthrough: g.tls_passthrough,
                    backends: g.backends.clone(),
                    network: g.network.clone(),
                };
                let served = self
                    .serve(
                        client,
                        local,
                        &namespace,
                        &g.fqdn.to_ascii_lowercase(),
                        &proxy,
                    )
                    .await
                    .map(|()| ResultData::None);
                if served.is_err() {
                    let _ = self.gateway.remove(&namespace);
                }
                served
            }
            _ => unreachable!("unsupported types return above"),
        };
        match outcome {
            Ok(data) => {
                *used = *used + need;
                result(&w.name, ResultState::Ok, String::new(), data)
            }
            Err(e) => result(
                &w.name,
                ResultState::Error,
                format!("{e:#}"),
                ResultData::None,
            ),
        }
    }

    /// Stops serving the gateway names whose name contract the deployment's twin no longer holds,
    /// putting their workloads in error with the reason; returns whether any was stopped.
    async fn check_names(&mut self, client: &Client, local: &mut Local) -> Result<bool> {
        let mut stopped = false;
        for w in &local.deployment.workloads {
            let WorkloadData::GatewayNameProxy(g) = &w.data else {
                continue;
            };
            let Some(r) = local.results.iter_mut().find(|r| r.name == w.name) else {
                continue;
            };
            if !matches!(r.state, ResultState::Ok | ResultState::Paused) {
                continue;
            }
            let held = client.rpc().contract_by_name(g.name.clone()).await?;
            let lost = match held {
                None => "has ended".to_owned(),
                Some(c) if c.twin_id != local.twin_id => format!("belongs to twin {}", c.twin_id),
                Some(_) => continue,
            };
            let id = primitives::workload_id(local.twin_id, local.contract_id, &w.name);
            self.gateway.remove(&id)?;
            tracing::warn!(workload = %id, "the name contract of {:?} {lost}: not served", g.name);
            *r = result(
                &w.name,
                ResultState::Error,
                format!(
                    "the name contract of {:?} {lost}: the name is no longer served",
                    g.name
                ),
                ResultData::None,
            );
            stopped = true;
        }
        Ok(stopped)
    }

    /// This node's public config, as its farmer set it on the chain.
    async fn public_config(&self, client: &Client) -> Result<PublicConfig> {
        let node = client
            .rpc()
            .node(self.node_id)
            .await?
            .context("this node is not on the chain")?;
        node.node.public_config.context(
            "this node is not a gateway: it has no public config (its farmer sets one with \
             `tfgrid node public-config`)",
        )
    }

    /// `<name>.<domain>` for a gateway name the deployment's twin holds a name contract for.
    async fn name_fqdn(&self, client: &Client, local: &Local, name: &str) -> Result<String> {
        let config = self.public_config(client).await?;
        let domain = config
            .domain
            .context("this node is not a gateway for names: its public config has no domain")?;
        let contract = client.rpc().contract_by_name(name.to_owned()).await?;
        match contract {
            None => bail!(
                "the name {name:?} has no name contract: create one first (tfgrid contract name {name})"
            ),
            Some(c) if c.twin_id != local.twin_id => {
                bail!("the name {name:?} belongs to twin {}", c.twin_id)
            }
            Some(c)
                if !matches!(
                    c.state,
                    ContractState::Created | ContractState::GracePeriod { .. }
                ) =>
            {
                bail!("the name contract of {name:?} has ended")
            }
            Some(_) => Ok(format!(
                "{}.{}",
                name.to_ascii_lowercase(),
                domain.to_ascii_lowercase()
            )),
        }
    }

    /// Serves `fqdn` for workload `id` with the gateway's backends, on the node's public address.
    async fn serve(
        &mut self,
        client: &Client,
        local: &Local,
        id: &str,
        fqdn: &str,
        g: &tfgrid_types::deployment::GatewayNameProxy,
    ) -> Result<()> {
        let config = self.public_config(client).await?;
        if g.name.is_empty()
            && let Some(domain) = config.domain.as_ref().map(|d| d.to_ascii_lowercase())
            && (fqdn == domain || fqdn.ends_with(&format!(".{domain}")))
        {
            bail!("{fqdn} is under this gateway's domain {domain}: use a gateway-name-proxy");
        }
        let netns = match &g.network {
            None => None,
            Some(network) => {
                let ns = self
                    .networks
                    .namespace(&format!("{}-{network}", local.twin_id));
                let path = PathBuf::from(format!("/var/run/netns/{ns}"));
                if !path.exists() {
                    bail!("network {network:?} is not deployed on this node");
                }
                Some(path)
            }
        };
        let route = zgw::route::Route::new(fqdn, g.tls_passthrough, g.backends.clone(), netns);
        route.check().map_err(anyhow::Error::msg)?;
        // Backends outside a user network are dialled from the node itself: none may be the node.
        let own = own_addresses();
        for b in &g.backends {
            let ip = route.backend_address(b).map_err(anyhow::Error::msg)?.ip();
            let ip = match ip {
                std::net::IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
                v4 => v4,
            };
            let local = ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_multicast()
                || matches!(ip, std::net::IpAddr::V4(v4) if v4.is_link_local())
                || matches!(ip, std::net::IpAddr::V6(v6) if v6.is_unicast_link_local());
            if g.network.is_none() && (local || own.contains(&ip)) {
                bail!(
                    "backend {b:?} is this node itself, or only the node's own network reaches it"
                );
            }
        }
        let iface = self.public_iface.clone().context(
            "this node has no interface on the farm's public network (zos --public-iface)",
        )?;
        self.gateway.apply(id, &route, &config.ip4.ip, &iface).await
    }

    /// Where machine `id` joins its network: the `network` workload of that name in this
    /// deployment, or in another deployment of the same twin on this node. Returns the network's
    /// id on the node, its subnet, and the machine's place in it.
    fn machine_net(
        &self,
        local: &Local,
        id: &str,
        machine: &tfgrid_types::deployment::Zmachine,
    ) -> Result<(String, String, MachineNet)> {
        let iface = &machine.network.interfaces[0];
        let network = |l: &Local| {
            l.deployment.workloads.iter().find_map(|w| match &w.data {
                WorkloadData::Network(n) if w.name == iface.network => Some(n.subnet.clone()),
                _ => None,
            })
        };
        let subnet = network(local).or_else(|| {
            self.store_locals
                .iter()
                .filter(|l| l.twin_id == local.twin_id)
                .find_map(network)
        });
        let subnet = subnet
            .with_context(|| format!("network {:?} is not deployed on this node", iface.network))?;
        let (gateway, len) = primitives::network::gateway(&subnet)?;
        let net = MachineNet {
            netns: self.networks.container_namespace(id),
            cidr: format!("{}/{len}", iface.ip),
            gateway: gateway.to_string(),
        };
        Ok((format!("{}-{}", local.twin_id, iface.network), subnet, net))
    }

    /// The volumes a machine mounts, as (host directory, mountpoint); each must be mounted already
    /// (volumes install before machines).
    fn mounts(
        &self,
        local: &Local,
        machine: &tfgrid_types::deployment::Zmachine,
    ) -> Result<Vec<(std::path::PathBuf, String)>> {
        machine
            .mounts
            .iter()
            .map(|mount| {
                let path = self.volumes.path(&primitives::workload_id(
                    local.twin_id,
                    local.contract_id,
                    &mount.name,
                ));
                if !primitives::volume::mounted(&path) {
                    anyhow::bail!("the volume {:?} is not ready", mount.name);
                }
                Ok((path, mount.mountpoint.clone()))
            })
            .collect()
    }

    /// Starts the node's services again (its 0-db server, its gateway) if they serve workloads and
    /// are gone.
    pub async fn revive_services(&mut self) -> Result<()> {
        self.zdb.revive().await?;
        self.gateway.revive().await
    }

    /// Restarts the machines (containers and VMs) that should run but exited, at most once per
    /// back-off delay each (doubling from 1 s to 1 min while they keep exiting).
    pub async fn restart_exited(
        &mut self,
        store: &Store,
        backoff: &mut BTreeMap<String, (u32, std::time::Instant)>,
    ) -> Result<()> {
        self.store_locals = store.locals()?;
        for mut local in self.store_locals.clone() {
            if local.paused {
                continue;
            }
            let mut restarted = false;
            for w in &local.deployment.workloads.clone() {
                let WorkloadData::Zmachine(_) = &w.data else {
                    continue;
                };
                let running = local
                    .results
                    .iter()
                    .any(|r| r.name == w.name && r.state == ResultState::Ok);
                let id = primitives::workload_id(local.twin_id, local.contract_id, &w.name);
                let runtime = self.machines.of(&id);
                // Status and restarts block (a VM's monitor, mounts, the runtimes).
                let status = tokio::task::block_in_place(|| {
                    primitives::cap_log(&runtime.dir(&id).join("output.log"));
                    runtime.status(&id)
                });
                if !running || status.as_deref() == Some("running") {
                    continue;
                }
                let (tries, last) = match backoff.get(&id) {
                    Some(&(tries, last)) => (tries, Some(last)),
                    None => (0, None),
                };
                if last.is_some_and(|l: std::time::Instant| {
                    l.elapsed() < Duration::from_secs(1u64 << tries.min(6))
                }) {
                    continue;
                }
                tracing::warn!(machine = %id, restarts = tries + 1, "the machine exited: restarting it");
                let started = tokio::task::block_in_place(|| self.restart_machine(&local, &w.name));
                let message = match started {
                    Ok(kind) => format!(
                        "the {kind} exited and was restarted ({} restarts)",
                        tries + 1
                    ),
                    Err(e) => {
                        tracing::warn!(machine = %id, "restart failed: {e:#}");
                        format!("the machine exited; restarting it failed: {e:#}")
                    }
                };
                if let Some(r) = local.results.iter_mut().find(|r| r.name == w.name) {
                    r.message = message;
                    r.created = now_s();
                }
                restarted = true;
                backoff.insert(id, (tries + 1, std::time::Instant::now()));
            }
            if restarted {
                store.put_local(&local)?;
                self.report(&self.client().await?, &local).await?;
            }
        }
        Ok(())
    }

    /// Starts machine `name` of `local` again, under the runtime its image asks for (the other
    /// kind's leftovers removed first); returns that runtime's kind.
    fn restart_machine(&self, local: &Local, name: &str) -> Result<&'static str> {
        let opened = local.deployment.open_secrets(&self.key)?;
        let Some(WorkloadData::Zmachine(m)) = opened.workload(name).map(|w| w.data.clone()) else {
            bail!("{name} is not a zmachine");
        };
        let id = primitives::workload_id(local.twin_id, local.contract_id, name);
        let root = self.images.root(&m.flist, &m.flist_hash)?;
        let runtime = self.machines.for_image(&root);
        let before = self.machines.of(&id);
        if before.kind() != runtime.kind() {
            before.remove(&id)?;
        }
        let mounts = self.mounts(local, &m)?;
        let (_, _, net) = self.machine_net(local, &id, &m)?;
        runtime.start(&id, name, &m, &root, &mounts, &net)?;
        Ok(runtime.kind())
    }

    /// Reports the workloads' states and the resources the contract uses.
    async fn report(&self, client: &Client, local: &Local) -> Result<()> {
        let cap = running_capacity(local);
        let used = Resources {
            cru: cap.cru,
            mru: cap.mru,
            sru: cap.sru,
            hru: cap.hru,
        };
        let state = ScCall::ReportDeploymentState {
            contract_id: local.contract_id,
            version: local.deployment.version,
            workloads: local.results.clone(),
        };
        let hash = client
            .submit(&self.key, Call::SmartContract(state))
            .await
            .context("reporting the deployment state")?;
        let resources = ScCall::ReportContractResources {
            resources: vec![ContractResources {
                contract_id: local.contract_id,
                used,
            }],
        };
        let second = client
            .submit(&self.key, Call::SmartContract(resources))
            .await
            .context("reporting used resources")?;
        client
            .wait(hash, REPORT_TIMEOUT)
            .await
            .context("the state report")?;
        client
            .wait(second, REPORT_TIMEOUT)
            .await
            .context("the resources report")?;
        Ok(())
    }
}
