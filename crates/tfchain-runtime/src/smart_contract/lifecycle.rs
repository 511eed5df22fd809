//! Creating, updating and ending contracts, with TFChain's rules: where a node contract may go, one
//! deployment hash per node, public IPs reserved from the farm and released on every path that ends a
//! contract, one name per name contract, rent contracts for whole nodes.

use tfgrid_types::deployment::Deployment;
use tfgrid_types::{AccountId, ContractId, NodeId, TwinId};

use crate::error::DispatchError;
use crate::event::Event;
use crate::limits::{CONTRACTS_PER_TWIN_MAX, NAME_CONTRACT_LEN_MAX, NAME_CONTRACT_LEN_MIN};
use crate::runtime::Ctx;
use crate::tfgrid::{node, twin_of};
use crate::types::*;

use super::billing;

const CONTRACT_VERSION: u32 = 4;

/// The account of a twin, for checking deployment signatures.
pub(crate) fn account_of(ctx: &Ctx<'_>, twin: TwinId) -> Option<AccountId> {
    ctx.state.twins.get(&twin).map(|t| t.account_id)
}

fn contract(ctx: &Ctx<'_>, id: ContractId) -> Result<Contract, DispatchError> {
    ctx.state
        .contracts
        .get(&id)
        .cloned()
        .ok_or(DispatchError::ContractNotFound(id))
}

/// Whether a node has active node or rent contracts.
pub fn node_has_contracts(ctx: &Ctx<'_>, node_id: NodeId) -> bool {
    ctx.state
        .node_contracts
        .get(&node_id)
        .is_some_and(|c| !c.is_empty())
        || ctx.state.rent_contract_by_node.contains(&node_id)
}

/// Stores a new contract, indexes it, and puts it in its billing slot.
fn insert(
    ctx: &mut Ctx<'_>,
    twin_id: TwinId,
    contract_type: ContractData,
) -> Result<Contract, DispatchError> {
    let owned = ctx
        .state
        .contract_ids_by_twin
        .get(&twin_id)
        .map_or(0, Vec::len);
    if owned >= CONTRACTS_PER_TWIN_MAX {
        return Err(DispatchError::TooManyContracts(twin_id));
    }
    let contract_id = ctx.state.next_id(|c| &mut c.contract);
    let contract = Contract {
        version: CONTRACT_VERSION,
        contract_id,
        twin_id,
        state: ContractState::Created,
        contract_type,
    };
    ctx.state.contracts.insert(contract_id, contract.clone());
    let mut ids = ctx
        .state
        .contract_ids_by_twin
        .get(&twin_id)
        .cloned()
        .unwrap_or_default();
    ids.push(contract_id);
    ctx.state.contract_ids_by_twin.insert(twin_id, ids);
    ctx.state.contract_billing.insert(
        contract_id,
        ContractBilling {
            last_billed_s: ctx.now_s,
            ..Default::default()
        },
    );
    let slot = contract_id % ctx.state.params().billing_period_blocks;
    let mut due = ctx
        .state
        .contracts_to_bill_at
        .get(&slot)
        .cloned()
        .unwrap_or_default();
    due.push(contract_id);
    ctx.state.contracts_to_bill_at.insert(slot, due);
    ctx.emit(Event::ContractCreated(contract.clone()));
    Ok(contract)
}

/// Checks where a node contract of `twin` may go.
fn check_node_for_deployment(
    ctx: &Ctx<'_>,
    twin: TwinId,
    node_id: NodeId,
) -> Result<Node, DispatchError> {
    let node = node(ctx, node_id)?;
    let power = ctx.state.node_power.get(&node_id);
    if power.is_some_and(|p| {
        matches!(p.state, PowerState::Down { .. }) || matches!(p.target, Power::Down)
    }) {
        return Err(DispatchError::NodeNotAvailable(node_id));
    }
    match ctx.state.rent_contract_by_node.get(&node_id) {
        Some(rent) => {
            let renter = ctx
                .state
                .contracts
                .get(rent)
                .expect("rent index points at a contract")
                .twin_id;
            if renter != twin {
                return Err(DispatchError::NodeRentedByOther {
                    node: node_id,
                    renter,
                });
            }
        }
        None => {
            let farm = ctx
                .state
                .farms
                .get(&node.farm_id)
                .expect("a node's farm exists");
            if farm.dedicated_farm {
                return Err(DispatchError::NodeDedicated(node_id));
            }
        }
    }
    Ok(node)
}

fn check_deployment(twin: TwinId, deployment: &Deployment) -> Result<(), DispatchError> {
    if deployment.twin_id != twin {
        return Err(DispatchError::DeploymentNotOwned {
            deployment: deployment.twin_id,
            caller: twin,
        });
    }
    deployment.check()?;
    Ok(())
}

