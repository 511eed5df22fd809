//! The validator set: the accounts whose votes decide blocks. The council replaces it with
//! `SetValidators`; the new set binds `VALIDATOR_SET_DELAY` blocks after the block that chose it
//! (it becomes current at that height's `begin_block`), so every validator learns it first. A newer
//! choice replaces one not yet in effect. The runtime only keeps the set; consensus asks it
//! `State::validators_at` which set decides a height.

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::AccountId;

use crate::error::DispatchError;
use crate::event::Event;
use crate::limits::{VALIDATOR_SET_DELAY, VALIDATORS_MAX};
use crate::runtime::{Ctx, Origin};
use crate::types::{ScheduledValidators, ValidatorSet};

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Call {
    /// Schedules `validators` (in this order) to decide blocks from `VALIDATOR_SET_DELAY` blocks
    /// on (a council call).
    SetValidators { validators: Vec<AccountId> },
}

/// Whether `validators` may be a validator set: 1 to `VALIDATORS_MAX` accounts, each once.
pub fn check(validators: &[AccountId]) -> Result<(), DispatchError> {
    if validators.is_empty() {
        return Err(DispatchError::NoValidators);
    }
    if validators.len() > VALIDATORS_MAX {
        return Err(DispatchError::TooManyValidators(validators.len()));
    }
    let mut seen = BTreeSet::new();
    match validators.iter().find(|v| !seen.insert(*v)) {
        Some(twice) => Err(DispatchError::DuplicateValidator(*twice)),
        None => Ok(()),
    }
}

/// The set that decides block `height` when the state is the one after block `height - 1`.
pub fn at_height(set: &ValidatorSet, height: u64) -> &[AccountId] {
    match &set.scheduled {
        Some(next) if height >= next.at_height => &next.validators,
        _ => &set.current,
    }
}

pub fn dispatch(ctx: &mut Ctx<'_>, origin: Origin, call: &Call) -> Result<(), DispatchError> {
    match call {
        Call::SetValidators { validators } => {
            origin.ensure_council()?;
            check(validators)?;
            let at_height = ctx.height + VALIDATOR_SET_DELAY;
            let current = ctx.state.validator_set().current.clone();
            ctx.state.validator_set.insert(
                (),
                ValidatorSet {
                    current,
                    scheduled: Some(ScheduledValidators {
                        at_height,
                        validators: validators.clone(),
                    }),
                },
            );
            ctx.emit(Event::ValidatorSetScheduled {
                at_height,
                validators: validators.clone(),
            });
            Ok(())
        }
    }
}

/// At the start of a block: the scheduled set becomes current at its height.
pub fn on_initialize(ctx: &mut Ctx<'_>) {
    let set = ctx.state.validator_set();
    let Some(next) = set.scheduled.as_ref().filter(|s| ctx.height >= s.at_height) else {
        return;
    };
    let validators = next.validators.clone();
    ctx.state.validator_set.insert(
        (),
        ValidatorSet {
            current: validators.clone(),
            scheduled: None,
        },
    );
    ctx.emit(Event::ValidatorSetChanged { validators });
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::council;
    use crate::genesis::DEV_ACCOUNTS;
    use crate::testing::{Harness, account};
    use crate::tx::Call as RuntimeCall;

    fn accounts(names: &[&str]) -> Vec<AccountId> {
        names.iter().map(|n| account(n)).collect()
    }

    fn set(names: &[&str]) -> Call {
        Call::SetValidators {
            validators: accounts(names),
        }
    }

    #[test]
    fn only_the_council_sets_validators() {
        let mut h = Harness::new();
        h.fails(
            &account("Alice"),
            set(&["Bob"]),
            DispatchError::RequiresCouncil,
        );
        // Bob is no council member: his motion is refused.
        let motion = council::Call::propose(&RuntimeCall::from(set(&["Bob"])), 1, "");
        h.fails(
            &account("Bob"),
            motion,
            DispatchError::NotCouncilMember(account("Bob")),
        );
        assert_eq!(h.state().validator_set().scheduled, None);
    }

    #[test]
    fn bad_sets_are_refused() {
        let alice = account("Alice");
        assert_eq!(check(&[]), Err(DispatchError::NoValidators));
        assert_eq!(
            check(&accounts(&["Alice", "Bob", "Alice"])),
            Err(DispatchError::DuplicateValidator(alice))
        );
        let many: Vec<AccountId> = (0..=VALIDATORS_MAX as u8)
            .map(|i| AccountId([i; 32]))
            .collect();
        assert_eq!(
            check(&many),
            Err(DispatchError::TooManyValidators(VALIDATORS_MAX + 1))
        );
        assert_eq!(check(&many[..VALIDATORS_MAX]), Ok(()));

        // Through a motion: refused, reported, and nothing scheduled.
        let mut h = Harness::new();
        let error = h.council_fails(set(&["Bob", "Bob"]));
        assert_eq!(
            error,
            DispatchError::DuplicateValidator(account("Bob")).to_string()
        );
        let error = h.council_fails(Call::SetValidators { validators: vec![] });
        assert_eq!(error, DispatchError::NoValidators.to_string());
        assert_eq!(h.state().validator_set().scheduled, None);
        assert_eq!(h.state().validators_at(h.height() + 10), vec![alice]);
    }

    #[test]
    fn a_newer_choice_replaces_a_scheduled_one() {
        let mut h = Harness::new();
        h.council(set(&["Bob"]));
        h.council(set(&["Alice", "Charlie"]));
        let at_height = h.height() + VALIDATOR_SET_DELAY;
        assert_eq!(
            h.state().validator_set().scheduled,
            Some(ScheduledValidators {
                at_height,
                validators: accounts(&["Alice", "Charlie"]),
            })
        );
        h.take_history();
        h.advance_to(at_height + 1);
        assert_eq!(
            h.take_history(),
            vec![Event::ValidatorSetChanged {
                validators: accounts(&["Alice", "Charlie"])
            }]
        );
        assert_eq!(
            h.state().validator_set().current,
            accounts(&["Alice", "Charlie"])
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever block the council chooses a set in, the set deciding each height is the old one
        /// up to the effective height and the new one from it; the state switches at that block.
        #[test]
        fn the_set_changes_at_exactly_its_height(
            idle_blocks in 0u64..5,
            size in 1usize..=DEV_ACCOUNTS.len(),
        ) {
            let mut h = Harness::new();
            h.advance_to(idle_blocks + 1);
            let new = &DEV_ACCOUNTS[DEV_ACCOUNTS.len() - size..];
            h.council(set(new));
            let chosen_in = h.height();
            let at_height = chosen_in + VALIDATOR_SET_DELAY;
            let (old, new) = (accounts(&["Alice"]), accounts(new));
            let scheduled = Event::ValidatorSetScheduled {
                at_height,
                validators: new.clone(),
            };
            prop_assert!(h.events().contains(&scheduled), "{:?}", h.events());
            for height in chosen_in + 1..at_height + 3 {
                let expect = if height >= at_height { &new } else { &old };
                // What decides `height`, asked after the block before it ...
                prop_assert_eq!(&h.state().validators_at(height), expect);
                h.take_history();
                h.advance_to(height + 1);
                // ... is what the state holds once `height` began.
                prop_assert_eq!(&h.state().validator_set().current, expect);
                let changed = h
                    .take_history()
                    .contains(&Event::ValidatorSetChanged { validators: new.clone() });
                prop_assert_eq!(changed, height == at_height);
            }
        }
    }
}
