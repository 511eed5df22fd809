//! Service-level billing: the seconds a node is proven down are not billed to the contracts on it
//! (node and rent contracts). The proof is the chain's own, the uptime reports that farming rewards
//! count (`rewards::record_uptime` calls [`proven_up_s`]).
//!
//! - A report at `now`, after the node's previous one at `t0`, saying the node has been up
//!   `uptime_s` seconds, proves [`proven_up_s`] of the gap up: the last seconds before `now`. The
//!   rest of the gap, `[t0, now - up)`, is proven down and kept as a [`Downtime`].
//! - A node silent for more than three intervals at `now` is proven down over
//!   `[t0, now - interval)` whatever it says next: its next report proves at most one interval up.
//! - Before a node's first report there is no evidence either way: its contracts are billed as up.
//!
//! A bill covers the contract's time from its last bill up to where the node's state is known
//! ([`window`]): the node's last report, or `now - interval` during a long silence. The seconds
//! after it are billed by a later bill, once a report or the silence says what they were, so a
//! second is billed only once it is known up. The last bill of a contract (its cancellation or
//! deletion) covers up to `now`, counting the seconds since the last report as up unless the
//! silence already proves them down.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::NodeId;

use crate::limits::NODE_DOWNTIMES_KEPT;
use crate::state::State;

/// Seconds `[from_s, to_s)` in which a node was proven down.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Downtime {
    pub from_s: u64,
    pub to_s: u64,
}

/// The seconds of a `gap_s` between two uptime reports that the second proves up, when it says the
/// node has been up `uptime_s` seconds: the whole gap while the node reported at most three
/// intervals apart, one interval after a longer silence; never more than it has been up.
pub fn proven_up_s(gap_s: u64, uptime_s: u64, interval_s: u64) -> u64 {
    let window = if gap_s <= 3 * interval_s {
        gap_s
    } else {
        interval_s
    };
    window.min(uptime_s)
}

/// Adds a proven downtime to a node's list: joined to the newest when they touch, the oldest
/// forgotten beyond [`NODE_DOWNTIMES_KEPT`].
pub fn record(downtimes: &mut Vec<Downtime>, down: Downtime) {
    if down.to_s <= down.from_s {
        return;
    }
    match downtimes.last_mut() {
        Some(last) if last.to_s >= down.from_s => last.to_s = last.to_s.max(down.to_s),
        _ => downtimes.push(down),
    }
    if downtimes.len() > NODE_DOWNTIMES_KEPT {
        downtimes.remove(0);
    }
}

/// What one bill of a contract covers: `[from_s, to_s)`, of which `credited_s` seconds the node was
/// proven down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub to_s: u64,
    pub credited_s: u64,
}

impl Window {
    /// The seconds billed: the window less the credited ones.
    pub fn billed_s(&self, from_s: u64) -> u64 {
        self.to_s
            .saturating_sub(from_s)
            .saturating_sub(self.credited_s)
    }
}

/// The window of a bill at `now_s` of a contract billed up to `from_s`, on a node last reporting
/// at `last_report_s` (`None`: never) with `downtimes` proven. `last`: the contract's last bill.
pub fn window(
    from_s: u64,
    now_s: u64,
    last_report_s: Option<u64>,
    downtimes: &[Downtime],
    interval_s: u64,
    last: bool,
) -> Window {
    let silent = last_report_s.filter(|t0| now_s.saturating_sub(*t0) > 3 * interval_s);
    let known = match last_report_s {
        None => now_s,
        Some(_) if last => now_s,
        Some(_) if silent.is_some() => now_s - interval_s,
        Some(t0) => t0,
    };
    let to_s = known.clamp(from_s, now_s.max(from_s));
    let ongoing = silent.map(|t0| Downtime {
        from_s: t0,
        to_s: now_s - interval_s,
    });
    let credited_s = downtimes
        .iter()
        .chain(ongoing.as_ref())
        .map(|d| d.to_s.min(to_s).saturating_sub(d.from_s.max(from_s)))
        .sum();
    Window { to_s, credited_s }
}

