//! The node's identity: a 32-byte ed25519 seed created on first start and kept in the data
//! directory. The node's account, twin and node on the chain all derive from it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rand::RngCore;
use tfgrid_types::Keypair;

/// Loads the seed at `path`, or creates it (private to the user) if there is none.
pub fn load_or_create(path: &Path) -> Result<Keypair> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let Ok(seed) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                bail!(
                    "{} holds {} bytes, not a 32-byte seed: the identity is damaged",
                    path.display(),
                    bytes.len()
                );
            };
            Ok(Keypair::from_seed(seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(&seed)?;
            file.sync_all()?;
            Ok(Keypair::from_seed(seed))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity/seed");
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.account(), again.account());
        std::fs::write(&path, b"short").unwrap();
        assert!(
            load_or_create(&path)
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
    }
}
