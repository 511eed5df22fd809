//! Contract commands: create node contracts from a deployment file (JSON, secrets in the clear: the
//! CLI seals them to the node and signs), update and cancel them, name and rent contracts, and show
//! contracts, their workloads' states, bills, and a twin's consumption.

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use tfchain_client::Client;
use tfchain_client::api::{ContractView, TfchainApiClient};
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::types::{Contract, ContractData, ContractState};
use tfchain_runtime::{Call, Event};
use tfgrid_types::deployment::{SignatureRequirement, Workload};
use tfgrid_types::format_tft;

use crate::commands::{Ctx, known_node, known_twin, twin_of};
use crate::output::{self, fields, table};

/// A deployment as a user writes it: the CLI fills in the owner, the version and the signatures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeploymentFile {
    #[serde(default)]
    metadata: String,
    #[serde(default)]
    description: String,
    /// Co-signers; by default the owner alone.
    #[serde(default)]
    signature_requirement: Option<SignatureRequirement>,
    workloads: Vec<Workload>,
}

fn read_file(path: &str) -> Result<DeploymentFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    serde_json::from_str(&text).with_context(|| format!("{path} is not a valid deployment"))
}

fn created_contract(included: &tfchain_client::Included) -> Option<Contract> {
    included.events.iter().find_map(|e| match &e.event {
        Event::ContractCreated(c) => Some(c.clone()),
        _ => None,
    })
}

fn report(ctx: &Ctx, what: &str, included: &tfchain_client::Included) {
    if !ctx.out.json {
        output::note(format_args!(
            "{what}: included in block {} (fee {} TFT)",
            included.height,
            format_tft(included.fee)
        ));
    }
}

pub async fn create(ctx: &Ctx, node_id: u32, path: &str) -> Result<()> {
    let file = read_file(path)?;
    let grid = ctx.grid().await?;
    let (contract, included) = grid
        .create_deployment(
            node_id,
            file.workloads,
            file.metadata,
            file.description,
            file.signature_requirement,
        )
        .await?;
    report(ctx, "creating the contract", &included);
    show_id(ctx, &grid.client, contract.contract_id).await
}

pub async fn update(ctx: &Ctx, contract_id: u64, path: &str) -> Result<()> {
    let file = read_file(path)?;
    let grid = ctx.grid().await?;
    // Secrets are sealed on the chain: a workload whose only change is a secret keeps its old one.
    grid.update_deployment(
        contract_id,
        file.workloads,
        &[],
        file.metadata,
        file.description,
        file.signature_requirement,
    )
    .await?;
    show_id(ctx, &grid.client, contract_id).await
}

/// Runs a call that creates a contract, then shows the new contract.
async fn create_and_show(ctx: &Ctx, call: ScCall, what: &str) -> Result<()> {
    let client = ctx.client().await?;
    let included = ctx
        .execute(&client, Call::SmartContract(call), what)
        .await?;
    let contract = created_contract(&included).context("the chain reported no contract")?;
    show_id(ctx, &client, contract.contract_id).await
}

pub async fn create_name(ctx: &Ctx, name: String) -> Result<()> {
    create_and_show(
        ctx,
        ScCall::CreateNameContract { name },
        "creating the name contract",
    )
    .await
}

pub async fn create_rent(ctx: &Ctx, node_id: u32) -> Result<()> {
    create_and_show(
        ctx,
        ScCall::CreateRentContract { node_id },
        "renting the node",
    )
    .await
}

pub async fn cancel(ctx: &Ctx, contract_id: u64) -> Result<()> {
    let client = ctx.client().await?;
    known_contract(&client, contract_id).await?;
    let included = ctx
        .execute(
            &client,
            Call::SmartContract(ScCall::CancelContract { contract_id }),
            "canceling the contract",
        )
        .await?;
    let json = serde_json::json!({ "contract_id": contract_id, "height": included.height });
    ctx.out
        .show(&json, |_| format!("contract {contract_id} canceled"))?;
    Ok(())
}

fn kind(contract: &Contract) -> String {
    match &contract.contract_type {
        ContractData::NodeContract(c) => format!("node {}", c.node_id),
        ContractData::NameContract { name } => format!("name {name}"),
        ContractData::RentContract { node_id } => format!("rent node {node_id}"),
    }
}

pub fn state(contract: &Contract) -> String {
    match contract.state {
        ContractState::Created => "active".into(),
        ContractState::GracePeriod { since_block } => {
            format!("GRACE PERIOD since block {since_block}: top up to keep it")
        }
        ContractState::Deleted(cause) => format!("deleted ({cause:?})"),
    }
}

