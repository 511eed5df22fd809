//! Nodes: registration by Zero-OS itself, updates, deletion, public config set by the farmer, uptime
//! reports, power state and target, certification, and the choice of a farming policy.

use tfgrid_types::{AccountId, FarmId, NodeId, PolicyId};

use super::{node, owned_farm, twin_of, validate};
use crate::error::DispatchError;
use crate::event::Event;
use crate::limits::{INTERFACES_MAX, SERIAL_NUMBER_LEN_MAX};
use crate::runtime::{Ctx, Origin};
use crate::types::*;

fn check_spec(ctx: &Ctx<'_>, spec: &NodeSpec) -> Result<(), DispatchError> {
    if !ctx.state.farms.contains(&spec.farm_id) {
        return Err(DispatchError::FarmNotFound(spec.farm_id));
    }
    validate::resources(&spec.resources).map_err(DispatchError::InvalidResources)?;
    validate::location(&spec.location).map_err(DispatchError::InvalidLocation)?;
    if spec.interfaces.len() > INTERFACES_MAX {
        return Err(DispatchError::InvalidInterface {
            name: String::new(),
            reason: "a node has at most 10 interfaces",
        });
    }
    for interface in &spec.interfaces {
        validate::interface(interface).map_err(|reason| DispatchError::InvalidInterface {
            name: interface.name.clone(),
            reason,
        })?;
    }
    if spec
        .serial_number
        .as_ref()
        .is_some_and(|s| s.len() > SERIAL_NUMBER_LEN_MAX)
    {
        return Err(DispatchError::SerialNumberTooLong);
    }
    Ok(())
}

/// The best default farming policy for a node of this certification in a farm of that one: among the
/// default policies still in force, sorted by farm certification, node certification and id (highest
/// first), the first whose requirements the node and farm meet.
fn select_farming_policy(
    ctx: &Ctx<'_>,
    node: NodeCertification,
    farm: FarmCertification,
) -> Result<PolicyId, DispatchError> {
    let mut candidates: Vec<&FarmingPolicy> = ctx
        .state
        .farming_policies
        .iter()
        .map(|(_, p)| p)
        .filter(|p| {
            p.terms.default && (p.terms.policy_end == 0 || ctx.height <= p.terms.policy_end)
        })
        .collect();
    candidates.sort_by_key(|p| {
        std::cmp::Reverse((p.terms.farm_certification, p.terms.node_certification, p.id))
    });
    candidates
        .into_iter()
        .find(|p| p.terms.node_certification <= node && p.terms.farm_certification <= farm)
        .map(|p| p.id)
        .ok_or(DispatchError::NoFarmingPolicy)
}

/// Re-chooses the farming policy of a node on a default policy, after a certification changed.
pub(super) fn reassign_default_farming_policy(
    ctx: &mut Ctx<'_>,
    node_id: NodeId,
) -> Result<(), DispatchError> {
    let node = node(ctx, node_id)?;
    let on_default = ctx
        .state
        .farming_policies
        .get(&node.farming_policy_id)
        .is_none_or(|p| p.terms.default);
    if !on_default {
        return Ok(());
    }
    let farm_cert = ctx
        .state
        .farms
        .get(&node.farm_id)
        .map_or(FarmCertification::NotCertified, |f| f.certification);
    let policy = select_farming_policy(ctx, node.certification, farm_cert)?;
    if policy != node.farming_policy_id {
        let node = ctx.state.nodes.update(&node_id, |n| {
            n.farming_policy_id = policy;
            n.clone()
        });
        ctx.emit(Event::NodeUpdated(node.expect("node exists")));
    }
    Ok(())
}

/// The node registered by `account`'s twin.
fn own_node(ctx: &Ctx<'_>, account: &AccountId) -> Result<Node, DispatchError> {
    let twin = twin_of(ctx, account)?;
    let id = ctx
        .state
        .node_id_by_twin
        .get(&twin)
        .ok_or(DispatchError::NoNode(twin))?;
    Ok(ctx
        .state
        .nodes
        .get(id)
        .cloned()
        .expect("the index points at a node"))
}

