//! The RPC as clients see it: rejection reasons for bad transactions, dry runs, event subscriptions,
//! blocks by height and hash, paging, and batch submissions.

use std::time::Duration;

use testkit::ChainProcess;
use tfchain_client::RpcClientError;
use tfchain_client::api::{BlockId, Page, TfchainApiClient, TxStatus, codes};
use tfchain_runtime::{Call, Event, Transaction, balances, kvstore};
use tfgrid_types::Keypair;

fn hex_tx(tx: &tfchain_runtime::SignedTransaction) -> String {
    format!("0x{}", hex::encode(tx.encode()))
}

/// The RPC error code and message of a refused request.
fn refusal<T: std::fmt::Debug>(result: Result<T, RpcClientError>) -> (i32, String) {
    match result {
        Err(RpcClientError::Call(obj)) => (obj.code(), obj.message().to_owned()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn alice_and_bob() -> (Keypair, Keypair) {
    (
        Keypair::from_uri("//Alice").unwrap(),
        Keypair::from_uri("//Bob").unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_rejects_with_reasons_and_streams_events() {
    let chain = ChainProcess::start().await;
    let client = chain.client().await;
    let rpc = client.rpc();
    let genesis = client.genesis_hash();
    let (alice, bob) = alice_and_bob();
    let transfer = |amount| {
        Call::Balances(balances::Call::Transfer {
            dest: bob.account(),
            amount,
        })
    };

    // Malformed bytes, a bad signature, another chain's signature.
    let (code, msg) = refusal(rpc.submit("0x1234".into()).await);
    assert_eq!(code, codes::MALFORMED, "{msg}");
    let mut signed = Transaction {
        signer: alice.account(),
        nonce: 0,
        call: transfer(1_000),
    }
    .sign(&alice, &genesis);
    signed.tx.nonce = 1;
    let (code, msg) = refusal(rpc.submit(hex_tx(&signed)).await);
    assert_eq!(code, codes::TX_INVALID);
    assert!(msg.contains("bad signature"), "{msg}");
    let foreign = Transaction {
        signer: alice.account(),
        nonce: 0,
        call: transfer(1_000),
    }
    .sign(&alice, &tfgrid_types::Hash32::of("other", b"chain"));
    assert!(
        refusal(rpc.submit(hex_tx(&foreign)).await)
            .1
            .contains("bad signature")
    );

    // Nonces: a duplicate, one too far ahead, then one already used.
    let mut events = rpc.subscribe_events().await.unwrap();
    let first = Transaction {
        signer: alice.account(),
        nonce: 0,
        call: transfer(1_000),
    }
    .sign(&alice, &genesis);
    let hash = rpc.submit(hex_tx(&first)).await.unwrap();
    let (code, _) = refusal(rpc.submit(hex_tx(&first)).await);
    assert_eq!(code, codes::ALREADY_KNOWN);
    let far = Transaction {
        signer: alice.account(),
        nonce: 5_000,
        call: transfer(1),
    }
    .sign(&alice, &genesis);
    assert!(
        refusal(rpc.submit(hex_tx(&far)).await)
            .1
            .contains("too far ahead")
    );
    let included = client.wait(hash, Duration::from_secs(20)).await.unwrap();
    let stale = Transaction {
        signer: alice.account(),
        nonce: 0,
        call: transfer(7),
    }
    .sign(&alice, &genesis);
    let (_, msg) = refusal(rpc.submit(hex_tx(&stale)).await);
    assert!(msg.contains("next nonce is 1"), "{msg}");

    // The events subscription delivers the transfer in its block.
    let seen = loop {
        let block = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if block.height == included.height {
            break block;
        }
    };
    assert!(seen.events.iter().any(|e| e.event
        == Event::Transfer {
            from: alice.account(),
            to: bob.account(),
            amount: 1_000
        }));

    // A dry run reports the failure without costing anything.
    let before = rpc.account(alice.account()).await.unwrap();
    let bad = Transaction {
        signer: alice.account(),
        nonce: before.next_nonce,
        call: transfer(u128::MAX),
    }
    .sign(&alice, &genesis);
    let dry = rpc.dry_run(hex_tx(&bad)).await.unwrap();
    assert!(dry.error.unwrap().contains("insufficient funds"));
    assert_eq!(rpc.account(alice.account()).await.unwrap(), before);

    // A call that fails on chain pays its fee and reports why.
    let delete = Call::Kv(kvstore::Call::Delete {
        key: b"missing".to_vec(),
    });
    let hash = client.submit(&alice, delete).await.unwrap();
    let err = client
        .wait(hash, Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no value is stored"), "{err}");
    match rpc.tx_status(hash).await.unwrap() {
        TxStatus::Included { fee, error, .. } => assert!(fee > 0 && error.is_some()),
        other => panic!("{other:?}"),
    }

    // Blocks by height and by hash agree; pages of policies.
    let by_height = rpc
        .block(BlockId::Height(included.height))
        .await
        .unwrap()
        .unwrap();
    let by_hash = rpc
        .block(BlockId::Hash(included.block_hash))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_height, by_hash);
    assert!(by_height.txs.iter().any(|t| t.hash == included.hash));
    let policies = rpc
        .farming_policies(Page {
            from: Some(2),
            limit: Some(10),
        })
        .await
        .unwrap();
    assert_eq!(policies.iter().map(|p| p.id).collect::<Vec<_>>(), vec![2]);
    assert!(
        rpc.block(BlockId::Height(u64::MAX))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_submission_gives_each_transaction_its_own_verdict() {
    use tfchain_client::api::Submitted;
    let chain = ChainProcess::start().await;
    let client = chain.client().await;
    let rpc = client.rpc();
    let genesis = client.genesis_hash();
    let (alice, bob) = alice_and_bob();
    let nonce = rpc.account(alice.account()).await.unwrap().next_nonce;
    let transfer = |nonce| {
        Transaction {
            signer: alice.account(),
            nonce,
            call: Call::Balances(balances::Call::Transfer {
                dest: bob.account(),
                amount: 1_000,
            }),
        }
        .sign(&alice, &genesis)
    };
    let mut forged = transfer(nonce + 2);
    forged.tx.nonce = nonce + 3;
    let batch = vec![
        hex_tx(&transfer(nonce)),
        "0x1234".to_string(),
        hex_tx(&transfer(nonce + 1)),
        hex_tx(&forged),
        hex_tx(&transfer(nonce)),
    ];
    let verdicts = rpc.submit_batch(batch).await.unwrap();
    assert_eq!(verdicts.len(), 5, "{verdicts:?}");
    let Submitted::Accepted(first) = verdicts[0] else {
        panic!("{verdicts:?}")
    };
    assert_eq!(first, transfer(nonce).hash());
    assert!(matches!(&verdicts[1], Submitted::Refused { code, .. } if *code == codes::MALFORMED));
    assert!(
        matches!(verdicts[2], Submitted::Accepted(_)),
        "{verdicts:?}"
    );
    assert!(
        matches!(&verdicts[3], Submitted::Refused { code, message } if *code == codes::TX_INVALID && message.contains("bad signature")),
        "{verdicts:?}"
    );
    assert!(
        matches!(&verdicts[4], Submitted::Refused { code, .. } if *code == codes::ALREADY_KNOWN),
        "{verdicts:?}"
    );
    // The accepted ones are included, in nonce order.
    let second = transfer(nonce + 1).hash();
    testkit::wait_for(
        "both transfers in a block",
        Duration::from_secs(30),
        || async {
            matches!(
                rpc.tx_status(second).await.unwrap(),
                TxStatus::Included { .. }
            )
            .then_some(())
        },
    )
    .await;
    assert!(matches!(
        rpc.tx_status(first).await.unwrap(),
        TxStatus::Included { .. }
    ));
    // A batch over the bound is refused whole, saying the bound.
    let (code, msg) = refusal(rpc.submit_batch(vec!["0x00".into(); 4_097]).await);
    assert_eq!(code, codes::MALFORMED);
    assert!(msg.contains("at most 4096"), "{msg}");
}
