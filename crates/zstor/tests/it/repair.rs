//! The repair daemon as a process: when a backend holding a shard stays down, the files on it are
//! rebuilt onto a spare backend without anyone asking; when a backend leaves the config, its shards
//! move too.

use crate::{Cluster, hash_file, wait_for, write_noise};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_rebuilds_files_of_a_backend_that_stays_down() {
    let mut cluster = Cluster::start(8, 3).await;
    let all = [0, 1, 2, 3, 4, 5, 6];
    // Backend 7 is a spare, out of the config until later.
    let zstor = cluster.zstor(&all);
    let input = cluster.path("in");
    write_noise(&input, 5 << 20, 4);
    let meta = zstor.store_file("f", &input).await.unwrap().meta().clone();

    let config = cluster.write_config(&all, "[repair]\ninterval_secs = 1\nbackend_down_secs = 1");
    let daemon = Command::new(env!("CARGO_BIN_EXE_zstor"))
        .arg("--config")
        .arg(&config)
        .arg("daemon")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut daemon = Reap(daemon);

    // Kill a backend that holds a shard of the file.
    let victim = cluster.data_index(&meta.shards[1].backend.address);
    cluster.data[victim].kill();
    let victim_address = cluster.data[victim].address();

    let report = wait_for(
        "the daemon to move the lost shard",
        Duration::from_secs(60),
        || {
            let zstor = zstor.clone();
            let victim_address = victim_address.clone();
            async move {
                let report = zstor.check("f").await.ok()?;
                let moved = report
                    .shards
                    .iter()
                    .all(|s| s.backend.address != victim_address);
                (moved && report.is_healthy()).then_some(report)
            }
        },
    )
    .await;
    assert_eq!(report.shards.len(), 6);

    // Decommissioning: a healthy backend leaves the config and a new one (7) joins; the daemon
    // reads the config again at its next sweep and moves the shard off the departed backend.
    let leaving = cluster.data_index(&report.shards[0].backend.address);
    let remaining: Vec<usize> = (0..8).filter(|&i| i != leaving && i != victim).collect();
    cluster.write_config(
        &remaining,
        "[repair]\ninterval_secs = 1\nbackend_down_secs = 1",
    );
    let zstor = cluster.zstor(&remaining);
    let leaving_address = cluster.data[leaving].address();
    wait_for(
        "the daemon to move the decommissioned shard",
        Duration::from_secs(60),
        || {
            let zstor = zstor.clone();
            let leaving_address = leaving_address.clone();
            async move {
                let report = zstor.check("f").await.ok()?;
                let moved = report
                    .shards
                    .iter()
                    .all(|s| s.backend.address != leaving_address);
                (moved && report.is_healthy()).then_some(())
            }
        },
    )
    .await;

    // SIGTERM stops it cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(daemon.0.wait().unwrap().success());

    let output = cluster.path("out");
    zstor.retrieve_file("f", &output).await.unwrap();
    assert_eq!(hash_file(&output), hash_file(&input));
}
