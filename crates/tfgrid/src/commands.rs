//! What each command does: resolve keys and accounts, call the chain through the typed client, and
//! show the result. Writes are dry-run first, so a call that would fail is refused before it costs.

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use tfchain_client::api::{NodeView, Page, TfchainApiClient};
use tfchain_client::{Client, Included};
use tfchain_runtime::types::{Farm, Ip4Config, Ip6Config, PublicConfig, Twin};
use tfchain_runtime::{Call, Event, balances, kvstore, tfgrid};
use tfgrid_types::{AccountId, Keypair, format_tft, parse_tft};

use tfgrid_sdk::{Endpoints, Grid};

use crate::keystore::Keystore;
use crate::output::{self, Output, fields, gib, table};
use crate::{
    ChainCmd, Cli, Command, ContractCmd, FarmCmd, HubCmd, ImageCmd, KeysCmd, KvCmd, NetworkCmd,
    NodeCmd, TwinCmd, contracts, deploy, hub,
};

pub struct Ctx {
    cli_key: Option<String>,
    endpoints: Endpoints,
    keystore: Keystore,
    pub out: Output,
}

impl Ctx {
    pub async fn client(&self) -> Result<Client> {
        Ok(Client::connect(&self.endpoints.rpc).await?)
    }

    /// The SDK's connection, acting for the key's twin.
    pub async fn grid(&self) -> Result<Grid> {
        Ok(Grid::connect(self.endpoints.clone(), self.key()?).await?)
    }

    pub fn key(&self) -> Result<Keypair> {
        let spec = self.cli_key.as_deref().ok_or_else(|| {
            anyhow!("no key given: pass --key <name or secret URI> or set TFGRID_KEY (dev keys: //Alice, //Bob, ...)")
        })?;
        self.keystore.key(spec)
    }

    fn account_or_own(&self, spec: Option<&str>) -> Result<AccountId> {
        match spec {
            Some(spec) => self.keystore.account(spec),
            None => Ok(self.key()?.account()),
        }
    }

    /// Runs a call signed by the key and reports where it landed.
    pub async fn execute(&self, client: &Client, call: Call, what: &str) -> Result<Included> {
        let key = self.key()?;
        let included = client
            .execute(&key, call)
            .await
            .with_context(|| format!("{what} failed"))?;
        if !self.out.json {
            output::note(format_args!(
                "{what}: included in block {} (fee {} TFT)",
                included.height,
                format_tft(included.fee)
            ));
        }
        Ok(included)
    }
}

#[derive(Serialize)]
struct TxResult<'a> {
    hash: String,
    height: u64,
    fee: u128,
    events: Vec<&'a Event>,
}

fn tx_json(included: &Included) -> TxResult<'_> {
    TxResult {
        hash: included.hash.to_string(),
        height: included.height,
        fee: included.fee,
        events: included.events.iter().map(|e| &e.event).collect(),
    }
}

fn find_event<T>(included: &Included, f: impl Fn(&Event) -> Option<T>) -> Option<T> {
    included.events.iter().find_map(|r| f(&r.event))
}

