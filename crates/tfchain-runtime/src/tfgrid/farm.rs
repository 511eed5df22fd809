//! Farms: unique names, public IPs with their gateways, payout address, certification, dedication.

use tfgrid_types::{AccountId, FarmId};

use super::{IpInput, farm, node, owned_farm, twin_of, validate};
use crate::error::DispatchError;
use crate::event::Event;
use crate::limits::{FARM_PUBLIC_IPS_MAX, STELLAR_ADDRESS_LEN_MAX};
use crate::runtime::Ctx;
use crate::types::{FARM_VERSION, Farm, FarmCertification, PublicIp};

fn check_name(ctx: &Ctx<'_>, name: &str) -> Result<(), DispatchError> {
    validate::farm_name(name)
        .map_err(|reason| DispatchError::InvalidFarmName(name.into(), reason))?;
    if ctx.state.farm_id_by_name.contains(&name.to_owned()) {
        return Err(DispatchError::FarmNameTaken(name.into()));
    }
    Ok(())
}

/// Adds a checked public IP to a farm's list.
fn push_ip(farm: &mut Farm, ip: &str, gw: &str) -> Result<(), DispatchError> {
    validate::public_ip_v4(ip, gw).map_err(|reason| DispatchError::InvalidPublicIp {
        ip: ip.into(),
        gateway: gw.into(),
        reason,
    })?;
    if farm.public_ips.iter().any(|p| p.ip == ip) {
        return Err(DispatchError::PublicIpExists(ip.into(), farm.id));
    }
    if farm.public_ips.len() >= FARM_PUBLIC_IPS_MAX {
        return Err(DispatchError::TooManyPublicIps(farm.id));
    }
    farm.public_ips.push(PublicIp {
        ip: ip.into(),
        gateway: gw.into(),
        contract_id: 0,
    });
    Ok(())
}

pub(super) fn create(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    name: &str,
    ips: &[IpInput],
) -> Result<(), DispatchError> {
    let twin_id = twin_of(ctx, &account)?;
    check_name(ctx, name)?;
    let id = ctx.state.next_id(|c| &mut c.farm);
    let mut farm = Farm {
        version: FARM_VERSION,
        id,
        name: name.into(),
        twin_id,
        pricing_policy_id: 1,
        certification: FarmCertification::NotCertified,
        public_ips: Vec::new(),
        dedicated_farm: false,
    };
    for ip in ips {
        push_ip(&mut farm, &ip.ip, &ip.gw)?;
    }
    ctx.state.farms.insert(id, farm.clone());
    ctx.state.farm_id_by_name.insert(name.into(), id);
    ctx.emit(Event::FarmStored(farm));
    Ok(())
}

fn store_updated(ctx: &mut Ctx<'_>, farm: Farm) {
    ctx.state.farms.insert(farm.id, farm.clone());
    ctx.emit(Event::FarmUpdated(farm));
}

pub(super) fn rename(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    farm_id: FarmId,
    name: &str,
) -> Result<(), DispatchError> {
    let mut farm = owned_farm(ctx, &account, farm_id)?;
    if farm.name == name {
        return Ok(());
    }
    check_name(ctx, name)?;
    ctx.state.farm_id_by_name.remove(&farm.name);
    ctx.state.farm_id_by_name.insert(name.into(), farm_id);
    farm.name = name.into();
    store_updated(ctx, farm);
    Ok(())
}

pub(super) fn set_payout_address(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    farm_id: FarmId,
    address: &str,
) -> Result<(), DispatchError> {
    owned_farm(ctx, &account, farm_id)?;
    let valid = address.len() == STELLAR_ADDRESS_LEN_MAX
        && address.starts_with('G')
        && address
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c));
    if !valid {
        return Err(DispatchError::InvalidStellarAddress(address.into()));
    }
    ctx.state
        .farm_payout_address
        .insert(farm_id, address.into());
    ctx.emit(Event::FarmPayoutV2AddressRegistered {
        farm_id,
        address: address.into(),
    });
    Ok(())
}

pub(super) fn add_ip(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    farm_id: FarmId,
    ip: &str,
    gw: &str,
) -> Result<(), DispatchError> {
    let mut farm = owned_farm(ctx, &account, farm_id)?;
    push_ip(&mut farm, ip, gw)?;
    store_updated(ctx, farm);
    Ok(())
}

pub(super) fn remove_ip(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    farm_id: FarmId,
    ip: &str,
) -> Result<(), DispatchError> {
    let mut farm = owned_farm(ctx, &account, farm_id)?;
    let at = farm
        .public_ips
        .iter()
        .position(|p| p.ip == ip)
        .ok_or_else(|| DispatchError::PublicIpNotFound(ip.into(), farm_id))?;
    let contract = farm.public_ips[at].contract_id;
    if contract != 0 {
        return Err(DispatchError::PublicIpInUse(ip.into(), contract));
    }
    farm.public_ips.remove(at);
    store_updated(ctx, farm);
    Ok(())
}

pub(super) fn set_certification(
    ctx: &mut Ctx<'_>,
    farm_id: FarmId,
    certification: FarmCertification,
) -> Result<(), DispatchError> {
    let mut farm = farm(ctx, farm_id)?;
    farm.certification = certification;
    ctx.state.farms.insert(farm_id, farm);
    ctx.emit(Event::FarmCertificationSet {
        farm_id,
        certification,
    });
    let nodes: Vec<_> = ctx
        .state
        .nodes
        .iter()
        .filter(|(_, n)| n.farm_id == farm_id)
        .map(|(id, _)| *id)
        .collect();
    for node_id in nodes {
        node::reassign_default_farming_policy(ctx, node_id)?;
    }
    Ok(())
}

