//! The running agent: registers the node (twin and node, updated when the capacity changes), reports
//! uptime and each contract's network traffic at the chain's interval, follows finalized blocks and
//! turns this node's contract events into jobs (reconciling with the chain's list of its contracts on
//! every (re)connection, from the head height read before it), and runs the jobs one at a time. A job
//! that fails is set aside and tried again later (its error reported, when the chain can be asked)
//! while the other contracts' jobs go on; every report a job owes is sent until the chain has it;
//! the node's services and exited machines are checked every second whatever the queue holds. All
//! of it goes through the node's one [`ChainSession`]. A node opens no control port: everything it
//! does, a contract commanded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tfchain_client::api::{BlockId, TfchainApiClient};
use tfchain_client::{Backoff, ClientError};
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::tfgrid::Call as GridCall;
use tfchain_runtime::types::{
    ContractData, ContractResources, ContractState, Location, NodeSpec, NruConsumption, Resources,
};
use tfchain_runtime::{Call, Event};
use tfgrid_types::deployment::WorkloadData;
use tfgrid_types::{Keypair, NodeId};
use tokio::sync::Notify;

use crate::chain::ChainSession;
use crate::engine::Engine;
use crate::limits::{REPORT_TIMEOUT, RETRY_DELAY};
use crate::primitives::network::Networks;
use crate::primitives::workload_id;
use crate::store::{Job, Report, Store, next_job, retry_delay_ms};

#[derive(Debug, Clone)]
pub struct Config {
    pub farm_id: u32,
    pub capacity: Resources,
    /// The node's network primitive, whose interfaces' counters are its traffic.
    pub networks: Networks,
}

/// Retries `f` until it succeeds, saying once per distinct error what is wrong.
async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut last = String::new();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                let text = format!("{e:#}");
                if text != last {
                    tracing::warn!("{what}: {text}");
                    last = text;
                }
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

/// Makes sure the node's twin and node exist on the chain as this node is; returns the node id.
pub async fn register(config: &Config, chain: &ChainSession, key: &Keypair) -> Result<NodeId> {
    let client = chain.client().await?;
    let rpc = client.rpc();
    let account = key.account();
    let twin = match rpc.twin_by_account(account).await? {
        Some(twin) => twin,
        None => {
            let free = rpc.account(account).await?.free;
            if free == 0 {
                anyhow::bail!("account {account} has no TFT to pay the registration fees: fund it");
            }
            let tc = GridCall::UserAcceptTc {
                document_link: "https://zos.tf/terms/v0.1".into(),
                document_hash: "zos-terms-v0-1".into(),
            };
            chain.execute(Call::Tfgrid(tc)).await?;
            chain
                .execute(Call::Tfgrid(GridCall::CreateTwin {
                    relay: None,
                    pk: None,
                }))
                .await?;
            rpc.twin_by_account(account)
                .await?
                .context("the twin was not created")?
        }
    };
    let spec = NodeSpec {
        farm_id: config.farm_id,
        resources: config.capacity,
        location: Location {
            city: "Unknown".into(),
            country: "Unknown".into(),
            latitude: "Unknown".into(),
            longitude: "Unknown".into(),
        },
        interfaces: vec![],
        secure_boot: false,
        virtualized: true,
        serial_number: None,
    };
    match rpc.node_by_twin(twin.id).await? {
        None => {
            chain
                .execute(Call::Tfgrid(GridCall::CreateNode(spec)))
                .await?;
            let node = rpc
                .node_by_twin(twin.id)
                .await?
                .context("the node was not created")?;
            tracing::info!(node_id = node.node.id, twin_id = twin.id, "registered");
            Ok(node.node.id)
        }
        Some(node) => {
            if node.node.resources != config.capacity || node.node.farm_id != config.farm_id {
                let node_id = node.node.id;
                chain
                    .execute(Call::Tfgrid(GridCall::UpdateNode { node_id, spec }))
                    .await?;
                tracing::info!(node_id, "registration updated");
            }
            Ok(node.node.id)
        }
    }
}

