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
    let commit = cluster
        .client(0)
        .await
        .rpc()
        .commit(top)
        .await
        .unwrap()
        .expect("a commit");
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
