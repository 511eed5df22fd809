//! Chain specs: which chain a node runs, how fast it seals, and its genesis (with the first validator
//! set, which the council changes later). `--dev` builds one in code, with one validator or the first
//! N dev accounts; other networks load a JSON file (`tfchain build-spec` writes one to start from).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tfchain_runtime::genesis::{DEV_ACCOUNTS, Genesis};
use tfchain_runtime::validators;
use tfgrid_types::{Hash32, Keypair};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSpec {
    pub name: String,
    /// Short id, used for the data directory.
    pub id: String,
    pub block_time_ms: u64,
    pub genesis: Genesis,
}

impl ChainSpec {
    /// The development chain: //Alice the one validator.
    pub fn dev() -> ChainSpec {
        ChainSpec {
            name: "Grid Development".into(),
            id: "dev".into(),
            block_time_ms: 1000,
            genesis: Genesis::dev(),
        }
    }

    /// The development chain with the first `count` dev accounts (//Alice, //Bob, ...) as its
    /// validators.
    pub fn dev_with_validators(count: usize) -> Result<ChainSpec> {
        anyhow::ensure!(
            (1..=DEV_ACCOUNTS.len()).contains(&count),
            "a dev chain has 1 to {} validators (//{} to //{}), not {count}",
            DEV_ACCOUNTS.len(),
            DEV_ACCOUNTS[0],
            DEV_ACCOUNTS[DEV_ACCOUNTS.len() - 1],
        );
        let mut spec = ChainSpec::dev();
        spec.genesis.validators = DEV_ACCOUNTS[..count]
            .iter()
            .map(|name| {
                Keypair::from_uri(&format!("//{name}"))
                    .expect("dev URIs are valid")
                    .account()
            })
            .collect();
        Ok(spec)
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
        validators::check(&spec.genesis.validators)
            .with_context(|| format!("the genesis validators of chain spec {}", path.display()))?;
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
        no_validator.genesis.validators.clear();
        std::fs::write(&path, serde_json::to_string(&no_validator).unwrap()).unwrap();
        let error = format!("{:#}", ChainSpec::load(&path).unwrap_err());
        assert!(error.contains("genesis validators"), "{error}");
        assert!(error.contains("cannot be empty"), "{error}");
        std::fs::write(&path, "{").unwrap();
        assert!(
            format!("{:#}", ChainSpec::load(&path).unwrap_err()).contains("parsing chain spec")
        );
    }

    #[test]
    fn dev_specs_take_the_first_dev_accounts_as_validators() {
        let dev = |name: &str| Keypair::from_uri(&format!("//{name}")).unwrap().account();
        let three = ChainSpec::dev_with_validators(3).unwrap();
        assert_eq!(
            three.genesis.validators,
            vec![dev("Alice"), dev("Bob"), dev("Charlie")]
        );
        assert_eq!(three.id, "dev");
        assert_eq!(ChainSpec::dev_with_validators(1).unwrap(), ChainSpec::dev());
        let all = ChainSpec::dev_with_validators(DEV_ACCOUNTS.len()).unwrap();
        assert_eq!(all.genesis.validators.last(), Some(&dev("Ferdie")));
        for count in [0, DEV_ACCOUNTS.len() + 1] {
            let error = ChainSpec::dev_with_validators(count)
                .unwrap_err()
                .to_string();
            assert_eq!(
                error,
                format!("a dev chain has 1 to 6 validators (//Alice to //Ferdie), not {count}")
            );
        }
    }
}
