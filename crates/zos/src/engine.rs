//! The provision engine: runs one job from the persistent queue and says what the contract's record
//! becomes and what the node owes the chain about it. Before anything runs it checks that the
//! contract is for this node, that the deployment hashes to the contract's hash, that its signatures
//! meet its requirement, and that its secrets open with this node's key. Then [`plan`] orders the
//! steps (and refuses what would over-commit the node) and [`execute`] carries them out through each
//! workload type's [`Primitive`](crate::primitives::Primitive). The engine reports nothing itself:
//! the worker records the job's effect and the report it owes in one transaction, and sends the
//! report until the chain has it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::types::{ContractData, NodeContract, Resources};
use tfgrid_types::deployment::{
    Deployment, ResultData, ResultState, Workload, WorkloadData, WorkloadResult,
};
use tfgrid_types::{AccountId, Keypair, NodeId, TwinId};

use crate::chain::ChainSession;
use crate::plan::{Room, Step, plan, running_capacity};
use crate::primitives::{self, NodePrimitives, Primitives, Target, now_s};
use crate::store::{Job, Local, Report, Store};

#[derive(Debug)]
pub struct Engine {
    pub chain: Arc<ChainSession>,
    pub key: Keypair,
    pub node_id: NodeId,
    pub total: Resources,
    pub primitives: NodePrimitives,
    /// Why containers cannot run on this node, if they cannot (no runtime, not root).
    pub containers_unavailable: Option<String>,
    /// The node's interface on the farm's public network, for `ip` workloads.
    pub public_iface: Option<String>,
}

