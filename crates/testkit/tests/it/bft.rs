//! The ledger under Tendermint BFT, end to end: four validators, each a `tfchain` process on a host
//! of its own on a LAN of network namespaces. Blocks keep coming with one validator killed, with one
//! cut off the LAN and joined again, through a rolling restart of all four, and after one was down
//! for 100 blocks it catches up; every validator holds the same block and state root at every
//! height. With two of four down nothing is finalized, and nothing is lost once they return.

use std::time::Duration;

use testkit::{Cluster, wait_for};
use tfchain_client::Client;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::Call;
use tfchain_runtime::balances::Call as Balances;
use tfgrid_types::{Keypair, UNITS_PER_TFT};

const ALL: [usize; 4] = [0, 1, 2, 3];
/// Generous: a deadlock detector, not a timing claim.
const WAIT: Duration = Duration::from_secs(120);

/// Blocks a third as long as the dev spec's, so that 100 of them pass quickly.
fn fast(spec: &mut serde_json::Value) {
    spec["block_time_ms"] = 300.into();
}

/// Transfers `amount` from `from` to Ferdie through node `i` and waits until it is final there.
async fn transfer(cluster: &Cluster, i: usize, from: &Keypair, amount: u128) -> u64 {
    let client = cluster.client(i).await;
    let ferdie = Keypair::from_uri("//Ferdie").unwrap().account();
    let call = Call::Balances(Balances::Transfer {
        dest: ferdie,
        amount,
    });
    let included = client
        .execute(from, call)
        .await
        .unwrap_or_else(|e| panic!("a transfer through node {i}: {e}\n{}", cluster.logs()));
    included.height
}

async fn free(client: &Client, who: &str) -> u128 {
    let account = Keypair::from_uri(who).unwrap().account();
    client.rpc().account(account).await.unwrap().free
}

