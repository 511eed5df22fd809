//! The local state file of a project (`.tfgrid/<project>.json`): which contracts on which chain
//! are the project's (one per node), the gateway names it created, the user's access peers of its
//! private network, and a digest of each workload's secrets as last applied (the chain holds them
//! sealed, so this is how a plan sees a changed password). It is written whole or not at all, in
//! format 2; a file of format 1 (one contract) is read as such.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tfgrid_types::deployment::{Secret, Workload, WorkloadData};
use tfgrid_types::{ContractId, Hash32, NodeId};

use super::network::AccessPeer;
use crate::Error;

/// The format this client writes.
const FORMAT: u32 = 2;

/// Where a project's contracts are recorded.
#[derive(Debug, Clone)]
pub struct StateFile {
    pub path: PathBuf,
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub project: String,
    /// The chain it is on: a state file from another chain (a new local grid) is ignored.
    pub genesis: Hash32,
    /// The project's contracts, one per node.
    pub contracts: Vec<ContractRecord>,
    /// The gateway names whose name contracts this project created (and so cancels when it no
    /// longer uses them); a name the twin held before stays the twin's.
    pub names: Vec<String>,
    /// The user's access peers of the private network (their private keys are the users').
    pub access: Vec<AccessPeer>,
}

/// One contract of the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractRecord {
    pub node_id: NodeId,
    pub contract_id: ContractId,
    /// A digest of each workload's secrets as last applied: the chain holds them sealed, so this
    /// is how a plan sees a changed password or environment value.
    #[serde(default)]
    pub secrets: BTreeMap<String, Hash32>,
}

impl State {
    /// The secrets' digests recorded for contract `id`.
    pub fn secrets_of(&self, id: ContractId) -> BTreeMap<String, Hash32> {
        let record = self.contracts.iter().find(|c| c.contract_id == id);
        record.map(|c| c.secrets.clone()).unwrap_or_default()
    }
}

/// The file as written: format 2, or format 1's one contract.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    #[serde(default = "format_one")]
    format: u32,
    project: String,
    genesis: Hash32,
    #[serde(default)]
    contracts: Vec<ContractRecord>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    access: Vec<AccessPeer>,
    /// Format 1.
    #[serde(default, skip_serializing)]
    node_id: Option<NodeId>,
    #[serde(default, skip_serializing)]
    contract_id: Option<ContractId>,
    #[serde(default, skip_serializing)]
    secrets: BTreeMap<String, Hash32>,
}

fn format_one() -> u32 {
    1
}

impl OnDisk {
    fn into_state(self) -> Result<State, String> {
        let mut contracts = self.contracts;
        match (self.format, self.node_id, self.contract_id) {
            (1, Some(node_id), Some(contract_id)) => contracts.push(ContractRecord {
                node_id,
                contract_id,
                secrets: self.secrets,
            }),
            (1 | FORMAT, _, _) => {}
            (other, _, _) => {
                return Err(format!(
                    "format {other} is newer than this tfgrid's ({FORMAT}): update tfgrid"
                ));
            }
        }
        Ok(State {
            project: self.project,
            genesis: self.genesis,
            contracts,
            names: self.names,
            access: self.access,
        })
    }
}

/// A digest of a workload's secrets in the clear (none when it has none). A network's WireGuard
/// key does not count: the planner keeps it sealed as the chain holds it, and a new key changes the
/// workload's metadata (its public key) anyway.
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
            Ok(bytes) => serde_json::from_slice::<OnDisk>(&bytes)
                .map_err(|e| self.error(e))?
                .into_state()
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
        let disk = OnDisk {
            format: FORMAT,
            project: state.project.clone(),
            genesis: state.genesis,
            contracts: state.contracts.clone(),
            names: state.names.clone(),
            access: state.access.clone(),
            node_id: None,
            contract_id: None,
            secrets: BTreeMap::new(),
        };
        file.write_all(&serde_json::to_vec_pretty(&disk).expect("state serializes"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_format_one_is_read_as_one_contract_and_written_anew_as_two() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::beside(dir.path(), "p");
        let genesis = Hash32::of("test", b"chain");
        let secret = Hash32::of("test", b"secret");
        let old = serde_json::json!({
            "project": "p", "genesis": genesis, "node_id": 3, "contract_id": 9,
            "secrets": { "db": secret }, "names": ["site"],
        });
        std::fs::create_dir_all(file.path.parent().unwrap()).unwrap();
        std::fs::write(&file.path, old.to_string()).unwrap();
        let state = file.load().unwrap().unwrap();
        let record = ContractRecord {
            node_id: 3,
            contract_id: 9,
            secrets: BTreeMap::from([("db".to_owned(), secret)]),
        };
        assert_eq!(state.contracts, [record]);
        assert_eq!(state.names, ["site"]);
        file.save(&state).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file.path).unwrap()).unwrap();
        assert_eq!(written["format"], 2);
        assert!(written.get("node_id").is_none(), "{written}");
        assert_eq!(file.load().unwrap(), Some(state));
        // A newer format is not guessed at.
        let newer = serde_json::json!({ "format": 3, "project": "p", "genesis": genesis });
        std::fs::write(&file.path, newer.to_string()).unwrap();
        assert!(file.load().is_err());
    }
}
