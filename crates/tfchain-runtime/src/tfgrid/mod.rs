//! The tfgrid module (TFChain's pallet-tfgrid): the registry of twins, farms with their public IPs,
//! nodes with their capacity, power and uptime, certification, and the pricing and farming policies.

mod farm;
mod node;
mod policy;
mod twin;
pub mod validate;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::{AccountId, FarmId, NodeId, PolicyId};

use crate::error::DispatchError;
use crate::runtime::{Ctx, Origin};
use crate::types::*;

/// A public IP as a farmer gives it: the address with its prefix, and its gateway.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct IpInput {
    pub ip: String,
    pub gw: String,
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Call {
    UserAcceptTc {
        document_link: String,
        document_hash: String,
    },
    CreateTwin {
        relay: Option<String>,
        pk: Option<Vec<u8>>,
    },
    UpdateTwin {
        relay: Option<String>,
        pk: Option<Vec<u8>>,
    },

    CreateFarm {
        name: String,
        public_ips: Vec<IpInput>,
    },
    UpdateFarm {
        farm_id: FarmId,
        name: String,
    },
    AddStellarPayoutV2Address {
        farm_id: FarmId,
        address: String,
    },
    AddFarmIp {
        farm_id: FarmId,
        ip: String,
        gw: String,
    },
    RemoveFarmIp {
        farm_id: FarmId,
        ip: String,
    },
    /// Council.
    SetFarmCertification {
        farm_id: FarmId,
        certification: FarmCertification,
    },
    /// Council.
    SetFarmDedicated {
        farm_id: FarmId,
        dedicated: bool,
    },

    /// By the node's own twin (Zero-OS registers itself).
    CreateNode(NodeSpec),
    /// By the node's twin; free.
    UpdateNode {
        node_id: NodeId,
        spec: NodeSpec,
    },
    /// By the node's twin or the farmer.
    DeleteNode {
        node_id: NodeId,
    },
    /// By the farmer.
    AddNodePublicConfig {
        farm_id: FarmId,
        node_id: NodeId,
        public_config: Option<PublicConfig>,
    },
    /// By the node's twin; free.
    ReportUptime {
        uptime_s: u64,
        timestamp_hint_s: u64,
    },
    /// By the node's twin; free.
    ChangePowerState {
        power: Power,
    },
    /// By the farmer.
    ChangePowerTarget {
        node_id: NodeId,
        target: Power,
    },
    /// Council or an allowed certifier.
    SetNodeCertification {
        node_id: NodeId,
        certification: NodeCertification,
    },
    /// Council.
    AddNodeCertifier {
        account: AccountId,
    },
    /// Council.
    RemoveNodeCertifier {
        account: AccountId,
    },

    /// Council.
    CreatePricingPolicy {
        terms: PricingTerms,
    },
    /// Council.
    UpdatePricingPolicy {
        id: PolicyId,
        terms: PricingTerms,
    },
    /// Council.
    CreateFarmingPolicy {
        terms: FarmingTerms,
    },
    /// Council.
    UpdateFarmingPolicy {
        id: PolicyId,
        terms: FarmingTerms,
    },
    /// Council.
    SetZosVersion {
        version: String,
    },
    /// Council.
    SetConnectionPrice {
        price: u32,
    },
}

