//! Failing over between a chain's RPC endpoints, through real `tfchain` processes: a client given a
//! comma-separated list connects past a closed endpoint and past one that accepts TCP and never
//! answers, says which endpoint it uses, and names every endpoint it tried when none answers; the
//! node agent's chain session and a client waiting for a transaction go on when their node is
//! killed and started again on the same data and port; a transaction the node lost when it was
//! killed is submitted again by the client waiting for it; an endpoint of another chain is refused.
//! Waits have generous deadlines, only to catch a hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use testkit::{ChainProcess, free_port, wait_for};
use tfchain_client::api::{BlockId, TfchainApiClient, TxStatus};
use tfchain_client::{Client, ClientError};
use tfchain_runtime::{Call, balances};
use tfgrid_types::Keypair;
use zos::chain::ChainSession;

const DEADLINE: Duration = Duration::from_secs(60);

/// A loopback endpoint nothing listens on: connections to it are refused.
fn closed_endpoint() -> String {
    format!("ws://127.0.0.1:{}", free_port())
}

/// A listener that accepts connections and never sends a byte, holding them open.
struct Silent {
    url: String,
    accepted: Arc<AtomicUsize>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Silent { url, accepted }
    }
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after {DEADLINE:?}"))
}

fn transfer() -> Call {
    Call::Balances(balances::Call::Transfer {
        dest: Keypair::from_uri("//Bob").unwrap().account(),
        amount: 1_000,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_connects_past_a_closed_and_a_silent_endpoint() {
    let chain = ChainProcess::start().await;
    let (live, closed) = (chain.rpc_url(), closed_endpoint());
    let client = Client::connect(&format!("{closed},{live}")).await.unwrap();
    assert_eq!(client.endpoint(), live);
    assert_eq!(client.endpoints(), [closed.clone(), live.clone()]);
    client.rpc().status().await.unwrap();

    let silent = Silent::start().await;
    let client = within(
        "connecting past a silent endpoint",
        Client::connect(&format!("{},{live}", silent.url)),
    )
    .await
    .unwrap();
    assert_eq!(client.endpoint(), live);
    assert!(silent.accepted.load(Ordering::SeqCst) >= 1);

    // None answers: the error names each endpoint and why.
    let list = format!("{closed}, {}", silent.url);
    let error = within("the list's failure", Client::connect(&list))
        .await
        .unwrap_err();
    let ClientError::Connect { attempts } = &error else {
        panic!("{error}");
    };
    let tried: Vec<&str> = attempts.iter().map(|a| a.endpoint.as_str()).collect();
    assert_eq!(tried, [closed.as_str(), silent.url.as_str()]);
    assert!(
        attempts[1].reason.starts_with("no answer within"),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with("cannot reach the chain at any of its 2 endpoints: "),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_session_goes_on_when_its_node_restarts() {
    let mut chain = ChainProcess::start().await;
    let (live, closed) = (chain.rpc_url(), closed_endpoint());
    let session = ChainSession::new(
        &format!("{closed},{live}"),
        Keypair::from_uri("//Alice").unwrap(),
    );
    let client = session.client().await.unwrap();
    assert_eq!(client.endpoint(), live);
    let before = session.execute(transfer()).await.unwrap();

    chain.kill9();
    let down = wait_for("the session to see its node gone", DEADLINE, || async {
        session.client().await.err()
    })
    .await;
    assert!(
        down.to_string().contains(&closed) && down.to_string().contains(&live),
        "{down}"
    );
    // A client waiting for a transaction while the node is down gets its answer once it is back.
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.wait(before.hash, DEADLINE).await }
    });

    chain.restart().await;
    let after = wait_for("a transfer through the session", DEADLINE, || async {
        session.execute(transfer()).await.ok()
    })
    .await;
    assert!(after.height > before.height);
    // The same client, its connection made again through the list.
    let again = session.client().await.unwrap();
    assert!(Arc::ptr_eq(&client, &again));
    assert_eq!(again.endpoint(), live);
    let waited = within("the wait across the restart", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (waited.height, waited.block_hash),
        (before.height, before.block_hash)
    );
}

/// A node killed with a submitted transaction in its pool comes back without it; the client that
/// submitted it submits it again when it waits, and a block holds it.
#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_lost_with_its_node_is_submitted_again_by_its_wait() {
    // Long blocks, and the transfer submitted just after one: the kill comes before the next.
    let mut chain = ChainProcess::start_with(|spec| spec["block_time_ms"] = json!(3000)).await;
    let client = chain.client().await;
    let mut heads = client.rpc().subscribe_finalized_heads().await.unwrap();
    within("a block", heads.next()).await.unwrap().unwrap();
    let alice = Keypair::from_uri("//Alice").unwrap();
    let hash = client.submit(&alice, transfer()).await.unwrap();
    chain.kill9();
    chain.restart().await;
    let status = chain.client().await.rpc().tx_status(hash).await.unwrap();
    assert!(matches!(status, TxStatus::Unknown), "{status:?}");

    let included = within("the wait", client.wait(hash, DEADLINE))
        .await
        .unwrap();
    let block = client.rpc().block(BlockId::Height(included.height)).await;
    let block = block.unwrap().expect("the including block");
    assert!(block.txs.iter().any(|tx| tx.hash == hash));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_of_another_chain_is_refused() {
    let mut ours = ChainProcess::start().await;
    let theirs = ChainProcess::start_with(|spec| {
        spec["genesis"]["params"]["billing_period_blocks"] = 7.into();
    })
    .await;
    let their_genesis = theirs.client().await.genesis_hash();
    let client = Client::connect(&format!("{},{}", ours.rpc_url(), theirs.rpc_url()))
        .await
        .unwrap();
    assert_eq!(client.endpoint(), ours.rpc_url());
    let our_genesis = client.genesis_hash();
    assert_ne!(our_genesis, their_genesis);

    ours.kill9();
    let error = wait_for("the client to see its node gone", DEADLINE, || async {
        client.ensure_connected().await.err()
    })
    .await;
    let refusal = format!(
        "{}: serves another chain: genesis {their_genesis} where this client's chain has \
         {our_genesis}",
        theirs.rpc_url()
    );
    assert!(error.to_string().contains(&refusal), "{error}");
    assert!(error.to_string().contains(&ours.rpc_url()), "{error}");

    // Its own node back, the client uses it again, never the other chain's.
    ours.restart().await;
    wait_for("the client's own node again", DEADLINE, || async {
        client.ensure_connected().await.ok()
    })
    .await;
    assert_eq!(client.endpoint(), ours.rpc_url());
    assert_eq!(
        client.rpc().status().await.unwrap().genesis_hash,
        our_genesis
    );
}
