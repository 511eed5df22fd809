//! The in-memory index: where the live version of each key sits on disk. User mode keeps a hash map
//! from key to [`Loc`] (keys up to 22 bytes stored inline in the table slot, longer ones boxed);
//! sequential mode keeps a vector indexed by id and the next id to hand out, which an overwrite
//! advances as 0-db's does. Both report their memory use.

use crate::format::NONE_U32;
use hashbrown::HashMap;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// Longest key stored inside the table slot itself.
pub const INLINE_KEY_MAX: usize = 22;

/// A key: inline up to [`INLINE_KEY_MAX`] bytes (no allocation, no pointer to chase), boxed beyond.
#[derive(Debug, Clone)]
pub enum SmallKey {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_MAX],
    },
    Heap(Box<[u8]>),
}

impl SmallKey {
    pub fn new(key: &[u8]) -> SmallKey {
        if key.len() <= INLINE_KEY_MAX {
            let mut bytes = [0u8; INLINE_KEY_MAX];
            bytes[..key.len()].copy_from_slice(key);
            SmallKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            SmallKey::Heap(key.into())
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            SmallKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            SmallKey::Heap(b) => b,
        }
    }
}

impl Borrow<[u8]> for SmallKey {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for SmallKey {
    fn eq(&self, other: &SmallKey) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SmallKey {}

impl Hash for SmallKey {
    // Must hash exactly as `[u8]` does, so lookups by `&[u8]` find it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

/// Location and metadata of the live version of one key: 16 bytes (the CRC stays on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Data (and index) file id.
    pub file_id: u32,
    /// Offset of the data entry in its data file.
    pub data_off: u32,
    /// Payload length.
    pub len: u32,
    /// Last update, unix seconds.
    pub ts: u32,
}

impl Loc {
    const VACANT: Loc = Loc {
        file_id: NONE_U32,
        data_off: 0,
        len: 0,
        ts: 0,
    };

    fn is_vacant(&self) -> bool {
        self.file_id == NONE_U32
    }
}

/// Heap overhead the allocator adds to each boxed key (glibc: one 8-byte header, 16-byte granules).
const ALLOC_OVERHEAD_BYTES: usize = 8;

/// The key index of one namespace.
#[derive(Debug)]
pub enum Keys {
    User {
        map: HashMap<SmallKey, Loc>,
        /// Heap bytes held by the boxed keys, as the allocator rounds them.
        key_heap_bytes: usize,
    },
    Seq {
        slots: Vec<Loc>,
        live: usize,
        /// Next id to allocate. 0-db keeps a copy of an overwritten entry in a fresh index slot,
        /// so every overwrite spends an id too: after SET, overwrite and DEL of id 0, SET gets 2.
        next: u64,
    },
}

impl Keys {
    pub fn user() -> Keys {
        Keys::User {
            map: HashMap::new(),
            key_heap_bytes: 0,
        }
    }

