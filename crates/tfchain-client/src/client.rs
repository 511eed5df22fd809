//! The typed client: one WebSocket connection for calls and subscriptions, made through a list of
//! endpoints of one chain (the first that answers, and after a failure the next round the list),
//! and the steps every writer needs: pick the nonce, sign, dry-run (so a failing call costs
//! nothing), submit, and follow the transaction until a finalized block holds it, across a lost
//! connection: the client keeps each transaction it submitted until a wait for it ends, and submits
//! it again on every new connection (the node there, or the same node restarted, may not hold it).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jsonrpsee::core::client::{Error as RpcError, Subscription};
use jsonrpsee::ws_client::{PingConfig, WsClient, WsClientBuilder};
use tfchain_runtime::{Call, EventRecord, Header, Transaction};
use tfgrid_types::{Balance, Hash32, Keypair};
use thiserror::Error;

use crate::api::{ChainStatus, TfchainApiClient, TxStatus};
use crate::endpoints::{self, Attempt, Backoff};
use crate::limits::{
    ENDPOINT_CONNECT_TIMEOUT, PING_INTERVAL, REQUEST_TIMEOUT, SILENCE_MAX, UNCONFIRMED_MAX,
};

#[derive(Debug, Error)]
pub enum ClientError {
    /// No endpoint of the list answered for the client's chain; each one tried says why.
    #[error("{}", endpoints::describe(attempts))]
    Connect { attempts: Vec<Attempt> },
    /// The endpoint list itself is wrong (empty, too long).
    #[error("the endpoint list {list:?} {reason}")]
    Endpoints { list: String, reason: String },
    /// The node refused the request; its message says why.
    #[error("{0}")]
    Rejected(String),
    #[error("the connection to the chain failed: {0}")]
    Transport(String),
    /// The transaction was included but its call failed (the fee was paid).
    #[error("{0}")]
    CallFailed(String),
    #[error("the transaction was dropped: {0}")]
    Dropped(String),
    #[error("the transaction {0} was not included within {1:?}")]
    Timeout(Hash32, Duration),
}

impl From<RpcError> for ClientError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Call(obj) => ClientError::Rejected(obj.message().to_owned()),
            other => ClientError::Transport(other.to_string()),
        }
    }
}

/// A transaction in a finalized block.
#[derive(Debug, Clone)]
pub struct Included {
    pub hash: Hash32,
    pub height: u64,
    pub block_hash: Hash32,
    pub fee: Balance,
    pub events: Vec<EventRecord>,
}

/// A connection to one chain through a list of its nodes' endpoints. When the connection is lost,
/// [`ensure_connected`](Client::ensure_connected) makes it again through the list, starting after
/// the endpoint that failed; [`rpc`](Client::rpc) is the connection of the moment.
#[derive(Debug)]
pub struct Client {
    endpoints: Vec<String>,
    /// The chain's, from the first endpoint that answered: an endpoint of another chain is refused.
    genesis_hash: Hash32,
    state: Mutex<State>,
    /// The transactions submitted through this client and not yet waited for to the end.
    unconfirmed: Mutex<Unconfirmed>,
    /// Held while connecting again, so that tasks that see the loss together make one connection.
    reconnecting: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    rpc: Arc<WsClient>,
    /// The index of `rpc`'s endpoint in the list.
    current: usize,
    /// Which endpoints failed at their last try (they are tried after the others).
    failed: Vec<bool>,
}

/// Signed transactions by hash, the oldest forgotten beyond [`UNCONFIRMED_MAX`] (a transaction
/// nobody waits for is not kept for ever).
#[derive(Debug, Default)]
struct Unconfirmed {
    txs: BTreeMap<Hash32, String>,
    order: VecDeque<Hash32>,
}

impl Unconfirmed {
    fn keep(&mut self, hash: Hash32, tx: &str) {
        if self.txs.insert(hash, tx.to_owned()).is_none() {
            self.order.push_back(hash);
        }
        while self.order.len() > UNCONFIRMED_MAX {
            if let Some(oldest) = self.order.pop_front() {
                self.txs.remove(&oldest);
            }
        }
    }

    fn forget(&mut self, hash: Hash32) {
        if self.txs.remove(&hash).is_some() {
            self.order.retain(|h| *h != hash);
        }
    }
}

