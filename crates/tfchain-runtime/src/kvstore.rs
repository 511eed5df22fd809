//! The key-value store: each account keeps its own small keys and values on the ledger.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::DispatchError;
use crate::event::Event;
use crate::limits::{KV_KEY_LEN_MAX, KV_VALUE_LEN_MAX};
use crate::runtime::{Ctx, Origin};

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Call {
    Set { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

fn check_key(key: &[u8]) -> Result<(), DispatchError> {
    match key.len() {
        0 => Err(DispatchError::KvKeyEmpty),
        n if n > KV_KEY_LEN_MAX => Err(DispatchError::KvKeyTooLong(n)),
        _ => Ok(()),
    }
}

pub fn dispatch(ctx: &mut Ctx<'_>, origin: Origin, call: &Call) -> Result<(), DispatchError> {
    let account = origin.signer()?;
    match call {
        Call::Set { key, value } => {
            check_key(key)?;
            if value.len() > KV_VALUE_LEN_MAX {
                return Err(DispatchError::KvValueTooLong(value.len()));
            }
            ctx.state.kv.insert((account, key.clone()), value.clone());
            ctx.emit(Event::EntrySet {
                account,
                key: key.clone(),
                value: value.clone(),
            });
        }
        Call::Delete { key } => {
            check_key(key)?;
            let value = ctx
                .state
                .kv
                .remove(&(account, key.clone()))
                .ok_or(DispatchError::KvNotFound)?;
            ctx.emit(Event::EntryTaken {
                account,
                key: key.clone(),
                value,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, account};

    #[test]
    fn set_get_delete_and_limits() {
        let mut h = Harness::new();
        let (alice, bob) = (account("Alice"), account("Bob"));
        h.ok(
            &alice,
            Call::Set {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            },
        );
        h.ok(
            &bob,
            Call::Set {
                key: b"k".to_vec(),
                value: b"other".to_vec(),
            },
        );
        assert_eq!(
            h.state().kv.get(&(alice, b"k".to_vec())),
            Some(&b"v".to_vec())
        );
        h.ok(&alice, Call::Delete { key: b"k".to_vec() });
        assert_eq!(h.state().kv.get(&(alice, b"k".to_vec())), None);
        assert_eq!(
            h.state().kv.get(&(bob, b"k".to_vec())),
            Some(&b"other".to_vec())
        );
        h.fails(
            &alice,
            Call::Delete { key: b"k".to_vec() },
            DispatchError::KvNotFound,
        );
        h.fails(
            &alice,
            Call::Set {
                key: vec![],
                value: vec![],
            },
            DispatchError::KvKeyEmpty,
        );
        h.fails(
            &alice,
            Call::Set {
                key: vec![1; 513],
                value: vec![],
            },
            DispatchError::KvKeyTooLong(513),
        );
        h.fails(
            &alice,
            Call::Set {
                key: vec![1],
                value: vec![0; 2049],
            },
            DispatchError::KvValueTooLong(2049),
        );
        h.ok(
            &alice,
            Call::Set {
                key: vec![1; 512],
                value: vec![0; 2048],
            },
        );
    }
}
