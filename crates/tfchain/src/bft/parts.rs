//! Proposed blocks as streams of parts: the proposer cuts the encoded block into chunks behind an
//! `Init` part (who proposes, at which height and round) and ends the stream; a receiver puts each
//! peer's streams back together whatever order the parts arrive in, and holds a bounded number of
//! unfinished streams.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::PeerId;
use malachitebft_core_types::Round;
use tfchain_runtime::Block;

use super::context::{Address, Height, ProposalPart};

/// The size of one chunk of a streamed block.
pub const CHUNK_BYTES: usize = 128 * 1024;
/// Unfinished streams kept at once; the oldest is dropped beyond it.
pub const STREAMS_MAX: usize = 64;

/// A proposal put back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposed {
    pub height: Height,
    pub round: Round,
    pub pol_round: Round,
    pub proposer: Address,
    pub block: Block,
}

/// The stream of parts that carries `block`, proposed by `proposer` at (`height`, `round`).
pub fn stream(
    height: Height,
    round: Round,
    pol_round: Round,
    proposer: Address,
    block: &Block,
) -> Vec<StreamMessage<ProposalPart>> {
    let mut id = height.0.to_be_bytes().to_vec();
    id.extend_from_slice(&round.as_i64().to_be_bytes());
    let id = StreamId::new(Bytes::from(id));
    let encoded = block.encode();
    let parts = std::iter::once(ProposalPart::Init {
        height,
        round,
        pol_round,
        proposer,
    })
    .chain(
        encoded
            .chunks(CHUNK_BYTES)
            .map(|c| ProposalPart::Chunk(c.to_vec())),
    )
    .chain(std::iter::once(ProposalPart::Fin));
    let mut messages: Vec<_> = parts
        .enumerate()
        .map(|(i, part)| StreamMessage::new(id.clone(), i as u64, StreamContent::Data(part)))
        .collect();
    messages.push(StreamMessage::new(
        id,
        messages.len() as u64,
        StreamContent::Fin,
    ));
    messages
}

#[derive(Debug, Default)]
struct Partial {
    parts: BTreeMap<u64, ProposalPart>,
    /// The sequence number of the stream's end, once seen.
    end: Option<u64>,
}

/// Each peer's unfinished streams.
#[derive(Debug, Default)]
pub struct Streams {
    partial: HashMap<(PeerId, StreamId), Partial>,
    order: VecDeque<(PeerId, StreamId)>,
}

impl Streams {
    /// Takes in one message from `peer`; returns the proposal once its stream is whole. A stream
    /// that does not make a proposal (no `Init` first, a block that does not decode) is dropped.
    pub fn insert(
        &mut self,
        peer: PeerId,
        message: StreamMessage<ProposalPart>,
    ) -> Option<Result<Proposed, String>> {
        let key = (peer, message.stream_id.clone());
        if !self.partial.contains_key(&key) {
            if self.order.len() >= STREAMS_MAX
                && let Some(oldest) = self.order.pop_front()
            {
                self.partial.remove(&oldest);
            }
            self.order.push_back(key.clone());
        }
        let partial = self.partial.entry(key.clone()).or_default();
        match message.content {
            StreamContent::Data(part) => {
                partial.parts.insert(message.sequence, part);
            }
            StreamContent::Fin => partial.end = Some(message.sequence),
        }
        let end = partial.end?;
        if partial.parts.len() as u64 != end {
            return None;
        }
        let partial = self.partial.remove(&key).expect("present");
        self.order.retain(|k| k != &key);
        Some(assemble(partial.parts.into_values()))
    }

    /// Forgets every stream of a height below `height`.
    pub fn prune_below(&mut self, height: Height) {
        let stale = |p: &Partial| matches!(p.parts.get(&0), Some(ProposalPart::Init { height: h, .. }) if *h < height);
        self.partial.retain(|_, p| !stale(p));
        let partial = &self.partial;
        self.order.retain(|k| partial.contains_key(k));
    }
}

