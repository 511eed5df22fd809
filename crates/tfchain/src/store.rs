//! The node's storage on redb: the append-only block log, events and transaction index, and the state
//! tables, the validators' commit of each block decided by BFT, and the candidate blocks a validator
//! has judged but not yet seen decided (so that a validator that crashes after voting still has the
//! block its vote named). Each block is one write transaction, so a crash leaves the last whole block
//! and nothing of the next. Readers (RPC) see the last committed block through MVCC snapshots, never a
//! half block.

use std::path::Path;

use anyhow::{Context, Result, bail};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tfchain_runtime::state::State;
use tfchain_runtime::table::{Change, TableKey, TableValue};
use tfchain_runtime::{Block, Commit, EventRecord};
use tfgrid_types::Hash32;
use tfgrid_types::codec;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const BLOCK_BY_HASH: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_by_hash");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const TXS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("txs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const COMMITS: TableDefinition<u64, &[u8]> = TableDefinition::new("commits");
const CANDIDATES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("candidates");
const HEAD: &str = "head";
const SPEC_HASH: &str = "spec_hash";

fn state_table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// Where a transaction landed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct TxRecord {
    pub height: u64,
    pub block_hash: Hash32,
    pub index: u32,
    pub fee: u128,
    pub error: Option<String>,
    /// The events this transaction emitted (also in the block's event list).
    pub events: Vec<EventRecord>,
}

#[derive(Debug)]
pub struct Store {
    db: Database,
}

