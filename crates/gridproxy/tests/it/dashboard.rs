//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven over the DevTools
//! protocol) loads the page served by `gridproxy`, which fetches the API and renders; the test uses
//! it as a person would (menu links, the node finder's fields and button, links from page to page)
//! and reads the text on the screen: statistics, filtered nodes, a node page, a contract page and a
//! twin page with costs per hour equal to the chain's. It keeps a screenshot in
//! `<target>/artifacts/`.

use std::path::{Path, PathBuf};

use tfchain_client::api::TfchainApiClient;
use tfgrid_types::Keypair;

use crate::browser::Browser;
use crate::harness::*;

/// Where test artifacts are kept: `<target dir>/artifacts`.
fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target directory")
        .join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the dashboard shows for an amount of TFT units an hour.
fn per_hour(units: u128) -> String {
    format!("{}.{:07} TFT/hour", units / 10_000_000, units % 10_000_000)
}

fn shows(text: &str, expect: &[&str]) {
    for t in expect {
        assert!(text.contains(t), "expected {t:?} on the page:\n{text}");
    }
}

/// The first cells (ids) of the rows of the page's tables.
fn first_cells(rows: &[String]) -> Vec<String> {
    rows.iter()
        .map(|r| r.split('\t').next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_headless_chromium() {
    let chain = fast_chain().await;
    let client = chain.client().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| cli(home.path(), &chain, args);
    run(&["--key", "//Alice", "twin", "create"]);
    run(&[
        "--key",
        "//Alice",
        "farm",
        "create",
        "farm1",
        "--ip",
        "185.206.122.33/24=185.206.122.1",
    ]);
    let node1 = Keypair::from_uri("//Node1").unwrap();
    let node2 = Keypair::from_uri("//Node2").unwrap();
    register_node(&client, &node1, NODE_RESOURCES, "Ghent", "Belgium").await;
    register_node(&client, &node2, NODE_RESOURCES, "Cairo", "Egypt").await;
    report_uptime(&client, &node1).await;
    run(&["--key", "//Bob", "twin", "create"]);
    let db = zdb_file(home.path(), "db.json", 10, true);
    run(&["--key", "//Bob", "contract", "create", "--node", "1", &db]);
    report_contract(&client, &node1, 1, 10 * GIB).await;
    let proxy = Proxy::start(&chain.rpc_url()).await;
    proxy.caught_up(&client).await;
    let rpc = client.rpc();
    let contract_cost = rpc.contract(1).await.unwrap().unwrap().cost_per_hour;
    let twin_cost = rpc.twin_consumption(4).await.unwrap().cost_per_hour;
    assert!(contract_cost > 0);
    let browser = Browser::start().await;
    let base = format!("http://127.0.0.1:{}/", proxy.port);

    // Statistics.
    browser.open(&format!("{base}#/")).await;
    browser.rendered("#/").await;
    shows(
        &browser.text("#app").await,
        &["Grid statistics", "Belgium", "Egypt", "active contracts"],
    );

    // The node finder from the menu: both nodes.
    browser.click("header a[href='#/nodes']").await;
    browser.rendered("#/nodes").await;
    shows(&browser.text("#node-count").await, &["2 nodes match"]);
    // Only the nodes that are up: status chosen with the keyboard, then the button.
    browser.click("#node-filters label:first-child").await;
    browser.keys("u").await;
    browser.click("#node-filters button").await;
    browser.rendered("#/nodes?status=up").await;
    shows(&browser.text("#node-count").await, &["1 nodes match"]);
    let rows = browser.rows().await;
    assert_eq!(first_cells(&rows), ["1"], "{rows:?}");
    shows(&rows[0], &["Ghent, Belgium", "up"]);
    // Any status, in Egypt: the node that is down.
    browser.click("#node-filters label:first-child").await;
    browser.keys("a").await;
    browser
        .type_into("#node-filters input[name=country]", "Egypt")
        .await;
    browser.click("#node-filters button").await;
    browser.rendered("#/nodes?country=Egypt").await;
    let rows = browser.rows().await;
    assert_eq!(first_cells(&rows), ["2"], "{rows:?}");
    shows(&rows[0], &["Cairo, Egypt", "down"]);
    // A bad filter shows the API's reason.
    browser
        .type_into("#node-filters input[name=farm_ids]", "x")
        .await;
    browser.click("#node-filters button").await;
    browser.rendered("#/nodes?farm_ids=x&country=Egypt").await;
    shows(&browser.text("#error").await, &["bad parameter farm_ids"]);
    // More free HDD than node 1 has left (its contract uses 10 GiB): node 2 only.
    browser.click("header a[href='#/nodes']").await;
    browser.rendered("#/nodes").await;
    browser
        .type_into("#node-filters input[name=free_hru]", "995")
        .await;
    browser.click("#node-filters button").await;
    browser
        .rendered(&format!("#/nodes?free_hru={}", 995 * GIB))
        .await;
    assert_eq!(first_cells(&browser.rows().await), ["2"]);
    // A screenshot of the filtered node finder, kept as an artifact.
    let png = browser.screenshot().await;
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    std::fs::write(artifacts_dir().join("gridproxy-dashboard-nodes.png"), png).unwrap();

    // A node page, opened from the unfiltered finder: capacity (10 GiB of HDD used by the
    // contract), status and its contract with its cost.
    browser.click("header a[href='#/nodes']").await;
    browser.rendered("#/nodes").await;
    browser.click("#app a[href='#/node/1']").await;
    browser.rendered("#/node/1").await;
    shows(
        &browser.text("#app").await,
        &["Node 1", "Ghent, Belgium", "up", "990.0 GiB"],
    );
    let rows = browser.rows().await;
    assert!(
        rows.iter()
            .any(|r| r.starts_with("1\t") && r.contains(&per_hour(contract_cost))),
        "{rows:?}"
    );

    // The contract page from there: the workloads with the state the node reported, and the cost.
    browser.click("#app a[href='#/contract/1']").await;
    browser.rendered("#/contract/1").await;
    shows(
        &browser.text("#app").await,
        &[
            "Contract 1",
            "Workloads",
            "zdb",
            "not reported",
            &per_hour(contract_cost),
        ],
    );
    let rows = browser.rows().await;
    assert!(
        rows.iter()
            .any(|r| r.starts_with("db\tzdb") && r.contains("\tok\t")),
        "{rows:?}"
    );

    // The deployer's twin page from there: each contract with its state and cost per hour, the
    // twin's total, what was paid, no grace-period warning.
    browser.click("#app a[href='#/twin/4']").await;
    browser.rendered("#/twin/4").await;
    shows(&browser.text("#app").await, &["Twin 4", "paid in all"]);
    assert_eq!(browser.text("#twin-cost").await, per_hour(twin_cost));
    let rows = browser.rows().await;
    assert!(
        rows.iter()
            .any(|r| r.starts_with("1\tnode\tCreated\t") && r.contains(&per_hour(contract_cost))),
        "{rows:?}"
    );
    assert_eq!(browser.text("#grace-warning").await, "");

    // The farm page, from the farm list.
    browser.click("header a[href='#/farms']").await;
    browser.rendered("#/farms").await;
    browser.click("#app a[href='#/farm/1']").await;
    browser.rendered("#/farm/1").await;
    shows(
        &browser.text("#app").await,
        &["Farm farm1", "185.206.122.33/24"],
    );
    let rows = browser.rows().await;
    assert!(
        rows.iter()
            .any(|r| r.starts_with("185.206.122.33/24\t") && r.ends_with("\t1")),
        "{rows:?}"
    );
    assert!(first_cells(&rows).contains(&"2".to_owned()), "{rows:?}");
}
