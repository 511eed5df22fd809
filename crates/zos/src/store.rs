//! The agent's own records on redb: the persistent job queue (a crash mid-job runs the job again),
//! the jobs set aside after a failure (with their error and when to try them again), what is
//! deployed for each contract (the deployment and each workload's result), the reports that are
//! installed but not yet on the chain, and the last chain height whose events were turned into jobs.
//!
//! A job's effect and the report it owes are recorded in one transaction, and the report stays
//! recorded until the chain has it: a report that fails (the chain restarting, the node's account
//! out of funds) is sent again, however the job that made it ended.

use std::path::Path;

use anyhow::{Context, Result, bail};
use borsh::{BorshDeserialize, BorshSerialize};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tfchain_runtime::types::Resources;
use tfgrid_types::codec;
use tfgrid_types::deployment::{Deployment, WorkloadResult};
use tfgrid_types::{ContractId, Hash32};

use crate::limits::JOBS_MAX;

const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
const DEPLOYMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("deployments");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Jobs set aside after a failure, by their place in the queue.
const FAILED: TableDefinition<u64, &[u8]> = TableDefinition::new("failed");
/// Reports owed to the chain, by contract.
const UNREPORTED: TableDefinition<u64, &[u8]> = TableDefinition::new("unreported");
const NEXT_JOB: &str = "next_job";
const HEIGHT: &str = "height";

/// What the chain asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Job {
    /// Make the node run the contract's current deployment (create, or update to it).
    Deploy(ContractId),
    Remove(ContractId),
    Pause(ContractId),
    Resume(ContractId),
    /// Check that the twin still holds the name contracts of the contract's gateway names (a name
    /// contract ended somewhere on the chain): a name it lost is no longer served.
    Names(ContractId),
}

impl Job {
    pub fn contract(&self) -> ContractId {
        match self {
            Job::Deploy(c) | Job::Remove(c) | Job::Pause(c) | Job::Resume(c) | Job::Names(c) => *c,
        }
    }
}

/// A contract's deployment as this node runs it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Local {
    pub contract_id: ContractId,
    pub twin_id: u32,
    pub hash: Hash32,
    pub deployment: Deployment,
    pub results: Vec<WorkloadResult>,
    pub paused: bool,
    /// The farm's public IPs the contract reserved (address with prefix, gateway), in order.
    pub public_ips: Vec<(String, String)>,
}

/// What the node owes the chain about a contract: its workloads' states and the resources it uses.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Report {
    pub contract_id: ContractId,
    pub version: u32,
    pub results: Vec<WorkloadResult>,
    pub used: Resources,
}

/// A job that failed: how often, its last error, and when it may run again (milliseconds since
/// 1970).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SetAside {
    pub attempts: u32,
    pub error: String,
    pub not_before_ms: u64,
}

/// The jobs set aside, by their place in the queue.
pub type SetAsides = std::collections::BTreeMap<u64, SetAside>;

/// How long a job that failed `attempts` times waits: 1 s, doubling to a minute.
pub fn retry_delay_ms(attempts: u32) -> u64 {
    (1000u64 << attempts.saturating_sub(1).min(6)).min(60_000)
}

/// The job to run next: the oldest one whose contract has no earlier job still waiting after a
/// failure. A contract's jobs keep their order; a failing contract holds back only itself.
pub fn next_job(jobs: &[(u64, Job)], failed: &SetAsides, now_ms: u64) -> Option<(u64, Job)> {
    let mut held = std::collections::BTreeSet::new();
    for &(seq, job) in jobs {
        if held.contains(&job.contract()) {
            continue;
        }
        match failed.get(&seq) {
            Some(f) if f.not_before_ms > now_ms => {
                held.insert(job.contract());
            }
            _ => return Some((seq, job)),
        }
    }
    None
}

