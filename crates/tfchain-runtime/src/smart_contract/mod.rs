//! Contracts (TFChain's pallet-smart-contract): node contracts holding a deployment, name contracts,
//! rent contracts; the reports nodes send about them; billing each contract once per period inside
//! block initialisation, less the time the node was proven down (`sla.rs`); the grace period; and
//! farming rewards (`rewards.rs`).

pub mod billing;
mod lifecycle;
mod reports;
pub mod rewards;
pub mod sla;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tfgrid_types::deployment::{Deployment, WorkloadResult};
use tfgrid_types::{ContractId, NodeId};

use crate::error::DispatchError;
use crate::event::Event;
use crate::runtime::{Ctx, Origin};
use crate::types::{ContractResources, NruConsumption, TftPrice};

pub use lifecycle::{cancel_node_contracts, node_has_contracts};

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Call {
    /// Creates a node contract holding `deployment` (sealed, signed) on `node_id`.
    CreateNodeContract {
        node_id: NodeId,
        deployment: Deployment,
    },
    /// Replaces the deployment of a node contract with its next version.
    UpdateNodeContract {
        contract_id: ContractId,
        deployment: Deployment,
    },
    CreateNameContract {
        name: String,
    },
    CreateRentContract {
        node_id: NodeId,
    },
    CancelContract {
        contract_id: ContractId,
    },
    /// Council.
    CancelContractCollective {
        contract_id: ContractId,
    },
    /// By the contract's node; free.
    ReportContractResources {
        resources: Vec<ContractResources>,
    },
    /// By the contract's node; free.
    AddNruReports {
        reports: Vec<NruConsumption>,
    },
    /// By the contract's node; free.
    ReportDeploymentState {
        contract_id: ContractId,
        version: u32,
        workloads: Vec<WorkloadResult>,
    },
    /// Council: the TFT price in mUSD.
    SetTftPrice {
        price_musd: u32,
    },
    /// Council: the bounds the price is clamped to.
    SetTftPriceBounds {
        min_musd: u32,
        max_musd: u32,
    },
}

impl Call {
    pub fn pays_fee(&self) -> bool {
        !matches!(
            self,
            Call::ReportContractResources { .. }
                | Call::AddNruReports { .. }
                | Call::ReportDeploymentState { .. }
        )
    }
}

pub fn dispatch(ctx: &mut Ctx<'_>, origin: Origin, call: &Call) -> Result<(), DispatchError> {
    match call {
        Call::CreateNodeContract {
            node_id,
            deployment,
        } => lifecycle::create_node_contract(ctx, origin.signer()?, *node_id, deployment),
        Call::UpdateNodeContract {
            contract_id,
            deployment,
        } => lifecycle::update_node_contract(ctx, origin.signer()?, *contract_id, deployment),
        Call::CreateNameContract { name } => {
            lifecycle::create_name_contract(ctx, origin.signer()?, name)
        }
        Call::CreateRentContract { node_id } => {
            lifecycle::create_rent_contract(ctx, origin.signer()?, *node_id)
        }
        Call::CancelContract { contract_id } => {
            lifecycle::cancel_by_owner(ctx, origin.signer()?, *contract_id)
        }
        Call::CancelContractCollective { contract_id } => {
            origin.ensure_council()?;
            lifecycle::cancel(ctx, *contract_id, crate::types::Cause::CanceledByCollective)
        }
        Call::ReportContractResources { resources } => {
            reports::resources(ctx, origin.signer()?, resources)
        }
        Call::AddNruReports { reports } => reports::nru(ctx, origin.signer()?, reports),
        Call::ReportDeploymentState {
            contract_id,
            version,
            workloads,
        } => reports::deployment_state(ctx, origin.signer()?, *contract_id, *version, workloads),
        Call::SetTftPrice { price_musd } => {
            origin.ensure_council()?;
            if *price_musd == 0 {
                return Err(DispatchError::InvalidValue {
                    what: "TFT price",
                    reason: "must be above 0",
                });
            }
            let mut price = ctx
                .state
                .tft_price
                .get(&())
                .cloned()
                .expect("genesis sets the TFT price");
            price.price_musd = *price_musd;
            ctx.state.tft_price.insert((), price);
            ctx.emit(Event::TftPriceSet {
                price_musd: *price_musd,
            });
            Ok(())
        }
        Call::SetTftPriceBounds { min_musd, max_musd } => {
            origin.ensure_council()?;
            if *min_musd == 0 || min_musd >= max_musd {
                return Err(DispatchError::InvalidValue {
                    what: "TFT price bounds",
                    reason: "need 0 < min < max",
                });
            }
            let mut price: TftPrice = ctx
                .state
                .tft_price
                .get(&())
                .cloned()
                .expect("genesis sets the TFT price");
            price.min_musd = *min_musd;
            price.max_musd = *max_musd;
            ctx.state.tft_price.insert((), price);
            ctx.emit(Event::TftPriceBoundsSet {
                min_musd: *min_musd,
                max_musd: *max_musd,
            });
            Ok(())
        }
    }
}

/// Block initialisation: bill the contracts of this block's slot, mint the rewards of its nodes.
pub fn on_initialize(ctx: &mut Ctx<'_>) {
    billing::bill_slot(ctx);
    rewards::reward_slot(ctx);
}

#[cfg(test)]
mod tests;