fn check_unique_hash(
    ctx: &Ctx<'_>,
    node_id: NodeId,
    deployment: &Deployment,
) -> Result<tfgrid_types::Hash32, DispatchError> {
    let hash = deployment.hash();
    if let Some(existing) = ctx.state.contract_id_by_node_hash.get(&(node_id, hash)) {
        return Err(DispatchError::DuplicateDeployment {
            node: node_id,
            hash,
            contract: *existing,
        });
    }
    Ok(hash)
}

pub(super) fn create_node_contract(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    node_id: NodeId,
    deployment: &Deployment,
) -> Result<(), DispatchError> {
    let twin = twin_of(ctx, &account)?;
    let node = check_node_for_deployment(ctx, twin, node_id)?;
    check_deployment(twin, deployment)?;
    if deployment.version != 0 {
        return Err(DispatchError::DeploymentVersion(deployment.version));
    }
    deployment.verify_signatures(|t| account_of(ctx, t))?;
    let hash = check_unique_hash(ctx, node_id, deployment)?;

    // Reserve the first free public IPs of the farm.
    let needed = deployment.public_ipv4_count();
    let mut farm = ctx
        .state
        .farms
        .get(&node.farm_id)
        .cloned()
        .expect("a node's farm exists");
    let free: Vec<usize> = farm
        .public_ips
        .iter()
        .enumerate()
        .filter(|(_, ip)| ip.contract_id == 0)
        .map(|(i, _)| i)
        .collect();
    if (free.len() as u32) < needed {
        return Err(DispatchError::NotEnoughPublicIps {
            farm: farm.id,
            needed,
            free: free.len() as u32,
        });
    }
    let contract_id = ctx.state.counters.get(&()).map_or(0, |c| c.contract) + 1;
    let mut reserved = Vec::new();
    for &i in free.iter().take(needed as usize) {
        farm.public_ips[i].contract_id = contract_id;
        reserved.push(farm.public_ips[i].clone());
    }
    if needed > 0 {
        ctx.state.farms.insert(farm.id, farm);
    }
    let data = NodeContract {
        node_id,
        deployment_hash: hash,
        deployment: deployment.clone(),
        public_ips: needed,
        public_ips_list: reserved,
    };
    let contract = insert(ctx, twin, ContractData::NodeContract(data))?;
    assert_eq!(
        contract.contract_id, contract_id,
        "the reserved IPs name the new contract"
    );
    ctx.state
        .contract_id_by_node_hash
        .insert((node_id, hash), contract_id);
    let mut active = ctx
        .state
        .node_contracts
        .get(&node_id)
        .cloned()
        .unwrap_or_default();
    active.push(contract_id);
    ctx.state.node_contracts.insert(node_id, active);
    Ok(())
}

fn owned(
    ctx: &Ctx<'_>,
    account: &AccountId,
    contract_id: ContractId,
) -> Result<Contract, DispatchError> {
    let twin = twin_of(ctx, account)?;
    let contract = contract(ctx, contract_id)?;
    if contract.twin_id != twin {
        return Err(DispatchError::NotContractOwner {
            twin,
            contract: contract_id,
        });
    }
    Ok(contract)
}

pub(super) fn update_node_contract(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    contract_id: ContractId,
    deployment: &Deployment,
) -> Result<(), DispatchError> {
    let mut contract = owned(ctx, &account, contract_id)?;
    if let ContractState::GracePeriod { .. } = contract.state {
        return Err(DispatchError::ContractInGracePeriod(contract_id));
    }
    let ContractData::NodeContract(node_contract) = &mut contract.contract_type else {
        return Err(DispatchError::NotNodeContract(contract_id));
    };
    check_deployment(contract.twin_id, deployment)?;
    deployment.check_upgrade(&node_contract.deployment, |t| account_of(ctx, t))?;
    let new_count = deployment.public_ipv4_count();
    if new_count != node_contract.public_ips {
        return Err(DispatchError::PublicIpCountChanged {
            old: node_contract.public_ips,
            new: new_count,
        });
    }
    let hash = check_unique_hash(ctx, node_contract.node_id, deployment)?;
    ctx.state
        .contract_id_by_node_hash
        .remove(&(node_contract.node_id, node_contract.deployment_hash));
    ctx.state
        .contract_id_by_node_hash
        .insert((node_contract.node_id, hash), contract_id);
    node_contract.deployment_hash = hash;
    node_contract.deployment = deployment.clone();
    ctx.state.contracts.insert(contract_id, contract.clone());
    ctx.emit(Event::ContractUpdated(contract));
    Ok(())
}

pub(super) fn create_name_contract(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    name: &str,
) -> Result<(), DispatchError> {
    let twin = twin_of(ctx, &account)?;
    let valid = (NAME_CONTRACT_LEN_MIN..=NAME_CONTRACT_LEN_MAX).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(DispatchError::InvalidContractName(name.into()));
    }
    if let Some(existing) = ctx.state.contract_id_by_name.get(&name.to_owned()) {
        return Err(DispatchError::NameTaken(name.into(), *existing));
    }
    let contract = insert(ctx, twin, ContractData::NameContract { name: name.into() })?;
    ctx.state
        .contract_id_by_name
        .insert(name.into(), contract.contract_id);
    Ok(())
}

