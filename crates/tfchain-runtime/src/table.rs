//! A typed table of the ledger state: an ordered map kept in memory, with an undo log for the running
//! transaction (a failed call leaves no trace) and, per block, the value each touched key had when the
//! block began (to persist exactly what changed and to update the state hash once per key). A copy
//! of a state follows another by taking in the changes of its blocks.

use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use tfgrid_types::codec;
use tfgrid_types::{AccountId, Hash32};

use crate::lthash::LtHash;

/// A key of a table, with an encoding that sorts like the key (big-endian integers), so stores can
/// page through a table in key order.
pub trait TableKey: Ord + Hash + Clone + std::fmt::Debug {
    fn encode_key(&self, out: &mut Vec<u8>);
    fn decode_key(bytes: &[u8]) -> Option<(Self, &[u8])>;

    fn key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_key(&mut out);
        out
    }

    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        match Self::decode_key(bytes)? {
            (key, []) => Some(key),
            _ => None,
        }
    }
}

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl TableKey for $t {
            fn encode_key(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn decode_key(bytes: &[u8]) -> Option<(Self, &[u8])> {
                const N: usize = std::mem::size_of::<$t>();
                let head: [u8; N] = bytes.get(..N)?.try_into().ok()?;
                Some((<$t>::from_be_bytes(head), &bytes[N..]))
            }
        }
    )*};
}
int_key!(u32, u64);

impl TableKey for () {
    fn encode_key(&self, _: &mut Vec<u8>) {}
    fn decode_key(bytes: &[u8]) -> Option<(Self, &[u8])> {
        Some(((), bytes))
    }
}

impl TableKey for AccountId {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn decode_key(bytes: &[u8]) -> Option<(Self, &[u8])> {
        Some((AccountId(bytes.get(..32)?.try_into().ok()?), &bytes[32..]))
    }
}

impl TableKey for Hash32 {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn decode_key(bytes: &[u8]) -> Option<(Self, &[u8])> {
        Some((Hash32(bytes.get(..32)?.try_into().ok()?), &bytes[32..]))
    }
}

/// Byte strings and names sort as bytes; they must come last in a compound key.
impl TableKey for Vec<u8> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode_key(bytes: &[u8]) -> Option<(Self, &[u8])> {
        Some((bytes.to_vec(), &[]))
    }
}

impl TableKey for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode_key(bytes: &[u8]) -> Option<(Self, &[u8])> {
        Some((String::from_utf8(bytes.to_vec()).ok()?, &[]))
    }
}

impl<A: TableKey, B: TableKey> TableKey for (A, B) {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Option<(Self, &[u8])> {
        let (a, rest) = A::decode_key(bytes)?;
        let (b, rest) = B::decode_key(rest)?;
        Some(((a, b), rest))
    }
}

/// A value of a table: stored with the canonical codec.
pub trait TableValue: BorshSerialize + BorshDeserialize + Clone {}
impl<T: BorshSerialize + BorshDeserialize + Clone> TableValue for T {}

/// One entry changed by a block: what a store writes (a value) or deletes (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub table: &'static str,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Table<K: TableKey, V: TableValue> {
    name: &'static str,
    map: BTreeMap<K, V>,
    block_start: HashMap<K, Option<V>>,
    tx_undo: Vec<(K, Option<V>)>,
}

