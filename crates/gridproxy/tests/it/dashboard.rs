//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) loads the page served by
//! `gridproxy`, which fetches the API and renders; the test reads the DOM as a person would see it
//! (statistics, the node finder with filters, a node page, a contract page) and keeps a screenshot
//! in `<target>/artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use tfchain_runtime::types::Resources;
use tfgrid_types::Keypair;

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

/// Runs headless Chromium on `url` with `extra` arguments; returns its standard output.
fn chromium(url: &str, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("running chromium (the Debian package `chromium` must be installed)");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The rendered page at `hash`, once the app says it is ready.
fn page(port: u16, hash: &str) -> String {
    let dom = chromium(&format!("http://127.0.0.1:{port}/{hash}"), &["--dump-dom"]);
    assert!(
        dom.contains(&format!("data-ready=\"{hash}\"")),
        "{hash} did not finish rendering:\n{dom}"
    );
    dom
}

fn shows(dom: &str, texts: &[&str]) {
    for t in texts {
        assert!(dom.contains(t), "expected {t:?} on the page:\n{dom}");
    }
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
    let resources = Resources {
        hru: 1000 * GIB,
        sru: 500 * GIB,
        cru: 8,
        mru: 16 * GIB,
    };
    register_node(&client, &node1, resources, "Ghent", "Belgium").await;
    register_node(&client, &node2, resources, "Cairo", "Egypt").await;
    report_uptime(&client, &node1).await;
    run(&["--key", "//Bob", "twin", "create"]);
    let db = zdb_file(home.path(), "db.json", 10, true);
    run(&["--key", "//Bob", "contract", "create", "--node", "1", &db]);
    report_contract(&client, &node1, 1, 10 * GIB).await;
    let proxy = Proxy::start(&chain.rpc_url()).await;
    proxy.caught_up(&client).await;
    let port = proxy.port;

    // Statistics.
    let dom = page(port, "#/");
    shows(
        &dom,
        &["Grid statistics", "Belgium", "Egypt", "active contracts"],
    );

    // The node finder, filtered: only the node that is up; then only Egypt.
    let dom = page(port, "#/nodes?status=up");
    shows(
        &dom,
        &[
            "id=\"node-count\">1 nodes match",
            "href=\"#/node/1\"",
            "Ghent",
        ],
    );
    assert!(!dom.contains("href=\"#/node/2\""), "{dom}");
    let dom = page(port, "#/nodes?country=Egypt");
    shows(&dom, &["1 nodes match", "href=\"#/node/2\"", "status-down"]);
    assert!(!dom.contains("href=\"#/node/1\""), "{dom}");
    // A bad filter shows the API's reason.
    let dom = page(port, "#/nodes?free_mru=lots");
    shows(&dom, &["bad parameter free_mru"]);

    // A node page: capacity (10 GiB of HDD used by the contract), status and its contract.
    let dom = page(port, "#/node/1");
    shows(
        &dom,
        &[
            "Node 1",
            "Ghent, Belgium",
            "status-up",
            "990.0 GiB",
            "href=\"#/contract/1\"",
        ],
    );

    // A contract page: the workloads with the state the node reported.
    let dom = page(port, "#/contract/1");
    shows(
        &dom,
        &[
            "Contract 1",
            "Workloads",
            "zdb",
            "<td>ok</td>",
            "pip",
            "not reported",
        ],
    );

    // The deployer's twin page (contracts with their state, what was paid) and the farm page.
    let dom = page(port, "#/twin/4");
    shows(
        &dom,
        &[
            "Twin 4",
            "paid in all",
            "href=\"#/contract/1\"",
            "<td>Created</td>",
        ],
    );
    assert!(!dom.contains("id=\"grace-warning\""), "{dom}");
    let dom = page(port, "#/farm/1");
    shows(
        &dom,
        &[
            "Farm farm1",
            "185.206.122.33/24",
            "href=\"#/contract/1\"",
            "href=\"#/node/2\"",
        ],
    );

    // A screenshot of the node finder, kept as an artifact.
    let shot = artifacts_dir().join("gridproxy-dashboard-nodes.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &format!("http://127.0.0.1:{port}/#/nodes"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
        ],
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
