//! The council: a set of accounts whose joint approval is the ledger's restricted origin. A member
//! proposes a call with a threshold; when that many members approve, the call runs as the council.
//! A threshold of one runs it at once. Motions close when they can no longer pass or after their time.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::codec;
use tfgrid_types::{AccountId, Hash32};

use crate::error::DispatchError;
use crate::event::Event;
use crate::limits::{COUNCIL_MEMBERS_MAX, MOTION_DESCRIPTION_LEN_MAX, MOTIONS_MAX, TX_BYTES_MAX};
use crate::runtime::{Ctx, Origin, dispatch as dispatch_call};
use crate::tx::Call as RuntimeCall;
use crate::types::{Council, Motion};

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Call {
    /// Proposes `call` (the encoding of a non-council call) to run as the council.
    Propose {
        threshold: u32,
        call: Vec<u8>,
        description: String,
    },
    Vote {
        hash: Hash32,
        approve: bool,
    },
    /// Removes a motion whose voting time is over.
    Close {
        hash: Hash32,
    },
    /// Replaces the council (a council call itself).
    SetMembers {
        members: Vec<AccountId>,
        threshold: u32,
    },
}

impl Call {
    /// A motion for `call` with the council's default threshold.
    pub fn propose(call: &RuntimeCall, threshold: u32, description: &str) -> RuntimeCall {
        RuntimeCall::Council(Call::Propose {
            threshold,
            call: codec::encode(call),
            description: description.to_owned(),
        })
    }
}

/// The hash that names a motion: that of its call.
pub fn motion_hash(call: &[u8]) -> Hash32 {
    Hash32::of("tfchain motion", call)
}

fn ensure_member(council: &Council, who: &AccountId) -> Result<(), DispatchError> {
    if council.members.contains(who) {
        Ok(())
    } else {
        Err(DispatchError::NotCouncilMember(*who))
    }
}

fn decode_inner(bytes: &[u8]) -> Result<RuntimeCall, DispatchError> {
    let call: RuntimeCall = codec::decode("call", bytes, TX_BYTES_MAX)
        .map_err(|e| DispatchError::BadMotionCall(e.to_string()))?;
    match call {
        RuntimeCall::Council(Call::SetMembers { .. }) => Ok(call),
        RuntimeCall::Council(_) => Err(DispatchError::NestedCouncilCall),
        _ => Ok(call),
    }
}

/// Runs an approved call as the council; its failure is reported, and undone, but does not fail
/// the vote that approved it.
fn execute(ctx: &mut Ctx<'_>, hash: Hash32, call: &RuntimeCall) {
    let savepoint = ctx.state.savepoint();
    let events_before = ctx.events.len();
    let error = match dispatch_call(ctx, Origin::Council, call) {
        Ok(()) => None,
        Err(error) => {
            ctx.state.rollback_to(&savepoint);
            ctx.events.truncate(events_before);
            Some(error.to_string())
        }
    };
    ctx.emit(Event::Executed { hash, error });
}

