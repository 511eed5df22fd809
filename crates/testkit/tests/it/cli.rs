//! The CLI as a user runs it: keys, transfers, twins, farms and their IPs, the key-value store, and
//! errors that say what was wrong, exit non-zero and change nothing; lookups of unknown ids fail; a
//! chain it cannot reach is said in one line; output into a closed pipe ends quietly; a second
//! `tfgrid up` names the port it cannot have; a project's state directory is ignored by git, and
//! `apply`'s output keeps its order in a file.

use std::io::BufRead;
use std::process::{Command, Stdio};

use testkit::{ChainProcess, Grid, LocalGrid, bin, fails, free_port, ok, tfgrid};
use tfchain_client::api::TfchainApiClient;
use tfgrid_types::{Keypair, UNITS_PER_TFT};

#[tokio::test(flavor = "multi_thread")]
async fn cli_drives_the_chain() {
    let chain = ChainProcess::start().await;
    let home = tempfile::tempdir().unwrap();
    let url = chain.rpc_url();
    let cli = |args: &[&str]| tfgrid(home.path(), &url, args);

    // Keys: a new one is stored and shown; dev URIs resolve to Substrate's dev accounts.
    let created = ok(cli(&["keys", "new", "farmer"]));
    assert!(created.contains("phrase"), "{created}");
    let farmer = ok(cli(&["keys", "show", "farmer"])).trim().to_string();
    assert_eq!(
        ok(cli(&["keys", "show", "//Alice"])).trim(),
        "5FA9nQDVg267DEd8m1ZypXLBnvN7SFxYwV7ndqSYGiN9TTpu"
    );
    fails(cli(&["keys", "new", "farmer"]), "exists already");
    fails(cli(&["balance"]), "no key given");

    // Transfers and balances.
    ok(cli(&["--key", "//Alice", "transfer", "farmer", "100"]));
    assert!(ok(cli(&["--key", "farmer", "balance"])).contains("100 TFT"));
    fails(
        cli(&["--key", "//Alice", "transfer", "farmer", "1.123456789"]),
        "more than 7 decimals",
    );
    fails(
        cli(&["--key", "//Alice", "transfer", "nobody-known", "1"]),
        "neither an address",
    );

    // Twin and farm, as JSON for checking.
    ok(cli(&["--key", "farmer", "twin", "create"]));
    fails(
        cli(&["--key", "farmer", "twin", "create"]),
        "already has twin 1",
    );
    let farm = ok(cli(&[
        "--key",
        "farmer",
        "--json",
        "farm",
        "create",
        "freefarm",
        "--ip",
        "185.206.122.33/24=185.206.122.1",
    ]));
    let farm: serde_json::Value = serde_json::from_str(&farm).unwrap();
    assert_eq!(farm["name"], "freefarm");
    assert_eq!(farm["public_ips"][0]["ip"], "185.206.122.33/24");
    ok(cli(&[
        "--key",
        "farmer",
        "farm",
        "add-ip",
        "freefarm",
        "185.206.122.34/24",
        "185.206.122.1",
    ]));
    let shown = ok(cli(&["farm", "show", "freefarm"]));
    assert!(
        shown.contains("185.206.122.34/24") && shown.contains("free"),
        "{shown}"
    );
    ok(cli(&[
        "--key",
        "farmer",
        "farm",
        "remove-ip",
        "1",
        "185.206.122.34/24",
    ]));
    assert!(!ok(cli(&["farm", "show", "1"])).contains("185.206.122.34/24"));

    // Errors name the problem, and a refused call costs nothing: Bob's nonce and balance stay.
    let client = chain.client().await;
    let bob = Keypair::from_uri("//Bob").unwrap().account();
    let before = client.rpc().account(bob).await.unwrap();
    fails(
        cli(&["--key", "//Bob", "farm", "create", "bobfarm"]),
        "has no twin: create one first",
    );
    ok(cli(&["--key", "//Bob", "twin", "create"]));
    let before_name_clash = client.rpc().account(bob).await.unwrap();
    fails(
        cli(&["--key", "//Bob", "farm", "create", "freefarm"]),
        "farm name \"freefarm\" is taken",
    );
    fails(
        cli(&[
            "--key",
            "//Bob",
            "farm",
            "add-ip",
            "freefarm",
            "185.206.122.40/24",
            "185.206.122.1",
        ]),
        "does not own farm 1",
    );
    fails(
        cli(&[
            "--key",
            "farmer",
            "farm",
            "add-ip",
            "freefarm",
            "10.0.0.2/24",
            "10.0.0.1",
        ]),
        "not a public unicast address",
    );
    fails(
        cli(&["farm", "show", "nosuchfarm"]),
        "unknown farm \"nosuchfarm\"",
    );
    fails(
        cli(&["--key", "//Bob", "transfer", "farmer", "99999999999"]),
        "insufficient funds",
    );
    let after = client.rpc().account(bob).await.unwrap();
    assert_eq!(
        after, before_name_clash,
        "refused calls changed Bob's account"
    );
    assert!(
        before.nonce + 2 == after.nonce,
        "only the two twin calls were paid"
    );

    // The key-value store.
    ok(cli(&[
        "--key",
        "farmer",
        "kv",
        "set",
        "greeting",
        "hello grid",
    ]));
    assert_eq!(
        ok(cli(&["--key", "farmer", "kv", "get", "greeting"])).trim(),
        "hello grid"
    );
    assert_eq!(
        ok(cli(&["kv", "get", "greeting", "--account", &farmer])).trim(),
        "hello grid"
    );
    ok(cli(&["--key", "farmer", "kv", "delete", "greeting"]));
    fails(
        cli(&["--key", "farmer", "kv", "get", "greeting"]),
        "no value under",
    );
    fails(
        cli(&["--key", "farmer", "kv", "delete", "greeting"]),
        "no value is stored under that key",
    );

    // Status, nodes, JSON balances as exact unit strings.
    assert!(ok(cli(&["chain", "status"])).contains("Grid Development (dev)"));
    ok(cli(&["node", "list"]));
    fails(cli(&["node", "show", "7"]), "unknown node 7");
    let balance: serde_json::Value =
        serde_json::from_str(&ok(cli(&["--json", "balance", "//Ferdie"]))).unwrap();
    assert_eq!(balance["free"], (1_000_000_000 * UNITS_PER_TFT).to_string());
}