pub(super) fn create_rent_contract(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    node_id: NodeId,
) -> Result<(), DispatchError> {
    let twin = twin_of(ctx, &account)?;
    let node = node(ctx, node_id)?;
    if ctx.state.rent_contract_by_node.contains(&node_id) {
        return Err(DispatchError::NodeAlreadyRented(node_id));
    }
    let dedicated = ctx
        .state
        .farms
        .get(&node.farm_id)
        .is_some_and(|f| f.dedicated_farm);
    let others = ctx.state.node_contracts.get(&node_id).is_some_and(|ids| {
        ids.iter().any(|id| {
            ctx.state
                .contracts
                .get(id)
                .is_some_and(|c| c.twin_id != twin)
        })
    });
    if !dedicated && others {
        return Err(DispatchError::NodeNotEmpty(node_id));
    }
    let contract = insert(ctx, twin, ContractData::RentContract { node_id })?;
    ctx.state
        .rent_contract_by_node
        .insert(node_id, contract.contract_id);
    Ok(())
}

pub(super) fn cancel_by_owner(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    contract_id: ContractId,
) -> Result<(), DispatchError> {
    owned(ctx, &account, contract_id)?;
    cancel(ctx, contract_id, Cause::CanceledByUser)
}

/// Ends a contract: bills what it owes up to now, then removes it.
pub(crate) fn cancel(
    ctx: &mut Ctx<'_>,
    contract_id: ContractId,
    cause: Cause,
) -> Result<(), DispatchError> {
    let contract = contract(ctx, contract_id)?;
    if let ContractData::RentContract { node_id } = contract.contract_type
        && ctx
            .state
            .node_contracts
            .get(&node_id)
            .is_some_and(|ids| !ids.is_empty())
    {
        return Err(DispatchError::RentContractInUse(contract_id));
    }
    billing::bill(ctx, contract_id, true);
    remove(ctx, contract_id, cause);
    Ok(())
}

/// Cancels every contract on a node that is being deleted: node contracts first, then the rent.
pub fn cancel_node_contracts(ctx: &mut Ctx<'_>, node_id: NodeId) {
    let ids = ctx
        .state
        .node_contracts
        .get(&node_id)
        .cloned()
        .unwrap_or_default();
    for id in ids {
        billing::bill(ctx, id, true);
        remove(ctx, id, Cause::NodeDeleted);
    }
    if let Some(rent) = ctx.state.rent_contract_by_node.get(&node_id).copied() {
        billing::bill(ctx, rent, true);
        remove(ctx, rent, Cause::NodeDeleted);
    }
}

/// Removes a contract and everything that points at it, freeing its public IPs.
pub(crate) fn remove(ctx: &mut Ctx<'_>, contract_id: ContractId, cause: Cause) {
    let Some(contract) = ctx.state.contracts.remove(&contract_id) else {
        return;
    };
    let twin_id = contract.twin_id;
    ctx.state
        .contract_ids_by_twin
        .update(&twin_id, |ids| ids.retain(|id| *id != contract_id));
    let slot = contract_id % ctx.state.params().billing_period_blocks;
    ctx.state
        .contracts_to_bill_at
        .update(&slot, |ids| ids.retain(|id| *id != contract_id));
    ctx.state.contract_billing.remove(&contract_id);
    ctx.state.contract_bills.remove(&contract_id);
    match contract.contract_type {
        ContractData::NodeContract(c) => {
            ctx.state
                .contract_id_by_node_hash
                .remove(&(c.node_id, c.deployment_hash));
            ctx.state
                .node_contracts
                .update(&c.node_id, |ids| ids.retain(|id| *id != contract_id));
            ctx.state.contract_resources.remove(&contract_id);
            ctx.state.deployment_states.remove(&contract_id);
            if c.public_ips > 0 {
                let farm_id = ctx.state.nodes.get(&c.node_id).map(|n| n.farm_id);
                if let Some(farm_id) = farm_id {
                    ctx.state.farms.update(&farm_id, |farm| {
                        for ip in farm
                            .public_ips
                            .iter_mut()
                            .filter(|ip| ip.contract_id == contract_id)
                        {
                            ip.contract_id = 0;
                        }
                    });
                }
                ctx.emit(Event::IPsFreed {
                    contract_id,
                    public_ips: c.public_ips_list,
                });
            }
            ctx.emit(Event::NodeContractCanceled {
                contract_id,
                node_id: c.node_id,
                twin_id,
                cause,
            });
        }
        ContractData::NameContract { name } => {
            ctx.state.contract_id_by_name.remove(&name);
            ctx.emit(Event::NameContractCanceled { contract_id, cause });
        }
        ContractData::RentContract { node_id } => {
            ctx.state.rent_contract_by_node.remove(&node_id);
            ctx.emit(Event::RentContractCanceled {
                contract_id,
                node_id,
                cause,
            });
        }
    }
}
