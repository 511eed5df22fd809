//! The primitive of `gateway-name-proxy` and `gateway-fqdn-proxy` workloads. Before a route is served
//! it checks, on the chain, that this node is a gateway (its farmer gave it a public config, with a
//! domain for names), that the deployment's twin holds the name's name contract, that an FQDN is not
//! under the gateway's own domain, and that no backend is the node itself; then it serves the route
//! through [`Gateway`]. What an earlier version of a workload served stops being served when the
//! new one fails. [`GatewayPrimitive::check_names`] stops serving names whose contract ended.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::types::{ContractState, PublicConfig};
use tfgrid_types::NodeId;
use tfgrid_types::deployment::{GatewayNameProxy, ResultData, ResultState, Workload, WorkloadData};

use super::gateway::Gateway;
use super::network::Networks;
use super::{Op, Primitive, Target};
use crate::chain::ChainSession;
use crate::store::Local;

#[derive(Debug)]
pub struct GatewayPrimitive {
    pub gateway: Gateway,
    pub networks: Networks,
    /// The node's interface on the farm's public network.
    pub public_iface: Option<String>,
    pub node_id: NodeId,
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

/// Whether only the node itself reaches `ip` (unspecified, loopback, multicast, link-local).
fn node_only(ip: std::net::IpAddr) -> bool {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || matches!(ip, std::net::IpAddr::V4(v4) if v4.is_link_local())
        || matches!(ip, std::net::IpAddr::V6(v6) if v6.is_unicast_link_local())
}

impl GatewayPrimitive {
    /// This node's public config, as its farmer set it on the chain.
    async fn public_config(&self, chain: &ChainSession) -> Result<PublicConfig> {
        chain.public_config(self.node_id).await?.context(
            "this node is not a gateway: it has no public config (its farmer sets one with \
             `tfgrid node public-config`)",
        )
    }

    /// `<name>.<domain>` for a gateway name the deployment's twin holds a name contract for.
    async fn name_fqdn(&self, at: Target<'_>, name: &str) -> Result<String> {
        let config = self.public_config(at.chain).await?;
        let domain = config
            .domain
            .context("this node is not a gateway for names: its public config has no domain")?;
        let client = at.chain.client().await?;
        let contract = client.rpc().contract_by_name(name.to_owned()).await?;
        match contract {
            None => bail!(
                "the name {name:?} has no name contract: create one first (tfgrid contract name {name})"
            ),
            Some(c) if c.twin_id != at.local.twin_id => {
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
        at: Target<'_>,
        id: &str,
        fqdn: &str,
        g: &GatewayNameProxy,
    ) -> Result<()> {
        let config = self.public_config(at.chain).await?;
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
                    .namespace(&format!("{}-{network}", at.local.twin_id));
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
            if g.network.is_none() && (node_only(ip) || own.contains(&ip)) {
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

    /// Stops serving the gateway names whose name contract the deployment's twin no longer holds,
    /// putting their workloads in error with the reason; returns whether any was stopped.
    pub async fn check_names(&mut self, chain: &ChainSession, local: &mut Local) -> Result<bool> {
        let client = chain.client().await?;
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
            let id = super::workload_id(local.twin_id, local.contract_id, &w.name);
            self.gateway.remove(&id)?;
            tracing::warn!(workload = %id, "the name contract of {:?} {lost}: not served", g.name);
            r.state = ResultState::Error;
            r.message = format!(
                "the name contract of {:?} {lost}: the name is no longer served",
                g.name
            );
            r.data = ResultData::None;
            r.created = super::now_s();
            stopped = true;
        }
        Ok(stopped)
    }
}

impl Primitive for GatewayPrimitive {
    fn install<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ResultData> {
        Box::pin(async move {
            let id = at.id(&w.name);
            let served = match &w.data {
                WorkloadData::GatewayNameProxy(g) => match self.name_fqdn(at, &g.name).await {
                    Ok(fqdn) => self
                        .serve(at, &id, &fqdn, g)
                        .await
                        .map(|()| ResultData::GatewayNameProxy { fqdn }),
                    Err(e) => Err(e),
                },
                WorkloadData::GatewayFqdnProxy(g) => {
                    let proxy = GatewayNameProxy {
                        name: String::new(),
                        tls_passthrough: g.tls_passthrough,
                        backends: g.backends.clone(),
                        network: g.network.clone(),
                    };
                    let fqdn = g.fqdn.to_ascii_lowercase();
                    self.serve(at, &id, &fqdn, &proxy)
                        .await
                        .map(|()| ResultData::None)
                }
                _ => bail!("{} is not a gateway", w.name),
            };
            if served.is_err() {
                // What an earlier version of it served must not stay served.
                let _ = self.gateway.remove(&id);
            }
            served
        })
    }

    fn remove<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ()> {
        let removed = self.gateway.remove(&at.id(&w.name));
        Box::pin(async move { removed })
    }

    fn pause<'a>(&'a mut self, at: Target<'a>, w: &'a Workload, pause: bool) -> Op<'a, ()> {
        let paused = self.gateway.set_paused(&at.id(&w.name), pause);
        Box::pin(async move { paused })
    }
}
