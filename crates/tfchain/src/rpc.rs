//! The JSON-RPC server: reads come from the store (the last committed block) and the chain's head
//! view, writes go through the signature verifier into the chain's pool, one by one or in batches,
//! and on to the other nodes through the relay; none waits on a block being made. `rpc_error` is the one table from errors to RPC codes.

use std::sync::Arc;

use jsonrpsee::core::{SubscriptionResult, async_trait};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage};
use tfchain_client::api::*;
use tfchain_runtime::table::TableKey;
use tfchain_runtime::types::*;
use tfchain_runtime::{Commit, SignedTransaction, TxInvalid};
use tfgrid_types::{AccountId, ContractId, FarmId, Hash32, NodeId, PolicyId, TwinId};
use tokio::sync::broadcast;

use crate::chain::{AdmitError, Committed, Shared};
use crate::limits::{PAGE_LIMIT_MAX, SUBMIT_BATCH_MAX};
use crate::mempool::PoolError;
use crate::relay::Relay;
use crate::spec::ChainSpec;
use crate::store::Store;
use crate::verify::Verifier;

/// Everything the RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Admit(#[from] AdmitError),
    #[error("{0}")]
    Malformed(String),
    #[error("store: {0}")]
    Store(#[from] anyhow::Error),
}

/// The one mapping from errors to RPC error codes.
fn rpc_error(error: RpcError) -> ErrorObjectOwned {
    let code = match &error {
        RpcError::Admit(AdmitError::Invalid(_)) => codes::TX_INVALID,
        RpcError::Admit(AdmitError::Pool(PoolError::AlreadyKnown)) => codes::ALREADY_KNOWN,
        RpcError::Admit(AdmitError::Pool(PoolError::NonceTaken(_))) => codes::TX_INVALID,
        RpcError::Admit(AdmitError::Pool(_)) => codes::POOL_FULL,
        RpcError::Malformed(_) => codes::MALFORMED,
        RpcError::Store(_) => codes::STORE,
    };
    ErrorObjectOwned::owned(code, error.to_string(), None::<()>)
}

type Result<T> = std::result::Result<T, ErrorObjectOwned>;