/// What a job leaves: the contract's record (`None`: nothing runs for it) and the report it owes
/// the chain (`None`: nothing new to say).
#[derive(Debug, Default)]
pub struct Outcome {
    pub local: Option<Local>,
    pub report: Option<Report>,
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

/// Every workload of `deployment` in error with `message`.
fn all_failed(deployment: &Deployment, message: &str) -> Vec<WorkloadResult> {
    let failed = |w: &Workload| {
        result(
            &w.name,
            ResultState::Error,
            message.into(),
            ResultData::None,
        )
    };
    deployment.workloads.iter().map(failed).collect()
}

/// The report a record owes: its workloads' results and what runs of it.
pub fn report_of(local: &Local) -> Report {
    let cap = running_capacity(local);
    Report {
        contract_id: local.contract_id,
        version: local.deployment.version,
        results: local.results.clone(),
        used: Resources {
            cru: cap.cru,
            mru: cap.mru,
            sru: cap.sru,
            hru: cap.hru,
        },
    }
}

/// The contract's reserved public IPs, as the chain assigned them.
fn public_ips(nc: &NodeContract) -> Vec<(String, String)> {
    nc.public_ips_list
        .iter()
        .map(|p| (p.ip.clone(), p.gateway.clone()))
        .collect()
}

/// Carries out `steps` at `at` through `primitives`; returns each wanted workload's result. `old`
/// is what ran before. A removal that fails stops the job (it runs again); an install that fails
/// is that workload's error, and the rest goes on.
pub async fn execute(
    steps: &[Step<'_>],
    at: Target<'_>,
    old: Option<&Local>,
    primitives: &mut dyn Primitives,
) -> Result<Vec<WorkloadResult>> {
    let mut results = Vec::new();
    for step in steps {
        match step {
            Step::Remove(w) => {
                if let Some(p) = primitives.of(&w.data) {
                    p.remove(at, w)
                        .await
                        .with_context(|| format!("removing {}", w.name))?;
                }
            }
            Step::Keep(_, r) => results.push(r.clone()),
            Step::Refuse(w, why) => results.push(result(
                &w.name,
                ResultState::Error,
                why.clone(),
                ResultData::None,
            )),
            Step::Install(w) => {
                let installed = match primitives.of(&w.data) {
                    Some(p) => p.install(at, w).await,
                    None => Err(anyhow::anyhow!("no primitive for {}", w.data.type_name())),
                };
                results.push(match installed {
                    Ok(data) => result(&w.name, ResultState::Ok, String::new(), data),
                    Err(e) => result(
                        &w.name,
                        ResultState::Error,
                        failure(old, w, &e),
                        ResultData::None,
                    ),
                });
            }
        }
    }
    Ok(results)
}

/// What a failed install says: for a machine that ran before, that it is down now (a failed
/// machine is removed, its previous version with it).
fn failure(old: Option<&Local>, w: &Workload, e: &anyhow::Error) -> String {
    let ran = old.is_some_and(|o| {
        o.results
            .iter()
            .any(|r| r.name == w.name && matches!(r.state, ResultState::Ok | ResultState::Paused))
    });
    match (&w.data, ran) {
        (WorkloadData::Zmachine(_), true) => format!(
            "the update failed and the machine is down (its previous version was stopped): {e:#}"
        ),
        _ => format!("{e:#}"),
    }
}

impl Engine {
    /// Runs a job.
    pub async fn run(&mut self, store: &Store, job: Job) -> Result<Outcome> {
        let old = store.local(job.contract())?;
        let others: Vec<Local> = store
            .locals()?
            .into_iter()
            .filter(|l| l.contract_id != job.contract())
            .collect();
        match job {
            Job::Deploy(id) => self.deploy(id, old, &others).await,
            Job::Remove(_) => {
                if let Some(old) = &old {
                    self.remove_all(old, &others).await?;
                }
                Ok(Outcome::default())
            }
            Job::Names(_) => {
                let Some(mut local) = old else {
                    return Ok(Outcome::default());
                };
                let stopped = self
                    .primitives
                    .gateway
                    .check_names(&self.chain, &mut local)
                    .await?;
                let report = stopped.then(|| report_of(&local));
                Ok(Outcome {
                    local: Some(local),
                    report,
                })
            }
            Job::Pause(_) | Job::Resume(_) => {
                let Some(mut local) = old else {
                    return Ok(Outcome::default());
                };
                self.set_paused(&mut local, &others, matches!(job, Job::Pause(_)))
                    .await?;
                Ok(Outcome {
                    report: Some(report_of(&local)),
                    local: Some(local),
                })
            }
        }
    }

    /// The report a failing job of `contract_id` owes: the contract's current deployment, every
    /// workload in error with what went wrong. `None` when the chain cannot be asked.
    pub async fn failure_report(
        &self,
        store: &Store,
        contract_id: u64,
        error: &str,
    ) -> Option<Report> {
        let client = self.chain.client().await.ok()?;
        let view = client.rpc().contract(contract_id).await.ok()??;
        let ContractData::NodeContract(nc) = &view.contract.contract_type else {
            return None;
        };
        if nc.node_id != self.node_id {
            return None;
        }
        let still = store.local(contract_id).ok().flatten();
        let used = still
            .as_ref()
            .map(report_of)
            .map(|r| r.used)
            .unwrap_or_default();
        let message =
            format!("the node could not apply this deployment and will try again: {error}");
        Some(Report {
            contract_id,
            version: nc.deployment.version,
            results: all_failed(&nc.deployment, &message),
            used,
        })
    }

    /// Removes every workload of `local`, in reverse type order.
    async fn remove_all(&mut self, local: &Local, others: &[Local]) -> Result<()> {
        let mut workloads: Vec<&Workload> = local.deployment.workloads.iter().collect();
        workloads.sort_by_key(|w| std::cmp::Reverse(w.data.install_rank()));
        let steps: Vec<Step> = workloads.into_iter().map(Step::Remove).collect();
        let at = Target {
            local,
            others,
            chain: &self.chain,
        };
        execute(&steps, at, Some(local), &mut self.primitives).await?;
        Ok(())
    }

    async fn set_paused(&mut self, local: &mut Local, others: &[Local], pause: bool) -> Result<()> {
        let record = local.clone();
        let at = Target {
            local: &record,
            others,
            chain: &self.chain,
        };
        for w in &record.deployment.workloads {
            let Some(r) = local.results.iter_mut().find(|r| r.name == w.name) else {
                continue;
            };
            if !matches!(r.state, ResultState::Ok | ResultState::Paused) {
                continue;
            }
            if let Some(p) = self.primitives.of(&w.data) {
                p.pause(at, w, pause).await?;
            }
            r.state = match pause {
                true => ResultState::Paused,
                false => ResultState::Ok,
            };
            r.created = now_s();
        }
        local.paused = pause;
        Ok(())
    }

    async fn accounts(&self, deployment: &Deployment) -> Result<BTreeMap<TwinId, AccountId>> {
        let client = self.chain.client().await?;
        let mut accounts = BTreeMap::new();
        for request in &deployment.signature_requirement.requests {
            if let Some(twin) = client.rpc().twin(request.twin_id).await? {
                accounts.insert(request.twin_id, twin.account_id);
            }
        }
        Ok(accounts)
    }

    async fn deploy(
        &mut self,
        contract_id: u64,
        old: Option<Local>,
        others: &[Local],
    ) -> Result<Outcome> {
        let started = std::time::Instant::now();
        let client = self.chain.client().await?;
        let Some(view) = client.rpc().contract(contract_id).await? else {
            // The contract ended before we got to it.
            if let Some(old) = &old {
                self.remove_all(old, others).await?;
            }
            return Ok(Outcome::default());
        };
        let ContractData::NodeContract(nc) = &view.contract.contract_type else {
            return Ok(Outcome {
                local: old,
                report: None,
            });
        };
        if nc.node_id != self.node_id {
            tracing::warn!(
                contract_id,
                node = nc.node_id,
                "contract is for another node"
            );
            return Ok(Outcome {
                local: old,
                report: None,
            });
        }
        if old.as_ref().is_some_and(|o| o.hash == nc.deployment_hash) {
            return Ok(Outcome {
                local: old,
                report: None,
            });
        }
        let deployment = &nc.deployment;
        let accounts = self.accounts(deployment).await?;
        let opened = if deployment.hash() != nc.deployment_hash {
            Err(format!(
                "refused: the deployment hashes to {}, the contract holds {}",
                deployment.hash(),
                nc.deployment_hash
            ))
        } else if let Err(e) = deployment.verify_signatures(|t| accounts.get(&t).copied()) {
            Err(format!("refused: {e}"))
        } else {
            deployment
                .open_secrets(&self.key)
                .map_err(|e| format!("refused: {e}"))
        };
        let mut local = Local {
            contract_id,
            twin_id: view.contract.twin_id,
            hash: nc.deployment_hash,
            deployment: deployment.clone(),
            results: Vec::new(),
            paused: old.as_ref().is_some_and(|o| o.paused),
            public_ips: public_ips(nc),
        };
        let opened = match opened {
            Ok(opened) => opened,
            Err(message) => return Ok(refuse(local, old, message)),
        };
        let room = Room {
            total: self.total,
            others: others
                .iter()
                .fold(Default::default(), |acc, l| acc + running_capacity(l)),
        };
        let (containers, public_iface) = (
            self.containers_unavailable.clone(),
            self.public_iface.clone(),
        );
        let steps = plan(old.as_ref(), deployment, &opened, room, |w| {
            primitives::unsupported(w, containers.as_deref(), public_iface.as_deref())
        });
        let record = local.clone();
        let at = Target {
            local: &record,
            others,
            chain: &self.chain,
        };
        local.results = execute(&steps, at, old.as_ref(), &mut self.primitives).await?;
        if local.paused {
            self.set_paused(&mut local, others, true).await?;
        }
        tracing::info!(
            contract_id,
            provision_ms = started.elapsed().as_millis() as u64,
            "provisioned"
        );
        Ok(Outcome {
            report: Some(report_of(&local)),
            local: Some(local),
        })
    }

    /// Starts the node's services again (its 0-db server, its gateway, its networks' WireGuard
    /// devices) if they serve workloads and are gone.
    pub async fn revive_services(&mut self) -> Result<()> {
        self.primitives.zdb.revive().await?;
        self.primitives.networks.revive().await?;
        self.primitives.gateway.gateway.revive().await
    }

    /// Restarts the machines (containers and VMs) that should run but exited, at most once per
    /// back-off delay each (doubling from 1 s to 1 min while they keep exiting); records what it
    /// did and the report it owes.
    pub async fn restart_exited(
        &mut self,
        store: &Store,
        backoff: &mut BTreeMap<String, (u32, std::time::Instant)>,
    ) -> Result<()> {
        let locals = store.locals()?;
        for (index, local) in locals.iter().enumerate() {
            if local.paused {
                continue;
            }
            let mut local = local.clone();
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
                let machines = &self.primitives.machines;
                let runtime = machines.machines.of(&id);
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
                let others: Vec<Local> = locals
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != index)
                    .map(|(_, l)| l.clone())
                    .collect();
                let started = tokio::task::block_in_place(|| {
                    machines.restart(&self.key, &local, &others, &w.name)
                });
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
                store.record(&local, &report_of(&local))?;
            }
        }
        Ok(())
    }
}

