//! The TOML configuration, with 0-stor v2's layout where it has one: shard counts, the virtual
//! root, `[encryption]`, `[compression]`, `[meta]` with its zdb metadata backends, and `[[groups]]`
//! of data backends; plus `[repair]` for the daemon. `Config::validate` checks every rule.

use crate::limits;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Shards needed to read a chunk back (0-stor's `minimal_shards`).
    pub data_shards: usize,
    /// Extra shards written: a chunk survives the loss of this many.
    pub parity_shards: usize,
    /// Virtual root: a file stored by path is keyed by its path below this directory.
    #[serde(default)]
    pub root: Option<PathBuf>,
    pub encryption: EncryptionConfig,
    #[serde(default)]
    pub compression: CompressionConfig,
    pub meta: MetaConfig,
    pub groups: Vec<Group>,
    #[serde(default)]
    pub repair: RepairConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// The cipher for new writes; what a file was written with is in its metadata.
    #[serde(default)]
    pub algorithm: CipherKind,
    /// 32 bytes as 64 hex digits.
    pub key: String,
}

/// The authenticated ciphers. The discriminants are stored in metadata: never renumber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum CipherKind {
    #[default]
    #[serde(rename = "AES")]
    Aes256Gcm = 0,
    #[serde(rename = "ChaCha20Poly1305")]
    ChaCha20Poly1305 = 1,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionConfig {
    #[serde(default)]
    pub algorithm: CompressionKind,
    /// zstd level; 1 is the fast default, 3 compresses cold data better.
    #[serde(default = "default_level")]
    pub level: i32,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            algorithm: CompressionKind::Zstd,
            level: default_level(),
        }
    }
}

fn default_level() -> i32 {
    1
}

/// Compression of chunks. The discriminants are stored in metadata: never renumber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum CompressionKind {
    #[default]
    #[serde(rename = "zstd")]
    Zstd = 0,
    #[serde(rename = "none")]
    None = 1,
}

/// `[meta] type = "zdb"` with `[meta.config]`, as 0-stor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    #[serde(rename = "type")]
    pub kind: MetaKind,
    pub config: MetaZdbConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MetaKind {
    #[serde(rename = "zdb")]
    Zdb,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaZdbConfig {
    /// Metadata keys are `/{prefix}/meta/{hash of the file key}`.
    pub prefix: String,
    /// Every record is written whole to each of them; user-mode namespaces.
    pub backends: Vec<BackendConfig>,
}

/// A set of data backends that fail together (a node, a farm): shards are spread over groups first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub backends: Vec<BackendConfig>,
}

/// One 0-db namespace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// `host:port` or `[ipv6]:port`.
    pub address: String,
    pub namespace: String,
    #[serde(default)]
    pub password: Option<String>,
}

impl BackendConfig {
    pub fn id(&self) -> BackendId {
        BackendId {
            address: self.address.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// Where a shard lives: what metadata records (never the password, which stays in the config).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
pub struct BackendId {
    pub address: String,
    pub namespace: String,
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.namespace)
    }
}

/// The daemon's repair loop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairConfig {
    /// Seconds between two sweeps (backend probes, then files on lost backends are rebuilt).
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// A backend unreachable for this long is lost: its shards are rebuilt elsewhere.
    #[serde(default = "default_down")]
    pub backend_down_secs: u64,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            interval_secs: default_interval(),
            backend_down_secs: default_down(),
        }
    }
}

fn default_interval() -> u64 {
    600
}

fn default_down() -> u64 {
    900
}