/// A batch's verdict on one transaction that was refused, as `tx_submit` would have answered.
fn refused(error: RpcError) -> Submitted {
    let error = rpc_error(error);
    Submitted::Refused {
        code: error.code(),
        message: error.message().to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct RpcServer {
    pub chain: Arc<Shared>,
    pub store: Arc<Store>,
    pub verifier: Verifier,
    pub finalized: broadcast::Sender<Committed>,
    pub spec: Arc<ChainSpec>,
    pub genesis_hash: Hash32,
    /// Where the transactions clients submit are relayed (BFT nodes).
    pub relay: Option<Relay>,
}

fn decode_tx(hex_tx: &str) -> std::result::Result<(SignedTransaction, usize), RpcError> {
    let bytes = hex::decode(hex_tx.strip_prefix("0x").unwrap_or(hex_tx)).map_err(|_| {
        RpcError::Malformed("a transaction is 0x and the hex of its encoding".into())
    })?;
    let tx = SignedTransaction::decode(&bytes).map_err(|e| RpcError::Malformed(e.to_string()))?;
    Ok((tx, bytes.len()))
}

fn limit(page: &Page) -> usize {
    page.limit.unwrap_or(100).min(PAGE_LIMIT_MAX) as usize
}

impl RpcServer {
    fn get<K: TableKey, V: tfchain_runtime::table::TableValue>(
        &self,
        table: &str,
        key: &K,
    ) -> Result<Option<V>> {
        self.store.get(table, key).map_err(|e| rpc_error(e.into()))
    }

    fn page_u32<V: tfchain_runtime::table::TableValue>(
        &self,
        table: &str,
        page: &Page,
    ) -> Result<Vec<V>> {
        let from = u32::try_from(page.from.unwrap_or(0))
            .unwrap_or(u32::MAX)
            .key_bytes();
        let rows = self
            .store
            .page::<u32, V>(table, &from, &[], limit(page))
            .map_err(|e| rpc_error(e.into()))?;
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }

    fn contracts(&self, ids: &[ContractId]) -> Result<Vec<Contract>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.get::<_, Contract>("contracts", id)?);
        }
        Ok(out)
    }

    fn node_view(&self, node: Node) -> Result<NodeView> {
        Ok(NodeView {
            power: self.get("node_power", &node.id)?,
            uptime: self.get("node_uptime", &node.id)?,
            node,
        })
    }

    async fn checked(
        &self,
        hex_tx: &str,
    ) -> std::result::Result<(SignedTransaction, usize), RpcError> {
        let (tx, len) = decode_tx(hex_tx)?;
        let tx = Arc::new(tx);
        if !self.verifier.check(tx.clone()).await {
            return Err(AdmitError::Invalid(TxInvalid::BadSignature(tx.tx.signer)).into());
        }
        Ok((Arc::unwrap_or_clone(tx), len))
    }

    /// Checks and admits a batch, each transaction on its own; relays the admitted ones when
    /// `relay` (a batch that came from a client, not from another node).
    async fn admit_batch(&self, txs: Vec<String>, relay: bool) -> Result<Vec<Submitted>> {
        if txs.len() > SUBMIT_BATCH_MAX {
            return Err(rpc_error(RpcError::Malformed(format!(
                "a batch holds at most {SUBMIT_BATCH_MAX} transactions, not {}",
                txs.len()
            ))));
        }
        // The signatures of the whole batch are checked together.
        let checked = futures::future::join_all(txs.iter().map(|tx| self.checked(tx))).await;
        let mut verdicts: Vec<Option<Submitted>> = Vec::with_capacity(checked.len());
        let mut valid = Vec::new();
        for check in checked {
            match check {
                Ok(tx) => {
                    valid.push(tx);
                    verdicts.push(None);
                }
                Err(error) => verdicts.push(Some(refused(error))),
            }
        }
        let mut admitted = self.chain.admit_all(valid).into_iter();
        let verdicts: Vec<Submitted> = verdicts
            .into_iter()
            .map(|verdict| {
                verdict.unwrap_or_else(|| match admitted.next().expect("a verdict per valid tx") {
                    Ok(hash) => Submitted::Accepted(hash),
                    Err(error) => refused(error.into()),
                })
            })
            .collect();
        if relay && let Some(relayer) = &self.relay {
            let accepted = txs
                .into_iter()
                .zip(&verdicts)
                .filter(|(_, v)| matches!(v, Submitted::Accepted(_)))
                .map(|(tx, _)| tx)
                .collect();
            relayer.send(accepted);
        }
        Ok(verdicts)
    }

    async fn pipe<S: Clone, T: serde::Serialize + Send + 'static>(
        mut rx: broadcast::Receiver<S>,
        pending: PendingSubscriptionSink,
        map: impl Fn(&S) -> Option<T> + Send + 'static,
    ) -> SubscriptionResult {
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                _ = sink.closed() => return Ok(()),
                next = rx.recv() => match next {
                    Ok(item) => {
                        let Some(item) = map(&item) else { continue };
                        let message = SubscriptionMessage::from(serde_json::value::to_raw_value(&item)?);
                        if sink.send(message).await.is_err() {
                            return Ok(());
                        }
                    }
                    // A subscriber too slow for the buffer misses blocks; it reads them by height.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}

#[async_trait]
impl TfchainApiServer for RpcServer {
    async fn status(&self) -> Result<ChainStatus> {
        let head = self.chain.head();
        Ok(ChainStatus {
            chain: self.spec.name.clone(),
            chain_id: self.spec.id.clone(),
            genesis_hash: self.genesis_hash,
            height: head.height,
            head_hash: head.hash(),
            head_timestamp_ms: head.timestamp_ms,
            block_time_ms: self.spec.block_time_ms,
            pending_txs: self.chain.pool_len() as u32,
        })
    }

    async fn params(&self) -> Result<ChainParams> {
        self.get("params", &())?.ok_or_else(|| {
            rpc_error(RpcError::Store(anyhow::anyhow!(
                "no chain parameters stored"
            )))
        })
    }

    async fn block(&self, at: BlockId) -> Result<Option<BlockView>> {
        let height = match at {
            BlockId::Height(h) => Some(h),
            BlockId::Hash(hash) => self
                .store
                .height_of(&hash)
                .map_err(|e| rpc_error(e.into()))?,
        };
        let Some(height) = height else {
            return Ok(None);
        };
        let Some(block) = self.store.block(height).map_err(|e| rpc_error(e.into()))? else {
            return Ok(None);
        };
        let events = self.store.events(height).map_err(|e| rpc_error(e.into()))?;
        Ok(Some(BlockView {
            hash: block.hash(),
            txs: block
                .txs
                .iter()
                .map(|tx| TxView {
                    hash: tx.hash(),
                    tx: tx.clone(),
                })
                .collect(),
            header: block.header,
            events,
        }))
    }

    async fn submit(&self, tx: String) -> Result<Hash32> {
        let (checked, len) = self.checked(&tx).await.map_err(rpc_error)?;
        let hash = self
            .chain
            .admit(checked, len)
            .map_err(|e| rpc_error(e.into()))?;
        if let Some(relay) = &self.relay {
            relay.send(vec![tx]);
        }
        Ok(hash)
    }

    async fn submit_batch(&self, txs: Vec<String>) -> Result<Vec<Submitted>> {
        self.admit_batch(txs, true).await
    }

    async fn relay(&self, txs: Vec<String>) -> Result<Vec<Submitted>> {
        self.admit_batch(txs, false).await
    }

    async fn commit(&self, height: u64) -> Result<Option<Commit>> {
        self.store.commit(height).map_err(|e| rpc_error(e.into()))
    }

    async fn dry_run(&self, tx: String) -> Result<DryRun> {
        let (tx, len) = self.checked(&tx).await.map_err(rpc_error)?;
        let (receipt, events) = self
            .chain
            .dry_run(&tx, len)
            .map_err(|e| rpc_error(AdmitError::from(e).into()))?;
        Ok(DryRun {
            fee: receipt.fee,
            error: receipt.error.map(|e| e.to_string()),
            events,
        })
    }

    async fn tx_status(&self, hash: Hash32) -> Result<TxStatus> {
        if self.chain.is_pending(&hash) {
            return Ok(TxStatus::Pending);
        }
        if let Some(reason) = self.chain.dropped_reason(&hash) {
            return Ok(TxStatus::Dropped { reason });
        }
        let Some(record) = self.store.tx(&hash).map_err(|e| rpc_error(e.into()))? else {
            return Ok(TxStatus::Unknown);
        };
        Ok(TxStatus::Included {
            height: record.height,
            block_hash: record.block_hash,
            index: record.index,
            fee: record.fee,
            error: record.error,
            events: record.events,
        })
    }

    async fn account(&self, account: AccountId) -> Result<AccountView> {
        let (nonce, next_nonce) = self.chain.nonces(&account);
        let free = self
            .get::<_, AccountInfo>("accounts", &account)?
            .map_or(0, |a| a.free);
        Ok(AccountView {
            account,
            free,
            nonce,
            next_nonce,
        })
    }

    async fn twin(&self, id: TwinId) -> Result<Option<Twin>> {
        self.get("twins", &id)
    }

    async fn twin_by_account(&self, account: AccountId) -> Result<Option<Twin>> {
        match self.get::<_, TwinId>("twin_id_by_account", &account)? {
            Some(id) => self.get("twins", &id),
            None => Ok(None),
        }
    }

    async fn twins(&self, page: Page) -> Result<Vec<Twin>> {
        self.page_u32("twins", &page)
    }

    async fn farm(&self, id: FarmId) -> Result<Option<Farm>> {
        self.get("farms", &id)
    }

    async fn farm_by_name(&self, name: String) -> Result<Option<Farm>> {
        match self.get::<_, FarmId>("farm_id_by_name", &name)? {
            Some(id) => self.get("farms", &id),
            None => Ok(None),
        }
    }

    async fn farms(&self, page: Page) -> Result<Vec<Farm>> {
        self.page_u32("farms", &page)
    }

    async fn node(&self, id: NodeId) -> Result<Option<NodeView>> {
        match self.get::<_, Node>("nodes", &id)? {
            Some(node) => Ok(Some(self.node_view(node)?)),
            None => Ok(None),
        }
    }

    async fn node_by_twin(&self, twin_id: TwinId) -> Result<Option<NodeView>> {
        match self.get::<_, NodeId>("node_id_by_twin", &twin_id)? {
            Some(id) => self.node(id).await,
            None => Ok(None),
        }
    }

    async fn nodes(&self, page: Page) -> Result<Vec<NodeView>> {
        let nodes: Vec<Node> = self.page_u32("nodes", &page)?;
        nodes.into_iter().map(|n| self.node_view(n)).collect()
    }

    async fn pricing_policy(&self, id: PolicyId) -> Result<Option<PricingPolicy>> {
        self.get("pricing_policies", &id)
    }

    async fn farming_policies(&self, page: Page) -> Result<Vec<FarmingPolicy>> {
        self.page_u32("farming_policies", &page)
    }

    async fn contract(&self, id: ContractId) -> Result<Option<ContractView>> {
        let Some(contract) = self.get::<_, Contract>("contracts", &id)? else {
            return Ok(None);
        };
        let cost_per_hour = self.chain.costs_per_hour(&[id])[0];
        Ok(Some(ContractView {
            billing: self.get("contract_billing", &id)?,
            resources: self.get("contract_resources", &id)?,
            deployment_state: self.get("deployment_states", &id)?,
            cost_per_hour,
            contract,
        }))
    }

    async fn contract_by_name(&self, name: String) -> Result<Option<Contract>> {
        match self.get::<_, ContractId>("contract_id_by_name", &name)? {
            Some(id) => self.get("contracts", &id),
            None => Ok(None),
        }
    }

    async fn contracts_by_twin(&self, twin_id: TwinId) -> Result<Vec<Contract>> {
        let ids: Vec<ContractId> = self
            .get("contract_ids_by_twin", &twin_id)?
            .unwrap_or_default();
        self.contracts(&ids)
    }

    async fn contracts_by_node(&self, node_id: NodeId) -> Result<Vec<Contract>> {
        let mut ids: Vec<ContractId> = self.get("node_contracts", &node_id)?.unwrap_or_default();
        ids.extend(self.get::<_, ContractId>("rent_contract_by_node", &node_id)?);
        self.contracts(&ids)
    }

    async fn pending_deployment_state(&self, id: ContractId) -> Result<Option<DeploymentState>> {
        Ok(self.chain.pending_deployment_state(id))
    }

    async fn contract_bills(&self, id: ContractId) -> Result<Vec<Bill>> {
        Ok(self.get("contract_bills", &id)?.unwrap_or_default())
    }

    async fn twin_consumption(&self, twin_id: TwinId) -> Result<ConsumptionView> {
        let consumption: Consumption = self.get("twin_consumption", &twin_id)?.unwrap_or_default();
        let ids: Vec<ContractId> = self
            .get("contract_ids_by_twin", &twin_id)?
            .unwrap_or_default();
        let cost_per_hour = self.chain.costs_per_hour(&ids).iter().sum();
        Ok(ConsumptionView {
            twin_id,
            total_billed: consumption.total_billed,
            last_bill_s: consumption.last_bill_s,
            active_contracts: ids.len() as u32,
            cost_per_hour,
        })
    }

    async fn tft_price(&self) -> Result<TftPrice> {
        self.get("tft_price", &())?
            .ok_or_else(|| rpc_error(RpcError::Store(anyhow::anyhow!("no TFT price stored"))))
    }

    async fn council(&self) -> Result<Council> {
        self.get("council", &())?
            .ok_or_else(|| rpc_error(RpcError::Store(anyhow::anyhow!("no council stored"))))
    }

    async fn validators(&self) -> Result<ValidatorSet> {
        self.get("validator_set", &())?
            .ok_or_else(|| rpc_error(RpcError::Store(anyhow::anyhow!("no validator set stored"))))
    }

    async fn motions(&self) -> Result<Vec<Motion>> {
        let rows = self
            .store
            .page::<Hash32, Motion>("motions", &[], &[], PAGE_LIMIT_MAX as usize);
        Ok(rows
            .map_err(|e| rpc_error(e.into()))?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    async fn kv_get(&self, account: AccountId, key: String) -> Result<Option<KvEntry>> {
        let key_bytes = hex::decode(key.strip_prefix("0x").unwrap_or(&key))
            .map_err(|_| rpc_error(RpcError::Malformed("the key must be hex".into())))?;
        let value: Option<Vec<u8>> = self.get("kv", &(account, key_bytes))?;
        Ok(value.map(|v| KvEntry {
            key,
            value: hex::encode(v),
        }))
    }

    async fn kv_list(&self, account: AccountId) -> Result<Vec<KvEntry>> {
        let prefix = account.key_bytes();
        let rows = self.store.page::<(AccountId, Vec<u8>), Vec<u8>>(
            "kv",
            &prefix,
            &prefix,
            PAGE_LIMIT_MAX as usize,
        );
        let rows = rows.map_err(|e| rpc_error(e.into()))?;
        Ok(rows
            .into_iter()
            .map(|((_, k), v)| KvEntry {
                key: hex::encode(k),
                value: hex::encode(v),
            })
            .collect())
    }

    async fn subscribe_finalized_heads(
        &self,
        pending: PendingSubscriptionSink,
    ) -> SubscriptionResult {
        Self::pipe(self.finalized.subscribe(), pending, |c: &Committed| {
            Some(c.block.header.clone())
        })
        .await
    }

    async fn subscribe_events(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        Self::pipe(self.finalized.subscribe(), pending, |c: &Committed| {
            Some(BlockEvents {
                height: c.block.header.height,
                block_hash: c.block.hash(),
                timestamp_ms: c.block.header.timestamp_ms,
                events: c.events.as_ref().clone(),
            })
        })
        .await
    }

    async fn subscribe_pending_reports(
        &self,
        pending: PendingSubscriptionSink,
    ) -> SubscriptionResult {
        Self::pipe(
            self.chain.pending_reports(),
            pending,
            |r: &PendingReport| Some(r.clone()),
        )
        .await
    }
}