/// Reports, every interval of the chain's spec, the node's uptime and each contract's network
/// traffic since the last report (what left the node: see [`traffic_reports`]).
async fn report_loop(
    chain: Arc<ChainSession>,
    started: Instant,
    store: Arc<Store>,
    networks: Networks,
) {
    let mut counters: std::collections::BTreeMap<String, u64> = Default::default();
    let mut last_report_s = now_s();
    loop {
        let report = async {
            let interval = chain
                .client()
                .await?
                .rpc()
                .params()
                .await?
                .uptime_report_interval_s;
            let now = now_s();
            let mut calls = vec![Call::Tfgrid(GridCall::ReportUptime {
                uptime_s: started.elapsed().as_secs(),
                timestamp_hint_s: now,
            })];
            let reports = traffic_reports(
                &store,
                &networks,
                &mut counters,
                now,
                now.saturating_sub(last_report_s),
            )?;
            last_report_s = now;
            if !reports.is_empty() {
                calls.push(Call::SmartContract(ScCall::AddNruReports { reports }));
            }
            chain.submit_and_wait(calls, REPORT_TIMEOUT).await?;
            Ok::<_, anyhow::Error>(interval)
        };
        let interval = match report.await {
            Ok(interval) => interval,
            Err(e) => {
                tracing::warn!("periodic report failed: {e:#}");
                5
            }
        };
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Each contract's new traffic since the counters were last read (a counter that restarted, with
/// its container or its network's device, starts again from zero). What leaves the node counts, as
/// Zero-OS counts public traffic: a machine's traffic on its public IP, and its networks' traffic
/// with their other nodes (the WireGuard device's) and with the world outside (their uplink's).
/// Traffic between machines on one node is free.
fn traffic_reports(
    store: &Store,
    networks: &Networks,
    counters: &mut std::collections::BTreeMap<String, u64>,
    now: u64,
    window: u64,
) -> Result<Vec<NruConsumption>> {
    let mut reports = Vec::new();
    for local in store.locals()? {
        let mut bytes = 0;
        for w in &local.deployment.workloads {
            // Keyed by what is counted: a network two deployments of a twin share counts once.
            let (key, total) = match &w.data {
                WorkloadData::Zmachine(m) if !m.network.public_ip.is_empty() => {
                    let id = workload_id(local.twin_id, local.contract_id, &w.name);
                    (id.clone(), networks.public_traffic(&id))
                }
                WorkloadData::Network(_) => {
                    let id = format!("{}-{}", local.twin_id, w.name);
                    (format!("net:{id}"), networks.outside_traffic(&id))
                }
                _ => continue,
            };
            let Some(total) = total else {
                continue;
            };
            let previous = counters.insert(key, total).unwrap_or(0);
            bytes += if total >= previous {
                total - previous
            } else {
                total
            };
        }
        if bytes > 0 && window > 0 {
            reports.push(NruConsumption {
                contract_id: local.contract_id,
                timestamp: now,
                window,
                nru: bytes,
            });
        }
    }
    Ok(reports)
}

/// The jobs a block's events mean for `node_id`.
fn jobs_of(events: &[Event], node_id: NodeId) -> Vec<Job> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::ContractCreated(c) | Event::ContractUpdated(c) => match &c.contract_type {
                ContractData::NodeContract(nc) if nc.node_id == node_id => {
                    Some(Job::Deploy(c.contract_id))
                }
                _ => None,
            },
            Event::NodeContractCanceled {
                contract_id,
                node_id: n,
                ..
            } if *n == node_id => Some(Job::Remove(*contract_id)),
            Event::ContractGracePeriodStarted {
                contract_id,
                node_id: Some(n),
                ..
            } if *n == node_id => Some(Job::Pause(*contract_id)),
            Event::ContractGracePeriodEnded {
                contract_id,
                node_id: Some(n),
                ..
            } if *n == node_id => Some(Job::Resume(*contract_id)),
            _ => None,
        })
        .collect()
}