fn assemble(parts: impl Iterator<Item = ProposalPart>) -> Result<Proposed, String> {
    let mut parts = parts.peekable();
    let Some(ProposalPart::Init {
        height,
        round,
        pol_round,
        proposer,
    }) = parts.next()
    else {
        return Err("a proposal stream does not start with its Init part".into());
    };
    let mut bytes = Vec::new();
    for part in parts {
        match part {
            ProposalPart::Chunk(chunk) => bytes.extend_from_slice(&chunk),
            ProposalPart::Fin => break,
            ProposalPart::Init { .. } => return Err("a proposal stream has two Init parts".into()),
        }
    }
    let block = Block::decode(&bytes).map_err(|e| format!("a proposed block: {e}"))?;
    Ok(Proposed {
        height,
        round,
        pol_round,
        proposer,
        block,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tfchain_runtime::Header;
    use tfgrid_types::{AccountId, Hash32, Signature};

    fn block(filler: usize) -> Block {
        let call = tfchain_runtime::Call::Balances(tfchain_runtime::balances::Call::Transfer {
            dest: AccountId([1; 32]),
            amount: 5,
        });
        let key = tfgrid_types::Keypair::from_seed([7; 32]);
        let txs = (0..filler)
            .map(|nonce| {
                tfchain_runtime::Transaction {
                    signer: key.account(),
                    nonce: nonce as u64,
                    call: call.clone(),
                }
                .sign(&key, &Hash32::default())
            })
            .collect();
        Block {
            header: Header {
                parent_hash: Hash32([3; 32]),
                height: 9,
                timestamp_ms: 10,
                tx_root: Hash32::default(),
                state_root: Hash32::default(),
                events_root: Hash32::default(),
                author: AccountId([2; 32]),
            },
            txs,
            seal: Signature([0; 64]),
        }
    }

    /// A peer id that inlines one byte.
    fn peer(n: u8) -> PeerId {
        PeerId::from_bytes(&[0, 1, n]).unwrap()
    }

    proptest! {
        /// Whatever order the parts come in, and with another stream interleaved, each stream gives
        /// back exactly its block, once, when its last part arrives.
        #[test]
        fn streams_reassemble_in_any_order(
            txs in 0usize..1500,
            seed in any::<u64>(),
        ) {
            let mine = block(txs);
            let other = block(3);
            let a = stream(Height(9), Round::new(0), Round::Nil, Address(AccountId([2; 32])), &mine);
            let b = stream(Height(9), Round::new(1), Round::Nil, Address(AccountId([4; 32])), &other);
            let peer = peer(1);
            let mut all: Vec<_> = a.into_iter().map(|m| (0, m)).chain(b.into_iter().map(|m| (1, m))).collect();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..all.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                all.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut streams = Streams::default();
            let mut done = vec![];
            for (which, message) in all {
                if let Some(result) = streams.insert(peer, message) {
                    done.push((which, result.unwrap()));
                }
            }
            prop_assert_eq!(done.len(), 2);
            for (which, proposed) in done {
                let expected = if which == 0 { &mine } else { &other };
                prop_assert_eq!(&proposed.block, expected);
            }
            prop_assert!(streams.partial.is_empty());
        }
    }

    #[test]
    fn a_stream_without_init_is_refused_and_old_streams_are_bounded() {
        let messages = stream(
            Height(1),
            Round::new(0),
            Round::Nil,
            Address(AccountId([2; 32])),
            &block(1),
        );
        let peer = peer(2);
        let mut streams = Streams::default();
        let mut result = None;
        for m in messages.into_iter().skip(1) {
            result = streams.insert(peer, m);
        }
        // The Init part is missing: the stream never completes.
        assert!(result.is_none());
        for round in 0..(STREAMS_MAX as u32 + 10) {
            let m = stream(
                Height(2),
                Round::new(round),
                Round::Nil,
                Address(AccountId([2; 32])),
                &block(0),
            );
            streams.insert(peer, m[0].clone());
        }
        assert_eq!(streams.partial.len(), STREAMS_MAX);
        streams.prune_below(Height(3));
        assert!(streams.partial.is_empty() && streams.order.is_empty());
    }
}