/// A refused deployment: every workload in error with the reason, reported; what ran before stays
/// the record (so a later good update diffs against it).
fn refuse(mut local: Local, old: Option<Local>, message: String) -> Outcome {
    tracing::warn!(contract_id = local.contract_id, %message, "deployment refused");
    local.results = all_failed(&local.deployment, &message);
    local.paused = false;
    let report = report_of(&local);
    Outcome {
        local: old.or(Some(local)),
        report: Some(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{Op, Primitive};
    use crate::store::{local_for_test, zdb_for_test};

    /// A primitive that records what it was asked and fails installs of the names it is told to.
    #[derive(Debug, Default)]
    struct Fake {
        calls: Vec<String>,
        failing: Vec<String>,
    }

    impl Primitive for Fake {
        fn install<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ResultData> {
            self.calls.push(format!("install {}", at.id(&w.name)));
            let fails = self.failing.contains(&w.name);
            Box::pin(async move {
                match fails {
                    true => Err(anyhow::anyhow!("{} broke", w.name)),
                    false => Ok(ResultData::None),
                }
            })
        }
        fn remove<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ()> {
            self.calls.push(format!("remove {}", at.id(&w.name)));
            let fails = self.failing.contains(&w.name);
            Box::pin(async move {
                match fails {
                    true => Err(anyhow::anyhow!("busy")),
                    false => Ok(()),
                }
            })
        }
        fn pause<'a>(&'a mut self, _: Target<'a>, _: &'a Workload, _: bool) -> Op<'a, ()> {
            primitives::nothing()
        }
    }

    impl Primitives for Fake {
        fn of(&mut self, _: &WorkloadData) -> Option<&mut dyn Primitive> {
            Some(self)
        }
    }

    fn zdb(name: &str) -> Workload {
        zdb_for_test(name, 1, "pw")
    }

    #[tokio::test]
    async fn a_failed_install_is_its_workloads_error_and_the_rest_goes_on() {
        let local = local_for_test(vec![zdb("a"), zdb("b"), zdb("c")]);
        let chain = ChainSession::new("ws://127.0.0.1:1", Keypair::from_uri("//Node").unwrap());
        let at = Target {
            local: &local,
            others: &[],
            chain: &chain,
        };
        let steps: Vec<Step> = local
            .deployment
            .workloads
            .iter()
            .map(Step::Install)
            .collect();
        let mut fake = Fake {
            failing: vec!["b".into()],
            ..Fake::default()
        };
        let results = execute(&steps, at, None, &mut fake).await.unwrap();
        assert_eq!(
            fake.calls,
            ["install 1-1-a", "install 1-1-b", "install 1-1-c"]
        );
        let states: Vec<_> = results
            .iter()
            .map(|r| (r.name.as_str(), r.state, r.message.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("a", ResultState::Ok, ""),
                ("b", ResultState::Error, "b broke"),
                ("c", ResultState::Ok, "")
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_removal_stops_the_job_before_anything_is_installed() {
        let old = local_for_test(vec![zdb("gone"), zdb("kept")]);
        let new = local_for_test(vec![zdb("kept"), zdb("new")]);
        let chain = ChainSession::new("ws://127.0.0.1:1", Keypair::from_uri("//Node").unwrap());
        let at = Target {
            local: &new,
            others: &[],
            chain: &chain,
        };
        let steps = plan(
            Some(&old),
            &new.deployment,
            &new.deployment,
            Room {
                total: Resources {
                    cru: 1,
                    mru: 1 << 40,
                    sru: 1 << 40,
                    hru: 1 << 40,
                },
                others: Default::default(),
            },
            |_| None,
        );
        let mut fake = Fake {
            failing: vec!["gone".into()],
            ..Fake::default()
        };
        let error = execute(&steps, at, Some(&old), &mut fake)
            .await
            .unwrap_err();
        assert_eq!(format!("{error:#}"), "removing gone: busy");
        assert_eq!(fake.calls, ["remove 1-1-gone"]);
    }

    #[test]
    fn a_machine_whose_update_failed_says_it_is_down() {
        let mut old = local_for_test(vec![zdb("db")]);
        old.results = vec![result(
            "db",
            ResultState::Ok,
            String::new(),
            ResultData::None,
        )];
        let e = anyhow::anyhow!("no entrypoint");
        // A 0-db keeps serving its old namespace when an update fails: only the error is said.
        assert_eq!(failure(Some(&old), &zdb("db"), &e), "no entrypoint");
        let machine: Workload = serde_json::from_value(serde_json::json!({
            "version": 0, "name": "db", "type": "zmachine", "data": {
                "flist": "x", "network": { "interfaces": [{ "network": "n", "ip": "10.1.1.2" }] },
                "compute_capacity": { "cpu": 1, "memory": 1 }, "entrypoint": "" }
        }))
        .unwrap();
        assert_eq!(
            failure(Some(&old), &machine, &e),
            "the update failed and the machine is down (its previous version was stopped): no entrypoint"
        );
        assert_eq!(failure(None, &machine, &e), "no entrypoint");
    }
}
