//! `cargo xtask demo`: installs what nodes need (as the tests do), builds the binaries, and runs
//! `tfgrid up --demo`: a whole local grid (dev chain, image hub, farm, two nodes) with a 0-db and a
//! web container deployed on it. Ctrl-C stops everything.

use std::process::Command;

use anyhow::Result;

use crate::setup::{self, run};

pub fn run_demo(args: &[String]) -> Result<()> {
    setup::ensure_debian_packages(setup::TEST_PACKAGES)?;
    run(Command::new("cargo").args(["build", "--bins"]))?;
    run(Command::new("target/debug/tfgrid")
        .args(["up", "--demo"])
        .args(args))
}
