//! The prices billing uses, kept in `meta` as JSON: the billing pricing policy (policy 1, as the
//! chain's `pricing(state)`) from `PricingPolicyStored`, and the TFT price and its bounds, seeded
//! from the chain's RPC and then changed by `TftPriceSet` and `TftPriceBoundsSet`.

use tfchain_runtime::types::{PricingPolicy, TftPrice};

use super::meta::{is_set, meta_json, set_meta_json};
use crate::cost::Prices;
use crate::error::Error;
use crate::store::Sql;

/// The pricing policy billing uses (the chain's `pricing(state)`).
const BILLING_POLICY_ID: u32 = 1;
const META_PRICING_POLICY: &str = "pricing_policy";
const META_TFT_PRICE: &str = "tft_price";

/// Keeps the chain's TFT price unless one is known: genesis sets it without an event, so a new
/// store starts from the price the chain reports, and the price events replayed from there bring
/// it to the chain's once the index has caught up.
pub fn seed_tft_price(sql: &mut dyn Sql, price: &TftPrice) -> Result<(), Error> {
    if !is_set(sql, META_TFT_PRICE)? {
        set_meta_json(sql, META_TFT_PRICE, price)?;
    }
    Ok(())
}

/// What billing prices with, once the indexer knows both the policy and the TFT price.
pub fn prices(sql: &mut dyn Sql) -> Result<Option<Prices>, Error> {
    let policy: Option<PricingPolicy> = meta_json(sql, META_PRICING_POLICY)?;
    let tft: Option<TftPrice> = meta_json(sql, META_TFT_PRICE)?;
    Ok(policy.zip(tft).map(|(policy, tft)| Prices { policy, tft }))
}

/// `PricingPolicyStored`: kept if it is the policy billing uses; the others price nothing.
pub(super) fn policy_stored(sql: &mut dyn Sql, policy: &PricingPolicy) -> Result<(), Error> {
    if policy.id == BILLING_POLICY_ID {
        set_meta_json(sql, META_PRICING_POLICY, policy)?;
    }
    Ok(())
}

/// `TftPriceSet`.
pub(super) fn price_set(sql: &mut dyn Sql, price_musd: u32) -> Result<(), Error> {
    update_tft_price(sql, |p| p.price_musd = price_musd)
}

/// `TftPriceBoundsSet`.
pub(super) fn bounds_set(sql: &mut dyn Sql, min_musd: u32, max_musd: u32) -> Result<(), Error> {
    update_tft_price(sql, |p| {
        p.min_musd = min_musd;
        p.max_musd = max_musd;
    })
}

/// Changes the kept TFT price; the chain emits these only after genesis, so one is kept already.
fn update_tft_price(sql: &mut dyn Sql, change: impl FnOnce(&mut TftPrice)) -> Result<(), Error> {
    let mut price: TftPrice = meta_json(sql, META_TFT_PRICE)?
        .ok_or_else(|| Error::Store("a TFT price change before any TFT price".into()))?;
    change(&mut price);
    set_meta_json(sql, META_TFT_PRICE, &price)
}
