//! Project automation, run as `cargo xtask <command>`: installs what the tests and benchmarks need on a
//! fresh machine, then runs them. Everything a newcomer needs is reachable from here or the README.

mod bench_overlay;
mod bench_zdb;
mod demo;
mod setup;

use anyhow::{Result, bail};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo            a whole local grid with a demo deployment (tfgrid up --demo); Ctrl-C stops it
  test            install what the tests need, build once, run the whole test suite
  bench <name>    run a benchmark that compares us with our peer: apply, chain, billing, gridproxy, overlay
                  (as root), provision, zdb, zstor";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo::run_demo(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            bail!("unknown or missing command")
        }
    }
}

/// Runs every test of the workspace with nextest: one build shared by all test binaries, after the
/// binaries that the end-to-end tests start.
fn test(extra: &[String]) -> Result<()> {
    setup::ensure_debian_packages(setup::TEST_PACKAGES)?;
    setup::ensure_nextest()?;
    setup::run(Command::new("cargo").args(["build", "--workspace", "--bins"]))?;
    setup::run(
        Command::new("cargo")
            .args(["nextest", "run", "--workspace", "--no-fail-fast"])
            .args(extra),
    )
}

fn bench(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("chain") => setup::run(
            Command::new("cargo")
                .args(["bench", "-p", "tfchain", "--bench", "chain", "--"])
                .args(&args[1..]),
        ),
        Some("billing") => setup::run(
            Command::new("cargo")
                .args(["bench", "-p", "tfchain", "--bench", "billing", "--"])
                .args(&args[1..]),
        ),
        Some(name @ ("provision" | "apply")) => {
            // These start the real programs: build them in release first.
            setup::run(Command::new("cargo").args(["build", "--release", "--bins"]))?;
            setup::run(
                Command::new("cargo")
                    .args(["bench", "-p", "testkit", "--bench", name, "--"])
                    .args(&args[1..]),
            )
        }
        Some("gridproxy") => setup::run(
            Command::new("cargo")
                .args(["bench", "-p", "gridproxy", "--bench", "gridproxy", "--"])
                .args(&args[1..]),
        ),
        Some("overlay") => bench_overlay::run(&args[1..]),
        Some("zdb") => bench_zdb::run(&args[1..]),
        Some("zstor") => {
            setup::run(Command::new("cargo").args([
                "build",
                "--release",
                "-p",
                "zdb",
                "--bin",
                "zdb",
            ]))?;
            setup::run(
                Command::new("cargo")
                    .args(["bench", "-p", "zstor", "--bench", "zstor", "--"])
                    .args(&args[1..]),
            )
        }
        _ => {
            eprintln!("{USAGE}");
            bail!("unknown or missing benchmark name")
        }
    }
}
