//! The engine: the set of namespaces under one index root and one data root, their creation,
//! removal and reload, and the commit that hands a batch of appends to the OS.

use crate::error::{Error, Result};
use crate::format::Mode;
use crate::namespace::{DESCRIPTOR_FILE, Namespace, NsOptions};
use crate::settings::Settings;
use crate::storage;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// Name of the namespace that always exists.
pub const DEFAULT_NAMESPACE: &str = "default";
/// Longest namespace name.
pub const NAMESPACE_NAME_MAX: usize = 128;
/// Smallest and largest `datasize` (offsets are 32-bit).
pub const DATASIZE_MIN: u64 = 512 * 1024;
pub const DATASIZE_MAX: u64 = u32::MAX as u64;

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub index_dir: PathBuf,
    pub data_dir: PathBuf,
    /// `None`: each namespace chooses its mode (default user).
    pub mode: Option<Mode>,
    /// Data file size that triggers a rotation.
    pub datasize: u64,
    /// Maximum size of the default namespace (0 = unlimited), applied when it is created.
    pub default_maxsize: u64,
    /// Sync closed files when rotating.
    pub sync_on_rotate: bool,
    /// Bytes of recent data kept in memory for reads, shared equally by the namespaces (0: none).
    pub read_cache_bytes: usize,
}

/// A namespace together with the generation that tells its clients whether it is still the same one.
#[derive(Debug)]
pub struct Slot {
    pub ns: Namespace,
    pub generation: u64,
}

/// All namespaces of one server.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    namespaces: BTreeMap<String, Slot>,
    next_generation: u64,
}

impl Engine {
    /// Opens (and recovers) every namespace found on disk, creating `default` if absent.
    pub fn open(config: EngineConfig) -> Result<Engine> {
        assert!(
            (DATASIZE_MIN..=DATASIZE_MAX).contains(&config.datasize),
            "datasize out of range"
        );
        storage::create_dir(&config.index_dir)?;
        storage::create_dir(&config.data_dir)?;
        let mut engine = Engine {
            config,
            namespaces: BTreeMap::new(),
            next_generation: 1,
        };
        for name in storage::list_dirs(&engine.config.index_dir)? {
            if !storage::exists(&engine.config.index_dir.join(&name).join(DESCRIPTOR_FILE)) {
                continue;
            }
            let ns = Namespace::open(
                &name,
                &engine.config.index_dir,
                &engine.config.data_dir,
                engine.options(),
            )?;
            if let Some(running) = engine.config.mode
                && ns.mode() != running
            {
                return Err(Error::ModeMismatch {
                    found: ns.mode(),
                    running,
                });
            }
            engine.insert(name, ns);
        }
        if !engine.namespaces.contains_key(DEFAULT_NAMESPACE) {
            let mut settings = Settings::new(engine.config.mode.unwrap_or(Mode::User));
            settings.maxsize = engine.config.default_maxsize;
            engine.create_unchecked(DEFAULT_NAMESPACE, settings)?;
        }
        Ok(engine)
    }

    fn options(&self) -> NsOptions {
        NsOptions {
            datasize: self.config.datasize,
            sync_on_rotate: self.config.sync_on_rotate,
            read_cache_bytes: self.cache_share(),
        }
    }

    /// Each namespace's share of the read cache.
    fn cache_share(&self) -> usize {
        self.config.read_cache_bytes / self.namespaces.len().max(1)
    }

    /// Gives every namespace an equal share of the read cache (after one is added or removed).
    fn rebalance_cache(&mut self) {
        let share = self.cache_share();
        for slot in self.namespaces.values_mut() {
            slot.ns.set_read_cache(share);
        }
    }

    fn insert(&mut self, name: String, ns: Namespace) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.namespaces.insert(name, Slot { ns, generation });
        self.rebalance_cache();
        generation
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Whether `name` may name a new namespace.
    pub fn name_allowed(name: &str) -> bool {
        !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains('/')
            && !name.contains('\0')
            && name != DEFAULT_NAMESPACE
            && name.len() <= NAMESPACE_NAME_MAX
    }

    /// Creates a namespace with default settings (the server's mode, or user mode).
    pub fn create(&mut self, name: &str) -> Result<u64> {
        if !Self::name_allowed(name) {
            return Err(Error::NameNotAllowed);
        }
        if self.namespaces.contains_key(name) {
            return Err(Error::NamespaceExists);
        }
        let settings = Settings::new(self.config.mode.unwrap_or(Mode::User));
        self.create_unchecked(name, settings)
    }

    fn create_unchecked(&mut self, name: &str, settings: Settings) -> Result<u64> {
        let ns = Namespace::create(
            name,
            &self.config.index_dir,
            &self.config.data_dir,
            settings,
            self.options(),
        )?;
        Ok(self.insert(name.to_owned(), ns))
    }

    /// Removes a namespace and its files.
    pub fn delete(&mut self, name: &str) -> Result<()> {
        if !self.namespaces.contains_key(name) {
            return Err(Error::NamespaceNotFound);
        }
        self.namespaces.remove(name);
        self.rebalance_cache();
        storage::remove_dir(&self.config.index_dir.join(name))?;
        storage::remove_dir(&self.config.data_dir.join(name))
    }

    /// Flushes a namespace and opens it again from disk; lock and freeze and the generation survive.
    pub fn reload(&mut self, name: &str) -> Result<()> {
        let options = self.options();
        let slot = self
            .namespaces
            .get_mut(name)
            .ok_or(Error::NamespaceNotFound)?;
        slot.ns.sync_all()?;
        let mut ns = Namespace::open(name, &self.config.index_dir, &self.config.data_dir, options)?;
        ns.locked = slot.ns.locked;
        ns.frozen = slot.ns.frozen;
        slot.ns = ns;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Slot> {
        self.namespaces.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Slot> {
        self.namespaces.get_mut(name)
    }

    /// Namespace names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.namespaces.keys().map(String::as_str)
    }

    pub fn namespaces(&self) -> impl Iterator<Item = &Slot> {
        self.namespaces.values()
    }

    /// Hands every pending append to the OS; returns the data files written, for `sync_data`.
    pub fn commit(&mut self) -> Result<Vec<Arc<File>>> {
        let mut written = Vec::new();
        for slot in self.namespaces.values_mut() {
            if let Some(handle) = slot.ns.commit()? {
                written.push(handle);
            }
        }
        Ok(written)
    }

    /// Whether any namespace holds appends not yet handed to the OS.
    pub fn has_pending(&self) -> bool {
        self.namespaces.values().any(|slot| slot.ns.has_pending())
    }

    /// Flushes and syncs every namespace (shutdown, `--synctime`).
    pub fn sync_all(&mut self) -> Result<()> {
        for slot in self.namespaces.values_mut() {
            slot.ns.sync_all()?;
        }
        Ok(())
    }

    /// Removes every namespace except `default`, and empties `default` (a replica's full resync).
    pub fn wipe(&mut self) -> Result<()> {
        let names: Vec<String> = self
            .namespaces
            .keys()
            .filter(|n| n.as_str() != DEFAULT_NAMESPACE)
            .cloned()
            .collect();
        for name in names {
            self.delete(&name)?;
        }
        let slot = self
            .namespaces
            .get_mut(DEFAULT_NAMESPACE)
            .expect("default namespace always exists");
        slot.ns.reset_files()
    }
}
