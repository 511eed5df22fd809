//! Losing backends and corrupting shards: reads survive the loss of `parity` backends, `check`
//! names the damaged shards, `rebuild` regenerates them (on the same backend, or moved to a new
//! one), and the file then survives losing others.

use crate::{Cluster, DATA_NS, hash_file, write_noise};
use std::io::{Read, Seek, SeekFrom, Write};
use zstor::Error;

const ALL: [usize; 6] = [0, 1, 2, 3, 4, 5];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_parity_backends_still_retrieves_and_one_more_is_a_clear_error() {
    let mut cluster = Cluster::start(6, 3).await;
    let zstor = cluster.zstor(&ALL);
    let input = cluster.path("in");
    write_noise(&input, 9 << 20, 1);
    zstor.store_file("f", &input).await.unwrap();

    cluster.data[0].kill();
    cluster.data[4].kill();
    let output = cluster.path("out");
    zstor.retrieve_file("f", &output).await.unwrap();
    assert_eq!(hash_file(&output), hash_file(&input));

    let report = zstor.check("f").await.unwrap();
    assert!(!report.is_healthy() && report.is_recoverable(), "{report}");
    let down: Vec<usize> = report
        .shards
        .iter()
        .filter(|s| s.unreachable.is_some())
        .map(|s| cluster.data_index(&s.backend.address))
        .collect();
    assert_eq!(down.len(), 2, "{report}");
    assert!(down.contains(&0) && down.contains(&4), "{report}");
    assert!(
        report
            .to_string()
            .contains("status: degraded: recoverable, run rebuild")
    );

    cluster.data[2].kill();
    let err = zstor.retrieve_file("f", &output).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooFewBackends {
                needed: 4,
                reachable: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("too few backends reachable to retrieve \"f\": 4 needed, 3 reachable ("),
        "{err}"
    );
    // Nothing half-written is left behind.
    assert!(!output.exists() || hash_file(&output) == hash_file(&input));

    // Storing needs every shard's backend: no degraded writes.
    let err = zstor.store_file("g", &input).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("too few backends reachable to store: 6 needed, 3 reachable"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_shards_on_disk_are_detected_and_rebuilt_in_place() {
    let cluster = Cluster::start(6, 3).await;
    let zstor = cluster.zstor(&ALL);
    let input = cluster.path("in");
    write_noise(&input, 10 << 20, 2);
    let meta = zstor.store_file("f", &input).await.unwrap().meta().clone();

    // Flip one byte every 64 KiB through the data files of two backends.
    for victim in [1, 3] {
        for path in cluster.data[victim].data_files(DATA_NS) {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let len = file.metadata().unwrap().len();
            let mut offset = 4096;
            while offset < len {
                let mut byte = [0];
                file.seek(SeekFrom::Start(offset)).unwrap();
                file.read_exact(&mut byte).unwrap();
                file.seek(SeekFrom::Start(offset)).unwrap();
                file.write_all(&[byte[0] ^ 0x5a]).unwrap();
                offset += 64 << 10;
            }
        }
    }

    let report = zstor.check("f").await.unwrap();
    assert!(!report.is_healthy() && report.is_recoverable(), "{report}");
    for shard in &report.shards {
        let victim = [1, 3].contains(&cluster.data_index(&shard.backend.address));
        assert_eq!(!shard.is_healthy(), victim, "{report}");
        if victim {
            assert!(shard.unreachable.is_none());
            assert_eq!(
                shard.intact + shard.corrupt + shard.unreadable + shard.missing,
                meta.chunk_count()
            );
            assert!(shard.corrupt + shard.unreadable > 0, "{report}");
        }
    }

    let output = cluster.path("out");
    zstor.retrieve_file("f", &output).await.unwrap();
    assert_eq!(hash_file(&output), hash_file(&input));

    let rebuilt = zstor.rebuild("f").await.unwrap();
    assert!(
        rebuilt.moved.is_empty(),
        "reachable backends keep their shards"
    );
    assert!(rebuilt.pieces_written > 0);
    let report = zstor.check("f").await.unwrap();
    assert!(report.is_healthy(), "{report}");
    assert!(zstor.metadata("f").await.unwrap().generation > meta.generation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_moves_shards_to_a_new_backend_then_survives_losing_others() {
    let mut cluster = Cluster::start(8, 3).await;
    let input = cluster.path("in");
    write_noise(&input, 6 << 20, 3);
    cluster.zstor(&ALL).store_file("f", &input).await.unwrap();

    // Backend 2 dies; a new backend (6) joins the config.
    cluster.data[2].kill();
    let zstor = cluster.zstor(&[0, 1, 2, 3, 4, 5, 6]);
    let rebuilt = zstor.rebuild("f").await.unwrap();
    assert_eq!(rebuilt.moved.len(), 1);
    let (_, from, to) = &rebuilt.moved[0];
    assert_eq!(from.address, cluster.data[2].address());
    assert_eq!(to.address, cluster.data[6].address());
    assert_eq!(
        rebuilt.pieces_written, 2,
        "one piece per chunk of the moved shard"
    );
    let report = zstor.check("f").await.unwrap();
    assert!(report.is_healthy(), "{report}");

    // Now two of the original backends go too: the rebuilt shard makes up for them.
    cluster.data[0].kill();
    cluster.data[5].kill();
    let output = cluster.path("out");
    zstor.retrieve_file("f", &output).await.unwrap();
    assert_eq!(hash_file(&output), hash_file(&input));

    // A rebuild with nowhere to go says so.
    let err = zstor.rebuild("f").await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("too few backends reachable to rebuild \"f\": 2 needed, 0 reachable"),
        "{err}"
    );
}