/// Name checks for the contracts that serve gateway names, when a name contract ended in `events`
/// (or always, with `None`: at reconciliation, since names may have ended while the agent was away).
fn name_checks(store: &Store, events: Option<&[Event]>) -> Result<Vec<Job>> {
    let ended = events.is_none_or(|events| {
        events
            .iter()
            .any(|e| matches!(e, Event::NameContractCanceled { .. }))
    });
    if !ended {
        return Ok(vec![]);
    }
    Ok(store
        .locals()?
        .into_iter()
        .filter(|l| {
            l.deployment
                .workloads
                .iter()
                .any(|w| matches!(w.data, WorkloadData::GatewayNameProxy(_)))
        })
        .map(|l| Job::Names(l.contract_id))
        .collect())
}

/// Jobs that bring the local state in line with the chain's contracts for this node.
async fn reconcile(
    client: &tfchain_client::Client,
    store: &Store,
    node_id: NodeId,
) -> Result<Vec<Job>> {
    let on_chain = client.rpc().contracts_by_node(node_id).await?;
    let mut jobs = Vec::new();
    for c in &on_chain {
        let ContractData::NodeContract(nc) = &c.contract_type else {
            continue;
        };
        let local = store.local(c.contract_id)?;
        if local.as_ref().is_none_or(|l| l.hash != nc.deployment_hash) {
            jobs.push(Job::Deploy(c.contract_id));
        }
        let paused = local.as_ref().is_some_and(|l| l.paused);
        match c.state {
            ContractState::GracePeriod { .. } if !paused => jobs.push(Job::Pause(c.contract_id)),
            ContractState::Created if paused => jobs.push(Job::Resume(c.contract_id)),
            _ => {}
        }
    }
    for local in store.locals()? {
        if !on_chain.iter().any(|c| c.contract_id == local.contract_id) {
            jobs.push(Job::Remove(local.contract_id));
        }
    }
    jobs.extend(name_checks(store, None)?);
    Ok(jobs)
}