/// Every lookup of an id the chain does not hold fails and names it, rather than showing nothing.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_ids_fail() {
    let grid = Grid::start(|_| {}).await;
    let cli = |args: &[&str]| grid.cli(args);
    fails(cli(&["contract", "bills", "7"]), "unknown contract 7");
    fails(cli(&["contract", "show", "7"]), "unknown contract 7");
    fails(
        cli(&["--key", "//Alice", "contract", "cancel", "7"]),
        "unknown contract 7",
    );
    fails(cli(&["twin", "show", "7"]), "unknown twin 7");
    fails(cli(&["twin", "consumption", "7"]), "unknown twin 7");
    fails(cli(&["contract", "list", "--twin", "7"]), "unknown twin 7");
    fails(cli(&["contract", "list", "--node", "7"]), "unknown node 7");
    fails(cli(&["node", "show", "7"]), "unknown node 7");
    fails(cli(&["farm", "show", "7"]), "unknown farm \"7\"");
    fails(cli(&["twin", "show", "//Bob"]), "has no twin");
    // What exists is still shown.
    ok(cli(&["twin", "show", "1"]));
    ok(cli(&["twin", "consumption", "1"]));
    ok(cli(&["contract", "list", "--twin", "1"]));
}

/// A chain that does not answer is said once, in one line, with how to start a local one.
#[test]
fn an_unreachable_chain_is_one_line() {
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("app.toml");
    std::fs::write(
        &project,
        "name = \"app\"\n[[zdb]]\nname = \"db\"\nsize = \"1 GiB\"\npassword = \"secret\"\n",
    )
    .unwrap();
    let port = free_port();
    let url = format!("ws://127.0.0.1:{port}");
    let project = project.to_str().unwrap();
    for args in [
        &["--key", "//Bob", "plan", project][..],
        &["chain", "status"],
    ] {
        let out = tfgrid(home.path(), &url, args);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert_eq!(
            stderr.matches("cannot reach the chain").count(),
            1,
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "start a local grid with `tfgrid up --rpc-port {port}`"
            )),
            "{args:?}: {stderr}"
        );
    }
}

