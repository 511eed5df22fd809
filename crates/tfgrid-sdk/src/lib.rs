//! The grid's SDK: deploy from code what a deployment file describes. [`project`] reads the files;
//! [`http`] finds nodes through the explorer and images through the hub; [`Grid`] signs, seals and
//! submits deployments; [`deployer`] plans, applies (waiting for every workload, undoing a failed
//! creation), shows and destroys projects, recording them in a [`deployer::state`] file. The `tfgrid` command
//! line is built on it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tfgrid_sdk::Error> {
//! use tfgrid_sdk::{Endpoints, Grid, deployer, project::Project};
//! let grid = Grid::connect(Endpoints::local(), tfgrid_types::Keypair::from_uri("//Bob").unwrap()).await?;
//! let project = Project::read("examples/demo.toml".as_ref())?;
//! let plan = deployer::plan(&grid, &project, &deployer::StateFile::beside(".", project.name())).await?;
//! let applied = deployer::apply(&grid, &plan, &deployer::ApplyOptions::default(), &mut |_| {}).await?;
//! println!("contract {}", applied.contract_id);
//! # Ok(()) }
//! ```

pub mod deployer;
pub mod http;
pub mod project;

use tfchain_client::api::{ContractView, TfchainApiClient};
use tfchain_client::{Client, ClientError, Included};
use tfchain_runtime::smart_contract::Call as ScCall;
use tfchain_runtime::types::Contract;
use tfchain_runtime::{Call, Event};
use tfgrid_types::deployment::{Deployment, SignatureRequirement, Workload};
use tfgrid_types::{AccountId, ContractId, Hash32, Keypair, NodeId, TwinId};

/// What went wrong, named by the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A deployment file that cannot be read or holds a mistake (with its line and column).
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("the {service} at {url}: {message}")]
    Service {
        service: &'static str,
        url: String,
        message: String,
    },
    #[error("image {image:?}: {message}")]
    Image { image: String, message: String },
    /// A chain call failed; `step` says which.
    #[error("{step}: {source}")]
    Chain {
        step: String,
        #[source]
        source: ClientError,
    },
    #[error("account {0} has no twin: run `tfgrid twin create` first")]
    NoTwin(AccountId),
    #[error("{0}")]
    NotFound(String),
    /// No node meets the constraints with room for the project.
    #[error("no node can take {project}: {reason}")]
    NoNode { project: String, reason: String },
    /// The node refused workloads, or never answered; what was created for it is gone again unless
    /// kept on purpose.
    #[error("{0}")]
    Failed(Box<deployer::Failure>),
    /// The account cannot pay for an hour of what it asks for.
    #[error(
        "insufficient funds: {project} costs {} TFT an hour and the account holds {} TFT; \
         top it up (tfgrid transfer) to hold at least an hour of it",
        tfgrid_types::format_tft(*.cost_per_hour),
        tfgrid_types::format_tft(*.available)
    )]
    InsufficientFunds {
        project: String,
        cost_per_hour: tfgrid_types::Balance,
        available: tfgrid_types::Balance,
    },
    #[error("the state file {path}: {message}")]
    State { path: String, message: String },
    #[error("the gateway name {name:?} is held by twin {twin}: choose another name")]
    NameTaken { name: String, twin: TwinId },
    /// The project's private network cannot be planned as the file asks.
    #[error("the private network of {project}: {message}")]
    Network { project: String, message: String },
}

impl Error {
    fn chain(step: impl Into<String>) -> impl FnOnce(ClientError) -> Error {
        let step = step.into();
        move |source| Error::Chain { step, source }
    }
}

impl From<tfchain_client::RpcClientError> for Error {
    fn from(e: tfchain_client::RpcClientError) -> Error {
        Error::Chain {
            step: "reading the chain".into(),
            source: e.into(),
        }
    }
}

/// Where the services of a grid are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The chain's RPC (WebSocket).
    pub rpc: String,
    /// The explorer (`gridproxy`), to find nodes.
    pub explorer: String,
    /// The image hub, to resolve image names.
    pub hub: String,
}

