//! Crash and restart: `gridproxy` killed with SIGKILL while the chain keeps billing resumes where its
//! store stopped and applies no block twice (its bills and consumption equal what the chain's blocks
//! hold, counted from the blocks themselves); a restarted chain is followed again, also through an
//! endpoint list whose first endpoint is closed, with every twin of the chain indexed once; a store
//! of another chain is refused.

use std::time::Duration;

use testkit::wait_for;
use tfchain_client::api::TfchainApiClient;
use tfgrid_types::Keypair;

use crate::harness::*;

/// Waits until the index is past `height` (the chain's, when it stopped).
async fn indexed_past(proxy: &Proxy, height: u64) {
    let port = proxy.port;
    wait_for(
        "indexing past the chain restart",
        Duration::from_secs(30),
        || async move {
            let health = get(port, "/health").await.ok()?.json();
            (health["indexed_height"].as_u64()? > height).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resumes_after_kill_without_double_applying_on_sqlite() {
    resumes_after_kill_without_double_applying(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resumes_after_kill_without_double_applying_on_postgres() {
    let pg = PgServer::start().await;
    resumes_after_kill_without_double_applying(Some(pg.url())).await;
}

async fn resumes_after_kill_without_double_applying(store: Option<String>) {
    let mut chain = fast_chain().await;
    let client = chain.client().await;
    let home = tempfile::tempdir().unwrap();
    let run = |chain: &testkit::ChainProcess, args: &[&str]| cli(home.path(), chain, args);
    run(&chain, &["--key", "//Alice", "twin", "create"]);
    run(
        &chain,
        &[
            "--key",
            "//Alice",
            "farm",
            "create",
            "farm1",
            "--ip",
            "185.206.122.33/24=185.206.122.1",
        ],
    );
    let node = Keypair::from_uri("//Node1").unwrap();
    register_node(&client, &node, NODE_RESOURCES, "Ghent", "Belgium").await;
    run(&chain, &["--key", "//Bob", "twin", "create"]);
    let db = zdb_file(home.path(), "db.json", 10, true);
    run(
        &chain,
        &["--key", "//Bob", "contract", "create", "--node", "1", &db],
    );
    report_contract(&client, &node, 1, 10 * GIB).await;

    let mut proxy = Proxy::start_on(&chain.rpc_url(), store).await;
    let first = proxy.caught_up(&client).await;
    let bob = 3;
    let before = proxy.json(&format!("/twins/{bob}/consumption")).await;

    // Killed at an arbitrary point while the chain keeps billing and changing.
    proxy.kill9();
    run(&chain, &["--key", "//Bob", "contract", "name", "my-site"]);
    let db2 = zdb_file(home.path(), "db2.json", 5, false);
    run(
        &chain,
        &["--key", "//Bob", "contract", "create", "--node", "1", &db2],
    );
    let rpc = client.rpc();
    let billed_before: u128 = before["total_billed"].as_str().unwrap().parse().unwrap();
    wait_for(
        "more bills while the explorer is down",
        Duration::from_secs(30),
        || async {
            (rpc.twin_consumption(bob).await.ok()?.total_billed > billed_before).then_some(())
        },
    )
    .await;
    proxy.restart().await;
    let resumed = proxy.json("/health").await["indexed_height"]
        .as_u64()
        .unwrap();
    assert!(
        resumed >= first,
        "the index went back from {first} to {resumed}"
    );
    proxy.caught_up(&client).await;

    // Kill it again mid-catch-up a few times, then compare with the chain's blocks.
    for _ in 0..3 {
        proxy.kill9();
        proxy.restart().await;
    }
    // Cancel so billing stops, then compare totals at one height.
    for id in ["1", "2", "3"] {
        run(&chain, &["--key", "//Bob", "contract", "cancel", id]);
    }
    let height = proxy.caught_up(&client).await;
    let on_chain = bills_on_chain(&client, height).await;
    let indexed = bills_indexed(&proxy, &[1, 2, 3]).await;
    assert_eq!(indexed, on_chain);
    let consumption = proxy.json(&format!("/twins/{bob}/consumption")).await;
    let chain_consumption = rpc.twin_consumption(bob).await.unwrap();
    assert_eq!(
        consumption["total_billed"],
        chain_consumption.total_billed.to_string()
    );
    assert_ne!(consumption["total_billed"], before["total_billed"]);
    assert_eq!(
        on_chain.values().map(|(_, total)| total).sum::<u128>(),
        chain_consumption.total_billed
    );

    // The chain goes away and comes back: the explorer follows it again.
    let stopped_at = rpc.status().await.unwrap().height;
    chain.kill9();
    chain.restart().await;
    let client = chain.client().await;
    indexed_past(&proxy, stopped_at).await;
    proxy.caught_up(&client).await;
    assert!(proxy.running(), "{}", proxy.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn follows_a_restarted_chain_through_an_endpoint_list() {
    let mut chain = fast_chain().await;
    let live = chain.rpc_url();
    let closed = format!("ws://127.0.0.1:{}", testkit::free_port());
    let mut proxy = Proxy::start(&format!("{closed},{live}")).await;
    let home = tempfile::tempdir().unwrap();
    cli(home.path(), &chain, &["--key", "//Alice", "twin", "create"]);
    let stopped_at = proxy.caught_up(&chain.client().await).await;

    chain.kill9();
    chain.restart().await;
    cli(home.path(), &chain, &["--key", "//Bob", "twin", "create"]);
    let client = chain.client().await;
    indexed_past(&proxy, stopped_at).await;
    proxy.caught_up(&client).await;
    assert!(proxy.running(), "{}", proxy.log());
    // Connected through the list twice, each time to the live endpoint.
    let following = format!("following the chain at {live}");
    assert!(
        proxy.log().matches(&following).count() >= 2,
        "{}",
        proxy.log()
    );
    // Every twin once: none missed across the restart, none applied twice.
    let (ids, on_chain) = twin_ids(&proxy, &client).await;
    assert_eq!(ids, on_chain);
    assert_eq!(ids.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_store_of_another_chain() {
    let chain_a = fast_chain().await;
    let mut proxy = Proxy::start(&chain_a.rpc_url()).await;
    let client_a = chain_a.client().await;
    proxy.caught_up(&client_a).await;
    proxy.kill9();
    drop(chain_a);

    // Same data directory, another chain (another genesis): the indexer stops with the reason.
    let chain_b = testkit::ChainProcess::start_with(|spec| {
        spec["block_time_ms"] = 200.into();
        spec["genesis"]["params"]["billing_period_blocks"] = 7.into();
    })
    .await;
    let output = std::process::Command::new(testkit::bin("gridproxy"))
        .args(["--chain", &chain_b.rpc_url(), "--listen"])
        .arg(format!("127.0.0.1:{}", testkit::free_port()))
        .arg("--data-dir")
        .arg(&proxy.data_dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the store indexes the chain with genesis"),
        "{stderr}"
    );
}