/// A configuration that was read but does not make sense.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule a store or a retrieve relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if self.data_shards == 0 {
            return err("data_shards must be at least 1".into());
        }
        if self.parity_shards == 0 {
            return err("parity_shards must be at least 1".into());
        }
        let shards = self.data_shards + self.parity_shards;
        if shards > limits::SHARDS_MAX {
            return err(format!(
                "data_shards + parity_shards is {shards}, at most {} are supported",
                limits::SHARDS_MAX
            ));
        }
        if !reed_solomon_simd::ReedSolomonEncoder::supports(self.data_shards, self.parity_shards) {
            return err(format!(
                "{}+{} shards are not supported by the erasure code",
                self.data_shards, self.parity_shards
            ));
        }
        self.key()?;
        if self.compression.algorithm == CompressionKind::Zstd
            && !zstd::compression_level_range().contains(&self.compression.level)
        {
            return err(format!(
                "compression level {} is outside zstd's range {:?}",
                self.compression.level,
                zstd::compression_level_range()
            ));
        }
        let prefix = &self.meta.config.prefix;
        if prefix.is_empty() || prefix.len() > limits::PREFIX_BYTES_MAX || prefix.contains('/') {
            return err(format!(
                "meta prefix {prefix:?} must be 1 to {} bytes without '/'",
                limits::PREFIX_BYTES_MAX
            ));
        }
        if self.meta.config.backends.is_empty() {
            return err("at least one metadata backend is needed".into());
        }
        let data = self.data_backends().count();
        if data < shards {
            return err(format!(
                "{data} data backends configured, {shards} needed (data_shards + parity_shards)"
            ));
        }
        let mut seen = BTreeSet::new();
        for backend in self.meta.config.backends.iter().chain(self.data_backends()) {
            if backend
                .address
                .rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
            {
                return err(format!(
                    "backend address {:?} is not host:port",
                    backend.address
                ));
            }
            if backend.namespace.is_empty() {
                return err(format!(
                    "backend {} has an empty namespace",
                    backend.address
                ));
            }
            if !seen.insert(backend.id()) {
                return err(format!("backend {} is configured twice", backend.id()));
            }
        }
        if self.repair.interval_secs == 0 {
            return err("repair.interval_secs must be at least 1".into());
        }
        Ok(())
    }

    /// The encryption key.
    pub fn key(&self) -> Result<[u8; 32], ConfigError> {
        let bytes = hex::decode(self.encryption.key.trim())
            .map_err(|e| ConfigError(format!("encryption key is not hex: {e}")))?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            ConfigError(format!(
                "encryption key is {} bytes, 32 needed (64 hex digits)",
                b.len()
            ))
        })
    }

    /// Every data backend, group by group.
    pub fn data_backends(&self) -> impl Iterator<Item = &BackendConfig> {
        self.groups.iter().flat_map(|g| g.backends.iter())
    }

    /// The configured data backend with this id, if any (with its group index).
    pub fn data_backend(&self, id: &BackendId) -> Option<(usize, &BackendConfig)> {
        self.groups.iter().enumerate().find_map(|(g, group)| {
            group
                .backends
                .iter()
                .find(|b| b.address == id.address && b.namespace == id.namespace)
                .map(|b| (g, b))
        })
    }

    pub fn shards(&self) -> usize {
        self.data_shards + self.parity_shards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn config(shards: &str, key: &str, backends: usize, extra: &str) -> String {
        let mut text = format!(
            "{shards}\n{extra}\n[encryption]\nkey = \"{key}\"\n\
             [meta]\ntype = \"zdb\"\n[meta.config]\nprefix = \"zstor\"\n\
             [[meta.config.backends]]\naddress = \"127.0.0.1:9000\"\nnamespace = \"meta\"\n"
        );
        for i in 0..backends {
            text += &format!(
                "[[groups]]\n[[groups.backends]]\naddress = \"127.0.0.1:{}\"\nnamespace = \"d\"\npassword = \"pw\"\n",
                9001 + i
            );
        }
        text
    }

    fn check(text: &str, expect: Result<(), &str>) {
        match (Config::parse(text), expect) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(want)) => assert!(e.0.contains(want), "{e} does not contain {want:?}"),
            (got, want) => panic!("got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn validation() {
        let shards = "data_shards = 4\nparity_shards = 2";
        check(&config(shards, KEY, 6, ""), Ok(()));
        check(
            &config(shards, KEY, 5, ""),
            Err("5 data backends configured, 6 needed"),
        );
        check(
            &config(shards, "abcd", 6, ""),
            Err("encryption key is 2 bytes, 32 needed"),
        );
        check(
            &config(shards, "xyz", 6, ""),
            Err("encryption key is not hex"),
        );
        check(
            &config("data_shards = 0\nparity_shards = 2", KEY, 6, ""),
            Err("data_shards must be at least 1"),
        );
        check(
            &config("data_shards = 4\nparity_shards = 0", KEY, 6, ""),
            Err("parity_shards must be at least 1"),
        );
        check(
            &config(shards, KEY, 6, "colour = 1"),
            Err("unknown field `colour`"),
        );
        check(
            &config(shards, KEY, 6, "[compression]\nlevel = 99"),
            Err("compression level 99"),
        );
        let mut twice = config(shards, KEY, 6, "");
        twice +=
            "[[groups]]\n[[groups.backends]]\naddress = \"127.0.0.1:9001\"\nnamespace = \"d\"\n";
        check(&twice, Err("backend 127.0.0.1:9001/d is configured twice"));
    }

    #[test]
    fn the_example_config_is_valid() {
        let config = Config::parse(include_str!("../examples/zstor.toml")).unwrap();
        assert_eq!(config.shards(), 6);
        assert_eq!(config.data_backends().count(), 6);
        assert_eq!(config.groups.len(), 3);
    }

    #[test]
    fn defaults_follow_zero_stor() {
        let config =
            Config::parse(&config("data_shards = 4\nparity_shards = 2", KEY, 6, "")).unwrap();
        assert_eq!(config.encryption.algorithm, CipherKind::Aes256Gcm);
        assert_eq!(config.compression.algorithm, CompressionKind::Zstd);
        assert_eq!(config.repair.interval_secs, 600);
        assert_eq!(config.repair.backend_down_secs, 900);
        assert_eq!(config.key().unwrap()[31], 0x1f);
    }
}