pub async fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        cli_key: cli.key,
        endpoints: Endpoints {
            rpc: cli.rpc,
            explorer: cli.explorer,
            hub: cli.hub,
        },
        keystore: Keystore::open()?,
        out: Output { json: cli.json },
    };
    match cli.command {
        Command::Plan(args) => deploy::plan(&ctx, &args).await,
        Command::Apply {
            project,
            keep_on_error,
            timeout,
        } => deploy::apply(&ctx, &project, keep_on_error, timeout).await,
        Command::Status(args) => deploy::status(&ctx, &args).await,
        Command::Destroy(args) => deploy::destroy(&ctx, &args).await,
        Command::Network(NetworkCmd::Access {
            project,
            file,
            state,
            timeout,
        }) => {
            let (file, state) = (file.as_deref(), state.as_deref());
            deploy::network_access(&ctx, &project, file, state, timeout).await
        }
        Command::Keys(cmd) => keys(&ctx, cmd),
        Command::Balance { account } => balance(&ctx, account.as_deref()).await,
        Command::Transfer { to, amount } => transfer(&ctx, &to, &amount).await,
        Command::Twin(cmd) => twin(&ctx, cmd).await,
        Command::Farm(cmd) => farm(&ctx, cmd).await,
        Command::Node(cmd) => node(&ctx, cmd).await,
        Command::Chain(ChainCmd::Status) => chain_status(&ctx).await,
        Command::Kv(cmd) => kv(&ctx, cmd).await,
        Command::Image(cmd) => image(&ctx, cmd),
        Command::Hub(HubCmd::Serve {
            dir,
            listen,
            public_url,
        }) => hub::serve(dir, listen, public_url).await,
        Command::Up {
            nodes,
            validators,
            data,
            demo,
            rpc_port,
            hub_port,
            explorer_port,
        } => {
            let ports = (rpc_port, hub_port, explorer_port);
            crate::up::up(nodes, validators, data, demo, ports).await
        }
        Command::Contract(cmd) => match cmd {
            ContractCmd::Create { node, file } => contracts::create(&ctx, node, &file).await,
            ContractCmd::Update { id, file } => contracts::update(&ctx, id, &file).await,
            ContractCmd::Name { name } => contracts::create_name(&ctx, name).await,
            ContractCmd::Rent { node } => contracts::create_rent(&ctx, node).await,
            ContractCmd::Cancel { id } => contracts::cancel(&ctx, id).await,
            ContractCmd::Show { id } => contracts::show(&ctx, id).await,
            ContractCmd::List { twin, node } => contracts::list(&ctx, twin, node).await,
            ContractCmd::Bills { id } => contracts::bills(&ctx, id).await,
        },
    }
}

async fn balance(ctx: &Ctx, account: Option<&str>) -> Result<()> {
    let account = ctx.account_or_own(account)?;
    let view = ctx.client().await?.rpc().account(account).await?;
    ctx.out.show(&view, |v| {
        fields(&[
            ("account", v.account.to_string()),
            ("free", format!("{} TFT", format_tft(v.free))),
            ("nonce", v.nonce.to_string()),
        ])
    })?;
    Ok(())
}

async fn transfer(ctx: &Ctx, to: &str, amount: &str) -> Result<()> {
    let dest = ctx.keystore.account(to)?;
    let amount = parse_tft(amount)?;
    let client = ctx.client().await?;
    let included = ctx
        .execute(
            &client,
            Call::Balances(balances::Call::Transfer { dest, amount }),
            "transfer",
        )
        .await?;
    ctx.out.show(&tx_json(&included), |_| {
        format!("sent {} TFT to {dest}", format_tft(amount))
    })?;
    Ok(())
}

async fn chain_status(ctx: &Ctx) -> Result<()> {
    let status = ctx.client().await?.rpc().status().await?;
    ctx.out.show(&status, |s| {
        fields(&[
            ("chain", format!("{} ({})", s.chain, s.chain_id)),
            ("genesis", s.genesis_hash.to_string()),
            ("height", s.height.to_string()),
            ("head", s.head_hash.to_string()),
            ("block time", format!("{} ms", s.block_time_ms)),
            ("pending", format!("{} transactions", s.pending_txs)),
        ])
    })?;
    Ok(())
}

fn image(ctx: &Ctx, cmd: ImageCmd) -> Result<()> {
    match cmd {
        ImageCmd::Vm { out, kernel } => {
            let kernel = match kernel {
                Some(k) => k,
                None => crate::images::newest_kernel()
                    .context("no kernel in /boot: install linux-image-amd64, or give --kernel")?,
            };
            let work = tempfile::tempdir()?;
            crate::images::vm_image(&kernel, work.path(), &out)?;
            let json = serde_json::json!({ "archive": out, "kernel": kernel });
            ctx.out.show(&json, |_| {
                format!(
                    "{}: a VM image booting {}; push it with tfgrid image push",
                    out.display(),
                    kernel.display()
                )
            })?;
            Ok(())
        }
        ImageCmd::Push {
            archive,
            hub_dir,
            name,
        } => {
            let pushed = hub::push(&archive, &hub_dir, name.as_deref())?;
            ctx.out.show(&pushed, |p| {
                fields(&[
                    ("hash", p.hash.clone()),
                    ("file", p.file.clone()),
                    ("size", format!("{} bytes", p.size_bytes)),
                ])
            })?;
            Ok(())
        }
    }
}

