//! The chain core. [`Chain`] owns the runtime on the head state. It proposes blocks (takes ready
//! transactions from the pool, applies them, seals the header) and judges other validators' blocks
//! (re-executes them and compares the roots), keeping each candidate executed but uncommitted; it
//! commits the one consensus decides, with its changes, in one store transaction, and only then does
//! the head move. [`Shared`] is what
//! RPC reads and writes meanwhile, never waiting on a block being made: the pool, and the head view
//! (a copy of the head state with the next block opened on it, its billing done once), which
//! checks submissions, answers dry runs and reads, and follows each block by taking in its changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{Context, Result, bail};
use tfchain_runtime::Call;
use tfchain_runtime::block::{events_root, tx_root};
use tfchain_runtime::limits::{BLOCK_BYTES_MAX, BLOCK_TXS_MAX};
use tfchain_runtime::smart_contract::{Call as ScCall, billing};
use tfchain_runtime::table::Change;
use tfchain_runtime::types::{ContractData, DeploymentState};
use tfchain_runtime::{
    Block, BlockOutcome, Commit, EventRecord, Header, Receipt, Runtime, SignedTransaction, State,
    TxInvalid,
};
use tfgrid_types::{AccountId, Balance, ContractId, Hash32, Keypair, Signature};

use crate::limits::{POOL_NONCES_AHEAD_MAX, REPORTS_BUFFER};
use crate::mempool::{Mempool, PoolError, PoolTx};
use crate::spec::ChainSpec;
use crate::store::{Store, TxRecord};
use tfchain_client::api::PendingReport;

/// Why a submitted transaction was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    Invalid(#[from] TxInvalid),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

/// A committed block and its events, as subscribers receive it.
#[derive(Debug, Clone)]
pub struct Committed {
    pub block: Arc<Block>,
    pub events: Arc<Vec<EventRecord>>,
}

/// The block producer.
#[derive(Debug)]
pub struct Chain {
    runtime: Runtime,
    head: Header,
    genesis_hash: Hash32,
    store: Arc<Store>,
    author: Keypair,
    shared: Arc<Shared>,
    /// Candidate blocks for the next height, executed on the head state but not committed.
    executed: HashMap<Hash32, Executed>,
}

/// A block executed on the head state, with what committing it will write.
#[derive(Debug)]
struct Executed {
    block: Arc<Block>,
    outcome: BlockOutcome,
    records: Vec<TxRecord>,
    /// Pool transactions that could not be included, and why.
    dropped: Vec<(Hash32, String)>,
}

/// The head state with the next block opened on it: what the chain looks like to a transaction
/// submitted now.
#[derive(Debug)]
struct HeadView {
    runtime: Runtime,
    head: Header,
}

impl HeadView {
    fn open(state: State, head: Header) -> HeadView {
        let mut runtime = Runtime::new(state);
        runtime.begin_block(head.height + 1, head.timestamp_ms + 1);
        HeadView { runtime, head }
    }

    /// The report of a contract's deployment a transaction makes, when its signer is the
    /// contract's node (anyone else's report is not the node's word).
    fn report_of(&self, tx: &SignedTransaction) -> Option<PendingReport> {
        let Call::SmartContract(ScCall::ReportDeploymentState {
            contract_id,
            version,
            workloads,
        }) = &tx.tx.call
        else {
            return None;
        };
        (node_account(&self.runtime.state, *contract_id)? == tx.tx.signer).then(|| PendingReport {
            contract_id: *contract_id,
            state: DeploymentState {
                reported_at_s: self.head.timestamp_ms / 1000,
                version: *version,
                workloads: workloads.clone(),
            },
        })
    }

    /// Moves to the block `head`, whose changes on the previous head are `changes`.
    fn advance(&mut self, head: Header, changes: &[Change]) -> Result<()> {
        self.runtime.abort_block();
        self.runtime.state.apply_changes(changes).map_err(|e| {
            anyhow::anyhow!("the head view cannot take in block {}: {e}", head.height)
        })?;
        self.runtime
            .begin_block(head.height + 1, head.timestamp_ms + 1);
        self.head = head;
        Ok(())
    }
}

