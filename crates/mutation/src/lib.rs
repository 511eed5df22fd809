//! Changes to valid encodings for decoder property tests (a dev-dependency only): flip a byte,
//! insert one, delete one, or keep a strict prefix. The decoders' tests build valid encodings,
//! mutate them with these, and count what still decodes.

use proptest::prelude::*;

/// One change to a valid encoding.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    /// Keep a strict prefix.
    Truncate(prop::sample::Index),
}

/// Any one change.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<prop::sample::Index>();
    prop_oneof![
        (at.clone(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (at.clone(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        at.clone().prop_map(Mutation::Delete),
        at.prop_map(Mutation::Truncate),
    ]
}

/// `bytes` (not empty) changed by `m`.
pub fn mutate(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match m {
        Mutation::Flip(i, mask) => out[i.index(bytes.len())] ^= mask,
        Mutation::Insert(i, b) => out.insert(i.index(bytes.len() + 1), *b),
        Mutation::Delete(i) => drop(out.remove(i.index(bytes.len()))),
        Mutation::Truncate(i) => out.truncate(i.index(bytes.len())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest! {
        #[test]
        fn each_change_changes_as_it_says(
            bytes in prop::collection::vec(any::<u8>(), 1..64),
            m in mutation(),
        ) {
            let out = mutate(&bytes, &m);
            match m {
                Mutation::Flip(..) => {
                    prop_assert_eq!(out.len(), bytes.len());
                    prop_assert_ne!(out, bytes);
                }
                Mutation::Insert(..) => prop_assert_eq!(out.len(), bytes.len() + 1),
                Mutation::Delete(..) => prop_assert_eq!(out.len(), bytes.len() - 1),
                Mutation::Truncate(..) => {
                    prop_assert!(out.len() < bytes.len());
                    prop_assert!(bytes.starts_with(&out));
                }
            }
        }
    }
}