fn keys(ctx: &Ctx, cmd: KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::New { name } => {
            let phrase = Keypair::generate_phrase(&mut rand::rngs::OsRng);
            let stored = ctx.keystore.save(&name, &phrase)?;
            ctx.out.show(&stored, |k| {
                format!("created key {:?}\naddress  {}\nphrase   {}\nwrite the phrase down: it is the only way to recover the key", k.name, k.address, k.secret)
            })?;
        }
        KeysCmd::Import { name, secret } => {
            let stored = ctx.keystore.save(&name, &secret)?;
            ctx.out
                .show(&stored.address, |a| format!("imported key {name:?}: {a}"))?;
        }
        KeysCmd::Show { name } => {
            let account = match name {
                Some(spec) => ctx.keystore.account(&spec)?,
                None => ctx.key()?.account(),
            };
            ctx.out.show(&account, |a| a.to_string())?;
        }
        KeysCmd::List => {
            let keys: Vec<(String, AccountId)> = ctx
                .keystore
                .list()?
                .into_iter()
                .map(|k| (k.name, k.address))
                .collect();
            ctx.out.show(&keys, |keys| {
                table(
                    &["name", "address"],
                    keys.iter().map(|(n, a)| vec![n.clone(), a.to_string()]),
                )
            })?;
        }
    }
    Ok(())
}

/// Units of TFT from the explorer's decimal strings.
fn parse_units(text: &str) -> u128 {
    text.parse().unwrap_or(0)
}

