//! Gateway names and their name contracts, on the chain: which names a project's gateways want and
//! who holds them, creating those it needs (submitted just before the node contract, so both land
//! in one block), and canceling those it created and no longer uses. A name another deployment of
//! the twin serves is never canceled.
//!
//! Which names the project created is written on the chain, not only in the state file: the
//! gateway workload serving a name whose contract the project created carries [`CREATED`] as its
//! metadata, so a plan without the state file still finds (in the deployment the chain holds) the
//! names to cancel when the project drops them.

use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::types::{ContractData, ContractState};
use tfgrid_types::deployment::{Deployment, Workload, WorkloadData};
use tfgrid_types::{ContractId, Hash32};

use super::Progress;
use super::diff::{self, Action, NameChange};
use crate::{Error, Grid};

/// The metadata of a gateway workload whose name contract the project created (and so cancels
/// when it no longer serves the name).
pub const CREATED: &str = r#"{"name_contract":"created by the project"}"#;

/// The gateway names a deployment serves whose name contracts the project created.
pub fn created_names(d: &Deployment) -> Vec<String> {
    d.workloads
        .iter()
        .filter(|w| w.metadata == CREATED)
        .filter_map(|w| match &w.data {
            WorkloadData::GatewayNameProxy(g) => Some(g.name.clone()),
            _ => None,
        })
        .collect()
}

/// Marks the gateway workloads serving a name of `created` as the project's, and only those.
pub fn mark_created(workloads: &mut [Workload], created: &[String]) {
    for w in workloads {
        if let WorkloadData::GatewayNameProxy(g) = &w.data {
            w.metadata = match created.contains(&g.name) {
                true => CREATED.to_owned(),
                false => String::new(),
            };
        }
    }
}

/// The gateway names a deployment's workloads serve.
pub fn gateway_names(d: &Deployment) -> impl Iterator<Item = &str> {
    d.workloads.iter().filter_map(|w| match &w.data {
        WorkloadData::GatewayNameProxy(g) => Some(g.name.as_str()),
        _ => None,
    })
}

/// Whether an active node contract of the twin other than those of `except` serves gateway name
/// `name`.
async fn name_used_elsewhere(
    grid: &Grid,
    name: &str,
    except: &[ContractId],
) -> Result<bool, Error> {
    let contracts = grid.client.rpc().contracts_by_twin(grid.twin_id).await?;
    Ok(contracts.iter().any(|c| {
        let ContractData::NodeContract(nc) = &c.contract_type else {
            return false;
        };
        !except.contains(&c.contract_id)
            && !matches!(c.state, ContractState::Deleted(_))
            && gateway_names(&nc.deployment).any(|n| n == name)
    }))
}

/// The name contracts among `names` that the twin holds and no other of its deployments uses
/// (`except` are the project's own contracts): those the project may cancel.
pub async fn names_to_cancel(
    grid: &Grid,
    names: impl IntoIterator<Item = &str>,
    except: &[ContractId],
) -> Result<Vec<(String, ContractId)>, Error> {
    let mut out = Vec::new();
    for name in names {
        if let Some(c) = grid.name_contract(name).await?
            && c.twin_id == grid.twin_id
            && !name_used_elsewhere(grid, name, except).await?
        {
            out.push((name.to_owned(), c.contract_id));
        }
    }
    Ok(out)
}

/// Which name contracts to create for the project's gateway names, which the twin holds already,
/// and which of those the project created (`created`) it no longer uses and cancels (`own` are the
/// project's contracts).
pub async fn name_changes(
    grid: &Grid,
    wanted: &[String],
    created: &[String],
    own: &[ContractId],
) -> Result<Vec<NameChange>, Error> {
    let mut held = Vec::new();
    for name in wanted {
        let holder = grid.name_contract(name).await?;
        held.push((name.clone(), holder.map(|c| (c.twin_id, c.contract_id))));
    }
    let mut out = diff::wanted_names(&held, grid.twin_id)?;
    let dropped = diff::dropped_names(created, wanted);
    for (name, id) in names_to_cancel(grid, dropped, own).await? {
        out.push(NameChange {
            name,
            action: Action::Remove,
            contract_id: Some(id),
        });
    }
    Ok(out)
}

/// Submits the creation of the name contracts `names` asks to create; returns their transactions.
/// When one is refused, those submitted before it are waited for and canceled again.
pub async fn submit_names(
    grid: &Grid,
    names: &[NameChange],
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<(String, Hash32)>, Error> {
    let mut out = Vec::new();
    for n in names.iter().filter(|n| n.action == Action::Create) {
        progress(Progress::Submitting(&format!(
            "creating the name contract of {:?}",
            n.name
        )));
        match grid.submit_name_contract(&n.name).await {
            Ok(hash) => out.push((n.name.clone(), hash)),
            Err(e) => {
                let (created, _) = wait_names(grid, out).await;
                cancel_names(grid, &created).await?;
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Waits for every name contract submitted: those the chain created, and the first failure.
pub async fn wait_names(
    grid: &Grid,
    txs: Vec<(String, Hash32)>,
) -> (Vec<(String, ContractId)>, Option<Error>) {
    let mut created = Vec::new();
    let mut failed = None;
    for (name, hash) in txs {
        let step = format!("creating the name contract of {name:?}");
        let outcome = grid.wait(hash, &step).await.and_then(|included| {
            crate::created_contract(&included)
                .ok_or_else(|| Error::NotFound(format!("{step}: the chain reported no contract")))
        });
        match outcome {
            Ok(contract) => created.push((name, contract.contract_id)),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    (created, failed)
}

pub async fn cancel_names(grid: &Grid, names: &[(String, ContractId)]) -> Result<(), Error> {
    for (_, id) in names {
        grid.cancel(*id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfgrid_types::deployment::{GatewayNameProxy, Zmount};

    fn gateway(workload: &str, name: &str) -> Workload {
        Workload {
            version: 0,
            name: workload.into(),
            metadata: String::new(),
            description: String::new(),
            data: WorkloadData::GatewayNameProxy(GatewayNameProxy {
                name: name.into(),
                tls_passthrough: false,
                backends: vec!["http://10.0.0.2:80".into()],
                network: None,
            }),
        }
    }

    #[test]
    fn the_names_the_project_created_are_read_back_from_its_deployment() {
        let mut workloads = vec![
            gateway("a_gw", "a"),
            gateway("b_gw", "b"),
            Workload {
                data: WorkloadData::Zmount(Zmount { size: 1 }),
                ..gateway("disk", "")
            },
        ];
        mark_created(&mut workloads, &["a".into()]);
        let d = Deployment {
            version: 0,
            twin_id: 1,
            metadata: String::new(),
            description: String::new(),
            signature_requirement: Deployment::single_signer(1),
            workloads: workloads.clone(),
        };
        assert_eq!(created_names(&d), ["a"]);
        assert_eq!(workloads[2].metadata, "", "other workloads are left alone");
        // A name no longer the project's loses its mark.
        mark_created(&mut workloads, &[]);
        assert!(workloads.iter().all(|w| w.metadata.is_empty()));
    }
}