/// What RPC shares with the producer: the pool and the head view, each locked for one operation
/// at a time (the view is written once a block, when it takes in the block's changes).
#[derive(Debug)]
pub struct Shared {
    pool: Mutex<Mempool>,
    view: RwLock<HeadView>,
    genesis_hash: Hash32,
    /// Each node report the pool takes, for subscribers.
    reports: tokio::sync::broadcast::Sender<PendingReport>,
}

impl Shared {
    fn pool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        self.pool.lock().expect("pool lock")
    }

    fn view(&self) -> std::sync::RwLockReadGuard<'_, HeadView> {
        self.view.read().expect("head view lock")
    }

    pub fn head(&self) -> Header {
        self.view().head.clone()
    }

    pub fn genesis_hash(&self) -> Hash32 {
        self.genesis_hash
    }

    pub fn pool_len(&self) -> usize {
        self.pool().len()
    }

    /// The account's nonce in the head state and the next free one counting pending transactions.
    pub fn nonces(&self, account: &AccountId) -> (u64, u64) {
        let nonce = state_nonce(&self.view().runtime.state, account);
        (nonce, self.pool().next_nonce(account, nonce))
    }

    pub fn is_pending(&self, hash: &Hash32) -> bool {
        self.pool().contains(hash)
    }

    pub fn dropped_reason(&self, hash: &Hash32) -> Option<String> {
        self.pool().dropped_reason(hash).map(str::to_owned)
    }

    /// The newest workload report of a node contract that its node signed and submitted but no
    /// block holds yet: what the node already says, a block before the ledger records it.
    pub fn pending_deployment_state(&self, id: ContractId) -> Option<DeploymentState> {
        let view = self.view();
        let node_account = node_account(&view.runtime.state, id)?;
        self.pool()
            .of_sender(&node_account)
            .filter_map(|ptx| view.report_of(&ptx.tx).filter(|r| r.contract_id == id))
            .map(|r| r.state)
            .last()
    }

    /// Each node report the pool takes from now on.
    pub fn pending_reports(&self) -> tokio::sync::broadcast::Receiver<PendingReport> {
        self.reports.subscribe()
    }

    /// What an hour of each contract costs on the head state, in units of TFT before discounts.
    pub fn costs_per_hour(&self, ids: &[ContractId]) -> Vec<Balance> {
        let view = self.view();
        let state = &view.runtime.state;
        ids.iter()
            .map(|id| {
                state.contracts.get(id).map_or(0, |c| {
                    billing::usd_to_tft(state, billing::cost_per_hour_usd(state, c))
                })
            })
            .collect()
    }

    /// Admits transactions whose signatures were checked, each on its own: one verdict each.
    pub fn admit_all(
        &self,
        txs: Vec<(SignedTransaction, usize)>,
    ) -> Vec<Result<Hash32, AdmitError>> {
        let checked: Vec<_> = {
            let view = self.view();
            txs.into_iter()
                .map(|(tx, len)| {
                    view.runtime.check_tx(&tx, len, POOL_NONCES_AHEAD_MAX)?;
                    let report = view.report_of(&tx);
                    Ok((tx, len, report))
                })
                .collect()
        };
        let mut pool = self.pool();
        checked
            .into_iter()
            .map(|checked: Result<_, TxInvalid>| {
                let (tx, encoded_len, report) = checked?;
                let hash = tx.hash();
                pool.insert(PoolTx {
                    hash,
                    tx,
                    encoded_len,
                })?;
                if let Some(report) = report {
                    // No subscriber is not an error.
                    let _ = self.reports.send(report);
                }
                Ok(hash)
            })
            .collect()
    }

    /// Admits a transaction whose signature was checked.
    pub fn admit(&self, tx: SignedTransaction, encoded_len: usize) -> Result<Hash32, AdmitError> {
        self.admit_all(vec![(tx, encoded_len)])
            .pop()
            .expect("one verdict")
    }

    /// Runs a transaction in the next block as it stands on the head, keeping nothing.
    pub fn dry_run(
        &self,
        tx: &SignedTransaction,
        encoded_len: usize,
    ) -> Result<(Receipt, Vec<EventRecord>), TxInvalid> {
        let mut view = self.view.write().expect("head view lock");
        // A dry run checks the call, not the nonce: the client signs with the next free nonce.
        let mut tx = tx.clone();
        tx.tx.nonce = state_nonce(&view.runtime.state, &tx.tx.signer);
        view.runtime.try_tx(&tx, encoded_len)
    }
}

