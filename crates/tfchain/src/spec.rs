//! Chain specs: which chain a node runs, how fast it seals, who may seal, and its genesis. `--dev`
//! builds one in code; other networks load a JSON file (`tfchain build-spec` writes one to start from).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tfchain_runtime::genesis::{DEV_ACCOUNTS, Genesis};
use tfgrid_types::{AccountId, Hash32, Keypair};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSpec {
    pub name: String,
    /// Short id, used for the data directory.
    pub id: String,
    pub block_time_ms: u64,
    /// Accounts allowed to seal blocks.
    pub validators: Vec<AccountId>,
    pub genesis: Genesis,
}

impl ChainSpec {
    pub fn dev() -> ChainSpec {
        ChainSpec {
            name: "Grid Development".into(),
            id: "dev".into(),
            block_time_ms: 1000,
            validators: vec![
                Keypair::from_uri(&format!("//{}", DEV_ACCOUNTS[0]))
                    .expect("dev uri")
                    .account(),
            ],
            genesis: Genesis::dev(),
        }
    }

    pub fn load(path: &std::path::Path) -> Result<ChainSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading chain spec {}", path.display()))?;
        let spec: ChainSpec = serde_json::from_str(&text)
            .with_context(|| format!("parsing chain spec {}", path.display()))?;
        anyhow::ensure!(
            spec.block_time_ms >= 100,
            "block_time_ms must be at least 100"
        );
        anyhow::ensure!(
            !spec.validators.is_empty(),
            "the chain spec names no validator"
        );
        Ok(spec)
    }

    /// A hash of the whole spec: a data directory made for one spec refuses another.
    pub fn hash(&self) -> Hash32 {
        Hash32::of(
            "tfchain spec",
            serde_json::to_string(self)
                .expect("specs serialize")
                .as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_files_round_trip_and_refuse_nonsense() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.json");
        let spec = ChainSpec::dev();
        std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
        let loaded = ChainSpec::load(&path).unwrap();
        assert_eq!(loaded, spec);
        assert_eq!(loaded.hash(), spec.hash());
        // Amounts are exact decimal strings in the file.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"amount\": \"10000000000000000\""), "{text}");

        let mut no_validator = spec.clone();
        no_validator.validators.clear();
        std::fs::write(&path, serde_json::to_string(&no_validator).unwrap()).unwrap();
        assert!(
            ChainSpec::load(&path)
                .unwrap_err()
                .to_string()
                .contains("no validator")
        );
        std::fs::write(&path, "{").unwrap();
        assert!(
            format!("{:#}", ChainSpec::load(&path).unwrap_err()).contains("parsing chain spec")
        );
    }
}