#[tokio::test(flavor = "multi_thread")]
async fn four_validators_finalize_through_a_kill_a_partition_a_rolling_restart_and_a_long_absence()
{
    let mut cluster = Cluster::start(4, 0, fast).await;
    cluster.wait_height(&ALL, 3, WAIT).await;

    // A transfer through each validator is final, whoever proposes: the relay takes it to all.
    let bob = Keypair::from_uri("//Bob").unwrap();
    for i in ALL {
        transfer(&cluster, i, &bob, UNITS_PER_TFT).await;
    }

    // One validator killed: the other three keep finalizing.
    cluster.kill(3);
    cluster.wait_blocks(&[0, 1, 2], 5, WAIT).await;
    cluster.restart(3).await;

    // One cut off the LAN: the rest go on; joined again, it catches up.
    cluster.set_linked(2, false);
    cluster.wait_blocks(&[0, 1, 3], 5, WAIT).await;
    cluster.set_linked(2, true);
    let top = cluster.wait_blocks(&[0, 1, 3], 2, WAIT).await;
    cluster.wait_height(&[2], top, WAIT).await;

    // A rolling restart of all four, one at a time.
    for i in ALL {
        cluster.kill(i);
        cluster.restart(i).await;
        cluster.wait_blocks(&ALL, 2, WAIT).await;
    }

    // One validator down for 100 blocks catches up once it is back.
    cluster.kill(1);
    let top = cluster.wait_blocks(&[0, 2, 3], 100, WAIT * 2).await;
    cluster.restart(1).await;
    cluster.wait_height(&[1], top, WAIT).await;
    transfer(&cluster, 1, &bob, UNITS_PER_TFT).await;

    // Every validator holds the same block and state root at every height.
    let top = cluster.wait_blocks(&ALL, 1, WAIT).await;
    cluster.assert_agree(&ALL, top).await;
    // And the same balances: five transfers of 1 TFT reached Ferdie.
    let mut balances = vec![];
    for i in ALL {
        balances.push(free(&cluster.client(i).await, "//Ferdie").await);
    }
    assert!(balances.windows(2).all(|w| w[0] == w[1]), "{balances:?}");
    // Each block from the first one on carries the precommits of at least three validators.
    let commit = cluster.commit(0, top).await;
    assert!(commit.signatures.len() >= 3, "{commit:?}");
    assert_eq!(commit.height, top);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_two_of_four_down_nothing_is_final_and_nothing_is_lost() {
    let mut cluster = Cluster::start(4, 0, fast).await;
    cluster.wait_height(&ALL, 2, WAIT).await;
    cluster.kill(2);
    cluster.kill(3);
    // Let what was in flight settle, then watch: two of four are no quorum.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stalled = cluster.height(0).await.unwrap();
    let client = cluster.client(0).await;
    let charlie = Keypair::from_uri("//Charlie").unwrap();
    let before = free(&client, "//Ferdie").await;
    let call = Call::Balances(Balances::Transfer {
        dest: Keypair::from_uri("//Ferdie").unwrap().account(),
        amount: 7 * UNITS_PER_TFT,
    });
    let hash = client.submit(&charlie, call).await.unwrap();
    // Many block times pass without a block.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for i in [0, 1] {
        assert_eq!(
            cluster.height(i).await.unwrap(),
            stalled,
            "node {i} finalized a block without a quorum\n{}",
            cluster.logs()
        );
    }
    // The two come back: blocks resume, and the transfer taken meanwhile is in one.
    cluster.restart(2).await;
    cluster.restart(3).await;
    cluster.wait_height(&ALL, stalled + 2, WAIT).await;
    let included = client.wait(hash, WAIT).await.unwrap();
    assert!(included.height > stalled);
    wait_for("the transfer on every node", WAIT, || async {
        for i in ALL {
            let balance = free(&cluster.client(i).await, "//Ferdie").await;
            if balance != before + 7 * UNITS_PER_TFT {
                return None;
            }
        }
        Some(())
    })
    .await;
    let top = cluster.wait_blocks(&ALL, 1, WAIT).await;
    cluster.assert_agree(&ALL, top).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validator_signing_two_proposals_at_a_height_is_recorded_and_forks_nothing() {
    let mut cluster = Cluster::new(4, 0, fast);
    // Alice signs a second, conflicting proposal whenever she proposes at heights 1 to 40.
    let heights: Vec<String> = (1..=40).map(|h: u64| h.to_string()).collect();
    cluster.nodes[0]
        .role
        .extend(["--equivocate-at".into(), heights.join(",")]);
    cluster.start_all().await;
    cluster.wait_height(&ALL, 40, WAIT).await;

    let alice = Keypair::from_uri("//Alice").unwrap().account();
    let mut caught = vec![];
    for i in [1, 2, 3] {
        let client = cluster.client(i).await;
        for height in 1..=40 {
            let commit = client
                .rpc()
                .commit(height)
                .await
                .unwrap()
                .expect("a commit");
            if commit.equivocators.contains(&alice) {
                caught.push((i, height));
            }
        }
    }
    assert!(
        !caught.is_empty(),
        "no honest validator recorded Alice's equivocation\n{}",
        cluster.logs()
    );
    // No fork: one block and state root per height on every validator.
    cluster.assert_agree(&ALL, 40).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_node_follows_and_the_council_hands_a_validator_seat_to_another() {
    // Alice to Dave validate; Eve runs with a key but holds no seat; the sixth node is a full node.
    let mut cluster = Cluster::new(4, 2, fast);
    cluster.nodes[4]
        .role
        .extend(["--validator".into(), "//Eve".into()]);
    cluster.start_all().await;
    let (eve_node, full_node) = (4, 5);
    cluster.wait_height(&[full_node], 3, WAIT).await;

    // The full node serves RPC, and what it takes reaches the validators.
    let bob = Keypair::from_uri("//Bob").unwrap();
    transfer(&cluster, full_node, &bob, UNITS_PER_TFT).await;

    // The council moves Alice's seat to Eve.
    let keys = ["//Bob", "//Charlie", "//Dave", "//Eve"];
    let seats: Vec<_> = keys
        .iter()
        .map(|k| Keypair::from_uri(k).unwrap().account())
        .collect();
    let set = Call::from(tfchain_runtime::validators::Call::SetValidators {
        validators: seats.clone(),
    });
    let motion = tfchain_runtime::council::Call::propose(&set, 1, "Eve takes Alice's seat");
    let alice = Keypair::from_uri("//Alice").unwrap();
    let chosen = cluster
        .client(0)
        .await
        .execute(&alice, motion)
        .await
        .unwrap();
    let at_height = chosen.height + tfchain_runtime::limits::VALIDATOR_SET_DELAY;
    cluster.wait_height(&ALL, at_height + 1, WAIT).await;

    // Alice and Bob both gone: with Eve's vote, Charlie, Dave and Eve are three of four seats.
    cluster.kill(0);
    cluster.kill(1);
    let live = [2, 3, eve_node, full_node];
    let top = cluster.wait_blocks(&live, 5, WAIT).await;
    cluster.assert_agree(&live, top).await;
    let eve = Keypair::from_uri("//Eve").unwrap().account();
    let commit = cluster.commit(full_node, top).await;
    assert!(
        commit.signatures.iter().any(|(who, _)| *who == eve),
        "Eve's precommit is not in the commit: {commit:?}"
    );
    let info = cluster
        .client(full_node)
        .await
        .rpc()
        .validators()
        .await
        .unwrap();
    assert_eq!(info.current, seats);
}