#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = Database::create(path).with_context(|| format!("opening {}", path.display()))?;
        let tx = db.begin_write()?;
        tx.open_table(JOBS)?;
        tx.open_table(DEPLOYMENTS)?;
        tx.open_table(META)?;
        tx.open_table(FAILED)?;
        tx.open_table(UNREPORTED)?;
        tx.commit()?;
        Ok(Store { db })
    }

    fn meta(&self, key: &str) -> Result<Option<u64>> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(META)?.get(key)?.map(|v| v.value()))
    }

    /// Adds jobs and, in the same transaction, records the height they came from.
    pub fn push(&self, jobs: &[Job], height: Option<u64>) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(JOBS)?;
            if table.len()? as usize + jobs.len() > JOBS_MAX {
                bail!("the job queue is full ({JOBS_MAX} jobs)");
            }
            let mut meta = tx.open_table(META)?;
            let mut next = meta.get(NEXT_JOB)?.map_or(0, |v| v.value());
            for job in jobs {
                table.insert(next, codec::encode(job).as_slice())?;
                next += 1;
            }
            meta.insert(NEXT_JOB, next)?;
            if let Some(height) = height {
                meta.insert(HEIGHT, height)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The queued jobs, oldest first, and those of them set aside after a failure.
    pub fn jobs(&self) -> Result<(Vec<(u64, Job)>, SetAsides)> {
        let tx = self.db.begin_read()?;
        let mut jobs = Vec::new();
        for entry in tx.open_table(JOBS)?.iter()? {
            let (key, value) = entry?;
            jobs.push((key.value(), codec::decode("job", value.value(), 64)?));
        }
        let mut failed = std::collections::BTreeMap::new();
        for entry in tx.open_table(FAILED)?.iter()? {
            let (key, value) = entry?;
            failed.insert(
                key.value(),
                codec::decode("failed job", value.value(), 64 * 1024)?,
            );
        }
        Ok((jobs, failed))
    }

    /// Sets job `seq` aside after a failure with `error`; returns how it stands now.
    pub fn set_aside(&self, seq: u64, error: &str, now_ms: u64) -> Result<SetAside> {
        let tx = self.db.begin_write()?;
        let aside = {
            let mut failed = tx.open_table(FAILED)?;
            let attempts = match failed.get(seq)? {
                Some(v) => codec::decode::<SetAside>("failed job", v.value(), 64 * 1024)?.attempts,
                None => 0,
            } + 1;
            // An error is kept whole up to a few kilobytes: enough to say what went wrong.
            let error: String = error.chars().take(4096).collect();
            let aside = SetAside {
                attempts,
                error,
                not_before_ms: now_ms + retry_delay_ms(attempts),
            };
            failed.insert(seq, codec::encode(&aside).as_slice())?;
            aside
        };
        tx.commit()?;
        Ok(aside)
    }

    /// Records a job's effect (the contract's deployment, `None`: removed) and the report it owes
    /// (`None`: nothing to say, or nothing left to say once removed), and removes the job from the
    /// queue, in one transaction.
    pub fn finish(
        &self,
        seq: u64,
        contract_id: ContractId,
        local: Option<&Local>,
        report: Option<&Report>,
    ) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            tx.open_table(JOBS)?.remove(seq)?;
            tx.open_table(FAILED)?.remove(seq)?;
            let mut deployments = tx.open_table(DEPLOYMENTS)?;
            let mut unreported = tx.open_table(UNREPORTED)?;
            match local {
                Some(local) => deployments.insert(contract_id, codec::encode(local).as_slice())?,
                None => {
                    unreported.remove(contract_id)?;
                    deployments.remove(contract_id)?
                }
            };
            if let Some(report) = report {
                unreported.insert(contract_id, codec::encode(report).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a report the node owes outside a job (a restarted machine's new state, a job's
    /// failure).
    pub fn owe(&self, report: &Report) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(UNREPORTED)?
            .insert(report.contract_id, codec::encode(report).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// The reports the chain does not have yet.
    pub fn unreported(&self) -> Result<Vec<Report>> {
        let tx = self.db.begin_read()?;
        let mut out = Vec::new();
        for entry in tx.open_table(UNREPORTED)?.iter()? {
            out.push(codec::decode("report", entry?.1.value(), usize::MAX)?);
        }
        Ok(out)
    }

    /// Forgets `report` once the chain has it (unless a newer one replaced it meanwhile).
    pub fn reported(&self, report: &Report) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(UNREPORTED)?;
            let current = table.get(report.contract_id)?.map(|v| v.value().to_vec());
            if current.as_deref() == Some(codec::encode(report).as_slice()) {
                table.remove(report.contract_id)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a contract's deployment outside a job (a restarted machine's new result) and the
    /// report it owes, in one transaction.
    pub fn record(&self, local: &Local, report: &Report) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(DEPLOYMENTS)?
            .insert(local.contract_id, codec::encode(local).as_slice())?;
        tx.open_table(UNREPORTED)?
            .insert(local.contract_id, codec::encode(report).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets a contract's deployment (its workloads are gone from the node).
    pub fn forget(&self, contract_id: ContractId) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(DEPLOYMENTS)?.remove(contract_id)?;
        tx.commit()?;
        Ok(())
    }

    pub fn local(&self, contract_id: ContractId) -> Result<Option<Local>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DEPLOYMENTS)?;
        let Some(bytes) = table.get(contract_id)? else {
            return Ok(None);
        };
        Ok(Some(codec::decode(
            "local deployment",
            bytes.value(),
            usize::MAX,
        )?))
    }

    pub fn locals(&self) -> Result<Vec<Local>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DEPLOYMENTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(codec::decode(
                "local deployment",
                entry?.1.value(),
                usize::MAX,
            )?);
        }
        Ok(out)
    }

    /// The last chain height whose events became jobs.
    pub fn height(&self) -> Result<Option<u64>> {
        self.meta(HEIGHT)
    }
}