/// Seconds as days, hours and minutes.
fn duration(s: u64) -> String {
    match (s / 86400, s % 86400 / 3600, s % 3600 / 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// Bytes in GiB with one decimal.
fn gib_short(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn show_twin(twin: &Option<Twin>) -> String {
    match twin {
        None => "no such twin".into(),
        Some(t) => fields(&[
            ("twin", t.id.to_string()),
            ("account", t.account_id.to_string()),
            ("relay", t.relay.clone().unwrap_or_else(|| "-".into())),
            ("pk", t.pk.as_ref().map_or("-".into(), hex::encode)),
        ]),
    }
}

async fn twin(ctx: &Ctx, cmd: TwinCmd) -> Result<()> {
    let client = ctx.client().await?;
    match cmd {
        TwinCmd::Create {
            relay,
            pk,
            terms_link,
            terms_hash,
        } => {
            let pk = pk
                .map(|h| hex::decode(h.trim_start_matches("0x")))
                .transpose()
                .context("--pk must be hex")?;
            let account = ctx.key()?.account();
            if let Some(twin) = client.rpc().twin_by_account(account).await? {
                bail!("account {account} already has twin {}", twin.id);
            }
            let accept = tfgrid::Call::UserAcceptTc {
                document_link: terms_link,
                document_hash: terms_hash,
            };
            ctx.execute(
                &client,
                Call::Tfgrid(accept),
                "accepting the terms and conditions",
            )
            .await?;
            let included = ctx
                .execute(
                    &client,
                    Call::Tfgrid(tfgrid::Call::CreateTwin { relay, pk }),
                    "creating the twin",
                )
                .await?;
            let twin = find_event(&included, |e| match e {
                Event::TwinStored(t) => Some(t.clone()),
                _ => None,
            });
            ctx.out.show(&twin, show_twin)?;
        }
        TwinCmd::Consumption { twin } => return contracts::consumption(ctx, twin).await,
        TwinCmd::Show { twin } => {
            let found = match twin.as_deref().map(|spec| (spec, spec.parse::<u32>())) {
                Some((_, Ok(id))) => known_twin(&client, id).await?,
                Some((spec, Err(_))) => twin_of(&client, ctx.keystore.account(spec)?).await?,
                None => twin_of(&client, ctx.key()?.account()).await?,
            };
            ctx.out.show(&Some(found), show_twin)?;
        }
    }
    Ok(())
}

/// A twin the chain holds, or the error naming the id.
pub async fn known_twin(client: &Client, id: u32) -> Result<Twin> {
    client
        .rpc()
        .twin(id)
        .await?
        .ok_or_else(|| anyhow!("unknown twin {id}"))
}

/// The twin of an account, or the error saying it has none and how to make one.
pub async fn twin_of(client: &Client, account: AccountId) -> Result<Twin> {
    client
        .rpc()
        .twin_by_account(account)
        .await?
        .ok_or_else(|| anyhow!("account {account} has no twin: run `tfgrid twin create` first"))
}

/// A node the chain holds, or the error naming the id.
pub async fn known_node(client: &Client, id: u32) -> Result<NodeView> {
    client
        .rpc()
        .node(id)
        .await?
        .ok_or_else(|| anyhow!("unknown node {id}"))
}

/// A farm by id or by name.
async fn find_farm(client: &Client, spec: &str) -> Result<Farm> {
    let farm = match spec.parse::<u32>() {
        Ok(id) => client.rpc().farm(id).await?,
        Err(_) => client.rpc().farm_by_name(spec.to_owned()).await?,
    };
    farm.ok_or_else(|| anyhow!("unknown farm {spec:?}"))
}

fn show_farm(farm: &Farm) -> String {
    let mut text = fields(&[
        ("farm", format!("{} ({})", farm.id, farm.name)),
        ("twin", farm.twin_id.to_string()),
        ("certification", format!("{:?}", farm.certification)),
        ("dedicated", farm.dedicated_farm.to_string()),
        ("pricing policy", farm.pricing_policy_id.to_string()),
    ]);
    if !farm.public_ips.is_empty() {
        text.push('\n');
        let rows = farm.public_ips.iter().map(|ip| {
            let used = if ip.contract_id == 0 {
                "free".to_string()
            } else {
                format!("contract {}", ip.contract_id)
            };
            vec![ip.ip.clone(), ip.gateway.clone(), used]
        });
        text.push_str(&table(&["public ip", "gateway", "used by"], rows));
    }
    text
}

async fn farm(ctx: &Ctx, cmd: FarmCmd) -> Result<()> {
    let client = ctx.client().await?;
    match cmd {
        FarmCmd::Create { name, ips } => {
            let public_ips = ips
                .iter()
                .map(|text| {
                    let (ip, gw) = text.split_once('=').ok_or_else(|| {
                        anyhow!("--ip {text:?} must look like 185.206.122.33/24=185.206.122.1")
                    })?;
                    Ok(tfgrid::IpInput {
                        ip: ip.into(),
                        gw: gw.into(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let included = ctx
                .execute(
                    &client,
                    Call::Tfgrid(tfgrid::Call::CreateFarm { name, public_ips }),
                    "creating the farm",
                )
                .await?;
            let farm = find_event(&included, |e| match e {
                Event::FarmStored(f) => Some(f.clone()),
                _ => None,
            })
            .context("the chain reported no farm")?;
            ctx.out.show(&farm, show_farm)?;
        }
        FarmCmd::Show { farm } => {
            let farm = find_farm(&client, &farm).await?;
            ctx.out.show(&farm, show_farm)?;
        }
        FarmCmd::List => {
            let farms = client.rpc().farms(Page::default()).await?;
            ctx.out.show(&farms, |farms| {
                table(
                    &["id", "name", "twin", "public ips", "certification"],
                    farms.iter().map(|f| {
                        vec![
                            f.id.to_string(),
                            f.name.clone(),
                            f.twin_id.to_string(),
                            f.public_ips.len().to_string(),
                            format!("{:?}", f.certification),
                        ]
                    }),
                )
            })?;
        }
        FarmCmd::Nodes { farm } => farm_nodes(ctx, &client, &farm).await?,
        FarmCmd::AddIp { farm, ip, gateway } => {
            let farm_id = find_farm(&client, &farm).await?.id;
            ctx.execute(
                &client,
                Call::Tfgrid(tfgrid::Call::AddFarmIp {
                    farm_id,
                    ip,
                    gw: gateway,
                }),
                "adding the IP",
            )
            .await?;
            ctx.out
                .show(&find_farm(&client, &farm_id.to_string()).await?, show_farm)?;
        }
        FarmCmd::RemoveIp { farm, ip } => {
            let farm_id = find_farm(&client, &farm).await?.id;
            ctx.execute(
                &client,
                Call::Tfgrid(tfgrid::Call::RemoveFarmIp { farm_id, ip }),
                "removing the IP",
            )
            .await?;
            ctx.out
                .show(&find_farm(&client, &farm_id.to_string()).await?, show_farm)?;
        }
    }
    Ok(())
}

/// `farm nodes`: each node of the farm as the explorer sees it (status, uptime, last report, use,
/// contracts, rewards).
async fn farm_nodes(ctx: &Ctx, client: &Client, farm: &str) -> Result<()> {
    let farm = find_farm(client, farm).await?;
    let explorer = tfgrid_sdk::http::Explorer::new(&ctx.endpoints.explorer);
    let nodes = explorer.farm_nodes(farm.id).await?;
    let rewards: u128 = nodes
        .iter()
        .map(|n| parse_units(&n.farming_rewards_total))
        .sum();
    let json = serde_json::json!({
        "farm_id": farm.id,
        "farming_rewards_total": rewards.to_string(),
        "nodes": nodes.iter().map(|n| serde_json::json!({
            "node_id": n.node.node_id, "status": n.node.status, "uptime_s": n.node.uptime,
            "last_uptime_report": n.node.last_uptime_report,
            "contracts": n.num_contracts,
            "farming_rewards_total": n.farming_rewards_total,
        })).collect::<Vec<_>>(),
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    ctx.out.show(&json, |_| {
        let used = |u: u64, t: u64| format!("{} / {}", gib_short(u), gib_short(t));
        let mut text = table(
            &[
                "node",
                "status",
                "up for",
                "last report",
                "cpu",
                "memory",
                "ssd",
                "hdd",
                "contracts",
                "rewards (TFT)",
            ],
            nodes.iter().map(|n| {
                let (u, t) = (&n.node.used, &n.node.total);
                vec![
                    n.node.node_id.to_string(),
                    n.node.status.clone(),
                    duration(n.node.uptime),
                    format!(
                        "{} ago",
                        duration(now.saturating_sub(n.node.last_uptime_report))
                    ),
                    format!("{} / {}", u.cru, t.cru),
                    used(u.mru, t.mru),
                    used(u.sru, t.sru),
                    used(u.hru, t.hru),
                    n.num_contracts.to_string(),
                    format_tft(parse_units(&n.farming_rewards_total)),
                ]
            }),
        );
        text.push_str(&format!(
            "\nfarm {} \"{}\": {} node{}, {} TFT of farming rewards in all",
            farm.id,
            farm.name,
            nodes.len(),
            if nodes.len() == 1 { "" } else { "s" },
            format_tft(rewards)
        ));
        text
    })?;

    Ok(())
}

fn show_node(view: &NodeView) -> String {
    let n = &view.node;
    fields(&[
        ("node", n.id.to_string()),
        ("farm", n.farm_id.to_string()),
        ("twin", n.twin_id.to_string()),
        ("cpu", format!("{} cores", n.resources.cru)),
        ("memory", gib(n.resources.mru)),
        ("ssd", gib(n.resources.sru)),
        ("hdd", gib(n.resources.hru)),
        (
            "location",
            format!("{}, {}", n.location.city, n.location.country),
        ),
        ("certification", format!("{:?}", n.certification)),
        ("farming policy", n.farming_policy_id.to_string()),
        (
            "power",
            view.power.as_ref().map_or("-".into(), |p| {
                format!("{:?} (target {:?})", p.state, p.target)
            }),
        ),
        (
            "uptime",
            view.uptime.as_ref().map_or("never reported".into(), |u| {
                format!("{} s, reported at {}", u.uptime_s, u.reported_at_s)
            }),
        ),
        (
            "public config",
            n.public_config.as_ref().map_or("-".into(), |p| {
                let mut text = format!("{} via {}", p.ip4.ip, p.ip4.gw);
                if let Some(ip6) = &p.ip6 {
                    text.push_str(&format!(", {} via {}", ip6.ip, ip6.gw));
                }
                if let Some(domain) = &p.domain {
                    text.push_str(&format!(", gateway for *.{domain}"));
                }
                text
            }),
        ),
    ])
}

async fn node(ctx: &Ctx, cmd: NodeCmd) -> Result<()> {
    let client = ctx.client().await?;
    match cmd {
        NodeCmd::List { farm } => {
            let farm_id = match farm {
                Some(spec) => Some(find_farm(&client, &spec).await?.id),
                None => None,
            };
            let mut nodes = Vec::new();
            let mut from = 0u64;
            loop {
                let page = client
                    .rpc()
                    .nodes(Page {
                        from: Some(from),
                        limit: None,
                    })
                    .await?;
                let Some(last) = page.last() else { break };
                from = last.node.id as u64 + 1;
                nodes.extend(
                    page.into_iter()
                        .filter(|n| farm_id.is_none_or(|f| n.node.farm_id == f)),
                );
            }
            ctx.out.show(&nodes, |nodes| {
                table(
                    &[
                        "id", "farm", "twin", "cpu", "memory", "ssd", "hdd", "country",
                    ],
                    nodes.iter().map(|v| {
                        let n = &v.node;
                        vec![
                            n.id.to_string(),
                            n.farm_id.to_string(),
                            n.twin_id.to_string(),
                            n.resources.cru.to_string(),
                            gib(n.resources.mru),
                            gib(n.resources.sru),
                            gib(n.resources.hru),
                            n.location.country.clone(),
                        ]
                    }),
                )
            })?;
        }
        NodeCmd::Show { id } => {
            let view = known_node(&client, id).await?;
            ctx.out.show(&view, show_node)?;
        }
        NodeCmd::PublicConfig {
            node,
            ip4,
            gw4,
            ip6,
            gw6,
            domain,
            clear,
        } => {
            let view = known_node(&client, node).await?;
            let public_config = (!clear).then(|| PublicConfig {
                ip4: Ip4Config {
                    ip: ip4.unwrap_or_default(),
                    gw: gw4.unwrap_or_default(),
                },
                ip6: ip6.map(|ip| Ip6Config {
                    ip,
                    gw: gw6.unwrap_or_default(),
                }),
                domain,
            });
            ctx.execute(
                &client,
                Call::Tfgrid(tfgrid::Call::AddNodePublicConfig {
                    farm_id: view.node.farm_id,
                    node_id: node,
                    public_config,
                }),
                "setting the node's public config",
            )
            .await?;
            let view = known_node(&client, node).await?;
            ctx.out.show(&view, show_node)?;
        }
    }
    Ok(())
}

async fn kv(ctx: &Ctx, cmd: KvCmd) -> Result<()> {
    let client = ctx.client().await?;
    match cmd {
        KvCmd::Set { entry: key, value } => {
            let call = kvstore::Call::Set {
                key: key.clone().into_bytes(),
                value: value.into_bytes(),
            };
            let included = ctx
                .execute(&client, Call::Kv(call), "setting the value")
                .await?;
            ctx.out
                .show(&tx_json(&included), |_| format!("{key} set"))?;
        }
        KvCmd::Get {
            entry: key,
            account,
        } => {
            let account = ctx.account_or_own(account.as_deref())?;
            let entry = client
                .rpc()
                .kv_get(account, hex::encode(&key))
                .await?
                .ok_or_else(|| anyhow!("no value under {key:?}"))?;
            let value = hex::decode(&entry.value)?;
            let text = String::from_utf8_lossy(&value).into_owned();
            ctx.out.show(&text, |v| v.clone())?;
        }
        KvCmd::Delete { entry: key } => {
            let included = ctx
                .execute(
                    &client,
                    Call::Kv(kvstore::Call::Delete {
                        key: key.clone().into_bytes(),
                    }),
                    "deleting the value",
                )
                .await?;
            ctx.out
                .show(&tx_json(&included), |_| format!("{key} deleted"))?;
        }
        KvCmd::List { account } => {
            let account = ctx.account_or_own(account.as_deref())?;
            let entries = client.rpc().kv_list(account).await?;
            let decoded: Vec<(String, String)> = entries
                .iter()
                .map(|e| {
                    let text = |h: &str| {
                        String::from_utf8_lossy(&hex::decode(h).unwrap_or_default()).into_owned()
                    };
                    (text(&e.key), text(&e.value))
                })
                .collect();
            ctx.out.show(&decoded, |rows| {
                table(
                    &["key", "value"],
                    rows.iter().map(|(k, v)| vec![k.clone(), v.clone()]),
                )
            })?;
        }
    }
    Ok(())
}
