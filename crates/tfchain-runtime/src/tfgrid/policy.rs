//! Pricing and farming policies and the grid settings, all set by the council.

use tfgrid_types::PolicyId;

use crate::error::DispatchError;
use crate::event::Event;
use crate::limits::{POLICY_NAME_LEN_MAX, ZOS_VERSION_LEN_MAX};
use crate::runtime::Ctx;
use crate::types::*;

fn check_name(name: &str) -> Result<(), DispatchError> {
    if name.is_empty() || name.len() > POLICY_NAME_LEN_MAX {
        return Err(DispatchError::InvalidValue {
            what: "policy name",
            reason: "must be 1 to 64 characters",
        });
    }
    Ok(())
}

fn check_pricing(terms: &PricingTerms) -> Result<(), DispatchError> {
    check_name(&terms.name)?;
    if terms.discount_for_dedication_nodes > 100 {
        return Err(DispatchError::InvalidValue {
            what: "discount for dedicated nodes",
            reason: "is a percentage",
        });
    }
    Ok(())
}

pub(super) fn create_pricing(ctx: &mut Ctx<'_>, terms: &PricingTerms) -> Result<(), DispatchError> {
    check_pricing(terms)?;
    if ctx.state.pricing_policy_id_by_name.contains(&terms.name) {
        return Err(DispatchError::PricingPolicyNameTaken(terms.name.clone()));
    }
    let id = ctx.state.next_id(|c| &mut c.pricing_policy);
    let policy = PricingPolicy {
        version: PRICING_POLICY_VERSION,
        id,
        terms: terms.clone(),
    };
    ctx.state.pricing_policies.insert(id, policy.clone());
    ctx.state
        .pricing_policy_id_by_name
        .insert(terms.name.clone(), id);
    ctx.emit(Event::PricingPolicyStored(policy));
    Ok(())
}

pub(super) fn update_pricing(
    ctx: &mut Ctx<'_>,
    id: PolicyId,
    terms: &PricingTerms,
) -> Result<(), DispatchError> {
    check_pricing(terms)?;
    let old = ctx
        .state
        .pricing_policies
        .get(&id)
        .cloned()
        .ok_or(DispatchError::PricingPolicyNotFound(id))?;
    if old.terms.name != terms.name {
        if ctx.state.pricing_policy_id_by_name.contains(&terms.name) {
            return Err(DispatchError::PricingPolicyNameTaken(terms.name.clone()));
        }
        ctx.state.pricing_policy_id_by_name.remove(&old.terms.name);
        ctx.state
            .pricing_policy_id_by_name
            .insert(terms.name.clone(), id);
    }
    let policy = PricingPolicy {
        version: PRICING_POLICY_VERSION,
        id,
        terms: terms.clone(),
    };
    ctx.state.pricing_policies.insert(id, policy.clone());
    ctx.emit(Event::PricingPolicyStored(policy));
    Ok(())
}

fn check_farming(terms: &FarmingTerms) -> Result<(), DispatchError> {
    check_name(&terms.name)?;
    if terms.minimal_uptime > 100 {
        return Err(DispatchError::InvalidValue {
            what: "minimal uptime",
            reason: "is a percentage",
        });
    }
    Ok(())
}

pub(super) fn create_farming(ctx: &mut Ctx<'_>, terms: &FarmingTerms) -> Result<(), DispatchError> {
    check_farming(terms)?;
    let id = ctx.state.next_id(|c| &mut c.farming_policy);
    let policy = FarmingPolicy {
        version: FARMING_POLICY_VERSION,
        id,
        policy_created: ctx.height,
        terms: terms.clone(),
    };
    ctx.state.farming_policies.insert(id, policy.clone());
    ctx.emit(Event::FarmingPolicyStored(policy));
    Ok(())
}

pub(super) fn update_farming(
    ctx: &mut Ctx<'_>,
    id: PolicyId,
    terms: &FarmingTerms,
) -> Result<(), DispatchError> {
    check_farming(terms)?;
    let old = ctx
        .state
        .farming_policies
        .get(&id)
        .cloned()
        .ok_or(DispatchError::FarmingPolicyNotFound(id))?;
    if old.terms.immutable {
        return Err(DispatchError::FarmingPolicyImmutable(id));
    }
    let policy = FarmingPolicy {
        terms: terms.clone(),
        ..old
    };
    ctx.state.farming_policies.insert(id, policy.clone());
    ctx.emit(Event::FarmingPolicyUpdated(policy));
    Ok(())
}

pub(super) fn set_zos_version(ctx: &mut Ctx<'_>, version: &str) -> Result<(), DispatchError> {
    if version.is_empty() || version.len() > ZOS_VERSION_LEN_MAX {
        return Err(DispatchError::InvalidValue {
            what: "zos version",
            reason: "must be 1 to 64 characters",
        });
    }
    ctx.state
        .grid_settings
        .update(&(), |s| s.zos_version = version.into())
        .expect("genesis sets the grid settings");
    ctx.emit(Event::ZosVersionUpdated {
        version: version.into(),
    });
    Ok(())
}

pub(super) fn set_connection_price(ctx: &mut Ctx<'_>, price: u32) -> Result<(), DispatchError> {
    ctx.state
        .grid_settings
        .update(&(), |s| s.connection_price = price)
        .expect("genesis sets the grid settings");
    ctx.emit(Event::ConnectionPriceSet { price });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, account};
    use crate::tfgrid::Call;

    #[test]
    fn policies_are_council_business() {
        let mut h = Harness::new();
        let mut terms = h.state().pricing_policies.get(&1).unwrap().terms.clone();
        terms.name = "second".into();
        h.fails(
            &account("Alice"),
            Call::CreatePricingPolicy {
                terms: terms.clone(),
            },
            DispatchError::RequiresCouncil,
        );
        h.council(Call::CreatePricingPolicy {
            terms: terms.clone(),
        });
        assert_eq!(
            h.state().pricing_policies.get(&2).unwrap().terms.name,
            "second"
        );
        let err = h.council_fails(Call::CreatePricingPolicy {
            terms: terms.clone(),
        });
        assert_eq!(
            err,
            DispatchError::PricingPolicyNameTaken("second".into()).to_string()
        );
        terms.su.value = 1;
        h.council(Call::UpdatePricingPolicy {
            id: 2,
            terms: terms.clone(),
        });
        assert_eq!(
            h.state().pricing_policies.get(&2).unwrap().terms.su.value,
            1
        );
        let err = h.council_fails(Call::UpdatePricingPolicy { id: 9, terms });
        assert_eq!(err, DispatchError::PricingPolicyNotFound(9).to_string());

        let mut farming = h.state().farming_policies.get(&1).unwrap().terms.clone();
        farming.name = "gold".into();
        farming.immutable = true;
        h.council(Call::CreateFarmingPolicy {
            terms: farming.clone(),
        });
        let id = h.state().farming_policies.len() as u32;
        let err = h.council_fails(Call::UpdateFarmingPolicy {
            id,
            terms: farming.clone(),
        });
        assert_eq!(err, DispatchError::FarmingPolicyImmutable(id).to_string());
        farming.minimal_uptime = 101;
        let err = h.council_fails(Call::CreateFarmingPolicy { terms: farming });
        assert!(err.contains("minimal uptime"));

        h.council(Call::SetConnectionPrice { price: 90 });
        assert_eq!(
            h.state().grid_settings.get(&()).unwrap().connection_price,
            90
        );
    }
}