/// `tfgrid keys list | head -1`: the reader stops early, and the CLI ends quietly (no panic about
/// a broken pipe).
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    // Stored keys as the keystore writes them: 3,000 rows of a table are far more than a pipe holds.
    for i in 0..3000 {
        let name = format!("key-{i:04}-{}", "x".repeat(50));
        let key = serde_json::json!({
            "name": name,
            "address": "5FA9nQDVg267DEd8m1ZypXLBnvN7SFxYwV7ndqSYGiN9TTpu",
            "secret": "//Alice",
        });
        std::fs::write(keys.join(format!("{name}.json")), key.to_string()).unwrap();
    }
    let mut child = Command::new(bin("tfgrid"))
        .args(["keys", "list"])
        .env("TFGRID_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with('┌'), "{first}");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{:?}: {stderr}",
        out.status
    );
}

/// The port of a URL such as ws://127.0.0.1:9944.
fn port_of(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

/// A second `tfgrid up` in the same directory and on the same ports says which port is taken and
/// why, and leaves the running grid and its data alone.
#[test]
fn a_second_up_names_the_taken_port() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join(".tfgrid-local");
    let grid = LocalGrid::start(0, false, &data);
    std::fs::write(data.join("marker"), "the first grid's").unwrap();
    // Its data is not for git either.
    let ignore = std::fs::read_to_string(data.join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "*"), "{ignore}");
    let rpc = port_of(&grid.rpc);
    // `timeout`: were the clash missed, this `up` would run until stopped.
    let second = Command::new("timeout")
        .arg("120")
        .arg(bin("tfgrid"))
        .args(["up", "--nodes", "0", "--data", ".tfgrid-local"])
        .args(["--rpc-port", rpc, "--hub-port", port_of(&grid.hub)])
        .args(["--explorer-port", port_of(&grid.explorer)])
        .current_dir(work.path())
        .output()
        .unwrap();
    fails(
        second,
        &format!(
            "port {rpc} (--rpc-port) is taken: another `tfgrid up` is probably running; \
             stop it (Ctrl-C), or pick other ports with --rpc-port, --hub-port and --explorer-port"
        ),
    );
    assert!(
        data.join("marker").exists(),
        "the second up cleared the data"
    );
    ok(grid
        .cli(work.path(), "//Bob")
        .args(["chain", "status"])
        .output()
        .unwrap());
}

/// A user's first `apply` in a git project, with its output into a file: the state directory the
/// CLI made is ignored by git, and the plan, progress and results are in the file in that order.
#[test]
fn apply_in_a_git_project() {
    let work = tempfile::tempdir().unwrap();
    let grid = LocalGrid::start(1, false, &work.path().join("grid"));
    let project = work.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let git = |args: &[&str]| {
        ok(Command::new("git")
            .args(args)
            .current_dir(&project)
            .output()
            .unwrap())
    };
    git(&["init", "-q"]);
    std::fs::write(
        project.join("app.toml"),
        "name = \"app\"\n\n[[zdb]]\nname = \"db\"\nsize = \"1 GiB\"\npassword = \"secret\"\n",
    )
    .unwrap();
    // `tfgrid apply app.toml > out 2>&1`: one open file for both.
    let out = std::fs::File::create(project.join("out")).unwrap();
    let applied = grid
        .cli(&project, "//Bob")
        .args(["apply", "app.toml"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .unwrap();
    let text = std::fs::read_to_string(project.join("out")).unwrap();
    assert!(applied.success(), "{text}");
    assert!(project.join(".tfgrid/app.json").exists());
    assert_eq!(
        git(&["status", "--porcelain", "--untracked-files=all"]),
        "?? app.toml\n?? out\n",
        "the state directory is not ignored"
    );
    // In the order a terminal shows them.
    let at = |what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in:\n{text}"))
    };
    assert!(
        at("a new contract on node 1") < at("creating the contract"),
        "{text}"
    );
    assert!(at("creating the contract") < at("app applied in"), "{text}");
    // And `tfgrid apply app.toml > out`: stdout alone holds the whole story, in order.
    std::fs::write(
        project.join("app.toml"),
        std::fs::read_to_string(project.join("app.toml"))
            .unwrap()
            .replace("1 GiB", "2 GiB"),
    )
    .unwrap();
    let updated = grid
        .cli(&project, "//Bob")
        .args(["apply", "app.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&updated.stdout);
    assert!(updated.status.success(), "{stdout}");
    let at = |what: &str| {
        stdout
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in stdout:\n{stdout}"))
    };
    assert!(
        at("update in place") < at("updating contract 1"),
        "{stdout}"
    );
    assert!(at("updating contract 1") < at("app applied in"), "{stdout}");
}