/// Follows finalized blocks and queues this node's jobs. When the connection is lost (the head
/// subscription ends or a read fails) it connects again through the session's endpoint list after
/// a short, growing pause, subscribes again, reconciles, and goes on from the last block it read.
async fn watch(chain: Arc<ChainSession>, store: Arc<Store>, node_id: NodeId, wake: Arc<Notify>) {
    let mut backoff = Backoff::default();
    loop {
        let session = async {
            let client = chain.client().await?;
            let mut heads = client
                .rpc()
                .subscribe_finalized_heads()
                .await
                .map_err(ClientError::from)?;
            backoff.reset();
            // The height first: events of blocks finalized while reconciling are read from the
            // blocks after it, not taken as covered.
            let head = client
                .rpc()
                .status()
                .await
                .map_err(ClientError::from)?
                .height;
            let jobs = reconcile(&client, &store, node_id).await?;
            store.push(&jobs, Some(store.height()?.map_or(head, |h| h.max(head))))?;
            wake.notify_one();
            while let Some(header) = heads.next().await {
                let header = header.map_err(|e| anyhow::anyhow!("head subscription: {e}"))?;
                let from = store.height()?.map_or(header.height, |h| h + 1);
                for height in from..=header.height {
                    let block = client
                        .rpc()
                        .block(BlockId::Height(height))
                        .await?
                        .context("a finalized block is missing")?;
                    let events: Vec<Event> = block.events.into_iter().map(|r| r.event).collect();
                    let mut jobs = jobs_of(&events, node_id);
                    jobs.extend(name_checks(&store, Some(&events))?);
                    store.push(&jobs, Some(height))?;
                    if !jobs.is_empty() {
                        wake.notify_one();
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        };
        match session.await {
            Ok(()) => tracing::warn!("the chain closed the head subscription; connecting again"),
            Err(e) => tracing::warn!("following the chain: {e:#}"),
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The reports the node owes, sent together; each one the chain took is forgotten. A report that
/// fails waits (1 s, doubling to a minute) and goes again.
async fn send_reports(
    chain: &ChainSession,
    store: &Store,
    waiting: &mut std::collections::BTreeMap<u64, (u32, u64)>,
) -> Result<()> {
    let now = now_ms();
    let due: Vec<Report> = store
        .unreported()?
        .into_iter()
        .filter(|r| waiting.get(&r.contract_id).is_none_or(|(_, at)| *at <= now))
        .collect();
    for report in due {
        let calls = vec![
            Call::SmartContract(ScCall::ReportDeploymentState {
                contract_id: report.contract_id,
                version: report.version,
                workloads: report.results.clone(),
            }),
            Call::SmartContract(ScCall::ReportContractResources {
                resources: vec![ContractResources {
                    contract_id: report.contract_id,
                    used: report.used,
                }],
            }),
        ];
        match chain.submit_and_wait(calls, REPORT_TIMEOUT).await {
            Ok(_) => {
                store.reported(&report)?;
                waiting.remove(&report.contract_id);
            }
            Err(e) => {
                let tries = waiting.get(&report.contract_id).map_or(0, |(t, _)| *t) + 1;
                tracing::warn!(
                    contract_id = report.contract_id,
                    tries,
                    "reporting the deployment failed, will try again: {e}"
                );
                waiting.insert(
                    report.contract_id,
                    (tries, now_ms() + retry_delay_ms(tries)),
                );
            }
        }
    }
    Ok(())
}

/// Runs one due job, if there is one; returns whether there was.
async fn run_next(engine: &mut Engine, store: &Store) -> Result<bool> {
    let (jobs, failed) = store.jobs()?;
    let Some((seq, job)) = next_job(&jobs, &failed, now_ms()) else {
        return Ok(false);
    };
    let started = Instant::now();
    match engine.run(store, job).await {
        Ok(outcome) => {
            store.finish(
                seq,
                job.contract(),
                outcome.local.as_ref(),
                outcome.report.as_ref(),
            )?;
            tracing::info!(
                ?job,
                took_ms = started.elapsed().as_millis() as u64,
                "job done"
            );
        }
        Err(e) => {
            let error = format!("{e:#}");
            let aside = store.set_aside(seq, &error, now_ms())?;
            tracing::warn!(
                ?job,
                attempts = aside.attempts,
                "job failed, set aside and tried again in {} ms: {error}",
                aside.not_before_ms.saturating_sub(now_ms())
            );
            if let Job::Deploy(contract) = job
                && let Some(report) = engine.failure_report(store, contract, &error).await
            {
                store.owe(&report)?;
            }
        }
    }
    Ok(true)
}

/// Runs queued jobs in order, a failing one set aside; sends the reports the node owes; every
/// second, starts again the services and machines that should run and are gone.
async fn work(mut engine: Engine, store: Arc<Store>, wake: Arc<Notify>) {
    let mut backoff = std::collections::BTreeMap::new();
    let mut waiting = std::collections::BTreeMap::new();
    let mut checked = Instant::now();
    loop {
        if checked.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = engine.revive_services().await {
                tracing::warn!("checking the node's services: {e:#}");
            }
            if let Err(e) = engine.restart_exited(&store, &mut backoff).await {
                tracing::warn!("checking machines: {e:#}");
            }
            checked = Instant::now();
        }
        let ran = run_next(&mut engine, &store).await;
        if let Err(e) = send_reports(&engine.chain, &store, &mut waiting).await {
            tracing::error!("reading the owed reports: {e:#}");
        }
        match ran {
            Ok(true) => {}
            Ok(false) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            }
            Err(e) => {
                tracing::error!("the job queue: {e:#}");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

/// Registers, then runs the uptime reporter, the watcher and the job worker until the process ends.
pub async fn run(
    config: Config,
    chain: Arc<ChainSession>,
    key: Keypair,
    store: Arc<Store>,
    engine_for: impl FnOnce(NodeId) -> Engine,
) -> Result<()> {
    let started = Instant::now();
    let node_id = retry("registering", || register(&config, &chain, &key)).await;
    let engine = engine_for(node_id);
    let wake = Arc::new(Notify::new());
    tokio::spawn(report_loop(
        chain.clone(),
        started,
        store.clone(),
        config.networks.clone(),
    ));
    tokio::spawn(watch(chain, store.clone(), node_id, wake.clone()));
    work(engine, store, wake).await;
    Ok(())
}