impl Endpoints {
    /// The local grid of `tfgrid up` with its default ports.
    pub fn local() -> Endpoints {
        Endpoints {
            rpc: "ws://127.0.0.1:9944".into(),
            explorer: "http://127.0.0.1:8080".into(),
            hub: "http://127.0.0.1:8090".into(),
        }
    }
}

/// A connection to a grid acting for one key and its twin.
#[derive(Debug)]
pub struct Grid {
    pub client: Client,
    pub key: Keypair,
    pub twin_id: TwinId,
    pub explorer: http::Explorer,
    pub hub: String,
}

impl Grid {
    /// Connects to the chain and looks up the key's twin.
    pub async fn connect(endpoints: Endpoints, key: Keypair) -> Result<Grid, Error> {
        let client = Client::connect(&endpoints.rpc)
            .await
            .map_err(Error::chain("connecting to the chain"))?;
        let twin = client
            .rpc()
            .twin_by_account(key.account())
            .await?
            .ok_or(Error::NoTwin(key.account()))?;
        Ok(Grid {
            client,
            twin_id: twin.id,
            key,
            explorer: http::Explorer::new(&endpoints.explorer),
            hub: endpoints.hub,
        })
    }

    /// Runs a call signed by the key: refused before it costs if it would fail.
    pub async fn execute(&self, call: Call, step: &str) -> Result<Included, Error> {
        self.client
            .execute(&self.key, call)
            .await
            .map_err(Error::chain(step))
    }

    pub async fn contract(&self, id: ContractId) -> Result<Option<ContractView>, Error> {
        Ok(self.client.rpc().contract(id).await?)
    }

