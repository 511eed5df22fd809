//! Blocks: a header naming its parent, its transactions, the state they produced and the events they
//! emitted, and the author's seal over the header.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::codec::{self, CodecError};
use tfgrid_types::keys::{AccountId, Signature};
use tfgrid_types::{Hash32, merkle_root};

use crate::event::Event;
use crate::limits::BLOCK_BYTES_MAX;
use crate::tx::SignedTransaction;

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Header {
    pub parent_hash: Hash32,
    pub height: u64,
    /// Unix milliseconds, strictly greater than the parent's.
    pub timestamp_ms: u64,
    pub tx_root: Hash32,
    pub state_root: Hash32,
    pub events_root: Hash32,
    pub author: AccountId,
}

impl Header {
    pub fn hash(&self) -> Hash32 {
        Hash32::of_encoded("tfchain header", self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<SignedTransaction>,
    /// The author's signature of the header hash (all zero for the genesis block).
    pub seal: Signature,
}

impl Block {
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Block, CodecError> {
        codec::decode("block", bytes, BLOCK_BYTES_MAX)
    }
}

/// What finalized a block under BFT: the precommits of more than two thirds of the validators of its
/// height, each an ed25519 signature of the precommit for (`height`, `round`, `block_hash`).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Commit {
    pub height: u64,
    pub round: u32,
    pub block_hash: Hash32,
    pub signatures: Vec<(AccountId, Signature)>,
    /// Validators caught signing two different proposals or votes for one step of this height.
    pub equivocators: Vec<AccountId>,
}

/// An event with the transaction that emitted it (`None`: block initialisation or genesis).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EventRecord {
    pub tx_index: Option<u32>,
    pub event: Event,
}

pub fn tx_root(txs: &[SignedTransaction]) -> Hash32 {
    merkle_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>())
}

pub fn events_root(events: &[EventRecord]) -> Hash32 {
    let leaves: Vec<Hash32> = events
        .iter()
        .map(|e| Hash32::of_encoded("tfchain event", e))
        .collect();
    merkle_root(&leaves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::tests::{
        CASES, account, assert_both_outcomes, decode_mutated, prefixes_cut_short, signed_tx, tally,
    };
    use mutation::mutation;
    use proptest::prelude::*;

    fn hash() -> impl Strategy<Value = Hash32> {
        any::<[u8; 32]>().prop_map(Hash32)
    }

    fn block() -> impl Strategy<Value = Block> {
        let header = (
            [hash(), hash(), hash(), hash()],
            any::<(u64, u64)>(),
            account(),
        )
            .prop_map(
                |(
                    [parent_hash, tx_root, state_root, events_root],
                    (height, timestamp_ms),
                    author,
                )| {
                    Header {
                        parent_hash,
                        height,
                        timestamp_ms,
                        tx_root,
                        state_root,
                        events_root,
                        author,
                    }
                },
            );
        (
            header,
            prop::collection::vec(signed_tx(), 0..4),
            any::<[u8; 64]>(),
        )
            .prop_map(|(header, txs, seal)| Block {
                header,
                txs,
                seal: Signature(seal),
            })
    }

    /// Valid blocks decode back to themselves; every strict prefix is refused as cut short.
    #[test]
    fn valid_blocks_roundtrip() {
        let (decoded, _) = tally(block(), |block| {
            let bytes = block.encode();
            prop_assert_eq!(Block::decode(&bytes), Ok(block.clone()));
            prefixes_cut_short(&bytes, Block::decode)?;
            Ok(true)
        });
        assert_eq!(decoded, CASES);
    }

    /// A changed valid block decodes to a value that is its own encoding, or is refused with a
    /// reason (cut ones as cut short); a changed header changes the block's hash.
    #[test]
    fn mutated_blocks_decode_or_are_refused() {
        let counts = tally((block(), mutation()), |(block, m)| {
            let decoded = decode_mutated(&block.encode(), &m, Block::decode)?;
            if let Some(mutated) = &decoded {
                prop_assert_eq!(
                    mutated.header == block.header,
                    mutated.hash() == block.hash()
                );
            }
            Ok(decoded.is_some())
        });
        assert_both_outcomes(counts);
    }
}
