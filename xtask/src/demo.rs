//! `cargo xtask demo`: installs what nodes need (as the tests do), builds the binaries, and runs
//! `tfgrid up --demo`: a whole local grid (dev chain, image hub, farms, three nodes, one hidden)
//! with a web container behind a gateway name and a 0-db deployed over two of them. Ctrl-C stops
//! everything.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Context, Result};

use crate::setup::{self, run};

pub fn run_demo(args: &[String]) -> Result<()> {
    setup::ensure_debian_packages(setup::TEST_PACKAGES)?;
    run(Command::new("cargo").args(["build", "--bins"]))?;
    // Become `tfgrid up` rather than wait for it: Ctrl-C then reaches only it, and the shell gets
    // its prompt back once up has cleaned up, not before.
    let error = Command::new("target/debug/tfgrid")
        .args(["up", "--demo"])
        .args(args)
        .exec();
    Err(error).context("running target/debug/tfgrid up --demo")
}