/// The account of the node a node contract runs on.
fn node_account(state: &State, id: ContractId) -> Option<AccountId> {
    let ContractData::NodeContract(nc) = &state.contracts.get(&id)?.contract_type else {
        return None;
    };
    let node_twin = state.nodes.get(&nc.node_id)?.twin_id;
    Some(state.twins.get(&node_twin)?.account_id)
}

fn state_nonce(state: &State, account: &AccountId) -> u64 {
    state.accounts.get(account).map_or(0, |a| a.nonce)
}

impl Chain {
    /// Opens the chain in `store`: writes the genesis block of `spec` into an empty store, or loads
    /// the state of the last committed block and checks it against its state root.
    pub fn open(store: Arc<Store>, spec: &ChainSpec, author: Keypair) -> Result<Chain> {
        let spec_hash = spec.hash();
        let (runtime, head) = match store.head_height()? {
            None => {
                let genesis = spec
                    .genesis
                    .build()
                    .map_err(|e| anyhow::anyhow!("the genesis config is invalid: {e}"))?;
                let header = Header {
                    parent_hash: Hash32::default(),
                    height: 0,
                    timestamp_ms: spec.genesis.timestamp_ms,
                    tx_root: tx_root(&[]),
                    state_root: genesis.state_root,
                    events_root: events_root(&genesis.events),
                    author: AccountId([0; 32]),
                };
                let block = Block {
                    header: header.clone(),
                    txs: vec![],
                    seal: Signature([0; 64]),
                };
                store.commit_block(
                    &block,
                    &genesis.events,
                    &[],
                    &genesis.changes,
                    Some(spec_hash),
                    None,
                )?;
                (Runtime::new(genesis.state), header)
            }
            Some(height) => {
                if store.spec_hash()? != Some(spec_hash) {
                    bail!(
                        "the data directory holds another chain than the spec {:?}: use another --base-path",
                        spec.id
                    );
                }
                let block = store
                    .block(height)?
                    .context("the head block is missing from the store")?;
                let state = store.load_state(block.header.state_root)?;
                (Runtime::new(state), block.header)
            }
        };
        let genesis_hash = store
            .block(0)?
            .context("the genesis block is missing")?
            .hash();
        let shared = Arc::new(Shared {
            pool: Mutex::new(Mempool::default()),
            view: RwLock::new(HeadView::open(runtime.state.clone(), head.clone())),
            genesis_hash,
            reports: tokio::sync::broadcast::channel(REPORTS_BUFFER).0,
        });
        Ok(Chain {
            runtime,
            head,
            genesis_hash,
            store,
            author,
            shared,
            executed: HashMap::new(),
        })
    }

