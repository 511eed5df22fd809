//! 32-byte blake3 hashes: how blocks, transactions and state are named, and the Merkle root over lists.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A blake3 hash, shown as `0x` and 64 hex digits.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// blake3 of `bytes` under a domain, so hashes of different kinds of objects never collide.
    pub fn of(domain: &str, bytes: &[u8]) -> Hash32 {
        let mut hasher = blake3::Hasher::new_derive_key(domain);
        hasher.update(bytes);
        Hash32(*hasher.finalize().as_bytes())
    }

    /// The hash of a value's canonical encoding.
    pub fn of_encoded<T: BorshSerialize>(domain: &str, value: &T) -> Hash32 {
        Hash32::of(domain, &crate::codec::encode(value))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Hash32 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits, &mut out)
            .map_err(|_| format!("{s:?} is not a hash (0x and 64 hex digits)"))?;
        Ok(Hash32(out))
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The binary Merkle root of a list of hashes (leaves and inner nodes hashed under distinct domains; an
/// odd node is carried up unchanged). The root of an empty list is the hash of nothing.
pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    if leaves.is_empty() {
        return Hash32::of("tfgrid merkle empty", &[]);
    }
    let mut level: Vec<Hash32> = leaves
        .iter()
        .map(|leaf| Hash32::of("tfgrid merkle leaf", &leaf.0))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut both = [0u8; 64];
                    both[..32].copy_from_slice(&left.0);
                    both[32..].copy_from_slice(&right.0);
                    Hash32::of("tfgrid merkle node", &both)
                }
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Hash32::of("test", b"abc");
        assert_eq!(h.to_string().parse::<Hash32>().unwrap(), h);
        assert!("0x12".parse::<Hash32>().is_err());
    }

    #[test]
    fn merkle_root_depends_on_every_leaf_and_order() {
        let leaves: Vec<Hash32> = (0u8..5).map(|i| Hash32::of("t", &[i])).collect();
        let root = merkle_root(&leaves);
        let mut swapped = leaves.clone();
        swapped.swap(0, 1);
        assert_ne!(merkle_root(&swapped), root);
        assert_ne!(merkle_root(&leaves[..4]), root);
        assert_ne!(merkle_root(&[]), merkle_root(&leaves[..1]));
    }
}