    pub fn seq() -> Keys {
        Keys::Seq {
            slots: Vec::new(),
            live: 0,
            next: 0,
        }
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        match self {
            Keys::User { map, .. } => map.len(),
            Keys::Seq { live, .. } => *live,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Next sequential id (seq mode) or the number of keys (user mode).
    pub fn next_id(&self) -> u64 {
        match self {
            Keys::User { map, .. } => map.len() as u64,
            Keys::Seq { next, .. } => *next,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<Loc> {
        match self {
            Keys::User { map, .. } => map.get(key).copied(),
            Keys::Seq { slots, .. } => {
                let id = seq_id(key)?;
                slots
                    .get(usize::try_from(id).ok()?)
                    .copied()
                    .filter(|l| !l.is_vacant())
            }
        }
    }

    /// Inserts or replaces; returns the previous location. In sequential mode a replacement spends
    /// an id, as in 0-db, and an id at or past the next one moves the next one past it.
    pub fn insert(&mut self, key: &[u8], loc: Loc) -> Option<Loc> {
        match self {
            Keys::User {
                map,
                key_heap_bytes,
            } => {
                if let Some(slot) = map.get_mut(key) {
                    return Some(std::mem::replace(slot, loc));
                }
                *key_heap_bytes += key_alloc_bytes(key.len());
                map.insert(SmallKey::new(key), loc);
                None
            }
            Keys::Seq { slots, live, next } => {
                let id = seq_id(key).expect("sequential keys are 8 bytes");
                *next = (*next).max(id + 1);
                let id = usize::try_from(id).expect("sequential id fits in memory");
                if id >= slots.len() {
                    slots.resize(id + 1, Loc::VACANT);
                }
                let old = std::mem::replace(&mut slots[id], loc);
                if old.is_vacant() {
                    *live += 1;
                    None
                } else {
                    *next += 1;
                    Some(old)
                }
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Loc> {
        match self {
            Keys::User {
                map,
                key_heap_bytes,
            } => {
                let old = map.remove(key)?;
                *key_heap_bytes -= key_alloc_bytes(key.len());
                Some(old)
            }
            Keys::Seq { slots, live, .. } => {
                let id = usize::try_from(seq_id(key)?).ok()?;
                let slot = slots.get_mut(id)?;
                if slot.is_vacant() {
                    return None;
                }
                *live -= 1;
                Some(std::mem::replace(slot, Loc::VACANT))
            }
        }
    }

    /// Reserves a fresh sequential id (seq mode only); the caller inserts it.
    pub fn allocate_id(&self) -> u64 {
        match self {
            Keys::Seq { next, .. } => *next,
            Keys::User { .. } => unreachable!("ids are allocated in sequential mode only"),
        }
    }

    /// Bytes of memory the index holds: table slots (with control bytes) and key allocations.
    pub fn memory_bytes(&self) -> usize {
        match self {
            Keys::User {
                map,
                key_heap_bytes,
            } => {
                let slot = std::mem::size_of::<(SmallKey, Loc)>() + 1;
                // hashbrown keeps capacity * 8 / 7 buckets, rounded to a power of two.
                let buckets = if map.capacity() == 0 {
                    0
                } else {
                    (map.capacity() * 8 / 7).next_power_of_two()
                };
                buckets * slot + key_heap_bytes
            }
            Keys::Seq { slots, .. } => slots.capacity() * std::mem::size_of::<Loc>(),
        }
    }

    pub fn clear(&mut self) {
        *self = match self {
            Keys::User { .. } => Keys::user(),
            Keys::Seq { .. } => Keys::seq(),
        };
    }
}

/// Decodes an 8-byte little-endian sequential key.
pub fn seq_id(key: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(key.try_into().ok()?))
}

fn key_alloc_bytes(len: usize) -> usize {
    if len <= INLINE_KEY_MAX {
        return 0;
    }
    (len + ALLOC_OVERHEAD_BYTES).next_multiple_of(16).max(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(n: u32) -> Loc {
        Loc {
            file_id: 0,
            data_off: n,
            len: n,
            ts: n,
        }
    }

    #[test]
    fn user_index_tracks_keys_and_memory() {
        let mut keys = Keys::user();
        assert_eq!(keys.insert(b"a", loc(1)), None);
        assert_eq!(keys.insert(b"a", loc(2)), Some(loc(1)));
        assert_eq!(keys.get(b"a"), Some(loc(2)));
        assert!(keys.memory_bytes() > 0);
        assert_eq!(keys.remove(b"a"), Some(loc(2)));
        assert!(keys.is_empty());
        assert_eq!(keys.remove(b"a"), None);
    }

    #[test]
    fn seq_index_fills_and_counts() {
        let mut keys = Keys::seq();
        assert_eq!(keys.allocate_id(), 0);
        keys.insert(&0u64.to_le_bytes(), loc(1));
        keys.insert(&1u64.to_le_bytes(), loc(2));
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.remove(&0u64.to_le_bytes()), Some(loc(1)));
        assert_eq!(keys.get(&0u64.to_le_bytes()), None);
        assert_eq!(keys.get(b"short"), None);
        assert_eq!((keys.len(), keys.next_id()), (1, 2));
    }

    #[test]
    fn seq_overwrite_spends_an_id() {
        let mut keys = Keys::seq();
        let id0 = keys.allocate_id().to_le_bytes();
        assert_eq!(keys.insert(&id0, loc(1)), None);
        assert_eq!(keys.next_id(), 1);
        assert_eq!(keys.insert(&id0, loc(2)), Some(loc(1)));
        assert_eq!(keys.next_id(), 2);
        keys.remove(&id0);
        assert_eq!(keys.allocate_id(), 2);
        // The spent id holds nothing.
        assert_eq!(keys.get(&1u64.to_le_bytes()), None);
        // An id placed past the next one (replication) moves it.
        keys.insert(&9u64.to_le_bytes(), loc(3));
        assert_eq!((keys.next_id(), keys.len()), (10, 1));
    }

    #[test]
    fn memory_per_key_is_bounded() {
        let mut keys = Keys::user();
        for i in 0..100_000u32 {
            keys.insert(format!("key:{i:012}").as_bytes(), loc(i));
        }
        // 16-byte keys live inline: a 41-byte slot (with its control byte) at a load >= 7/16.
        let per_key = keys.memory_bytes() / keys.len();
        assert!(per_key <= 41 * 16 / 7, "{per_key} bytes per key");
        let mut long = Keys::user();
        long.insert(&[7u8; 100], loc(1));
        assert_eq!(long.get(&[7u8; 100]), Some(loc(1)));
        assert!(long.memory_bytes() >= 112);
        long.remove(&[7u8; 100]);
        assert!(long.is_empty());
    }
}