    /// What RPC reads and writes while this producer makes blocks.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    pub fn head(&self) -> &Header {
        &self.head
    }

    pub fn genesis_hash(&self) -> Hash32 {
        self.genesis_hash
    }

    pub fn author(&self) -> AccountId {
        self.author.account()
    }

    /// Produces, seals and commits the next block at time `now_ms`, as a single validator does.
    pub fn produce_block(&mut self, now_ms: u64) -> Result<Committed> {
        let block = self.propose(now_ms)?;
        self.commit(&block.hash(), None)
    }

    /// Builds and seals the next block at time `now_ms` from the pool, without committing it: it is
    /// kept, executed, until [`Chain::commit`] takes it (or another block is committed). RPC waits on
    /// none of it: the pool is locked only to take the ready transactions.
    pub fn propose(&mut self, now_ms: u64) -> Result<Arc<Block>> {
        let height = self.head.height + 1;
        let timestamp_ms = now_ms.max(self.head.timestamp_ms + 1);
        let runtime = &self.runtime;
        let ready = self
            .shared
            .pool()
            .ready(|a| state_nonce(&runtime.state, a), BLOCK_TXS_MAX);
        self.runtime.begin_block(height, timestamp_ms);
        let mut txs = Vec::with_capacity(ready.len());
        let mut records = Vec::with_capacity(ready.len());
        let mut bytes = 0usize;
        let mut dropped = Vec::new();
        for ptx in ready {
            if bytes + ptx.encoded_len > BLOCK_BYTES_MAX - 4096 {
                break;
            }
            match self.runtime.apply_tx(&ptx.tx, ptx.encoded_len) {
                Ok(receipt) => {
                    bytes += ptx.encoded_len;
                    records.push(record(height, txs.len(), receipt));
                    txs.push(ptx.tx);
                }
                Err(invalid) => dropped.push((ptx.hash, invalid.to_string())),
            }
        }
        let outcome = self.runtime.outcome();
        self.runtime.abort_block();
        let header = Header {
            parent_hash: self.head.hash(),
            height,
            timestamp_ms,
            tx_root: tx_root(&txs),
            state_root: outcome.state_root,
            events_root: events_root(&outcome.events),
            author: self.author.account(),
        };
        let seal = self.author.sign(&header.hash().0);
        let block = Arc::new(Block { header, txs, seal });
        self.keep(block.clone(), outcome, records, dropped);
        Ok(block)
    }

    /// Judges a block another validator proposes for the next height: it must extend the head, be
    /// sealed by its author, carry validly signed transactions that all apply, and end in the state,
    /// events and transaction roots its header names. A block that passes is kept, executed, for
    /// [`Chain::commit`]; the error says why one does not.
    pub fn check(&mut self, block: Block) -> Result<Arc<Block>> {
        let hash = block.hash();
        let header = &block.header;
        anyhow::ensure!(
            tfgrid_types::keys::verify(&header.author, &hash.0, &block.seal),
            "block {hash} is not sealed by its author {}",
            header.author
        );
        if let Some(kept) = self.executed.get(&hash) {
            return Ok(kept.block.clone());
        }
        let expected = self.head.height + 1;
        anyhow::ensure!(
            header.height == expected,
            "block {hash} is for height {}, not {expected}",
            header.height
        );
        anyhow::ensure!(
            header.parent_hash == self.head.hash(),
            "block {hash} does not extend the head {}",
            self.head.hash()
        );
        anyhow::ensure!(
            header.timestamp_ms > self.head.timestamp_ms,
            "block {hash} is not later than its parent"
        );
        anyhow::ensure!(
            header.tx_root == tx_root(&block.txs),
            "block {hash}: its transactions do not match its transaction root"
        );
        // What the pool holds had its signature checked when admitted (the hash covers it).
        let unchecked: Vec<_> = {
            let pool = self.shared.pool();
            block
                .txs
                .iter()
                .filter(|tx| !pool.contains(&tx.hash()))
                .cloned()
                .map(Arc::new)
                .collect()
        };
        let verdicts = crate::verify::check_all(&unchecked, &self.genesis_hash);
        if let Some(bad) = verdicts.iter().position(|ok| !ok) {
            bail!(
                "block {hash}: transaction {} is not validly signed",
                unchecked[bad].hash()
            );
        }
        self.runtime.begin_block(header.height, header.timestamp_ms);
        let mut records = Vec::with_capacity(block.txs.len());
        for (index, tx) in block.txs.iter().enumerate() {
            match self.runtime.apply_tx(tx, tx.encode().len()) {
                Ok(receipt) => records.push(record(header.height, index, receipt)),
                Err(invalid) => {
                    self.runtime.abort_block();
                    bail!("block {hash}: transaction {index} cannot be included: {invalid}");
                }
            }
        }
        let outcome = self.runtime.outcome();
        self.runtime.abort_block();
        anyhow::ensure!(
            outcome.state_root == header.state_root,
            "block {hash} ends in state {}, not the {} its header names",
            outcome.state_root,
            header.state_root
        );
        anyhow::ensure!(
            events_root(&outcome.events) == header.events_root,
            "block {hash}: its events do not match its events root"
        );
        let block = Arc::new(block);
        self.keep(block.clone(), outcome, records, Vec::new());
        Ok(block)
    }

    /// Keeps an executed candidate block, in memory and in the store.
    fn keep(
        &mut self,
        block: Arc<Block>,
        outcome: BlockOutcome,
        mut records: Vec<TxRecord>,
        dropped: Vec<(Hash32, String)>,
    ) {
        let hash = block.hash();
        for record in &mut records {
            record.block_hash = hash;
        }
        for event in &outcome.events {
            if let Some(index) = event.tx_index {
                records[index as usize].events.push(event.clone());
            }
        }
        self.executed.insert(
            hash,
            Executed {
                block,
                outcome,
                records,
                dropped,
            },
        );
    }

    /// Whether the candidate `hash` is judged and executed, ready to commit.
    pub fn is_judged(&self, hash: &Hash32) -> bool {
        self.executed.contains_key(hash)
    }

    /// A candidate block this chain judged (since the last commit), from memory or the store.
    pub fn candidate(&self, hash: &Hash32) -> Result<Option<Block>> {
        match self.executed.get(hash) {
            Some(kept) => Ok(Some((*kept.block).clone())),
            None => self.store.candidate(hash),
        }
    }

    /// Writes a candidate to the store, so that a restart after voting for it still has it.
    pub fn persist_candidate(&self, hash: &Hash32) -> Result<()> {
        let kept = self.executed.get(hash).context("no such candidate block")?;
        self.store.keep_candidate(&kept.block)
    }

    /// Commits the kept candidate `hash` as the next block, with the validators' `commit` when BFT
    /// decided it. RPC waits on none of it: the pool is locked to remove the block's transactions,
    /// the head view to take in the block's changes.
    pub fn commit(&mut self, hash: &Hash32, commit: Option<&Commit>) -> Result<Committed> {
        let kept = self
            .executed
            .remove(hash)
            .with_context(|| format!("block {hash} was not judged by this node"))?;
        self.executed.clear();
        let Executed {
            block,
            outcome,
            records,
            dropped,
        } = kept;
        self.runtime
            .state
            .apply_changes(&outcome.changes)
            .map_err(|e| anyhow::anyhow!("taking in block {hash}: {e}"))?;
        self.store
            .commit_block(
                &block,
                &outcome.events,
                &records,
                &outcome.changes,
                None,
                commit,
            )
            .context("committing a block")?;
        let header = block.header.clone();
        self.shared
            .view
            .write()
            .expect("head view lock")
            .advance(header.clone(), &outcome.changes)?;
        let mut pool = self.shared.pool();
        for tx in &block.txs {
            pool.remove(&tx.hash());
        }
        for (hash, reason) in dropped {
            pool.drop_tx(&hash, reason);
        }
        let runtime = &self.runtime;
        pool.prune_stale(|a| state_nonce(&runtime.state, a));
        drop(pool);
        self.head = header;
        Ok(Committed {
            block,
            events: Arc::new(outcome.events),
        })
    }

    /// The state at the head (what decides the validators of the next height).
    pub fn state(&self) -> &State {
        &self.runtime.state
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

/// The receipt of the `index`th transaction of the block at `height` (its hash is set once sealed).
fn record(height: u64, index: usize, receipt: Receipt) -> TxRecord {
    TxRecord {
        height,
        block_hash: Hash32::default(),
        index: index as u32,
        fee: receipt.fee,
        error: receipt.error.map(|e| e.to_string()),
        events: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use tfchain_runtime::Transaction;
    use tfchain_runtime::genesis::Endowment;
    use tfchain_runtime::tfgrid::Call as GridCall;
    use tfchain_runtime::types::{Location, NodeSpec, Resources};
    use tfgrid_types::UNITS_PER_TFT;
    use tfgrid_types::deployment::{
        Deployment, ResultData, ResultState, Secret, Workload, WorkloadData, WorkloadResult, Zdb,
        ZdbMode,
    };

    use super::*;

    struct Setup {
        chain: Chain,
        now_ms: u64,
        nonces: std::collections::HashMap<AccountId, u64>,
        _dir: tempfile::TempDir,
    }

    impl Setup {
        fn tx(&mut self, key: &Keypair, call: Call) -> SignedTransaction {
            let nonce = self.nonces.entry(key.account()).or_insert(0);
            *nonce += 1;
            Transaction {
                signer: key.account(),
                nonce: *nonce - 1,
                call,
            }
            .sign(key, &self.chain.genesis_hash())
        }

        fn submit(&mut self, key: &Keypair, call: Call) {
            let tx = self.tx(key, call);
            let len = tx.encode().len();
            self.chain.shared().admit(tx, len).expect("admitted");
        }

        fn block(&mut self) {
            self.now_ms += 1000;
            self.chain.produce_block(self.now_ms).expect("block");
        }
    }

    fn report(version: u32) -> Call {
        Call::SmartContract(ScCall::ReportDeploymentState {
            contract_id: 1,
            version,
            workloads: vec![WorkloadResult {
                name: "db".into(),
                created: 0,
                state: ResultState::Ok,
                message: String::new(),
                data: ResultData::None,
            }],
        })
    }

    #[test]
    fn pending_reports_count_only_from_the_contracts_node() {
        let (user, node, other) = (
            Keypair::from_uri("//Bob").unwrap(),
            Keypair::from_uri("//Charlie").unwrap(),
            Keypair::from_uri("//Dave").unwrap(),
        );
        let mut spec = crate::spec::ChainSpec::dev();
        spec.genesis.balances.push(Endowment {
            account: node.account(),
            amount: 10 * UNITS_PER_TFT,
        });
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("chain.redb")).unwrap());
        let chain = Chain::open(store, &spec, Keypair::from_uri("//Alice").unwrap()).unwrap();
        let mut s = Setup {
            chain,
            now_ms: 1_700_000_000_000,
            nonces: Default::default(),
            _dir: dir,
        };
        for key in [&user, &node, &other] {
            let tc = GridCall::UserAcceptTc {
                document_link: "l".into(),
                document_hash: "h".into(),
            };
            s.submit(key, Call::Tfgrid(tc));
            let twin = GridCall::CreateTwin {
                relay: None,
                pk: None,
            };
            s.submit(key, Call::Tfgrid(twin));
        }
        s.block();
        let farm = GridCall::CreateFarm {
            name: "farm".into(),
            public_ips: vec![],
        };
        s.submit(&node, Call::Tfgrid(farm));
        s.block();
        let resources = Resources {
            hru: 1 << 40,
            sru: 1 << 40,
            cru: 8,
            mru: 1 << 35,
        };
        let location = Location {
            city: "Ghent".into(),
            country: "Belgium".into(),
            latitude: "51".into(),
            longitude: "3".into(),
        };
        let node_spec = NodeSpec {
            farm_id: 1,
            resources,
            location,
            interfaces: vec![],
            secure_boot: false,
            virtualized: false,
            serial_number: None,
        };
        s.submit(&node, Call::Tfgrid(GridCall::CreateNode(node_spec)));
        s.block();
        let mut d = Deployment {
            version: 0,
            twin_id: 1,
            metadata: String::new(),
            description: String::new(),
            signature_requirement: Deployment::single_signer(1),
            workloads: vec![Workload {
                version: 0,
                name: "db".into(),
                metadata: String::new(),
                description: String::new(),
                data: WorkloadData::Zdb(Zdb {
                    size: 1 << 30,
                    mode: ZdbMode::User,
                    password: Secret::Plain("pw".into()),
                    public: false,
                }),
            }],
        };
        d.seal_secrets(&node.account(), &mut rand::thread_rng())
            .unwrap();
        d.sign(1, &user);
        let create = ScCall::CreateNodeContract {
            node_id: 1,
            deployment: d,
        };
        s.submit(&user, Call::SmartContract(create));
        s.block();
        assert_eq!(s.chain.shared().pending_deployment_state(1), None);

        // Someone else's report of the contract is not the node's word.
        let mut pushed = s.chain.shared().pending_reports();
        s.submit(&other, report(0));
        assert_eq!(s.chain.shared().pending_deployment_state(1), None);
        assert!(
            pushed.try_recv().is_err(),
            "another account's report is pushed"
        );
        // The node's is, until a block records it; subscribers get it as the pool takes it.
        s.submit(&node, report(0));
        let report = pushed.try_recv().expect("the node's report pushed");
        assert_eq!((report.contract_id, report.state.version), (1, 0));
        let pending = s
            .chain
            .shared()
            .pending_deployment_state(1)
            .expect("pending");
        assert_eq!(pending.version, 0);
        assert_eq!(pending.workloads[0].state, ResultState::Ok);
        s.block();
        assert_eq!(s.chain.shared().pending_deployment_state(1), None);
    }

    fn transfer(key: &Keypair, nonce: u64, amount: Balance, genesis: &Hash32) -> SignedTransaction {
        let call = Call::Balances(tfchain_runtime::balances::Call::Transfer {
            dest: Keypair::from_uri("//Charlie").unwrap().account(),
            amount,
        });
        Transaction {
            signer: key.account(),
            nonce,
            call,
        }
        .sign(key, genesis)
    }

    fn dev_chain() -> (Chain, Arc<Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("chain.redb")).unwrap());
        let spec = crate::spec::ChainSpec::dev();
        let chain =
            Chain::open(store.clone(), &spec, Keypair::from_uri("//Alice").unwrap()).unwrap();
        (chain, store, dir)
    }

    #[test]
    fn a_proposal_is_judged_by_executing_it_and_only_the_decided_one_commits() {
        let (mut alice, _a_store, _a_dir) = dev_chain();
        let (mut other, _o_store, _o_dir) = dev_chain();
        let bob = Keypair::from_uri("//Bob").unwrap();
        let genesis = alice.genesis_hash();
        for nonce in 0..3 {
            let tx = transfer(&bob, nonce, UNITS_PER_TFT, &genesis);
            let len = tx.encode().len();
            alice.shared().admit(tx, len).unwrap();
        }
        let now_ms = alice.head().timestamp_ms + 1000;
        let block = alice.propose(now_ms).unwrap();
        assert_eq!(block.txs.len(), 3);
        // Proposing commits nothing.
        assert_eq!(alice.head().height, 0);
        assert_eq!(alice.shared().pool_len(), 3);

        // Another validator re-executes it and reaches the same roots.
        let judged = other.check((*block).clone()).unwrap();
        assert_eq!(judged.hash(), block.hash());
        // A block whose header lies about the state is refused, with the reason, even re-sealed.
        let alice_key = Keypair::from_uri("//Alice").unwrap();
        let mut forged = (*block).clone();
        forged.header.state_root = Hash32([9; 32]);
        forged.seal = alice_key.sign(&forged.hash().0);
        let error = other.check(forged.clone()).unwrap_err().to_string();
        assert!(error.contains("ends in state"), "{error}");
        // A seal by someone else is refused before anything runs.
        let mut unsealed = (*block).clone();
        unsealed.seal = bob.sign(&unsealed.hash().0);
        let error = other.check(unsealed).unwrap_err().to_string();
        assert!(error.contains("not sealed by its author"), "{error}");
        // A transaction signed by nobody is refused, though the block is well sealed.
        let mut badly_signed = (*block).clone();
        badly_signed.txs[0].signature = Signature([5; 64]);
        badly_signed.header.tx_root = tx_root(&badly_signed.txs);
        badly_signed.seal = alice_key.sign(&badly_signed.hash().0);
        let error = other.check(badly_signed).unwrap_err().to_string();
        assert!(error.contains("is not validly signed"), "{error}");
        // Nothing is committed that was not judged.
        assert!(other.commit(&forged.hash(), None).is_err());

        // Both commit the decided block and agree.
        let a = alice.commit(&block.hash(), None).unwrap();
        let o = other.commit(&block.hash(), None).unwrap();
        assert_eq!(a.block.hash(), o.block.hash());
        assert_eq!(alice.state().root(), other.state().root());
        assert_eq!(alice.state().root(), block.header.state_root);
        assert_eq!(alice.shared().pool_len(), 0);
        assert_eq!(other.head().height, 1);
    }

    #[test]
    fn rpc_is_served_while_a_block_commits() {
        let (mut chain, store, _dir) = dev_chain();
        let shared = chain.shared();
        let bob = Keypair::from_uri("//Bob").unwrap();
        let tx = transfer(&bob, 0, UNITS_PER_TFT, &chain.genesis_hash());
        let len = tx.encode().len();
        shared.admit(tx, len).unwrap();
        // The disk is slow: the block's commit waits, and the producer with it.
        let writes = store.hold_writes();
        let now_ms = chain.head().timestamp_ms + 1000;
        let producer = std::thread::spawn(move || {
            chain.produce_block(now_ms).unwrap();
            chain
        });
        let (done, finished) = std::sync::mpsc::channel();
        let reader = shared.clone();
        std::thread::spawn(move || {
            // Again and again while the producer is in its block: every call answers.
            for nonce in 1..50 {
                let tx = transfer(&bob, nonce, UNITS_PER_TFT, &reader.genesis_hash());
                let len = tx.encode().len();
                reader.admit(tx.clone(), len).unwrap();
                reader.dry_run(&tx, len).unwrap();
                let _ = (
                    reader.nonces(&bob.account()),
                    reader.head(),
                    reader.pool_len(),
                );
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            done.send(()).unwrap();
        });
        // A deadlock detector, not a timing claim: on a lock held through the commit, no answer
        // ever comes.
        let answered = finished.recv_timeout(std::time::Duration::from_secs(60));
        drop(writes);
        let chain = producer.join().unwrap();
        assert!(answered.is_ok(), "RPC waited on the block being committed");
        assert_eq!(chain.head().height, 1);
        assert_eq!(shared.head().height, 1);
    }

    #[test]
    fn the_head_view_follows_the_blocks_and_dry_runs_leave_it_as_it_was() {
        let (mut chain, _store, _dir) = dev_chain();
        let shared = chain.shared();
        let bob = Keypair::from_uri("//Bob").unwrap();
        let free_in = |state: &State| state.accounts.get(&bob.account()).unwrap().free;
        let free = |shared: &Shared| free_in(&shared.view().runtime.state);
        let before = free(&shared);
        for (nonce, height) in [(0, 1), (1, 2), (2, 3)] {
            let tx = transfer(&bob, nonce, before / 8, &chain.genesis_hash());
            let len = tx.encode().len();
            shared.admit(tx, len).unwrap();
            let now_ms = chain.head().timestamp_ms + 1000;
            chain.produce_block(now_ms).unwrap();
            let view = shared.view();
            assert_eq!(view.head.height, height);
            // The view took in exactly what the block changed.
            assert_eq!(view.runtime.state.root(), chain.head().state_root);
            assert_eq!(view.runtime.state.root(), chain.runtime.state.root());
        }
        assert!(free(&shared) < before - 3 * (before / 8) + 1);
        // A dry run tells what the transfer would do, and changes nothing.
        let spend_all = transfer(&bob, 3, free(&shared), &chain.genesis_hash());
        let len = spend_all.encode().len();
        let (first, events) = shared.dry_run(&spend_all, len).unwrap();
        assert!(
            first.error.is_some(),
            "the fee leaves too little for the amount"
        );
        assert!(!events.is_empty());
        let (second, again) = shared.dry_run(&spend_all, len).unwrap();
        assert_eq!((first, events), (second, again));
        let small = transfer(&bob, 3, UNITS_PER_TFT, &chain.genesis_hash());
        let (ok, _) = shared.dry_run(&small, small.encode().len()).unwrap();
        assert_eq!(ok.error, None);
        assert_eq!(shared.view().runtime.state.root(), chain.head().state_root);
        assert_eq!(free(&shared), free_in(&chain.runtime.state));
    }
}
