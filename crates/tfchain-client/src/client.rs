//! The typed client: one WebSocket connection for calls and subscriptions, and the steps every
//! writer needs: pick the nonce, sign, dry-run (so a failing call costs nothing), submit, and follow
//! the transaction until a finalized block holds it.

use std::time::Duration;

use jsonrpsee::core::client::{Error as RpcError, Subscription};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use tfchain_runtime::{Call, EventRecord, Header, Transaction};
use tfgrid_types::{Balance, Hash32, Keypair};
use thiserror::Error;

use crate::api::{TfchainApiClient, TxStatus};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach the chain at {url}: {reason}")]
    Connect { url: String, reason: String },
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

#[derive(Debug)]
pub struct Client {
    rpc: WsClient,
    genesis_hash: Hash32,
}

/// How long `execute` waits for inclusion.
pub const INCLUSION_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// Connects to `url` (`ws://127.0.0.1:9944`; an `http://` URL is taken as its WebSocket twin).
    pub async fn connect(url: &str) -> Result<Client, ClientError> {
        let ws_url = url
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        let connect_error = |reason: String| ClientError::Connect {
            url: url.to_owned(),
            reason,
        };
        let rpc = WsClientBuilder::default()
            .request_timeout(Duration::from_secs(60))
            .build(&ws_url)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let status = rpc
            .status()
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        Ok(Client {
            rpc,
            genesis_hash: status.genesis_hash,
        })
    }

    /// The raw API: every method of [`TfchainApiClient`].
    pub fn rpc(&self) -> &WsClient {
        &self.rpc
    }

    pub fn genesis_hash(&self) -> Hash32 {
        self.genesis_hash
    }

    /// Signs `call` with the account's next nonce (counting pending transactions).
    pub async fn sign(&self, key: &Keypair, call: Call) -> Result<String, ClientError> {
        let account = self.rpc.account(key.account()).await?;
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
        Ok(self.rpc.submit(tx).await?)
    }

    /// Runs a call to completion: refuses it before paying anything if a dry run fails, then
    /// submits it and waits for a finalized block to hold it.
    pub async fn execute(&self, key: &Keypair, call: Call) -> Result<Included, ClientError> {
        let tx = self.sign(key, call).await?;
        let dry = self.rpc.dry_run(tx.clone()).await?;
        if let Some(error) = dry.error {
            return Err(ClientError::CallFailed(error));
        }
        let mut heads = self.rpc.subscribe_finalized_heads().await?;
        let hash = self.rpc.submit(tx).await?;
        self.wait_with(hash, &mut heads, INCLUSION_TIMEOUT).await
    }

    /// Waits until a finalized block holds the transaction.
    pub async fn wait(&self, hash: Hash32, timeout: Duration) -> Result<Included, ClientError> {
        let mut heads = self.rpc.subscribe_finalized_heads().await?;
        self.wait_with(hash, &mut heads, timeout).await
    }

    async fn wait_with(
        &self,
        hash: Hash32,
        heads: &mut Subscription<Header>,
        timeout: Duration,
    ) -> Result<Included, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.rpc.tx_status(hash).await? {
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
            match tokio::time::timeout_at(deadline, heads.next()).await {
                Err(_) => return Err(ClientError::Timeout(hash, timeout)),
                Ok(None) => {
                    return Err(ClientError::Transport(
                        "the head subscription closed".into(),
                    ));
                }
                Ok(Some(Err(e))) => return Err(ClientError::Transport(e.to_string())),
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}
