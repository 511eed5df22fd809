//! Balances: TFT held by accounts, transfers between them, and the checked helpers every module uses
//! to move, mint and burn funds. Total issuance always equals the sum of all balances.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::{AccountId, Balance};

use crate::error::DispatchError;
use crate::event::Event;
use crate::runtime::{Ctx, Origin};
use crate::state::State;

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Call {
    Transfer {
        dest: AccountId,
        #[serde(with = "tfgrid_types::amount::json_units")]
        amount: Balance,
    },
}

pub fn dispatch(ctx: &mut Ctx<'_>, origin: Origin, call: &Call) -> Result<(), DispatchError> {
    match call {
        Call::Transfer { dest, amount } => {
            let from = origin.signer()?;
            transfer(ctx.state, &from, dest, *amount)?;
            ctx.emit(Event::Transfer {
                from,
                to: *dest,
                amount: *amount,
            });
            Ok(())
        }
    }
}

/// Moves `amount` from one account to another; a new account must receive the existential deposit.
pub fn transfer(
    state: &mut State,
    from: &AccountId,
    to: &AccountId,
    amount: Balance,
) -> Result<(), DispatchError> {
    if amount == 0 {
        return Err(DispatchError::ZeroAmount);
    }
    let available = state.balance(from);
    if available < amount {
        return Err(DispatchError::InsufficientFunds {
            needed: amount,
            available,
        });
    }
    if from == to {
        return Ok(());
    }
    let existential = state.params().existential_deposit;
    let dest_balance = state.balance(to);
    if dest_balance == 0 && amount < existential {
        return Err(DispatchError::ExistentialDeposit(existential));
    }
    let new_dest = dest_balance
        .checked_add(amount)
        .ok_or(DispatchError::Overflow)?;
    state.accounts.update(from, |a| a.free -= amount);
    let mut dest = state.accounts.get(to).cloned().unwrap_or_default();
    dest.free = new_dest;
    state.accounts.insert(*to, dest);
    Ok(())
}

/// Creates `amount` new TFT in `to` (genesis endowments, farming rewards).
pub fn mint(state: &mut State, to: &AccountId, amount: Balance) -> Result<(), DispatchError> {
    let issuance = state
        .issuance()
        .checked_add(amount)
        .ok_or(DispatchError::Overflow)?;
    let mut account = state.accounts.get(to).cloned().unwrap_or_default();
    account.free = account
        .free
        .checked_add(amount)
        .ok_or(DispatchError::Overflow)?;
    state.accounts.insert(*to, account);
    state.total_issuance.insert((), issuance);
    Ok(())
}

/// Moves funds the ledger owes elsewhere (contract payments): no existential deposit applies.
/// The caller has checked that `from` holds `amount`.
pub fn pay(state: &mut State, from: &AccountId, to: &AccountId, amount: Balance) {
    if amount == 0 || from == to {
        return;
    }
    state.accounts.update(from, |a| {
        a.free = a
            .free
            .checked_sub(amount)
            .expect("the payer holds the amount")
    });
    let mut dest = state.accounts.get(to).cloned().unwrap_or_default();
    dest.free += amount;
    state.accounts.insert(*to, dest);
}

/// Destroys `amount` of `from`'s funds. The caller has checked that `from` holds them.
pub fn burn(state: &mut State, from: &AccountId, amount: Balance) {
    if amount == 0 {
        return;
    }
    state.accounts.update(from, |a| {
        a.free = a
            .free
            .checked_sub(amount)
            .expect("the payer holds the amount")
    });
    let issuance = state.issuance() - amount;
    state.total_issuance.insert((), issuance);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, account};

    #[test]
    fn transfer_rules() {
        let mut h = Harness::new();
        let (alice, bob, nobody) = (account("Alice"), account("Bob"), account("Nobody"));
        let before = (h.balance(&alice), h.balance(&bob));
        h.ok(
            &alice,
            Call::Transfer {
                dest: bob,
                amount: 1_000,
            },
        );
        assert_eq!(h.balance(&bob), before.1 + 1_000);
        assert_eq!(h.balance(&alice), before.0 - 1_000 - h.last_fee());
        assert!(h.events().contains(&Event::Transfer {
            from: alice,
            to: bob,
            amount: 1_000
        }));

        let ed = h.state().params().existential_deposit;
        h.fails(
            &alice,
            Call::Transfer {
                dest: nobody,
                amount: ed - 1,
            },
            DispatchError::ExistentialDeposit(ed),
        );
        h.fails(
            &alice,
            Call::Transfer {
                dest: bob,
                amount: 0,
            },
            DispatchError::ZeroAmount,
        );
        let available = h.balance(&alice)
            - h.fee_of(
                &Call::Transfer {
                    dest: bob,
                    amount: u128::MAX,
                }
                .into(),
            );
        h.fails(
            &alice,
            Call::Transfer {
                dest: bob,
                amount: u128::MAX,
            },
            DispatchError::InsufficientFunds {
                needed: u128::MAX,
                available,
            },
        );
        h.ok(
            &alice,
            Call::Transfer {
                dest: nobody,
                amount: ed,
            },
        );
        assert_eq!(h.balance(&nobody), ed);
    }
}
