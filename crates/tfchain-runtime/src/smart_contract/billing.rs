//! Billing, run in block initialisation so no block can skip it: at height `h` every contract in slot
//! `h % period` pays for the seconds since its last bill that its node was not proven down (up to
//! where the node's state is known, `sla::window`). Costs follow TFChain: CU and SU from the
//! resources the node reported, public IPs, names, network bytes, rented nodes; in units-USD, turned
//! into TFT at the council's price (clamped), less the balance discount, more for certified nodes.
//! A twin that cannot pay enters the grace period; one that stays unpaid is deleted.

use tfgrid_types::{AccountId, Balance, ContractId, NodeId};

use crate::balances;
use crate::event::Event;
use crate::limits::CONTRACT_BILLS_KEPT;
use crate::runtime::Ctx;
use crate::state::State;
use crate::types::*;

use super::{lifecycle, sla};

/// Fixed-point scale of CU and SU.
const SCALE: u128 = 1_000_000;
const GIB: u128 = 1024 * 1024 * 1024;
const SECONDS_PER_HOUR: u128 = 3600;

/// Compute units of a resource set: min(max(mru/4, cru/2), max(mru/8, cru), max(mru/2, cru/4)),
/// memory in GiB; scaled by `SCALE`.
pub fn cu(r: &Resources) -> u128 {
    let mru = r.mru as u128 * SCALE / GIB;
    let cru = r.cru as u128 * SCALE;
    (mru / 4)
        .max(cru / 2)
        .min((mru / 8).max(cru))
        .min((mru / 2).max(cru / 4))
}

/// Storage units: hru/1200 + sru/200, in GiB; scaled by `SCALE`.
pub fn su(r: &Resources) -> u128 {
    r.hru as u128 * SCALE / GIB / 1200 + r.sru as u128 * SCALE / GIB / 200
}

/// The cost of a resource set for one hour, in units-USD.
fn resources_per_hour(r: &Resources, policy: &PricingPolicy) -> u128 {
    (su(r) * policy.terms.su.value as u128 + cu(r) * policy.terms.cu.value as u128) / SCALE
}

/// What a node contract using `resources` (none on a rented node) with `public_ips` costs an hour,
/// in units-USD: what billing charges and what a client shows before deploying.
pub fn node_contract_per_hour_usd(
    resources: Option<&Resources>,
    public_ips: u32,
    policy: &PricingPolicy,
) -> u128 {
    resources.map_or(0, |r| resources_per_hour(r, policy))
        + public_ips as u128 * policy.terms.ipu.value as u128
}

fn pricing(state: &State) -> &PricingPolicy {
    state
        .pricing_policies
        .get(&1)
        .expect("genesis creates pricing policy 1")
}

/// The contract's cost for one hour of use now, in units-USD (network usage aside).
pub fn cost_per_hour_usd(state: &State, contract: &Contract) -> u128 {
    let policy = pricing(state);
    match &contract.contract_type {
        ContractData::NodeContract(c) => {
            let rented = state.rent_contract_by_node.contains(&c.node_id);
            let resources = match rented {
                true => None,
                false => state.contract_resources.get(&contract.contract_id),
            };
            node_contract_per_hour_usd(resources, c.public_ips, policy)
        }
        ContractData::NameContract { .. } => policy.terms.unique_name.value as u128,
        ContractData::RentContract { node_id } => {
            let up = state
                .node_power
                .get(node_id)
                .is_none_or(|p| matches!(p.state, PowerState::Up));
            match state.nodes.get(node_id) {
                Some(node) if up => {
                    resources_per_hour(&node.resources, policy)
                        * policy.terms.discount_for_dedication_nodes as u128
                        / 100
                }
                _ => 0,
            }
        }
    }
}

/// Units of TFT for an amount of units-USD at the clamped price.
pub fn usd_to_tft(state: &State, usd: u128) -> Balance {
    usd_to_tft_at(
        state
            .tft_price
            .get(&())
            .expect("genesis sets the TFT price"),
        usd,
    )
}

/// Units of TFT for an amount of units-USD at `price` (clamped).
pub fn usd_to_tft_at(price: &TftPrice, usd: u128) -> Balance {
    usd.saturating_mul(1000) / price.effective_musd() as u128
}

