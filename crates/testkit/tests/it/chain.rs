//! Crash safety: the chain is killed with SIGKILL while clients keep submitting transfers, then
//! restarted on the same data. Every transaction a finalized block held before the kill is still
//! there, in the same block, and the chain resumes from its last block.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use testkit::{ChainProcess, wait_for};
use tfchain_client::api::{BlockId, TfchainApiClient, TxStatus};
use tfchain_runtime::{Call, balances};
use tfgrid_types::{Hash32, Keypair};

/// Submits transfers from `who` until `stop`, waiting for nothing; stops at the first error (the
/// chain died under it).
async fn load(url: String, who: &'static str, stop: Arc<AtomicBool>) {
    let Ok(client) = tfchain_client::Client::connect(&url).await else {
        return;
    };
    let key = Keypair::from_uri(who).unwrap();
    let dest = Keypair::from_uri("//Dave").unwrap().account();
    while !stop.load(Ordering::Relaxed) {
        let call = Call::Balances(balances::Call::Transfer {
            dest,
            amount: 1_000,
        });
        if client.submit(&key, call).await.is_err() {
            return;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn finalized_transactions_survive_sigkill() {
    let mut chain = ChainProcess::start().await;
    for round in 0..3 {
        let client = chain.client().await;
        let mut heads = client.rpc().subscribe_finalized_heads().await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let senders = ["//Alice", "//Bob", "//Charlie", "//Eve"];
        let tasks: Vec<_> = senders
            .iter()
            .map(|who| tokio::spawn(load(chain.rpc_url(), who, stop.clone())))
            .collect();

        // Record what finalized blocks hold, until a few blocks with transfers went by.
        let mut finalized: BTreeMap<Hash32, (u64, Hash32)> = BTreeMap::new();
        let mut last_head = None;
        let mut busy_blocks = 0;
        while busy_blocks < 3 {
            let header = tokio::time::timeout(Duration::from_secs(10), heads.next())
                .await
                .expect("a block within 10 s")
                .unwrap()
                .unwrap();
            let block = client
                .rpc()
                .block(BlockId::Height(header.height))
                .await
                .unwrap()
                .unwrap();
            if !block.txs.is_empty() {
                busy_blocks += 1;
            }
            for tx in &block.txs {
                finalized.insert(tx.hash, (header.height, block.hash));
            }
            last_head = Some((header.height, block.hash));
        }
        // Kill while the clients are still submitting.
        chain.kill9();
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.unwrap();
        }
        assert!(
            !finalized.is_empty(),
            "round {round}: no transfer was finalized"
        );

        chain.restart().await;
        let client = chain.client().await;
        let (last_height, last_hash) = last_head.unwrap();
        let block = client
            .rpc()
            .block(BlockId::Height(last_height))
            .await
            .unwrap();
        assert_eq!(
            block.map(|b| b.hash),
            Some(last_hash),
            "round {round}: block {last_height} changed"
        );
        for (hash, (height, block_hash)) in &finalized {
            match client.rpc().tx_status(*hash).await.unwrap() {
                TxStatus::Included {
                    height: h,
                    block_hash: b,
                    error,
                    ..
                } => {
                    assert_eq!(
                        (h, b),
                        (*height, *block_hash),
                        "round {round}: {hash} moved"
                    );
                    assert_eq!(error, None);
                }
                other => panic!(
                    "round {round}: finalized {hash} is {other:?} after restart\n{}",
                    chain.log()
                ),
            }
        }
        eprintln!(
            "round {round}: {} finalized transactions survived SIGKILL",
            finalized.len()
        );
        // The chain resumes and accepts new transactions with the right nonces.
        let key = Keypair::from_uri("//Ferdie").unwrap();
        let dave = Keypair::from_uri("//Dave").unwrap().account();
        let before = client.rpc().account(dave).await.unwrap().free;
        let to_dave = Call::Balances(balances::Call::Transfer {
            dest: dave,
            amount: 10_000,
        });
        client.execute(&key, to_dave).await.unwrap();
        assert_eq!(
            client.rpc().account(dave).await.unwrap().free,
            before + 10_000
        );
        wait_for(
            "a block after the restart",
            Duration::from_secs(10),
            || async {
                let status = client.rpc().status().await.ok()?;
                (status.height > last_height).then_some(())
            },
        )
        .await;
    }
}
