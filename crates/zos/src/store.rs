//! The agent's own records on redb: the persistent job queue (a crash mid-job runs the job again),
//! what is deployed for each contract (the deployment and each workload's result), and the last
//! chain height whose events were turned into jobs.

use std::path::Path;

use anyhow::{Context, Result, bail};
use borsh::{BorshDeserialize, BorshSerialize};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tfgrid_types::codec;
use tfgrid_types::deployment::{Deployment, WorkloadResult};
use tfgrid_types::{ContractId, Hash32};

use crate::limits::JOBS_MAX;

const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
const DEPLOYMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("deployments");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
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

    /// The oldest job, if any.
    pub fn first_job(&self) -> Result<Option<(u64, Job)>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(JOBS)?;
        let Some(entry) = table.first()? else {
            return Ok(None);
        };
        let (key, value) = entry;
        Ok(Some((
            key.value(),
            codec::decode("job", value.value(), 64)?,
        )))
    }

    /// Records a job's effect and removes it from the queue, in one transaction.
    pub fn finish(&self, seq: u64, contract_id: ContractId, local: Option<&Local>) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            tx.open_table(JOBS)?.remove(seq)?;
            let mut deployments = tx.open_table(DEPLOYMENTS)?;
            match local {
                Some(local) => deployments.insert(contract_id, codec::encode(local).as_slice())?,
                None => deployments.remove(contract_id)?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a contract's deployment outside a job (a restarted container's new result).
    pub fn put_local(&self, local: &Local) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(DEPLOYMENTS)?
            .insert(local.contract_id, codec::encode(local).as_slice())?;
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
        let (seq, job) = store.first_job().unwrap().unwrap();
        assert_eq!(job, Job::Deploy(1));
        store.finish(seq, 1, None).unwrap();
        assert_eq!(store.first_job().unwrap().unwrap().1, Job::Pause(1));
    }
}
