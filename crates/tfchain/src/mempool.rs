//! The transaction pool: signature-checked transactions waiting for a block, at most a bounded number
//! in all and per sender, taken in arrival order while keeping each sender's nonces in sequence.
//! Transactions that can no longer be included are dropped with their reason, remembered for a while.

use std::collections::{BTreeMap, HashMap, VecDeque};

use tfchain_runtime::SignedTransaction;
use tfgrid_types::{AccountId, Hash32};
use thiserror::Error;

use crate::limits::{DROPPED_REMEMBERED_MAX, POOL_TXS_MAX, POOL_TXS_PER_SENDER_MAX};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("the transaction is already pending")]
    AlreadyKnown,
    #[error("the pool is full ({POOL_TXS_MAX} transactions): try again shortly")]
    Full,
    #[error("account {0} has {POOL_TXS_PER_SENDER_MAX} pending transactions already")]
    SenderFull(AccountId),
    #[error("bad nonce: a pending transaction of this account already uses nonce {0}")]
    NonceTaken(u64),
}

#[derive(Debug, Clone)]
pub struct PoolTx {
    pub hash: Hash32,
    pub tx: SignedTransaction,
    pub encoded_len: usize,
}

#[derive(Debug, Default)]
pub struct Mempool {
    txs: HashMap<Hash32, (u64, PoolTx)>,
    by_sender: HashMap<AccountId, BTreeMap<u64, Hash32>>,
    arrival: BTreeMap<u64, Hash32>,
    next_seq: u64,
    dropped: HashMap<Hash32, String>,
    dropped_order: VecDeque<Hash32>,
}

impl Mempool {
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    pub fn contains(&self, hash: &Hash32) -> bool {
        self.txs.contains_key(hash)
    }

    pub fn dropped_reason(&self, hash: &Hash32) -> Option<&str> {
        self.dropped.get(hash).map(String::as_str)
    }

    pub fn insert(&mut self, tx: PoolTx) -> Result<(), PoolError> {
        if self.txs.contains_key(&tx.hash) {
            return Err(PoolError::AlreadyKnown);
        }
        if self.txs.len() >= POOL_TXS_MAX {
            return Err(PoolError::Full);
        }
        let sender = tx.tx.tx.signer;
        let nonces = self.by_sender.entry(sender).or_default();
        if nonces.len() >= POOL_TXS_PER_SENDER_MAX {
            return Err(PoolError::SenderFull(sender));
        }
        if nonces.contains_key(&tx.tx.tx.nonce) {
            return Err(PoolError::NonceTaken(tx.tx.tx.nonce));
        }
        nonces.insert(tx.tx.tx.nonce, tx.hash);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.arrival.insert(seq, tx.hash);
        self.dropped.remove(&tx.hash);
        self.txs.insert(tx.hash, (seq, tx));
        Ok(())
    }