pub fn dispatch(ctx: &mut Ctx<'_>, origin: Origin, call: &Call) -> Result<(), DispatchError> {
    match call {
        Call::Propose {
            threshold,
            call,
            description,
        } => {
            let who = origin.signer()?;
            let council = ctx.state.council().clone();
            ensure_member(&council, &who)?;
            if *threshold == 0 || *threshold as usize > council.members.len() {
                return Err(DispatchError::BadThreshold {
                    threshold: *threshold,
                    members: council.members.len(),
                });
            }
            if description.len() > MOTION_DESCRIPTION_LEN_MAX {
                return Err(DispatchError::InvalidValue {
                    what: "description",
                    reason: "too long",
                });
            }
            let inner = decode_inner(call)?;
            let hash = motion_hash(call);
            if *threshold == 1 {
                ctx.emit(Event::Proposed {
                    proposer: who,
                    hash,
                    threshold: 1,
                });
                execute(ctx, hash, &inner);
                return Ok(());
            }
            if ctx.state.motions.contains(&hash) {
                return Err(DispatchError::DuplicateMotion(hash));
            }
            if ctx.state.motions.len() >= MOTIONS_MAX {
                return Err(DispatchError::TooManyMotions);
            }
            let end_block = ctx.height + ctx.state.params().motion_duration_blocks;
            ctx.state.motions.insert(
                hash,
                Motion {
                    hash,
                    proposer: who,
                    call: call.clone(),
                    description: description.clone(),
                    threshold: *threshold,
                    ayes: vec![who],
                    nays: vec![],
                    end_block,
                },
            );
            ctx.emit(Event::Proposed {
                proposer: who,
                hash,
                threshold: *threshold,
            });
            Ok(())
        }
        Call::Vote { hash, approve } => {
            let who = origin.signer()?;
            let council = ctx.state.council().clone();
            ensure_member(&council, &who)?;
            let mut motion = ctx
                .state
                .motions
                .get(hash)
                .cloned()
                .ok_or(DispatchError::MotionNotFound(*hash))?;
            if ctx.height > motion.end_block {
                return Err(DispatchError::MotionEnded(*hash, motion.end_block));
            }
            let (same, other) = if *approve {
                (&mut motion.ayes, &mut motion.nays)
            } else {
                (&mut motion.nays, &mut motion.ayes)
            };
            if same.contains(&who) {
                return Err(DispatchError::DuplicateVote(who));
            }
            same.push(who);
            other.retain(|a| a != &who);
            let (ayes, nays) = (motion.ayes.len() as u32, motion.nays.len() as u32);
            ctx.emit(Event::Voted {
                who,
                hash: *hash,
                approve: *approve,
                ayes,
                nays,
            });
            let members = council.members.len() as u32;
            if ayes >= motion.threshold {
                ctx.state.motions.remove(hash);
                ctx.emit(Event::Approved { hash: *hash });
                let inner = decode_inner(&motion.call)?;
                execute(ctx, *hash, &inner);
            } else if members.saturating_sub(nays) < motion.threshold {
                ctx.state.motions.remove(hash);
                ctx.emit(Event::Disapproved { hash: *hash });
            } else {
                ctx.state.motions.insert(*hash, motion);
            }
            Ok(())
        }
        Call::Close { hash } => {
            let who = origin.signer()?;
            ensure_member(ctx.state.council(), &who)?;
            let motion = ctx
                .state
                .motions
                .get(hash)
                .ok_or(DispatchError::MotionNotFound(*hash))?;
            if ctx.height <= motion.end_block {
                return Err(DispatchError::MotionOpen(*hash, motion.end_block));
            }
            ctx.state.motions.remove(hash);
            ctx.emit(Event::Disapproved { hash: *hash });
            ctx.emit(Event::Closed { hash: *hash });
            Ok(())
        }
        Call::SetMembers { members, threshold } => {
            origin.ensure_council()?;
            let mut members = members.clone();
            members.sort();
            members.dedup();
            if members.is_empty() || members.len() > COUNCIL_MEMBERS_MAX {
                return Err(DispatchError::InvalidValue {
                    what: "council",
                    reason: "needs 1 to 100 members",
                });
            }
            if *threshold == 0 || *threshold as usize > members.len() {
                return Err(DispatchError::BadThreshold {
                    threshold: *threshold,
                    members: members.len(),
                });
            }
            ctx.state.council.insert(
                (),
                Council {
                    members,
                    threshold: *threshold,
                },
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, account};
    use crate::tfgrid;

    fn zos_call(version: &str) -> RuntimeCall {
        RuntimeCall::Tfgrid(tfgrid::Call::SetZosVersion {
            version: version.into(),
        })
    }

    #[test]
    fn restricted_calls_need_the_council() {
        let mut h = Harness::new();
        h.fails(
            &account("Alice"),
            zos_call("v1"),
            DispatchError::RequiresCouncil,
        );
        // Alice alone is the dev council, threshold one: her motion runs at once.
        h.ok(
            &account("Alice"),
            Call::propose(&zos_call("v2"), 1, "upgrade"),
        );
        assert_eq!(h.state().grid_settings.get(&()).unwrap().zos_version, "v2");
        h.fails(
            &account("Bob"),
            Call::propose(&zos_call("v3"), 1, ""),
            DispatchError::NotCouncilMember(account("Bob")),
        );
    }

    #[test]
    fn threshold_votes_approve_reject_and_expire() {
        let mut h = Harness::new();
        let [alice, bob, charlie] = [account("Alice"), account("Bob"), account("Charlie")];
        let set = RuntimeCall::Council(Call::SetMembers {
            members: vec![alice, bob, charlie],
            threshold: 2,
        });
        h.ok(&alice, Call::propose(&set, 1, "three members"));
        assert_eq!(h.state().council().members.len(), 3);

        // Approve with two of three.
        let call = Call::propose(&zos_call("v9"), 2, "");
        h.ok(&alice, call.clone());
        let RuntimeCall::Council(Call::Propose { call: inner, .. }) = &call else {
            unreachable!()
        };
        let hash = motion_hash(inner);
        h.fails(&alice, call, DispatchError::DuplicateMotion(hash));
        h.fails(
            &alice,
            Call::Vote {
                hash,
                approve: true,
            },
            DispatchError::DuplicateVote(alice),
        );
        h.ok(
            &bob,
            Call::Vote {
                hash,
                approve: true,
            },
        );
        assert_eq!(h.state().grid_settings.get(&()).unwrap().zos_version, "v9");
        assert!(h.events().contains(&Event::Executed { hash, error: None }));
        assert!(h.state().motions.is_empty());

        // Reject: two nays of three leave the threshold out of reach.
        let call = Call::propose(&zos_call("v10"), 2, "");
        h.ok(&alice, call);
        let hash = *h.state().motions.iter().next().unwrap().0;
        h.ok(
            &bob,
            Call::Vote {
                hash,
                approve: false,
            },
        );
        h.ok(
            &charlie,
            Call::Vote {
                hash,
                approve: false,
            },
        );
        assert!(h.events().contains(&Event::Disapproved { hash }));
        assert_eq!(h.state().grid_settings.get(&()).unwrap().zos_version, "v9");

        // Expire, then close.
        h.ok(&alice, Call::propose(&zos_call("v11"), 3, ""));
        let hash = *h.state().motions.iter().next().unwrap().0;
        let end = h.state().motions.get(&hash).unwrap().end_block;
        h.fails(
            &bob,
            Call::Close { hash },
            DispatchError::MotionOpen(hash, end),
        );
        h.advance_to(end + 1);
        h.fails(
            &bob,
            Call::Vote {
                hash,
                approve: true,
            },
            DispatchError::MotionEnded(hash, end),
        );
        h.ok(&bob, Call::Close { hash });
        assert!(h.state().motions.is_empty());
    }

    #[test]
    fn failing_council_call_is_reported_and_undone() {
        let mut h = Harness::new();
        let bad = RuntimeCall::Council(Call::SetMembers {
            members: vec![],
            threshold: 1,
        });
        h.ok(&account("Alice"), Call::propose(&bad, 1, ""));
        assert!(
            h.events()
                .iter()
                .any(|e| matches!(e, Event::Executed { error: Some(_), .. }))
        );
        assert_eq!(h.state().council().members, vec![account("Alice")]);
        let nested = Call::propose(&Call::propose(&zos_call("x"), 1, ""), 1, "");
        h.fails(&account("Alice"), nested, DispatchError::NestedCouncilCall);
    }
}