    /// The account a node's secrets are sealed to: its twin's.
    pub async fn node_account(&self, node_id: NodeId) -> Result<AccountId, Error> {
        let rpc = self.client.rpc();
        let node = rpc
            .node(node_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("there is no node {node_id}")))?;
        let twin = rpc
            .twin(node.node.twin_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("node {node_id} has no twin")))?;
        Ok(twin.account_id)
    }

    /// Seals the deployment's secrets to the node and signs it as the key's twin.
    async fn seal_and_sign(&self, node_id: NodeId, d: &mut Deployment) -> Result<(), Error> {
        d.seal_secrets(&self.node_account(node_id).await?, &mut rand::rngs::OsRng)
            .map_err(|e| Error::NotFound(format!("sealing the secrets: {e}")))?;
        d.sign(self.twin_id, &self.key);
        Ok(())
    }

    /// Creates a node contract for a new deployment (version 0) of `workloads`.
    pub async fn create_deployment(
        &self,
        node_id: NodeId,
        workloads: Vec<Workload>,
        metadata: String,
        description: String,
        signature_requirement: Option<SignatureRequirement>,
    ) -> Result<(Contract, Included), Error> {
        let mut d = Deployment {
            version: 0,
            twin_id: self.twin_id,
            metadata,
            description,
            signature_requirement: signature_requirement
                .unwrap_or_else(|| Deployment::single_signer(self.twin_id)),
            workloads: workloads
                .into_iter()
                .map(|w| Workload { version: 0, ..w })
                .collect(),
        };
        self.seal_and_sign(node_id, &mut d).await?;
        let step = format!("creating the contract on node {node_id}");
        let included = self
            .execute(
                Call::SmartContract(ScCall::CreateNodeContract {
                    node_id,
                    deployment: d,
                }),
                &step,
            )
            .await?;
        let contract = created_contract(&included)
            .ok_or_else(|| Error::NotFound(format!("{step}: the chain reported no contract")))?;
        Ok((contract, included))
    }

    /// Replaces a node contract's deployment with `workloads` as its next version: workloads that
    /// did not change keep their version (and sealed secrets), the others — and those named in
    /// `secrets_changed` — take the new one.
    pub async fn update_deployment(
        &self,
        contract_id: ContractId,
        workloads: Vec<Workload>,
        secrets_changed: &[String],
        metadata: String,
        description: String,
        signature_requirement: Option<SignatureRequirement>,
    ) -> Result<Deployment, Error> {
        let view = self
            .contract(contract_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("there is no contract {contract_id}")))?;
        let tfchain_runtime::types::ContractData::NodeContract(old) = &view.contract.contract_type
        else {
            return Err(Error::NotFound(format!(
                "contract {contract_id} is not a node contract"
            )));
        };
        let mut d = next_version(
            &old.deployment,
            workloads,
            secrets_changed,
            metadata,
            description,
        );
        if let Some(requirement) = signature_requirement {
            d.signature_requirement = requirement;
        }
        self.seal_and_sign(old.node_id, &mut d).await?;
        self.execute(
            Call::SmartContract(ScCall::UpdateNodeContract {
                contract_id,
                deployment: d.clone(),
            }),
            &format!("updating contract {contract_id}"),
        )
        .await?;
        Ok(d)
    }

    /// Submits the creation of a name contract for a gateway name, refused before it costs if it
    /// would fail, without waiting for its block: a node contract submitted next lands in the same
    /// block or a later one, after the name (the chain keeps one account's nonce order).
    pub async fn submit_name_contract(&self, name: &str) -> Result<Hash32, Error> {
        let step = format!("creating the name contract of {name:?}");
        let call = Call::SmartContract(ScCall::CreateNameContract { name: name.into() });
        let tx = self
            .client
            .sign(&self.key, call)
            .await
            .map_err(Error::chain(&step))?;
        let dry = self.client.rpc().dry_run(tx.clone()).await?;
        if let Some(error) = dry.error {
            return Err(Error::Chain {
                step,
                source: ClientError::CallFailed(error),
            });
        }
        self.client
            .submit_signed(tx)
            .await
            .map_err(Error::chain(&step))
    }

    /// Waits for a submitted transaction's block; `step` names it in errors.
    pub async fn wait(&self, hash: Hash32, step: &str) -> Result<Included, Error> {
        self.client
            .wait(hash, tfchain_client::INCLUSION_TIMEOUT)
            .await
            .map_err(Error::chain(step))
    }

    /// The name contract holding a gateway name, if any.
    pub async fn name_contract(&self, name: &str) -> Result<Option<Contract>, Error> {
        Ok(self.client.rpc().contract_by_name(name.to_owned()).await?)
    }

    pub async fn cancel(&self, contract_id: ContractId) -> Result<Included, Error> {
        self.execute(
            Call::SmartContract(ScCall::CancelContract { contract_id }),
            &format!("canceling contract {contract_id}"),
        )
        .await
    }
}

/// The next version of `old` holding `workloads`: unchanged ones (secrets aside, unless named in
/// `secrets_changed`) are kept as they are, the others take the new version. The owner's signature
/// requirement carries over, unsigned.
pub fn next_version(
    old: &Deployment,
    workloads: Vec<Workload>,
    secrets_changed: &[String],
    metadata: String,
    description: String,
) -> Deployment {
    let version = old.version + 1;
    Deployment {
        version,
        twin_id: old.twin_id,
        metadata,
        description,
        signature_requirement: SignatureRequirement {
            signatures: vec![],
            ..old.signature_requirement.clone()
        },
        workloads: workloads
            .into_iter()
            .map(|w| match old.workload(&w.name) {
                Some(prev)
                    if deployer::same_workload(prev, &w) && !secrets_changed.contains(&w.name) =>
                {
                    prev.clone()
                }
                _ => Workload { version, ..w },
            })
            .collect(),
    }
}

/// The contract a call created, from its block's events.
pub(crate) fn created_contract(included: &Included) -> Option<Contract> {
    included.events.iter().find_map(|e| match &e.event {
        Event::ContractCreated(c) => Some(c.clone()),
        _ => None,
    })
}