fn state_table_name(table: &str) -> String {
    format!("state_{table}")
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).ok();
        let db = Database::create(path)
            .with_context(|| format!("opening the chain store {}", path.display()))?;
        Ok(Store { db })
    }

    /// Holds the store's writer, as a slow disk would: a block's commit waits until it is dropped.
    #[cfg(test)]
    pub(crate) fn hold_writes(&self) -> redb::WriteTransaction {
        self.db.begin_write().expect("a write transaction")
    }

    /// The height of the last committed block, if any.
    pub fn head_height(&self) -> Result<Option<u64>> {
        let tx = self.db.begin_read()?;
        let meta = match tx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(meta
            .get(HEAD)?
            .map(|v| u64::from_be_bytes(v.value().try_into().expect("8 bytes"))))
    }

    pub fn spec_hash(&self) -> Result<Option<Hash32>> {
        let tx = self.db.begin_read()?;
        let Ok(meta) = tx.open_table(META) else {
            return Ok(None);
        };
        Ok(meta
            .get(SPEC_HASH)?
            .map(|v| Hash32(v.value().try_into().expect("32 bytes"))))
    }

    /// Commits a block with everything it produced and the commit that finalized it, in one write
    /// transaction; the candidates of its height are dropped with it.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_block(
        &self,
        block: &Block,
        events: &[EventRecord],
        receipts: &[TxRecord],
        changes: &[Change],
        spec_hash: Option<Hash32>,
        commit: Option<&Commit>,
    ) -> Result<()> {
        let height = block.header.height;
        let hash = block.hash();
        let tx = self.db.begin_write()?;
        {
            tx.open_table(BLOCKS)?
                .insert(height, block.encode().as_slice())?;
            tx.open_table(BLOCK_BY_HASH)?.insert(&hash.0, height)?;
            tx.open_table(EVENTS)?
                .insert(height, codec::encode(events).as_slice())?;
            let mut txs = tx.open_table(TXS)?;
            for (signed, record) in block.txs.iter().zip(receipts) {
                txs.insert(&signed.hash().0, codec::encode(record).as_slice())?;
            }
            for change in changes {
                let name = state_table_name(change.table);
                let mut table = tx.open_table(state_table(&name))?;
                match &change.value {
                    Some(value) => table.insert(change.key.as_slice(), value.as_slice())?,
                    None => table.remove(change.key.as_slice())?,
                };
            }
            if let Some(commit) = commit {
                tx.open_table(COMMITS)?
                    .insert(height, codec::encode(commit).as_slice())?;
            }
            tx.delete_table(CANDIDATES)?;
            let mut meta = tx.open_table(META)?;
            meta.insert(HEAD, height.to_be_bytes().as_slice())?;
            if let Some(spec_hash) = spec_hash {
                meta.insert(SPEC_HASH, spec_hash.0.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>> {
        let tx = self.db.begin_read()?;
        let Ok(blocks) = tx.open_table(BLOCKS) else {
            return Ok(None);
        };
        let Some(bytes) = blocks.get(height)? else {
            return Ok(None);
        };
        Ok(Some(
            Block::decode(bytes.value()).context("a stored block does not decode")?,
        ))
    }

    /// The validators' commit of the block at `height` (none for the genesis or a solo chain).
    pub fn commit(&self, height: u64) -> Result<Option<Commit>> {
        let tx = self.db.begin_read()?;
        let Ok(commits) = tx.open_table(COMMITS) else {
            return Ok(None);
        };
        let Some(bytes) = commits.get(height)? else {
            return Ok(None);
        };
        Ok(Some(codec::decode("commit", bytes.value(), usize::MAX)?))
    }

    /// Replaces the commit of a committed block (to add what was learnt after it was committed).
    pub fn put_commit(&self, commit: &Commit) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(COMMITS)?
            .insert(commit.height, codec::encode(commit).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Keeps a candidate block for the next height until a block is committed.
    pub fn keep_candidate(&self, block: &Block) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(CANDIDATES)?
            .insert(&block.hash().0, block.encode().as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// A candidate block kept by [`Store::keep_candidate`] since the last commit.
    pub fn candidate(&self, hash: &Hash32) -> Result<Option<Block>> {
        let tx = self.db.begin_read()?;
        let Ok(candidates) = tx.open_table(CANDIDATES) else {
            return Ok(None);
        };
        let Some(bytes) = candidates.get(&hash.0)? else {
            return Ok(None);
        };
        Ok(Some(
            Block::decode(bytes.value()).context("a kept candidate does not decode")?,
        ))
    }

    pub fn height_of(&self, hash: &Hash32) -> Result<Option<u64>> {
        let tx = self.db.begin_read()?;
        let Ok(index) = tx.open_table(BLOCK_BY_HASH) else {
            return Ok(None);
        };
        Ok(index.get(&hash.0)?.map(|v| v.value()))
    }

    pub fn events(&self, height: u64) -> Result<Vec<EventRecord>> {
        let tx = self.db.begin_read()?;
        let Ok(events) = tx.open_table(EVENTS) else {
            return Ok(vec![]);
        };
        let Some(bytes) = events.get(height)? else {
            return Ok(vec![]);
        };
        Ok(codec::decode("events", bytes.value(), usize::MAX)?)
    }

    pub fn tx(&self, hash: &Hash32) -> Result<Option<TxRecord>> {
        let tx = self.db.begin_read()?;
        let Ok(txs) = tx.open_table(TXS) else {
            return Ok(None);
        };
        let Some(bytes) = txs.get(&hash.0)? else {
            return Ok(None);
        };
        Ok(Some(codec::decode("tx record", bytes.value(), usize::MAX)?))
    }

    /// Reads the whole state back into memory and checks it against the head's state root.
    pub fn load_state(&self, expected_root: Hash32) -> Result<State> {
        let mut state = State::new();
        let tx = self.db.begin_read()?;
        for name in State::TABLES {
            let table_name = state_table_name(name);
            let table = match tx.open_table(state_table(&table_name)) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            for entry in table.iter()? {
                let (key, value) = entry?;
                state
                    .load(name, key.value(), value.value())
                    .map_err(anyhow::Error::msg)?;
            }
        }
        if state.root() != expected_root {
            bail!(
                "the stored state does not match the head block's state root: the store is damaged"
            );
        }
        Ok(state)
    }

    /// One state entry as of the last committed block.
    pub fn get<K: TableKey, V: TableValue>(&self, table: &str, key: &K) -> Result<Option<V>> {
        let tx = self.db.begin_read()?;
        let name = state_table_name(table);
        let Ok(t) = tx.open_table(state_table(&name)) else {
            return Ok(None);
        };
        let Some(bytes) = t.get(key.key_bytes().as_slice())? else {
            return Ok(None);
        };
        Ok(Some(codec::decode(
            "state entry",
            bytes.value(),
            usize::MAX,
        )?))
    }

    /// Up to `limit` entries of a table in key order, starting at `from` (or at a key prefix).
    pub fn page<K: TableKey, V: TableValue>(
        &self,
        table: &str,
        from: &[u8],
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(K, V)>> {
        let tx = self.db.begin_read()?;
        let name = state_table_name(table);
        let Ok(t) = tx.open_table(state_table(&name)) else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for entry in t.range(from..)? {
            let (key, value) = entry?;
            if !key.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            let k = K::from_key_bytes(key.value()).context("a stored key does not decode")?;
            out.push((k, codec::decode("state entry", value.value(), usize::MAX)?));
        }
        Ok(out)
    }
}