pub(super) fn set_dedicated(
    ctx: &mut Ctx<'_>,
    farm_id: FarmId,
    dedicated: bool,
) -> Result<(), DispatchError> {
    let mut farm = farm(ctx, farm_id)?;
    farm.dedicated_farm = dedicated;
    ctx.state.farms.insert(farm_id, farm);
    ctx.emit(Event::FarmMarkedAsDedicated { farm_id, dedicated });
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::error::DispatchError;
    use crate::testing::{Harness, account};
    use crate::tfgrid::{Call, IpInput};
    use crate::types::FarmCertification;

    fn ip(ip: &str, gw: &str) -> IpInput {
        IpInput {
            ip: ip.into(),
            gw: gw.into(),
        }
    }

    #[test]
    fn farm_rules() {
        let mut h = Harness::new();
        let (alice, bob) = (account("Alice"), account("Bob"));
        let create = |name: &str, ips: Vec<IpInput>| Call::CreateFarm {
            name: name.into(),
            public_ips: ips,
        };
        h.fails(
            &alice,
            create("farm1", vec![]),
            DispatchError::NoTwin(alice),
        );
        h.twin(&alice);
        h.twin(&bob);
        h.fails(
            &alice,
            create("a", vec![]),
            DispatchError::InvalidFarmName("a".into(), "must be 3 to 40 characters"),
        );
        h.fails(
            &alice,
            create(
                "farm1",
                vec![
                    ip("185.206.122.33/24", "185.206.122.1"),
                    ip("185.206.122.33/24", "185.206.122.1"),
                ],
            ),
            DispatchError::PublicIpExists("185.206.122.33/24".into(), 1),
        );
        h.ok(
            &alice,
            create("farm1", vec![ip("185.206.122.33/24", "185.206.122.1")]),
        );
        h.fails(
            &bob,
            create("farm1", vec![]),
            DispatchError::FarmNameTaken("farm1".into()),
        );
        assert_eq!(h.state().farms.get(&1).unwrap().public_ips.len(), 1);
        // A failed create handed out no id.
        h.ok(&bob, create("farm2", vec![]));
        assert_eq!(
            h.state().farm_id_by_name.get(&"farm2".to_string()),
            Some(&2)
        );

        // Public IPs: owner only, validated, unique, removable while free.
        let add = |ip: &str, gw: &str| Call::AddFarmIp {
            farm_id: 1,
            ip: ip.into(),
            gw: gw.into(),
        };
        h.fails(
            &bob,
            add("185.206.122.34/24", "185.206.122.1"),
            DispatchError::NotFarmOwner { twin: 2, farm: 1 },
        );
        h.fails(
            &alice,
            add("10.0.0.2/24", "10.0.0.1"),
            DispatchError::InvalidPublicIp {
                ip: "10.0.0.2/24".into(),
                gateway: "10.0.0.1".into(),
                reason: "the address is not a public unicast address",
            },
        );
        h.ok(&alice, add("185.206.122.34/24", "185.206.122.1"));
        h.fails(
            &alice,
            add("185.206.122.34/24", "185.206.122.1"),
            DispatchError::PublicIpExists("185.206.122.34/24".into(), 1),
        );
        h.ok(
            &alice,
            Call::RemoveFarmIp {
                farm_id: 1,
                ip: "185.206.122.34/24".into(),
            },
        );
        h.fails(
            &alice,
            Call::RemoveFarmIp {
                farm_id: 1,
                ip: "185.206.122.34/24".into(),
            },
            DispatchError::PublicIpNotFound("185.206.122.34/24".into(), 1),
        );
        h.fails(
            &alice,
            Call::RemoveFarmIp {
                farm_id: 9,
                ip: "x".into(),
            },
            DispatchError::FarmNotFound(9),
        );

        // Rename keeps names unique and frees the old one.
        h.fails(
            &alice,
            Call::UpdateFarm {
                farm_id: 1,
                name: "farm2".into(),
            },
            DispatchError::FarmNameTaken("farm2".into()),
        );
        h.ok(
            &alice,
            Call::UpdateFarm {
                farm_id: 1,
                name: "renamed".into(),
            },
        );
        h.ok(&bob, create("farm1", vec![]));

        // Payout address and council-only settings.
        h.fails(
            &alice,
            Call::AddStellarPayoutV2Address {
                farm_id: 1,
                address: "nope".into(),
            },
            DispatchError::InvalidStellarAddress("nope".into()),
        );
        let stellar = format!("G{}", "A".repeat(55));
        h.ok(
            &alice,
            Call::AddStellarPayoutV2Address {
                farm_id: 1,
                address: stellar.clone(),
            },
        );
        assert_eq!(h.state().farm_payout_address.get(&1), Some(&stellar));
        let certify = Call::SetFarmCertification {
            farm_id: 1,
            certification: FarmCertification::Gold,
        };
        h.fails(&alice, certify.clone(), DispatchError::RequiresCouncil);
        h.council(certify);
        assert_eq!(
            h.state().farms.get(&1).unwrap().certification,
            FarmCertification::Gold
        );
        h.council(Call::SetFarmDedicated {
            farm_id: 1,
            dedicated: true,
        });
        assert!(h.state().farms.get(&1).unwrap().dedicated_farm);
    }
}