/// A 0-db workload `name` of `size` bytes with a plain `password`.
#[cfg(test)]
pub(crate) fn zdb_for_test(
    name: &str,
    size: u64,
    password: &str,
) -> tfgrid_types::deployment::Workload {
    use tfgrid_types::deployment::{Secret, Workload, WorkloadData, Zdb, ZdbMode};
    Workload {
        version: 0,
        name: name.into(),
        metadata: String::new(),
        description: String::new(),
        data: WorkloadData::Zdb(Zdb {
            size,
            mode: ZdbMode::User,
            password: Secret::Plain(password.into()),
            public: false,
        }),
    }
}

/// Contract 1 of twin 1 with `workloads` and no results yet.
#[cfg(test)]
pub(crate) fn local_for_test(workloads: Vec<tfgrid_types::deployment::Workload>) -> Local {
    let deployment = Deployment {
        version: 0,
        twin_id: 1,
        metadata: String::new(),
        description: String::new(),
        signature_requirement: Default::default(),
        workloads,
    };
    Local {
        contract_id: 1,
        twin_id: 1,
        hash: deployment.hash(),
        deployment,
        results: vec![],
        paused: false,
        public_ips: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_survives_reopening_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zos.redb");
        {
            let store = Store::open(&path).unwrap();
            store
                .push(&[Job::Deploy(1), Job::Pause(1)], Some(7))
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.height().unwrap(), Some(7));
        let (jobs, failed) = store.jobs().unwrap();
        let (seq, job) = next_job(&jobs, &failed, 0).unwrap();
        assert_eq!(job, Job::Deploy(1));
        store.finish(seq, 1, None, None).unwrap();
        let (jobs, failed) = store.jobs().unwrap();
        assert_eq!(next_job(&jobs, &failed, 0).unwrap().1, Job::Pause(1));
    }

    fn report(contract_id: ContractId, version: u32) -> Report {
        Report {
            contract_id,
            version,
            results: vec![],
            used: Resources::default(),
        }
    }

    #[test]
    fn a_failing_job_holds_back_only_its_own_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("zos.redb")).unwrap();
        store
            .push(&[Job::Deploy(1), Job::Pause(1), Job::Deploy(2)], None)
            .unwrap();
        let (jobs, failed) = store.jobs().unwrap();
        let (seq, _) = next_job(&jobs, &failed, 0).unwrap();
        let aside = store
            .set_aside(seq, "cannot reach the chain", 1000)
            .unwrap();
        assert_eq!((aside.attempts, aside.not_before_ms), (1, 2000));
        let (jobs, failed) = store.jobs().unwrap();
        // Contract 1's later job waits behind its failed one; contract 2 goes on.
        assert_eq!(next_job(&jobs, &failed, 1500).unwrap().1, Job::Deploy(2));
        // Once due, the failed job is tried again first, and fails again for longer.
        assert_eq!(
            next_job(&jobs, &failed, 2000).unwrap(),
            (seq, Job::Deploy(1))
        );
        let again = store.set_aside(seq, "still down", 2000).unwrap();
        assert_eq!((again.attempts, again.not_before_ms), (2, 4000));
        assert_eq!(again.error, "still down");
        assert_eq!(retry_delay_ms(30), 60_000);
    }

    #[test]
    fn a_report_stays_owed_until_the_chain_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zos.redb");
        {
            let store = Store::open(&path).unwrap();
            store.push(&[Job::Deploy(1)], None).unwrap();
            let (jobs, _) = store.jobs().unwrap();
            let local = local_for_test(vec![]);
            store
                .finish(jobs[0].0, 1, Some(&local), Some(&report(1, 0)))
                .unwrap();
        }
        // The agent stopped before reporting: the report is still owed after a restart.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.unreported().unwrap(), vec![report(1, 0)]);
        // A newer report replaces it; confirming the older one leaves the newer owed.
        store.owe(&report(1, 1)).unwrap();
        store.reported(&report(1, 0)).unwrap();
        assert_eq!(store.unreported().unwrap(), vec![report(1, 1)]);
        store.reported(&report(1, 1)).unwrap();
        assert!(store.unreported().unwrap().is_empty());
    }
}