/// [`window`] for a contract on `node` (`None`: a name contract, always billed up to now).
pub fn window_of(
    state: &State,
    node: Option<NodeId>,
    from_s: u64,
    now_s: u64,
    last: bool,
) -> Window {
    let Some(node) = node else {
        return window(from_s, now_s, None, &[], 1, last);
    };
    let last_report = state.node_uptime.get(&node).map(|u| u.reported_at_s);
    let downtimes = state.node_downtime.get(&node);
    let interval = state.params().uptime_report_interval_s;
    window(
        from_s,
        now_s,
        last_report,
        downtimes.map_or(&[], Vec::as_slice),
        interval,
        last,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const I: u64 = 60;

    fn down(from_s: u64, to_s: u64) -> Downtime {
        Downtime { from_s, to_s }
    }

    #[test]
    fn a_report_proves_the_gap_up_unless_long_or_after_a_restart() {
        assert_eq!(proven_up_s(60, 1000, I), 60);
        assert_eq!(proven_up_s(180, 1000, I), 180);
        // Silent longer than three intervals: one interval.
        assert_eq!(proven_up_s(181, 1000, I), 60);
        // Restarted 20 s ago: 20 s.
        assert_eq!(proven_up_s(60, 20, I), 20);
        assert_eq!(proven_up_s(600, 0, I), 0);
    }

    #[test]
    fn downtimes_join_when_they_touch_and_the_oldest_go() {
        let mut list = vec![];
        record(&mut list, down(10, 20));
        record(&mut list, down(20, 30));
        record(&mut list, down(25, 25));
        assert_eq!(list, [down(10, 30)]);
        for k in 0..NODE_DOWNTIMES_KEPT as u64 {
            record(&mut list, down(100 + 10 * k, 105 + 10 * k));
        }
        assert_eq!(list.len(), NODE_DOWNTIMES_KEPT);
        assert_eq!(list[0], down(100, 105));
    }

    #[test]
    fn a_bill_covers_what_is_known() {
        // No report ever: up to now, nothing credited.
        assert_eq!(
            window(0, 500, None, &[], I, false),
            Window {
                to_s: 500,
                credited_s: 0
            }
        );
        // Reporting: up to the last report; the downtime in the window is credited.
        let proven = [down(50, 150), down(400, 450)];
        assert_eq!(
            window(100, 500, Some(420), &proven, I, false),
            Window {
                to_s: 420,
                credited_s: 50 + 20
            }
        );
        // Silent for more than three intervals: up to an interval ago, the silence credited.
        assert_eq!(
            window(100, 500, Some(300), &[], I, false),
            Window {
                to_s: 440,
                credited_s: 140
            }
        );
        // Its last bill: up to now; the silence of less than three intervals is billed.
        assert_eq!(
            window(100, 500, Some(400), &[], I, true),
            Window {
                to_s: 500,
                credited_s: 0
            }
        );
        assert_eq!(
            window(100, 500, Some(300), &[], I, true),
            Window {
                to_s: 500,
                credited_s: 140
            }
        );
        // Known only up to before the last bill: nothing to bill yet.
        assert_eq!(
            window(450, 500, Some(420), &[], I, false),
            Window {
                to_s: 450,
                credited_s: 0
            }
        );
    }

    /// A node's life: alternating runs of seconds up and down (each at least one second).
    fn life() -> impl Strategy<Value = Vec<(bool, u64)>> {
        prop::collection::vec((any::<bool>(), 1..400u64), 1..20)
    }

    proptest! {
        /// A node reporting every interval while up (its uptime since it last came up), its
        /// contract billed at a fixed pace: each second up to the last bill's end is billed or
        /// credited once; the credited ones are those the final evidence proves down, the billed
        /// ones those it proves up and those before the node's first report; and the evidence
        /// never proves up a second the node was down.
        #[test]
        fn bills_credit_exactly_the_proven_downtime(
            life in life(),
            bill_every in 1..500u64,
        ) {
            let mut up_at = vec![];
            for (up, len) in &life {
                up_at.extend(std::iter::repeat_n(*up, *len as usize));
            }
            let end = up_at.len() as u64;
            let (mut last_report, mut downtimes, mut booted) = (None::<u64>, vec![], None);
            let mut first_report = end;
            let (mut from, mut billed, mut credited, mut bills) = (0u64, 0u64, 0u64, 0);
            let mut proven_up = vec![false; up_at.len()];
            for now in 0..end {
                let up = up_at[now as usize];
                booted = match up {
                    true => booted.or(Some(now)),
                    false => None,
                };
                if let Some(boot) = booted
                    && last_report.is_none_or(|t0| now - t0 >= I)
                {
                    if let Some(t0) = last_report {
                        let up_s = proven_up_s(now - t0, now - boot, I);
                        record(&mut downtimes, down(t0, now - up_s));
                        proven_up[(now - up_s) as usize..now as usize].fill(true);
                    }
                    last_report = Some(now);
                    first_report = first_report.min(now);
                }
                if now > 0 && now % bill_every == 0 {
                    let w = window(from, now, last_report, &downtimes, I, false);
                    billed += w.billed_s(from);
                    credited += w.credited_s;
                    from = w.to_s;
                    bills += 1;
                }
            }
            prop_assert_eq!(billed + credited, from);
            for (s, proven) in proven_up.iter().enumerate() {
                prop_assert!(!proven || up_at[s], "second {} proven up while down", s);
            }
            // The final evidence, second by second.
            let silence = last_report
                .filter(|t0| end - 1 - t0 > 3 * I)
                .map(|t0| down(t0, end - 1 - I));
            let proven_down = |s: u64| {
                downtimes.iter().chain(silence.as_ref()).any(|d| d.from_s <= s && s < d.to_s)
            };
            let mut expect = (0u64, 0u64);
            for s in 0..from {
                if proven_down(s) {
                    expect.1 += 1;
                } else {
                    prop_assert!(
                        proven_up[s as usize] || s < first_report,
                        "second {} billed without proof", s
                    );
                    expect.0 += 1;
                }
            }
            prop_assert_eq!((billed, credited), expect);
            prop_assert!(bills > 0 || end <= bill_every);
        }
    }
}