pub(super) fn create(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    spec: &NodeSpec,
) -> Result<(), DispatchError> {
    let twin_id = twin_of(ctx, &account)?;
    if let Some(existing) = ctx.state.node_id_by_twin.get(&twin_id) {
        return Err(DispatchError::NodeExists(twin_id, *existing));
    }
    check_spec(ctx, spec)?;
    let farm_cert = ctx
        .state
        .farms
        .get(&spec.farm_id)
        .expect("checked")
        .certification;
    let farming_policy_id = select_farming_policy(ctx, NodeCertification::Diy, farm_cert)?;
    let connection_price = ctx
        .state
        .grid_settings
        .get(&())
        .map_or(0, |s| s.connection_price);
    let id = ctx.state.next_id(|c| &mut c.node);
    let node = Node {
        version: NODE_VERSION,
        id,
        farm_id: spec.farm_id,
        twin_id,
        resources: spec.resources,
        location: spec.location.clone(),
        public_config: None,
        created: ctx.now_s,
        farming_policy_id,
        interfaces: spec.interfaces.clone(),
        certification: NodeCertification::Diy,
        secure_boot: spec.secure_boot,
        virtualized: spec.virtualized,
        serial_number: spec.serial_number.clone(),
        connection_price,
    };
    ctx.state.nodes.insert(id, node.clone());
    ctx.state.node_id_by_twin.insert(twin_id, id);
    ctx.state.node_power.insert(
        id,
        NodePower {
            state: PowerState::Up,
            target: Power::Up,
        },
    );
    ctx.emit(Event::NodeStored(node));
    Ok(())
}

pub(super) fn update(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    node_id: NodeId,
    spec: &NodeSpec,
) -> Result<(), DispatchError> {
    let twin = twin_of(ctx, &account)?;
    let mut node = node(ctx, node_id)?;
    if node.twin_id != twin {
        return Err(DispatchError::NotNodeTwin {
            twin,
            node: node_id,
        });
    }
    check_spec(ctx, spec)?;
    // A certified node whose hardware changed is no longer the hardware that was certified.
    if node.certification == NodeCertification::Certified
        && spec
            .resources
            .differs_by_more_than_1_percent(&node.resources)
    {
        node.certification = NodeCertification::Diy;
    }
    node.farm_id = spec.farm_id;
    node.resources = spec.resources;
    node.location = spec.location.clone();
    node.interfaces = spec.interfaces.clone();
    node.secure_boot = spec.secure_boot;
    node.virtualized = spec.virtualized;
    node.serial_number = spec.serial_number.clone();
    ctx.state.nodes.insert(node_id, node.clone());
    ctx.emit(Event::NodeUpdated(node));
    reassign_default_farming_policy(ctx, node_id)
}

pub(super) fn delete(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    node_id: NodeId,
) -> Result<(), DispatchError> {
    let twin = twin_of(ctx, &account)?;
    let node = node(ctx, node_id)?;
    let farmer = ctx.state.farms.get(&node.farm_id).map(|f| f.twin_id);
    if node.twin_id != twin && farmer != Some(twin) {
        return Err(DispatchError::NotNodeTwin {
            twin,
            node: node_id,
        });
    }
    crate::smart_contract::cancel_node_contracts(ctx, node_id);
    ctx.state.nodes.remove(&node_id);
    ctx.state.node_id_by_twin.remove(&node.twin_id);
    ctx.state.node_power.remove(&node_id);
    ctx.state.node_uptime.remove(&node_id);
    ctx.state.node_downtime.remove(&node_id);
    ctx.emit(Event::NodeDeleted { node_id });
    Ok(())
}