pub fn dispatch(ctx: &mut Ctx<'_>, origin: Origin, call: &Call) -> Result<(), DispatchError> {
    match call {
        Call::UserAcceptTc {
            document_link,
            document_hash,
        } => twin::accept_terms(ctx, origin.signer()?, document_link, document_hash),
        Call::CreateTwin { relay, pk } => twin::create(ctx, origin.signer()?, relay, pk),
        Call::UpdateTwin { relay, pk } => twin::update(ctx, origin.signer()?, relay, pk),

        Call::CreateFarm { name, public_ips } => {
            farm::create(ctx, origin.signer()?, name, public_ips)
        }
        Call::UpdateFarm { farm_id, name } => farm::rename(ctx, origin.signer()?, *farm_id, name),
        Call::AddStellarPayoutV2Address { farm_id, address } => {
            farm::set_payout_address(ctx, origin.signer()?, *farm_id, address)
        }
        Call::AddFarmIp { farm_id, ip, gw } => {
            farm::add_ip(ctx, origin.signer()?, *farm_id, ip, gw)
        }
        Call::RemoveFarmIp { farm_id, ip } => farm::remove_ip(ctx, origin.signer()?, *farm_id, ip),
        Call::SetFarmCertification {
            farm_id,
            certification,
        } => {
            origin.ensure_council()?;
            farm::set_certification(ctx, *farm_id, *certification)
        }
        Call::SetFarmDedicated { farm_id, dedicated } => {
            origin.ensure_council()?;
            farm::set_dedicated(ctx, *farm_id, *dedicated)
        }

        Call::CreateNode(spec) => node::create(ctx, origin.signer()?, spec),
        Call::UpdateNode { node_id, spec } => node::update(ctx, origin.signer()?, *node_id, spec),
        Call::DeleteNode { node_id } => node::delete(ctx, origin.signer()?, *node_id),
        Call::AddNodePublicConfig {
            farm_id,
            node_id,
            public_config,
        } => node::set_public_config(ctx, origin.signer()?, *farm_id, *node_id, public_config),
        Call::ReportUptime {
            uptime_s,
            timestamp_hint_s,
        } => node::report_uptime(ctx, origin.signer()?, *uptime_s, *timestamp_hint_s),
        Call::ChangePowerState { power } => node::change_power_state(ctx, origin.signer()?, *power),
        Call::ChangePowerTarget { node_id, target } => {
            node::change_power_target(ctx, origin.signer()?, *node_id, *target)
        }
        Call::SetNodeCertification {
            node_id,
            certification,
        } => node::set_certification(ctx, origin, *node_id, *certification),
        Call::AddNodeCertifier { account } => {
            origin.ensure_council()?;
            node::add_certifier(ctx, *account)
        }
        Call::RemoveNodeCertifier { account } => {
            origin.ensure_council()?;
            node::remove_certifier(ctx, *account)
        }

        Call::CreatePricingPolicy { terms } => {
            origin.ensure_council()?;
            policy::create_pricing(ctx, terms)
        }
        Call::UpdatePricingPolicy { id, terms } => {
            origin.ensure_council()?;
            policy::update_pricing(ctx, *id, terms)
        }
        Call::CreateFarmingPolicy { terms } => {
            origin.ensure_council()?;
            policy::create_farming(ctx, terms)
        }
        Call::UpdateFarmingPolicy { id, terms } => {
            origin.ensure_council()?;
            policy::update_farming(ctx, *id, terms)
        }
        Call::SetZosVersion { version } => {
            origin.ensure_council()?;
            policy::set_zos_version(ctx, version)
        }
        Call::SetConnectionPrice { price } => {
            origin.ensure_council()?;
            policy::set_connection_price(ctx, *price)
        }
    }
}

/// The twin of an account, or why it has none.
pub(crate) fn twin_of(
    ctx: &Ctx<'_>,
    account: &AccountId,
) -> Result<tfgrid_types::TwinId, DispatchError> {
    ctx.state
        .twin_id_by_account
        .get(account)
        .copied()
        .ok_or(DispatchError::NoTwin(*account))
}

/// The farm `farm_id`, or why there is none.
pub(crate) fn farm(ctx: &Ctx<'_>, farm_id: FarmId) -> Result<Farm, DispatchError> {
    ctx.state
        .farms
        .get(&farm_id)
        .cloned()
        .ok_or(DispatchError::FarmNotFound(farm_id))
}

/// The node `node_id`, or why there is none.
pub(crate) fn node(ctx: &Ctx<'_>, node_id: NodeId) -> Result<Node, DispatchError> {
    ctx.state
        .nodes
        .get(&node_id)
        .cloned()
        .ok_or(DispatchError::NodeNotFound(node_id))
}

/// The farm `farm_id`, checked to be owned by `account`'s twin.
pub(crate) fn owned_farm(
    ctx: &Ctx<'_>,
    account: &AccountId,
    farm_id: FarmId,
) -> Result<Farm, DispatchError> {
    let twin = twin_of(ctx, account)?;
    let farm = farm(ctx, farm_id)?;
    if farm.twin_id != twin {
        return Err(DispatchError::NotFarmOwner {
            twin,
            farm: farm_id,
        });
    }
    Ok(farm)
}