fn show_view(view: &ContractView) -> String {
    let c = &view.contract;
    let mut rows = vec![
        ("contract", c.contract_id.to_string()),
        ("twin", c.twin_id.to_string()),
        ("type", kind(c)),
        ("state", state(c)),
        (
            "cost",
            format!(
                "{} TFT an hour (before discounts)",
                format_tft(view.cost_per_hour)
            ),
        ),
    ];
    if let Some(b) = &view.billing {
        rows.push(("billed until", format!("unix {}", b.last_billed_s)));
        if b.overdue > 0 {
            rows.push(("overdue", format!("{} TFT", format_tft(b.overdue))));
        }
    }
    let mut text = fields(&rows);
    if let ContractData::NodeContract(nc) = &c.contract_type {
        text.push_str(&format!(
            "\ndeployment  version {}, hash {}",
            nc.deployment.version, nc.deployment_hash
        ));
        for ip in &nc.public_ips_list {
            text.push_str(&format!("\npublic ip   {} via {}", ip.ip, ip.gateway));
        }
        let states = view.deployment_state.as_ref();
        let rows = nc.deployment.workloads.iter().map(|w| {
            let result = states.and_then(|s| s.workloads.iter().find(|r| r.name == w.name));
            let (state, detail) = match result {
                Some(r) if !r.message.is_empty() => {
                    (format!("{:?}", r.state).to_lowercase(), r.message.clone())
                }
                Some(r) => (
                    format!("{:?}", r.state).to_lowercase(),
                    serde_json::to_string(&r.data).unwrap_or_default(),
                ),
                None => ("waiting for the node".into(), String::new()),
            };
            vec![w.name.clone(), w.data.type_name().into(), state, detail]
        });
        text.push('\n');
        text.push_str(&table(&["workload", "type", "state", "result"], rows));
    }
    text
}

/// A contract the chain holds, or the error naming the id (the chain keeps no ended contract).
async fn known_contract(client: &Client, contract_id: u64) -> Result<ContractView> {
    client
        .rpc()
        .contract(contract_id)
        .await?
        .ok_or_else(|| anyhow!("unknown contract {contract_id}"))
}

async fn show_id(ctx: &Ctx, client: &Client, contract_id: u64) -> Result<()> {
    let view = known_contract(client, contract_id).await?;
    ctx.out.show(&view, show_view)?;
    Ok(())
}

pub async fn show(ctx: &Ctx, contract_id: u64) -> Result<()> {
    show_id(ctx, &ctx.client().await?, contract_id).await
}

pub async fn list(ctx: &Ctx, twin: Option<u32>, node: Option<u32>) -> Result<()> {
    let client = ctx.client().await?;
    let contracts = match (twin, node) {
        (_, Some(node)) => {
            known_node(&client, node).await?;
            client.rpc().contracts_by_node(node).await?
        }
        (Some(twin), None) => {
            known_twin(&client, twin).await?;
            client.rpc().contracts_by_twin(twin).await?
        }
        (None, None) => {
            client
                .rpc()
                .contracts_by_twin(twin_of(&client, ctx.key()?.account()).await?.id)
                .await?
        }
    };
    ctx.out.show(&contracts, |cs| {
        table(
            &["contract", "twin", "type", "state"],
            cs.iter().map(|c| {
                vec![
                    c.contract_id.to_string(),
                    c.twin_id.to_string(),
                    kind(c),
                    state(c),
                ]
            }),
        )
    })?;
    Ok(())
}

pub async fn bills(ctx: &Ctx, contract_id: u64) -> Result<()> {
    let client = ctx.client().await?;
    // The chain drops an ended contract's bills with it: no bills of an unknown id are "none".
    known_contract(&client, contract_id).await?;
    let bills = client.rpc().contract_bills(contract_id).await?;
    ctx.out.show(&bills, |bills| {
        table(
            &[
                "time (unix)",
                "discount",
                "amount (TFT)",
                "node down (s, not billed)",
            ],
            bills.iter().map(|b| {
                vec![
                    b.timestamp_s.to_string(),
                    format!("{:?}", b.discount_level),
                    format_tft(b.amount_billed),
                    b.credited_s.to_string(),
                ]
            }),
        )
    })?;
    Ok(())
}

pub async fn consumption(ctx: &Ctx, twin: Option<u32>) -> Result<()> {
    let client = ctx.client().await?;
    let twin_id = match twin {
        Some(t) => known_twin(&client, t).await?.id,
        None => twin_of(&client, ctx.key()?.account()).await?.id,
    };
    let view = client.rpc().twin_consumption(twin_id).await?;
    ctx.out.show(&view, |v| {
        fields(&[
            ("twin", v.twin_id.to_string()),
            ("active contracts", v.active_contracts.to_string()),
            (
                "cost now",
                format!(
                    "{} TFT an hour (before discounts)",
                    format_tft(v.cost_per_hour)
                ),
            ),
            (
                "billed in all",
                format!("{} TFT", format_tft(v.total_billed)),
            ),
        ])
    })?;
    Ok(())
}
