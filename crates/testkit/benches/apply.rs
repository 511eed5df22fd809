//! How long `tfgrid apply examples/demo.toml` takes, from the command to every workload reported
//! `ok` (a 0-db namespace and a gateway name on node 1, a web container on node 2, and their
//! private network over both, with its rendezvous through the chain), on a local grid started with
//! `tfgrid up` (release binaries, 1 s blocks, 3 nodes as it runs by default). Each round waits a random part of a block
//! time (a user's command falls anywhere between two blocks; right after `destroy` it would always
//! fall just after one, the worst case), applies the demo as a new contract, and destroys it.
//! Prints every round, the median, and the ratio to the target of 2 s. Run with
//! `cargo xtask bench apply [rounds]` (as root: containers).

use std::time::{Duration, Instant};

use testkit::LocalGrid;

const TARGET: Duration = Duration::from_secs(2);

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(9);
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut grid = LocalGrid::start(3, false, data.path());
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo.toml");
    let mut times = Vec::new();
    for round in 1..=rounds {
        std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 1000));
        let started = Instant::now();
        let out = grid
            .cli(work.path(), "//Bob")
            .args(["apply", demo])
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "apply failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "round {round}: apply {:>6.0} ms",
            took.as_secs_f64() * 1000.0
        );
        times.push(took);
        let out = grid
            .cli(work.path(), "//Bob")
            .args(["destroy", demo])
            .output()
            .unwrap();
        assert!(out.status.success(), "destroy failed");
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "\ntfgrid apply of the demo, command to all workloads ok, {rounds} rounds: median {:.0} ms \
         (min {:.0}, max {:.0}); median / target ({} s) = {:.2}",
        median.as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
        TARGET.as_secs(),
        median.as_secs_f64() / TARGET.as_secs_f64()
    );
    assert!(grid.stop(), "tfgrid up did not exit cleanly");
}