    /// The nonce a new transaction of `account` should carry: after its run of pending nonces.
    pub fn next_nonce(&self, account: &AccountId, state_nonce: u64) -> u64 {
        let mut next = state_nonce;
        if let Some(nonces) = self.by_sender.get(account) {
            for nonce in nonces.range(state_nonce..).map(|(n, _)| *n) {
                if nonce != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }

    /// Up to `max` transactions ready for the next block, in arrival order, each sender's in nonce
    /// sequence from its state nonce.
    pub fn ready(&self, state_nonce: impl Fn(&AccountId) -> u64, max: usize) -> Vec<PoolTx> {
        let mut expected: HashMap<AccountId, u64> = HashMap::new();
        let mut out = Vec::new();
        let mut taken: std::collections::HashSet<Hash32> = Default::default();
        // A sender's later nonces may have arrived first: a few passes put them in order.
        for _pass in 0..4 {
            let before = out.len();
            for hash in self.arrival.values() {
                if out.len() >= max {
                    return out;
                }
                if taken.contains(hash) {
                    continue;
                }
                let (_, ptx) = &self.txs[hash];
                let sender = ptx.tx.tx.signer;
                let next = expected
                    .entry(sender)
                    .or_insert_with(|| state_nonce(&sender));
                if ptx.tx.tx.nonce == *next {
                    *next += 1;
                    taken.insert(*hash);
                    out.push(ptx.clone());
                }
            }
            if out.len() == before {
                break;
            }
        }
        out
    }

    /// The pending transactions of `sender`, in nonce order.
    pub fn of_sender(&self, sender: &AccountId) -> impl Iterator<Item = &PoolTx> {
        self.by_sender
            .get(sender)
            .into_iter()
            .flat_map(|nonces| nonces.values())
            .filter_map(|hash| self.txs.get(hash).map(|(_, ptx)| ptx))
    }

    /// Removes an included transaction.
    pub fn remove(&mut self, hash: &Hash32) {
        if let Some((seq, ptx)) = self.txs.remove(hash) {
            self.arrival.remove(&seq);
            let sender = ptx.tx.tx.signer;
            if let Some(nonces) = self.by_sender.get_mut(&sender) {
                nonces.remove(&ptx.tx.tx.nonce);
                if nonces.is_empty() {
                    self.by_sender.remove(&sender);
                }
            }
        }
    }

    /// Removes a transaction that cannot be included, remembering why.
    pub fn drop_tx(&mut self, hash: &Hash32, reason: String) {
        self.remove(hash);
        if self.dropped_order.len() >= DROPPED_REMEMBERED_MAX
            && let Some(old) = self.dropped_order.pop_front()
        {
            self.dropped.remove(&old);
        }
        self.dropped_order.push_back(*hash);
        self.dropped.insert(*hash, reason);
    }

    /// Drops the transactions whose nonce the chain has passed (another transaction took it).
    pub fn prune_stale(&mut self, state_nonce: impl Fn(&AccountId) -> u64) {
        let stale: Vec<(Hash32, u64, u64)> = self
            .by_sender
            .iter()
            .flat_map(|(sender, nonces)| {
                let current = state_nonce(sender);
                nonces.range(..current).map(move |(n, h)| (*h, *n, current))
            })
            .collect();
        for (hash, nonce, current) in stale {
            self.drop_tx(
                &hash,
                format!("nonce {nonce} was used by another transaction (next is {current})"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfchain_runtime::{Call, Transaction, balances};
    use tfgrid_types::{Keypair, Signature};

    fn ptx(who: &str, nonce: u64) -> PoolTx {
        let signer = Keypair::from_uri(&format!("//{who}")).unwrap().account();
        let call = Call::Balances(balances::Call::Transfer {
            dest: signer,
            amount: 1,
        });
        let tx = SignedTransaction {
            tx: Transaction {
                signer,
                nonce,
                call,
            },
            signature: Signature([0; 64]),
        };
        PoolTx {
            hash: tx.hash(),
            tx,
            encoded_len: 100,
        }
    }

    #[test]
    fn orders_nonces_and_limits() {
        let mut pool = Mempool::default();
        let (a2, a0, b0, a1) = (ptx("A", 2), ptx("A", 0), ptx("B", 0), ptx("A", 1));
        for t in [&a2, &a0, &b0, &a1] {
            pool.insert(t.clone()).unwrap();
        }
        assert_eq!(pool.insert(a0.clone()), Err(PoolError::AlreadyKnown));
        let mut other = ptx("A", 0);
        other.hash = Hash32::of("x", b"other");
        assert_eq!(pool.insert(other), Err(PoolError::NonceTaken(0)));
        let a = a0.tx.tx.signer;
        assert_eq!(pool.next_nonce(&a, 0), 3);
        let ready: Vec<u64> = pool
            .ready(|_| 0, 10)
            .iter()
            .map(|t| t.tx.tx.nonce)
            .collect();
        assert_eq!(ready, vec![0, 0, 1, 2]);
        assert_eq!(pool.ready(|_| 0, 2).len(), 2);
        pool.remove(&a0.hash);
        pool.prune_stale(|acc| if *acc == a { 2 } else { 0 });
        assert!(pool.dropped_reason(&a1.hash).unwrap().contains("nonce 1"));
        assert_eq!(pool.len(), 2);
    }
}
