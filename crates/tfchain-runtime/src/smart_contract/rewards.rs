//! Farming rewards: each node earns, once per period (in slot `node_id % period`), TFT minted to its
//! farm's twin for the capacity it offered while up, at its farming policy's rates, converted at the
//! node's connection price. Up time comes from uptime reports, by the rule billing credits downtime
//! with (`sla::proven_up_s`): a node silent for more than three report intervals counts as down for
//! the gap but the last interval. Below the policy's minimal uptime it earns nothing.

use tfgrid_types::NodeId;

use super::sla;
use crate::balances;
use crate::event::Event;
use crate::runtime::Ctx;
use crate::types::{NodeUptime, Resources};

const GIB: u128 = 1024 * 1024 * 1024;

/// A node's compute and storage units (thousandths), by TFChain's farming formulas:
/// CU = min(cru × 2, (mru − 1) / 4, sru / 50), SU = hru / 1200 + sru / 250, sizes in GiB.
pub fn node_units_milli(r: &Resources) -> (u128, u128) {
    let mru = r.mru as u128 * 1000 / GIB;
    let sru = r.sru as u128 * 1000 / GIB;
    let hru = r.hru as u128 * 1000 / GIB;
    let cu = (r.cru as u128 * 2000)
        .min(mru.saturating_sub(1000) / 4)
        .min(sru / 50);
    let su = hru / 1200 + sru / 250;
    (cu, su)
}

/// Credits the up time an uptime report proves, and keeps the rest of the gap since the node's
/// last report as proven down.
pub fn record_uptime(ctx: &mut Ctx<'_>, node_id: NodeId, uptime_s: u64) {
    let interval = ctx.state.params().uptime_report_interval_s;
    let now = ctx.now_s;
    let record = match ctx.state.node_uptime.get(&node_id).cloned() {
        Some(prev) => {
            let gap = now.saturating_sub(prev.reported_at_s);
            let up = sla::proven_up_s(gap, uptime_s, interval);
            if up < gap {
                let mut downtimes = ctx
                    .state
                    .node_downtime
                    .get(&node_id)
                    .cloned()
                    .unwrap_or_default();
                let down = sla::Downtime {
                    from_s: prev.reported_at_s,
                    to_s: now - up,
                };
                sla::record(&mut downtimes, down);
                ctx.state.node_downtime.insert(node_id, downtimes);
            }
            NodeUptime {
                uptime_s,
                reported_at_s: now,
                period_up_s: prev.period_up_s + up,
                ..prev
            }
        }
        None => NodeUptime {
            uptime_s,
            reported_at_s: now,
            period_up_s: 0,
            period_start_s: now,
        },
    };
    ctx.state.node_uptime.insert(node_id, record);
}

/// Mints the rewards of the nodes in this block's slot.
pub fn reward_slot(ctx: &mut Ctx<'_>) {
    let period = ctx.state.params().billing_period_blocks;
    let last = ctx.state.counters.get(&()).map_or(0, |c| c.node) as u64;
    let mut node_id = ctx.height % period;
    while node_id <= last {
        if node_id > 0 {
            reward(ctx, node_id as NodeId);
        }
        node_id += period;
    }
}

fn reward(ctx: &mut Ctx<'_>, node_id: NodeId) {
    let (Some(node), Some(up)) = (
        ctx.state.nodes.get(&node_id).cloned(),
        ctx.state.node_uptime.get(&node_id).cloned(),
    ) else {
        return;
    };
    let elapsed = ctx.now_s.saturating_sub(up.period_start_s);
    if elapsed == 0 {
        return;
    }
    ctx.state.node_uptime.insert(
        node_id,
        NodeUptime {
            period_up_s: 0,
            period_start_s: ctx.now_s,
            ..up.clone()
        },
    );
    let uptime_percent = (up.period_up_s.min(elapsed) * 100 / elapsed) as u16;
    let Some(policy) = ctx
        .state
        .farming_policies
        .get(&node.farming_policy_id)
        .cloned()
    else {
        return;
    };
    if uptime_percent < policy.terms.minimal_uptime {
        ctx.emit(Event::FarmingRewardWithheld {
            node_id,
            uptime_percent,
        });
        return;
    }
    let (cu, su) = node_units_milli(&node.resources);
    // Thousandths of mUSD earned over the up time.
    let earned = (cu * policy.terms.cu as u128 + su * policy.terms.su as u128)
        * up.period_up_s.min(elapsed) as u128
        / 3600;
    let amount =
        earned * tfgrid_types::UNITS_PER_TFT / (1000 * node.connection_price.max(1) as u128);
    let Some(farmer) = ctx
        .state
        .farms
        .get(&node.farm_id)
        .and_then(|f| ctx.state.twins.get(&f.twin_id))
        .map(|t| t.account_id)
    else {
        return;
    };
    if amount > 0 && balances::mint(ctx.state, &farmer, amount).is_ok() {
        ctx.emit(Event::FarmingRewardMinted {
            node_id,
            farm_id: node.farm_id,
            amount,
            uptime_percent,
        });
    }
}