pub(super) fn set_public_config(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    farm_id: FarmId,
    node_id: NodeId,
    config: &Option<PublicConfig>,
) -> Result<(), DispatchError> {
    owned_farm(ctx, &account, farm_id)?;
    let node = ctx
        .state
        .nodes
        .get(&node_id)
        .ok_or(DispatchError::NodeNotFound(node_id))?;
    if node.farm_id != farm_id {
        return Err(DispatchError::NodeNotInFarm {
            node: node_id,
            farm: farm_id,
        });
    }
    if let Some(config) = config {
        validate::public_ip_v4(&config.ip4.ip, &config.ip4.gw)
            .map_err(DispatchError::InvalidPublicConfig)?;
        if let Some(ip6) = &config.ip6 {
            validate::public_ip_v6(&ip6.ip, &ip6.gw).map_err(DispatchError::InvalidPublicConfig)?;
        }
        if let Some(domain) = &config.domain {
            validate::domain(domain).map_err(DispatchError::InvalidPublicConfig)?;
        }
    }
    ctx.state
        .nodes
        .update(&node_id, |n| n.public_config = config.clone());
    ctx.emit(Event::NodePublicConfigStored {
        node_id,
        public_config: config.clone(),
    });
    Ok(())
}

pub(super) fn report_uptime(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    uptime_s: u64,
    hint_s: u64,
) -> Result<(), DispatchError> {
    let node = own_node(ctx, &account)?;
    let drift = ctx.state.params().timestamp_hint_drift_s;
    if hint_s.abs_diff(ctx.now_s) > drift {
        return Err(DispatchError::TimestampHintDrift {
            hint: hint_s,
            now: ctx.now_s,
            drift,
        });
    }
    crate::smart_contract::rewards::record_uptime(ctx, node.id, uptime_s);
    ctx.emit(Event::NodeUptimeReported {
        node_id: node.id,
        timestamp_s: ctx.now_s,
        uptime_s,
    });
    Ok(())
}

pub(super) fn change_power_state(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    power: Power,
) -> Result<(), DispatchError> {
    let node = own_node(ctx, &account)?;
    let state = match power {
        Power::Up => PowerState::Up,
        Power::Down => PowerState::Down {
            since_block: ctx.height,
        },
    };
    let target = ctx
        .state
        .node_power
        .get(&node.id)
        .map_or(Power::Up, |p| p.target);
    ctx.state
        .node_power
        .insert(node.id, NodePower { state, target });
    ctx.emit(Event::PowerStateChanged {
        farm_id: node.farm_id,
        node_id: node.id,
        state,
    });
    Ok(())
}

pub(super) fn change_power_target(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    node_id: NodeId,
    target: Power,
) -> Result<(), DispatchError> {
    let node = node(ctx, node_id)?;
    owned_farm(ctx, &account, node.farm_id)?;
    if target == Power::Down && crate::smart_contract::node_has_contracts(ctx, node_id) {
        return Err(DispatchError::NodeHasContracts(node_id));
    }
    let state = ctx
        .state
        .node_power
        .get(&node_id)
        .map_or(PowerState::Up, |p| p.state);
    ctx.state
        .node_power
        .insert(node_id, NodePower { state, target });
    ctx.emit(Event::PowerTargetChanged {
        farm_id: node.farm_id,
        node_id,
        target,
    });
    Ok(())
}

pub(super) fn set_certification(
    ctx: &mut Ctx<'_>,
    origin: Origin,
    node_id: NodeId,
    certification: NodeCertification,
) -> Result<(), DispatchError> {
    if let Origin::Signed(account) = origin
        && !ctx.state.node_certifiers.contains(&account)
    {
        return Err(DispatchError::NotCertifier(account));
    }
    ctx.state
        .nodes
        .update(&node_id, |n| n.certification = certification)
        .ok_or(DispatchError::NodeNotFound(node_id))?;
    ctx.emit(Event::NodeCertificationSet {
        node_id,
        certification,
    });
    reassign_default_farming_policy(ctx, node_id)
}

