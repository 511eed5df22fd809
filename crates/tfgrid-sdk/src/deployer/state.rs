//! The local state file of a project (`.tfgrid/<project>.json`): which contract on which chain is
//! the project's, the gateway names it created, and a digest of each workload's secrets as last
//! applied (the chain holds them sealed, so this is how a plan sees a changed password). It is
//! written whole or not at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tfgrid_types::deployment::{Secret, Workload, WorkloadData};
use tfgrid_types::{ContractId, Hash32, NodeId};

use crate::Error;

/// Where a project's contract is recorded.
#[derive(Debug, Clone)]
pub struct StateFile {
    pub path: PathBuf,
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub project: String,
    /// The chain it is on: a state file from another chain (a new local grid) is ignored.
    pub genesis: Hash32,
    pub node_id: NodeId,
    pub contract_id: ContractId,
    /// A digest of each workload's secrets as last applied: the chain holds them sealed, so this
    /// is how a plan sees a changed password or environment value.
    #[serde(default)]
    pub secrets: BTreeMap<String, Hash32>,
    /// The gateway names whose name contracts this project created (and so cancels when it no
    /// longer uses them); a name the twin held before stays the twin's.
    #[serde(default)]
    pub names: Vec<String>,
}

/// A digest of a workload's secrets in the clear (none when it has none). A network's WireGuard
/// key is made anew at each plan, not written in the file: it does not count.
pub fn secrets_digest(w: &Workload) -> Option<Hash32> {
    if let WorkloadData::Network(_) = w.data {
        return None;
    }
    let mut w = w.clone();
    let values: Vec<String> = w
        .data
        .secrets_mut()
        .into_iter()
        .map(|s| match s {
            Secret::Plain(text) => text.clone(),
            Secret::Sealed(_) => String::new(),
        })
        .collect();
    (!values.is_empty()).then(|| {
        Hash32::of(
            "tfgrid state secrets v1",
            serde_json::to_string(&(&w.name, values))
                .expect("strings serialize")
                .as_bytes(),
        )
    })
}

/// The secrets' digest of each workload that has secrets.
pub fn digests(workloads: &[Workload]) -> BTreeMap<String, Hash32> {
    workloads
        .iter()
        .filter_map(|w| Some((w.name.clone(), secrets_digest(w)?)))
        .collect()
}

impl StateFile {
    /// `<dir>/.tfgrid/<project>.json`.
    pub fn beside(dir: impl AsRef<Path>, project: &str) -> StateFile {
        StateFile {
            path: dir.as_ref().join(".tfgrid").join(format!("{project}.json")),
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::State {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    pub fn load(&self) -> Result<Option<State>, Error> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The recorded state of project `name` on the chain of `genesis`, if the file holds it.
    pub fn load_for(&self, name: &str, genesis: Hash32) -> Result<Option<State>, Error> {
        Ok(self
            .load()?
            .filter(|s| s.genesis == genesis && s.project == name))
    }

    /// Writes the state whole or not at all (a temporary file, synced, then renamed).
    pub fn save(&self, state: &State) -> Result<(), Error> {
        use std::io::Write;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(|e| self.error(e))?;
        file.write_all(&serde_json::to_vec_pretty(state).expect("state serializes"))
            .and_then(|_| file.sync_all())
            .map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.error(e))
    }

    pub fn remove(&self) -> Result<(), Error> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.error(e)),
            _ => Ok(()),
        }
    }
}
