//! Named keys kept on disk (`$TFGRID_HOME/keys/<name>.json`, private to the user), and the one rule
//! that turns a `--key` or an account argument into a key or an address: a stored name, a secret URI
//! (`//Alice`, a phrase, a 0x seed), or for accounts an SS58 address.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tfgrid_types::{AccountId, Keypair};

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredKey {
    pub name: String,
    pub address: AccountId,
    /// The secret URI: a BIP39 phrase, with derivation junctions if any.
    pub secret: String,
}

#[derive(Debug)]
pub struct Keystore {
    dir: PathBuf,
}

fn looks_like_uri(text: &str) -> bool {
    text.starts_with("//") || text.starts_with("0x") || text.contains(' ')
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Keystore {
    /// The keystore under `$TFGRID_HOME`, or `~/.config/tfgrid`.
    pub fn open() -> Result<Keystore> {
        let home = match std::env::var_os("TFGRID_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let home =
                    std::env::var_os("HOME").context("neither TFGRID_HOME nor HOME is set")?;
                PathBuf::from(home).join(".config/tfgrid")
            }
        };
        Ok(Keystore {
            dir: home.join("keys"),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub fn save(&self, name: &str, secret: &str) -> Result<StoredKey> {
        if !valid_name(name) {
            bail!("key name {name:?} may only contain letters, digits, '-' and '_'");
        }
        let key = Keypair::from_uri(secret)?;
        let path = self.path(name);
        if path.exists() {
            bail!("a key named {name:?} exists already ({})", path.display());
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let stored = StoredKey {
            name: name.into(),
            address: key.account(),
            secret: secret.into(),
        };
        let text = serde_json::to_string_pretty(&stored)?;
        write_private(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(stored)
    }

    pub fn load(&self, name: &str) -> Result<StoredKey> {
        let path = self.path(name);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("no key named {name:?}: create it with `tfgrid keys new {name}`")
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
    }

    pub fn list(&self) -> Result<Vec<StoredKey>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(vec![]);
        };
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if let Some(name) = path.file_stem().and_then(|s| s.to_str())
                && path.extension().is_some_and(|e| e == "json")
            {
                keys.push(self.load(name)?);
            }
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// A key given by name or secret URI.
    pub fn key(&self, spec: &str) -> Result<Keypair> {
        if looks_like_uri(spec) {
            return Ok(Keypair::from_uri(spec)?);
        }
        let stored = self.load(spec)?;
        Ok(Keypair::from_uri(&stored.secret)?)
    }

    /// An account given by address, key name or secret URI.
    pub fn account(&self, spec: &str) -> Result<AccountId> {
        if let Ok(account) = spec.parse() {
            return Ok(account);
        }
        if looks_like_uri(spec) {
            return Ok(Keypair::from_uri(spec)?.account());
        }
        self.load(spec).map(|k| k.address).map_err(|_| {
            anyhow::anyhow!(
                "{spec:?} is neither an address (5...), a secret URI (//Name) nor a stored key name"
            )
        })
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
