//! The node's one session with the chain: a single connection that every part of the agent shares
//! (the watcher's subscriptions, the engine's reads, the reports), made again through the chain's
//! endpoint list when it breaks, and a single signer through which every transaction of the node's
//! account goes, one after another. Two writers signing for one account on their own connections
//! would read the same next nonce and have one of their transactions refused; here the next
//! signature waits until the previous transaction is in the chain's pool, so its nonce is counted.
//! It also reads what the node's primitives ask of the chain about the node itself (its public
//! config).

use std::sync::Arc;
use std::time::Duration;

use tfchain_client::api::TfchainApiClient;
use tfchain_client::{Client, ClientError, INCLUSION_TIMEOUT, Included};
use tfchain_runtime::Call;
use tfgrid_types::{Hash32, Keypair};
use tokio::sync::Mutex;

#[derive(Debug)]
pub struct ChainSession {
    url: String,
    key: Keypair,
    client: Mutex<Option<Arc<Client>>>,
    /// Held from reading the account's next nonce until the transaction is in the pool.
    signer: Mutex<()>,
}

impl ChainSession {
    /// A session with the chain at `url` (one endpoint, or a comma-separated list of the chain's
    /// endpoints) for the node's `key`; it connects on first use.
    pub fn new(url: &str, key: Keypair) -> Arc<ChainSession> {
        Arc::new(ChainSession {
            url: url.to_owned(),
            key,
            client: Mutex::new(None),
            signer: Mutex::new(()),
        })
    }

    /// The endpoint list the session was given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connection, made again through the endpoint list if the last one broke (starting after
    /// the endpoint that failed).
    pub async fn client(&self) -> Result<Arc<Client>, ClientError> {
        let mut current = self.client.lock().await;
        let client = match current.as_ref() {
            Some(client) => client.clone(),
            None => current
                .insert(Arc::new(Client::connect(&self.url).await?))
                .clone(),
        };
        drop(current);
        client.ensure_connected().await?;
        Ok(client)
    }

    /// Signs and submits `calls` in order, each with the account's next nonce, without waiting for
    /// inclusion; returns their hashes.
    pub async fn submit(&self, calls: Vec<Call>) -> Result<Vec<Hash32>, ClientError> {
        let client = self.client().await?;
        let _signing = self.signer.lock().await;
        let mut hashes = Vec::with_capacity(calls.len());
        for call in calls {
            hashes.push(client.submit(&self.key, call).await?);
        }
        Ok(hashes)
    }

    /// Submits `calls` as [`submit`](Self::submit) does and waits until a finalized block holds
    /// each; the first failure is the error.
    pub async fn submit_and_wait(
        &self,
        calls: Vec<Call>,
        timeout: Duration,
    ) -> Result<Vec<Included>, ClientError> {
        let hashes = self.submit(calls).await?;
        let client = self.client().await?;
        let mut included = Vec::with_capacity(hashes.len());
        for hash in hashes {
            included.push(client.wait(hash, timeout).await?);
        }
        Ok(included)
    }

    /// Runs one call to completion, refusing it before it costs anything if a dry run fails.
    pub async fn execute(&self, call: Call) -> Result<Included, ClientError> {
        let client = self.client().await?;
        let hash = {
            let _signing = self.signer.lock().await;
            let tx = client.sign(&self.key, call).await?;
            if let Some(error) = client.rpc().dry_run(tx.clone()).await?.error {
                return Err(ClientError::CallFailed(error));
            }
            client.submit_signed(tx).await?
        };
        client.wait(hash, INCLUSION_TIMEOUT).await
    }

    /// Node `node_id`'s public config, as its farmer set it on the chain (`None`: it has none).
    pub async fn public_config(
        &self,
        node_id: tfgrid_types::NodeId,
    ) -> anyhow::Result<Option<tfchain_runtime::types::PublicConfig>> {
        use anyhow::Context;
        let node = self.client().await?.rpc().node(node_id).await?;
        Ok(node
            .context("this node is not on the chain")?
            .node
            .public_config)
    }
}