impl<K: TableKey, V: TableValue> Table<K, V> {
    pub fn new(name: &'static str) -> Self {
        Table {
            name,
            map: BTreeMap::new(),
            block_start: HashMap::new(),
            tx_undo: Vec::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.map.iter()
    }

    pub fn range<R: std::ops::RangeBounds<K>>(&self, range: R) -> impl Iterator<Item = (&K, &V)> {
        self.map.range(range)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.set(key, Some(value))
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        if !self.map.contains_key(key) {
            return None;
        }
        self.set(key.clone(), None)
    }

    /// Changes one value in place through `f`; returns `None` when the key is absent.
    pub fn update<R>(&mut self, key: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let mut value = self.map.get(key)?.clone();
        let out = f(&mut value);
        self.set(key.clone(), Some(value));
        Some(out)
    }

    fn set(&mut self, key: K, value: Option<V>) -> Option<V> {
        let old = match value {
            Some(v) => self.map.insert(key.clone(), v),
            None => self.map.remove(&key),
        };
        self.block_start
            .entry(key.clone())
            .or_insert_with(|| old.clone());
        self.tx_undo.push((key, old.clone()));
        old
    }

    pub(crate) fn commit_tx(&mut self) {
        self.tx_undo.clear();
    }

    pub(crate) fn undo_len(&self) -> usize {
        self.tx_undo.len()
    }

    /// Undoes the changes logged after position `len` of the undo log.
    pub(crate) fn rollback_to(&mut self, len: usize) {
        while self.tx_undo.len() > len {
            let (key, old) = self.tx_undo.pop().expect("longer than len");
            match old {
                Some(v) => self.map.insert(key, v),
                None => self.map.remove(&key),
            };
        }
    }

    pub(crate) fn revert_block(&mut self) {
        self.tx_undo.clear();
        for (key, old) in self.block_start.drain() {
            match old {
                Some(v) => self.map.insert(key, v),
                None => self.map.remove(&key),
            };
        }
    }

    /// Ends the block: folds what changed into the state hash and lists it for the store.
    pub(crate) fn finish_block(&mut self, hash: &mut LtHash, out: &mut Vec<Change>) {
        self.block_changes(hash, out);
        self.block_start.clear();
    }

    /// Folds what the open block changed so far into `hash` and lists it; the block stays open.
    pub(crate) fn block_changes(&self, hash: &mut LtHash, out: &mut Vec<Change>) {
        assert!(
            self.tx_undo.is_empty(),
            "a block ended inside a transaction"
        );
        let mut touched: Vec<(&K, &Option<V>)> = self.block_start.iter().collect();
        touched.sort_by(|a, b| a.0.cmp(b.0));
        for (key, old) in touched {
            let key_bytes = key.key_bytes();
            let old = old.as_ref().map(codec::encode);
            let new = self.map.get(key).map(codec::encode);
            if old == new {
                continue;
            }
            if let Some(old) = &old {
                hash.remove(self.name, &key_bytes, old);
            }
            if let Some(new) = &new {
                hash.add(self.name, &key_bytes, new);
            }
            out.push(Change {
                table: self.name,
                key: key_bytes,
                value: new,
            });
        }
    }

    /// Takes in one change another copy of the state made in a finished block: sets or removes the
    /// entry and updates the state hash, outside any block.
    pub(crate) fn apply_change(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        hash: &mut LtHash,
    ) -> Result<(), String> {
        assert!(
            self.block_start.is_empty(),
            "a change taken in inside a block"
        );
        let k = K::from_key_bytes(key).ok_or_else(|| format!("bad key in table {}", self.name))?;
        let new = match value {
            Some(bytes) => {
                Some(codec::decode::<V>(self.name, bytes, usize::MAX).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let old = match new {
            Some(v) => self.map.insert(k, v),
            None => self.map.remove(&k),
        };
        if let Some(old) = old {
            hash.remove(self.name, key, &codec::encode(&old));
        }
        if let Some(bytes) = value {
            hash.add(self.name, key, bytes);
        }
        Ok(())
    }

    /// Puts back an entry read from a store at start-up, and folds it into the state hash.
    pub(crate) fn load(
        &mut self,
        key: &[u8],
        value: &[u8],
        hash: &mut LtHash,
    ) -> Result<(), String> {
        let k = K::from_key_bytes(key).ok_or_else(|| format!("bad key in table {}", self.name))?;
        let v: V = codec::decode(self.name, value, usize::MAX).map_err(|e| e.to_string())?;
        hash.add(self.name, key, value);
        self.map.insert(k, v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_encoding() {
        let keys = [1u32, 255, 256, 70_000];
        let encoded: Vec<Vec<u8>> = keys.iter().map(TableKey::key_bytes).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]));
        let pair = (7u32, b"name".to_vec());
        assert_eq!(
            <(u32, Vec<u8>)>::from_key_bytes(&pair.key_bytes()),
            Some(pair)
        );
    }

    #[test]
    fn undo_and_block_changes() {
        let mut t: Table<u32, u64> = Table::new("t");
        let mut h = LtHash::default();
        t.insert(1, 10);
        t.insert(2, 20);
        t.commit_tx();
        t.insert(1, 11);
        t.remove(&2);
        t.insert(3, 30);
        t.rollback_to(0);
        assert_eq!(
            (t.get(&1), t.get(&2), t.get(&3)),
            (Some(&10), Some(&20), None)
        );
        let mut changes = Vec::new();
        t.finish_block(&mut h, &mut changes);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| c.value.is_some()));
        // A key set and put back within a block is not a change.
        t.insert(1, 99);
        t.commit_tx();
        t.insert(1, 10);
        t.commit_tx();
        let mut none = Vec::new();
        t.finish_block(&mut h, &mut none);
        assert!(none.is_empty());
        // A reverted block restores the values of its start.
        t.remove(&1);
        t.commit_tx();
        t.revert_block();
        assert_eq!(t.get(&1), Some(&10));
    }
}