pub(super) fn add_certifier(ctx: &mut Ctx<'_>, account: AccountId) -> Result<(), DispatchError> {
    if ctx.state.node_certifiers.insert(account, ()).is_some() {
        return Err(DispatchError::AlreadyCertifier(account));
    }
    ctx.emit(Event::NodeCertifierAdded { account });
    Ok(())
}

pub(super) fn remove_certifier(ctx: &mut Ctx<'_>, account: AccountId) -> Result<(), DispatchError> {
    ctx.state
        .node_certifiers
        .remove(&account)
        .ok_or(DispatchError::NotCertifier(account))?;
    ctx.emit(Event::NodeCertifierRemoved { account });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, account, node_spec};
    use crate::tfgrid::Call;

    /// Alice farms farm 1; Bob's twin is a node's twin.
    fn setup() -> Harness {
        let mut h = Harness::new();
        h.twin(&account("Alice"));
        h.twin(&account("Bob"));
        h.ok(
            &account("Alice"),
            Call::CreateFarm {
                name: "farm1".into(),
                public_ips: vec![],
            },
        );
        h
    }

    #[test]
    fn create_and_update_rules() {
        let mut h = setup();
        let (alice, bob, charlie) = (account("Alice"), account("Bob"), account("Charlie"));
        h.fails(
            &charlie,
            Call::CreateNode(node_spec(1)),
            DispatchError::NoTwin(charlie),
        );
        h.fails(
            &bob,
            Call::CreateNode(node_spec(7)),
            DispatchError::FarmNotFound(7),
        );
        let mut small = node_spec(1);
        small.resources.mru = 1;
        h.fails(
            &bob,
            Call::CreateNode(small),
            DispatchError::InvalidResources("at least 2 GiB of memory"),
        );
        let mut bad_loc = node_spec(1);
        bad_loc.location.latitude = "100".into();
        h.fails(
            &bob,
            Call::CreateNode(bad_loc),
            DispatchError::InvalidLocation(
                "the latitude must be a number from -90 to 90, or Unknown",
            ),
        );
        let mut long_serial = node_spec(1);
        long_serial.serial_number = Some("x".repeat(129));
        h.fails(
            &bob,
            Call::CreateNode(long_serial),
            DispatchError::SerialNumberTooLong,
        );

        h.ok(&bob, Call::CreateNode(node_spec(1)));
        let node = h.state().nodes.get(&1).unwrap().clone();
        assert_eq!(
            (node.twin_id, node.farm_id, node.farming_policy_id),
            (2, 1, 1)
        );
        assert_eq!(node.connection_price, 80);
        h.fails(
            &bob,
            Call::CreateNode(node_spec(1)),
            DispatchError::NodeExists(2, 1),
        );

        // Only the node's twin updates; a certified node loses its certification on a hardware change.
        h.fails(
            &alice,
            Call::UpdateNode {
                node_id: 1,
                spec: node_spec(1),
            },
            DispatchError::NotNodeTwin { twin: 1, node: 1 },
        );
        h.council(Call::SetNodeCertification {
            node_id: 1,
            certification: NodeCertification::Certified,
        });
        assert_eq!(h.state().nodes.get(&1).unwrap().farming_policy_id, 2);
        let mut spec = node_spec(1);
        spec.resources.mru += spec.resources.mru / 200; // 0.5 %: keeps the certification
        h.ok(
            &bob,
            Call::UpdateNode {
                node_id: 1,
                spec: spec.clone(),
            },
        );
        assert_eq!(
            h.state().nodes.get(&1).unwrap().certification,
            NodeCertification::Certified
        );
        spec.resources.mru *= 2;
        h.ok(&bob, Call::UpdateNode { node_id: 1, spec });
        let node = h.state().nodes.get(&1).unwrap();
        assert_eq!(
            (node.certification, node.farming_policy_id),
            (NodeCertification::Diy, 1)
        );
    }

    #[test]
    fn uptime_power_and_public_config() {
        let mut h = setup();
        let (alice, bob) = (account("Alice"), account("Bob"));
        h.fails(
            &bob,
            Call::ReportUptime {
                uptime_s: 10,
                timestamp_hint_s: 0,
            },
            DispatchError::NoNode(2),
        );
        h.ok(&bob, Call::CreateNode(node_spec(1)));
        let now = h.next_block_time_s();
        h.fails(
            &bob,
            Call::ReportUptime {
                uptime_s: 10,
                timestamp_hint_s: now + 61,
            },
            DispatchError::TimestampHintDrift {
                hint: now + 61,
                now,
                drift: 60,
            },
        );
        let now = h.next_block_time_s();
        h.ok(
            &bob,
            Call::ReportUptime {
                uptime_s: 10,
                timestamp_hint_s: now - 30,
            },
        );
        assert_eq!(h.state().node_uptime.get(&1).unwrap().uptime_s, 10);
        assert_eq!(h.last_fee(), 0, "uptime reports are free");

        h.fails(
            &bob,
            Call::ChangePowerTarget {
                node_id: 1,
                target: Power::Down,
            },
            DispatchError::NotFarmOwner { twin: 2, farm: 1 },
        );
        h.ok(
            &alice,
            Call::ChangePowerTarget {
                node_id: 1,
                target: Power::Down,
            },
        );
        h.ok(&bob, Call::ChangePowerState { power: Power::Down });
        let power = h.state().node_power.get(&1).unwrap().clone();
        assert_eq!(power.target, Power::Down);
        assert!(matches!(power.state, PowerState::Down { .. }));

        let config = |ip: &str, gw: &str| PublicConfig {
            ip4: Ip4Config {
                ip: ip.into(),
                gw: gw.into(),
            },
            ip6: None,
            domain: Some("gw1.grid.tf".into()),
        };
        h.fails(
            &alice,
            Call::AddNodePublicConfig {
                farm_id: 1,
                node_id: 1,
                public_config: Some(config("10.0.0.2/24", "10.0.0.1")),
            },
            DispatchError::InvalidPublicConfig("the address is not a public unicast address"),
        );
        let good = Some(config("185.206.122.10/24", "185.206.122.1"));
        h.fails(
            &bob,
            Call::AddNodePublicConfig {
                farm_id: 1,
                node_id: 1,
                public_config: good.clone(),
            },
            DispatchError::NotFarmOwner { twin: 2, farm: 1 },
        );
        h.ok(
            &alice,
            Call::AddNodePublicConfig {
                farm_id: 1,
                node_id: 1,
                public_config: good.clone(),
            },
        );
        assert_eq!(h.state().nodes.get(&1).unwrap().public_config, good);
    }

    #[test]
    fn certifiers_and_deletion() {
        let mut h = setup();
        let (alice, bob, charlie) = (account("Alice"), account("Bob"), account("Charlie"));
        h.ok(&bob, Call::CreateNode(node_spec(1)));
        let certify = Call::SetNodeCertification {
            node_id: 1,
            certification: NodeCertification::Certified,
        };
        h.fails(
            &charlie,
            certify.clone(),
            DispatchError::NotCertifier(charlie),
        );
        h.council(Call::AddNodeCertifier { account: charlie });
        h.ok(&charlie, certify.clone());
        h.council(Call::RemoveNodeCertifier { account: charlie });
        h.fails(&charlie, certify, DispatchError::NotCertifier(charlie));

        h.twin(&charlie);
        h.fails(
            &charlie,
            Call::DeleteNode { node_id: 1 },
            DispatchError::NotNodeTwin { twin: 3, node: 1 },
        );
        h.ok(&alice, Call::DeleteNode { node_id: 1 });
        assert!(h.state().nodes.is_empty() && h.state().node_id_by_twin.is_empty());
        h.ok(&bob, Call::CreateNode(node_spec(1)));
        assert_eq!(
            *h.state().node_id_by_twin.get(&2).unwrap(),
            2,
            "ids are never reused"
        );
    }
}
