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
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic the block decoder; what decodes re-encodes identically.
        #[test]
        fn decode_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            if let Ok(block) = Block::decode(&bytes) {
                prop_assert_eq!(block.encode(), bytes);
            }
        }
    }
}