/// How long `execute` waits for inclusion.
pub const INCLUSION_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// Connects to the first endpoint of `list` that answers: one URL (`ws://127.0.0.1:9944`; an
    /// `http://` URL is taken as its WebSocket twin) or several of one chain, comma-separated
    /// (`ws://a:9944,ws://b:9944`). Each is given [`ENDPOINT_CONNECT_TIMEOUT`] to answer
    /// `chain_status`; the error names every endpoint tried and why each failed.
    pub async fn connect(list: &str) -> Result<Client, ClientError> {
        let endpoints = endpoints::parse(list).map_err(|reason| ClientError::Endpoints {
            list: list.to_owned(),
            reason,
        })?;
        let mut failed = vec![false; endpoints.len()];
        let (current, rpc, status) = connect_round(&endpoints, 0, &mut failed, None).await?;
        Ok(Client {
            endpoints,
            genesis_hash: status.genesis_hash,
            state: Mutex::new(State {
                rpc: Arc::new(rpc),
                current,
                failed,
            }),
            unconfirmed: Mutex::default(),
            reconnecting: tokio::sync::Mutex::new(()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section is an assignment or a read: a panic elsewhere leaves it whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The raw API of the connection of the moment: every method of [`TfchainApiClient`]. After
    /// the connection is lost, calls fail with [`ClientError::Transport`] until
    /// [`ensure_connected`](Self::ensure_connected) has made a new one.
    pub fn rpc(&self) -> Arc<WsClient> {
        self.state().rpc.clone()
    }

    /// The endpoint the connection of the moment goes to.
    pub fn endpoint(&self) -> String {
        self.endpoints[self.state().current].clone()
    }

    /// Every endpoint of the list, in its order.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Makes the connection again if it was lost (the node closed it, died, or went silent for
    /// [`SILENCE_MAX`]): round the list from the endpoint after the one that failed, those that
    /// failed at their last try at the end, refusing an endpoint of another chain. Does nothing
    /// while the connection is open, so every user of a shared client may call it before its work.
    pub async fn ensure_connected(&self) -> Result<(), ClientError> {
        if self.rpc().is_connected() {
            return Ok(());
        }
        let _one = self.reconnecting.lock().await;
        let (current, mut failed) = {
            let state = self.state();
            if state.rpc.is_connected() {
                // Another task made it again while this one waited.
                return Ok(());
            }
            (state.current, state.failed.clone())
        };
        let start = endpoints::after(current, self.endpoints.len());
        let made =
            connect_round(&self.endpoints, start, &mut failed, Some(self.genesis_hash)).await;
        let mut state = self.state();
        state.failed = failed;
        let (current, rpc, _) = made?;
        state.rpc = Arc::new(rpc);
        state.current = current;
        Ok(())
    }

    pub fn genesis_hash(&self) -> Hash32 {
        self.genesis_hash
    }

    /// Signs `call` with the account's next nonce (counting pending transactions).
    pub async fn sign(&self, key: &Keypair, call: Call) -> Result<String, ClientError> {
        let account = self.rpc().account(key.account()).await?;
        let tx = Transaction {
            signer: key.account(),
            nonce: account.next_nonce,
            call,
        };
        let signed = tx.sign(key, &self.genesis_hash);
        Ok(format!("0x{}", hex::encode(signed.encode())))
    }

    /// Submits a call without waiting; returns the transaction hash.
    pub async fn submit(&self, key: &Keypair, call: Call) -> Result<Hash32, ClientError> {
        let tx = self.sign(key, call).await?;
        self.submit_signed(tx).await
    }

    /// Submits a signed transaction (from [`sign`](Self::sign)) without waiting; returns its hash.
    /// The client keeps it until [`wait`](Self::wait) for it ends, and submits it again on every new
    /// connection meanwhile.
    pub async fn submit_signed(&self, tx: String) -> Result<Hash32, ClientError> {
        let hash = self.rpc().submit(tx.clone()).await?;
        self.unconfirmed().keep(hash, &tx);
        Ok(hash)
    }

    fn unconfirmed(&self) -> MutexGuard<'_, Unconfirmed> {
        // Its critical sections are map updates that do not panic.
        self.unconfirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a call to completion: refuses it before paying anything if a dry run fails, then
    /// submits it and waits for a finalized block to hold it. Should the connection be lost while
    /// it waits, the transaction is submitted again on the next one (the node there may not hold
    /// it; a copy it holds already is refused, harmlessly).
    pub async fn execute(&self, key: &Keypair, call: Call) -> Result<Included, ClientError> {
        let tx = self.sign(key, call).await?;
        let rpc = self.rpc();
        let dry = rpc.dry_run(tx.clone()).await?;
        if let Some(error) = dry.error {
            return Err(ClientError::CallFailed(error));
        }
        let heads = rpc.subscribe_finalized_heads().await?;
        let hash = rpc.submit(tx.clone()).await?;
        self.follow(hash, Some(&tx), Some(heads), INCLUSION_TIMEOUT)
            .await
    }

    /// Waits until a finalized block holds the transaction, across lost connections; one this
    /// client submitted is submitted again on each new connection, and forgotten once the wait
    /// ends.
    pub async fn wait(&self, hash: Hash32, timeout: Duration) -> Result<Included, ClientError> {
        let tx = self.unconfirmed().txs.get(&hash).cloned();
        let outcome = self.follow(hash, tx.as_deref(), None, timeout).await;
        self.unconfirmed().forget(hash);
        outcome
    }

    /// Follows a transaction until a finalized block holds it, for at most `timeout`. A lost
    /// connection is made again through the list (pausing between rounds) and the wait goes on
    /// there, submitting `tx` again if given. At the deadline the error is the last failure to
    /// connect, if the connection was lost, or else [`ClientError::Timeout`].
    async fn follow(
        &self,
        hash: Hash32,
        tx: Option<&str>,
        mut heads: Option<Subscription<Header>>,
        timeout: Duration,
    ) -> Result<Included, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Backoff::default();
        let mut lost = None;
        loop {
            let attempt = async {
                let mut heads = match heads.take() {
                    Some(heads) => heads,
                    None => self.resume(tx).await?,
                };
                self.wait_with(hash, &mut heads).await
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Err(_) => return Err(lost.unwrap_or(ClientError::Timeout(hash, timeout))),
                Ok(Err(e @ (ClientError::Transport(_) | ClientError::Connect { .. }))) => {
                    lost = Some(e);
                }
                Ok(done) => return done,
            }
            let pause = tokio::time::Instant::now() + backoff.next_delay();
            tokio::time::sleep_until(pause.min(deadline)).await;
        }
    }

    /// The start of a wait on a connection made again if it was lost: a head subscription, and
    /// `tx` submitted again if given (refused, harmlessly, where the node holds it already).
    async fn resume(&self, tx: Option<&str>) -> Result<Subscription<Header>, ClientError> {
        self.ensure_connected().await?;
        let rpc = self.rpc();
        let heads = rpc.subscribe_finalized_heads().await?;
        if let Some(tx) = tx {
            match rpc.submit(tx.to_owned()).await {
                Ok(_) | Err(RpcError::Call(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(heads)
    }

    /// Checks the transaction's status at every finalized head until it is in a block or dropped;
    /// a head subscription that ends is a lost connection.
    async fn wait_with(
        &self,
        hash: Hash32,
        heads: &mut Subscription<Header>,
    ) -> Result<Included, ClientError> {
        let rpc = self.rpc();
        loop {
            match rpc.tx_status(hash).await? {
                TxStatus::Included {
                    height,
                    block_hash,
                    fee,
                    error,
                    events,
                    ..
                } => {
                    return match error {
                        Some(error) => Err(ClientError::CallFailed(error)),
                        None => Ok(Included {
                            hash,
                            height,
                            block_hash,
                            fee,
                            events,
                        }),
                    };
                }
                TxStatus::Dropped { reason } => return Err(ClientError::Dropped(reason)),
                TxStatus::Pending | TxStatus::Unknown => {}
            }
            match heads.next().await {
                None => {
                    return Err(ClientError::Transport(
                        "the head subscription closed".into(),
                    ));
                }
                Some(Err(e)) => return Err(ClientError::Transport(e.to_string())),
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Tries the endpoints once each, in [`endpoints::attempt_order`] from `start`, and keeps the
/// first that answers for the chain `genesis` (any chain when `None`); marks in `failed` each
/// endpoint tried. The error names every endpoint tried and why it was not taken.
async fn connect_round(
    endpoints: &[String],
    start: usize,
    failed: &mut [bool],
    genesis: Option<Hash32>,
) -> Result<(usize, WsClient, ChainStatus), ClientError> {
    let mut attempts = Vec::new();
    for i in endpoints::attempt_order(start, failed) {
        let endpoint = &endpoints[i];
        let reason = match answer(endpoint).await {
            Ok((_, status)) if genesis.is_some_and(|g| g != status.genesis_hash) => {
                other_chain(status.genesis_hash, genesis)
            }
            Ok((rpc, status)) => {
                failed[i] = false;
                return Ok((i, rpc, status));
            }
            Err(reason) => reason,
        };
        failed[i] = true;
        attempts.push(Attempt {
            endpoint: endpoint.clone(),
            reason,
        });
    }
    Err(ClientError::Connect { attempts })
}

fn other_chain(answered: Hash32, expected: Option<Hash32>) -> String {
    let expected = expected.map_or("none".into(), |g| g.to_string());
    format!("serves another chain: genesis {answered} where this client's chain has {expected}")
}

/// A connection to `endpoint` and its `chain_status`, within [`ENDPOINT_CONNECT_TIMEOUT`] for the
/// whole (jsonrpsee's own connection time-out is longer, so the error says the same each time).
async fn answer(endpoint: &str) -> Result<(WsClient, ChainStatus), String> {
    let connect = async {
        let rpc = WsClientBuilder::default()
            .connection_timeout(2 * ENDPOINT_CONNECT_TIMEOUT)
            .request_timeout(REQUEST_TIMEOUT)
            .enable_ws_ping(
                PingConfig::new()
                    .ping_interval(PING_INTERVAL)
                    .inactive_limit(SILENCE_MAX),
            )
            .build(endpoint)
            .await
            .map_err(|e| e.to_string())?;
        let status = rpc.status().await.map_err(|e| e.to_string())?;
        Ok((rpc, status))
    };
    tokio::time::timeout(ENDPOINT_CONNECT_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {ENDPOINT_CONNECT_TIMEOUT:?}")))
}
