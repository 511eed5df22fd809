//! The validator set through a real node's RPC (`validators_info`): the genesis set, a council
//! motion's change scheduled two blocks on and refused when empty, and the new set current from
//! exactly its height. Every wait is on a condition with a generous deadline.

use std::time::Duration;

use tfchain::node::{Node, Role};
use tfchain::spec::ChainSpec;
use tfchain_client::Client;
use tfchain_client::api::{BlockId, TfchainApiClient};
use tfchain_runtime::limits::VALIDATOR_SET_DELAY;
use tfchain_runtime::types::{ScheduledValidators, ValidatorSet};
use tfchain_runtime::{Call, Event, EventRecord, council, validators};
use tfgrid_types::{AccountId, Keypair};

const DEADLINE: Duration = Duration::from_secs(60);

fn motion(validators: Vec<AccountId>) -> Call {
    let call = Call::from(validators::Call::SetValidators { validators });
    council::Call::propose(&call, 1, "validators")
}

fn has(events: &[EventRecord], event: &Event) -> bool {
    events.iter().any(|record| &record.event == event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_council_changes_the_validator_set_two_blocks_on() {
    let dir = tempfile::tempdir().unwrap();
    let [alice, bob] = ["//Alice", "//Bob"].map(|uri| Keypair::from_uri(uri).unwrap());
    let node = Node::start(
        ChainSpec::dev(),
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        Role::Solo(alice.clone()),
    )
    .await
    .unwrap();
    let client = Client::connect(&format!("ws://{}", node.rpc_addr))
        .await
        .unwrap();
    let rpc = client.rpc();
    assert_eq!(
        rpc.validators().await.unwrap(),
        ValidatorSet {
            current: vec![alice.account()],
            scheduled: None,
        }
    );

    // An empty set: the motion runs and its call is refused.
    let refused = client.execute(&alice, motion(vec![])).await.unwrap();
    assert!(
        refused.events.iter().any(|r| matches!(
            &r.event,
            Event::Executed { error: Some(e), .. } if e.contains("cannot be empty")
        )),
        "{:?}",
        refused.events
    );

    let new = vec![alice.account(), bob.account()];
    let chosen = client.execute(&alice, motion(new.clone())).await.unwrap();
    let at_height = chosen.height + VALIDATOR_SET_DELAY;
    let scheduled = Event::ValidatorSetScheduled {
        at_height,
        validators: new.clone(),
    };
    assert!(has(&chosen.events, &scheduled), "{:?}", chosen.events);
    // Read before the head is known: the state read is at that head or older.
    let info = rpc.validators().await.unwrap();
    let head = rpc.status().await.unwrap().height;
    if head < at_height {
        assert_eq!(
            info,
            ValidatorSet {
                current: vec![alice.account()],
                scheduled: Some(ScheduledValidators {
                    at_height,
                    validators: new.clone(),
                }),
            }
        );
    }

    let mut heads = rpc.subscribe_finalized_heads().await.unwrap();
    tokio::time::timeout(DEADLINE, async {
        while rpc.status().await.unwrap().height < at_height {
            heads
                .next()
                .await
                .expect("the subscription is open")
                .unwrap();
        }
    })
    .await
    .expect("the chain reaches the set's height");
    assert_eq!(
        rpc.validators().await.unwrap(),
        ValidatorSet {
            current: new.clone(),
            scheduled: None,
        }
    );
    let changed = Event::ValidatorSetChanged { validators: new };
    for height in chosen.height..=at_height {
        let block = rpc.block(BlockId::Height(height)).await.unwrap().unwrap();
        assert_eq!(
            has(&block.events, &changed),
            height == at_height,
            "block {height}"
        );
    }
    tokio::time::timeout(DEADLINE, node.run_until(async {}))
        .await
        .expect("the node stops")
        .unwrap();
}