/// TFChain's discount for twins that hold months of their spending: (level, percent paid).
fn discount(balance: Balance, hourly_tft: Balance) -> (DiscountLevel, u128) {
    if hourly_tft == 0 {
        return (DiscountLevel::None, 100);
    }
    // Months of balance, times ten: 15 is 1.5 months.
    let months_x10 = balance.saturating_mul(10) / hourly_tft.saturating_mul(24 * 30).max(1);
    match months_x10 {
        180.. => (DiscountLevel::Gold, 40),
        60.. => (DiscountLevel::Silver, 60),
        30.. => (DiscountLevel::Bronze, 70),
        15.. => (DiscountLevel::Default, 80),
        _ => (DiscountLevel::None, 100),
    }
}

fn twin_account(state: &State, contract: &Contract) -> AccountId {
    state
        .twins
        .get(&contract.twin_id)
        .expect("a contract's twin exists")
        .account_id
}

/// Where the farmer's half of a payment goes: the farm's twin, or the sales account for names.
fn farmer_account(state: &State, contract: &Contract) -> AccountId {
    contract
        .node_id()
        .and_then(|n| state.nodes.get(&n))
        .and_then(|n| state.farms.get(&n.farm_id))
        .and_then(|f| state.twins.get(&f.twin_id))
        .map_or(pricing(state).terms.certified_sales_account, |t| {
            t.account_id
        })
}

/// Splits a payment: 10 % foundation, 5 % staking pool, 50 % farmer, the rest (35 %) burned.
fn distribute(ctx: &mut Ctx<'_>, contract: &Contract, from: &AccountId, amount: Balance) {
    let policy = pricing(ctx.state).clone();
    let foundation = amount * 10 / 100;
    let staking = amount * 5 / 100;
    let farmer = amount * 50 / 100;
    let burned = amount - foundation - staking - farmer;
    let staking_account = ctx.state.params().staking_pool_account;
    let farmer_account = farmer_account(ctx.state, contract);
    balances::pay(
        ctx.state,
        from,
        &policy.terms.foundation_account,
        foundation,
    );
    balances::pay(ctx.state, from, &staking_account, staking);
    balances::pay(ctx.state, from, &farmer_account, farmer);
    balances::burn(ctx.state, from, burned);
    ctx.emit(Event::TokensBurned {
        contract_id: contract.contract_id,
        amount: burned,
    });
}

/// What one bill took and credited.
struct Charge {
    level: DiscountLevel,
    amount: Balance,
    credited_s: u64,
}

fn record_bill(ctx: &mut Ctx<'_>, contract: &Contract, charge: Charge) {
    let Charge {
        level,
        amount,
        credited_s,
    } = charge;
    let bill = Bill {
        timestamp_s: ctx.now_s,
        discount_level: level,
        amount_billed: amount,
        credited_s,
    };
    let mut bills = ctx
        .state
        .contract_bills
        .get(&contract.contract_id)
        .cloned()
        .unwrap_or_default();
    if bills.len() >= CONTRACT_BILLS_KEPT {
        bills.remove(0);
    }
    bills.push(bill);
    ctx.state.contract_bills.insert(contract.contract_id, bills);
    let mut consumption = ctx
        .state
        .twin_consumption
        .get(&contract.twin_id)
        .cloned()
        .unwrap_or_default();
    consumption.total_billed += amount;
    consumption.last_bill_s = ctx.now_s;
    ctx.state
        .twin_consumption
        .insert(contract.twin_id, consumption);
    ctx.emit(Event::ContractBilled {
        contract_id: contract.contract_id,
        timestamp_s: ctx.now_s,
        discount_level: level,
        amount_billed: amount,
        credited_s,
    });
}

/// Bills every contract of this block's slot.
pub fn bill_slot(ctx: &mut Ctx<'_>) {
    let slot = ctx.height % ctx.state.params().billing_period_blocks;
    let due = ctx
        .state
        .contracts_to_bill_at
        .get(&slot)
        .cloned()
        .unwrap_or_default();
    for contract_id in due {
        bill(ctx, contract_id, false);
    }
}

