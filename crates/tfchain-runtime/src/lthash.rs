//! The state commitment: a lattice hash (LtHash) over every (table, key, value) entry of the state.
//! It is a sum of per-entry hashes modulo 2^16 per lane, so adding or removing one entry costs one
//! hash whatever the size of the state, and the result does not depend on the order of changes.

/// Lanes of 16 bits; 1024 lanes (2 KiB) give the security margin of Solana's accounts hash.
const LANES: usize = 1024;

#[derive(Clone, PartialEq, Eq)]
pub struct LtHash(Box<[u16; LANES]>);

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({})", self.root())
    }
}

impl Default for LtHash {
    fn default() -> Self {
        LtHash(Box::new([0; LANES]))
    }
}

impl LtHash {
    fn entry_lanes(table: &str, key: &[u8], value: &[u8]) -> [u16; LANES] {
        let mut hasher = blake3::Hasher::new_derive_key("tfchain state entry");
        for part in [table.as_bytes(), key, value] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        let mut bytes = [0u8; LANES * 2];
        hasher.finalize_xof().fill(&mut bytes);
        let mut lanes = [0u16; LANES];
        for (lane, pair) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([pair[0], pair[1]]);
        }
        lanes
    }

    pub fn add(&mut self, table: &str, key: &[u8], value: &[u8]) {
        let lanes = Self::entry_lanes(table, key, value);
        for (acc, x) in self.0.iter_mut().zip(lanes) {
            *acc = acc.wrapping_add(x);
        }
    }

    pub fn remove(&mut self, table: &str, key: &[u8], value: &[u8]) {
        let lanes = Self::entry_lanes(table, key, value);
        for (acc, x) in self.0.iter_mut().zip(lanes) {
            *acc = acc.wrapping_sub(x);
        }
    }

    /// The 32-byte state root committed in block headers.
    pub fn root(&self) -> tfgrid_types::Hash32 {
        let mut bytes = Vec::with_capacity(LANES * 2);
        for lane in self.0.iter() {
            bytes.extend_from_slice(&lane.to_le_bytes());
        }
        tfgrid_types::Hash32::of("tfchain state root", &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_and_removable() {
        let mut a = LtHash::default();
        a.add("t", b"k1", b"v1");
        a.add("t", b"k2", b"v2");
        let mut b = LtHash::default();
        b.add("t", b"k2", b"v2");
        b.add("t", b"k1", b"v1");
        assert_eq!(a.root(), b.root());
        b.remove("t", b"k2", b"v2");
        assert_ne!(a.root(), b.root());
        b.remove("t", b"k1", b"v1");
        assert_eq!(b.root(), LtHash::default().root());
        // The length prefixes keep (table, key, value) boundaries apart.
        let mut c = LtHash::default();
        c.add("t", b"k1v", b"1");
        assert_ne!(c.root(), {
            let mut d = LtHash::default();
            d.add("t", b"k1", b"v1");
            d.root()
        });
    }
}