/// The node contracts a rent contract drags along: the renter's own on the rented node.
fn dragged(state: &State, contract: &Contract) -> Vec<ContractId> {
    let ContractData::RentContract { node_id } = contract.contract_type else {
        return vec![];
    };
    state
        .node_contracts
        .get(&node_id)
        .map(|ids| {
            ids.iter()
                .copied()
                .filter(|id| {
                    state
                        .contracts
                        .get(id)
                        .is_some_and(|c| c.twin_id == contract.twin_id)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set_state(ctx: &mut Ctx<'_>, contract_id: ContractId, state: ContractState) {
    let Some(contract) = ctx.state.contracts.update(&contract_id, |c| {
        c.state = state;
        c.clone()
    }) else {
        return;
    };
    let node_id = contract.node_id();
    let twin_id = contract.twin_id;
    match state {
        ContractState::GracePeriod { since_block } => ctx.emit(Event::ContractGracePeriodStarted {
            contract_id,
            node_id,
            twin_id,
            block: since_block,
        }),
        ContractState::Created => ctx.emit(Event::ContractGracePeriodEnded {
            contract_id,
            node_id,
            twin_id,
        }),
        ContractState::Deleted(_) => {}
    }
}

/// Bills a contract for the time since its last bill, less the seconds its node was proven down.
/// `final_bill`: the contract is ending, so it pays up to now what it can and no grace period
/// follows.
pub fn bill(ctx: &mut Ctx<'_>, contract_id: ContractId, final_bill: bool) {
    let Some(contract) = ctx.state.contracts.get(&contract_id).cloned() else {
        return;
    };
    let mut billing = ctx
        .state
        .contract_billing
        .get(&contract_id)
        .cloned()
        .unwrap_or_default();
    let window = sla::window_of(
        ctx.state,
        contract.node_id(),
        billing.last_billed_s,
        ctx.now_s,
        final_bill,
    );
    let billed_s = window.billed_s(billing.last_billed_s) as u128;
    let hourly_usd = cost_per_hour_usd(ctx.state, &contract);
    let usd = hourly_usd.saturating_mul(billed_s) / SECONDS_PER_HOUR + billing.unbilled_nu_usd;
    let account = twin_account(ctx.state, &contract);
    let free = ctx.state.balance(&account);
    let (level, paid_percent) = discount(free, usd_to_tft(ctx.state, hourly_usd));
    let certified = contract
        .node_id()
        .and_then(|n| ctx.state.nodes.get(&n))
        .is_some_and(|n| n.certification == NodeCertification::Certified);
    let mut amount = usd_to_tft(ctx.state, usd) * paid_percent / 100;
    if certified {
        amount = amount * 125 / 100;
    }
    let due = amount.saturating_add(billing.overdue);
    billing.last_billed_s = window.to_s;
    billing.unbilled_nu_usd = 0;
    let credited_s = window.credited_s;

    if free >= due || final_bill {
        // Paid in full, or the contract ends: it takes what there is and the rest is lost.
        let paid = due.min(free);
        if paid > 0 {
            distribute(ctx, &contract, &account, paid);
        }
        if paid > 0 || credited_s > 0 {
            let charge = Charge {
                level,
                amount: paid,
                credited_s,
            };
            record_bill(ctx, &contract, charge);
        }
        billing.overdue = 0;
        ctx.state.contract_billing.insert(contract_id, billing);
        if free >= due && matches!(contract.state, ContractState::GracePeriod { .. }) {
            set_state(ctx, contract_id, ContractState::Created);
            for id in dragged(ctx.state, &contract) {
                set_state(ctx, id, ContractState::Created);
            }
        }
        return;
    }
    billing.overdue = due;
    ctx.state.contract_billing.insert(contract_id, billing);
    match contract.state {
        ContractState::Created => {
            let since_block = ctx.height;
            set_state(ctx, contract_id, ContractState::GracePeriod { since_block });
            for id in dragged(ctx.state, &contract) {
                set_state(ctx, id, ContractState::GracePeriod { since_block });
            }
        }
        ContractState::GracePeriod { since_block } => {
            if ctx.height.saturating_sub(since_block) >= ctx.state.params().grace_period_blocks {
                ctx.emit(Event::ContractGracePeriodElapsed {
                    contract_id,
                    twin_id: contract.twin_id,
                });
                for id in dragged(ctx.state, &contract) {
                    bill(ctx, id, true);
                    lifecycle::remove(ctx, id, Cause::OutOfFunds);
                }
                bill(ctx, contract_id, true);
                lifecycle::remove(ctx, contract_id, Cause::OutOfFunds);
            }
        }
        ContractState::Deleted(_) => {}
    }
}

/// Adds a node's network report to what a contract owes at its next bill.
pub fn add_nru(state: &mut State, contract_id: ContractId, report: &NruConsumption) {
    let policy = pricing(state);
    // TFChain's formula: GB (base 1000) × nu price × window / 1 hour.
    let usd = report.nru as u128 * policy.terms.nu.value as u128 * report.window as u128
        / (1_000_000_000 * SECONDS_PER_HOUR);
    state.contract_billing.update(&contract_id, |b| {
        b.unbilled_nu_usd += usd;
        b.last_nru_report_s = report.timestamp;
    });
}

/// The node a contract runs on, for reports (node and rent contracts).
pub fn node_of(state: &State, contract_id: ContractId) -> Option<NodeId> {
    state
        .contracts
        .get(&contract_id)
        .and_then(Contract::node_id)
}
