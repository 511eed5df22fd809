//! `cargo xtask demo`: builds the binaries, starts a dev chain on 127.0.0.1:9944 with its data in
//! `.tfgrid-local/`, walks through a farmer's first steps with the `tfgrid` CLI (each command shown
//! with its output), and leaves the chain running for you until Ctrl-C (`--no-wait` stops at once).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::setup::run;

const RPC: &str = "ws://127.0.0.1:9944";

/// The demo's steps: arguments to `tfgrid`, and whether the step is meant to fail.
const STEPS: &[(&[&str], bool)] = &[
    (&["chain", "status"], false),
    (&["keys", "new", "farmer"], false),
    (&["--key", "//Alice", "transfer", "farmer", "1000"], false),
    (&["--key", "farmer", "balance"], false),
    (&["--key", "farmer", "twin", "create"], false),
    (
        &[
            "--key",
            "farmer",
            "farm",
            "create",
            "demo-farm",
            "--ip",
            "185.206.122.33/24=185.206.122.1",
        ],
        false,
    ),
    (
        &[
            "--key",
            "farmer",
            "farm",
            "add-ip",
            "demo-farm",
            "185.206.122.34/24",
            "185.206.122.1",
        ],
        false,
    ),
    (
        &["--key", "farmer", "kv", "set", "motd", "hello grid"],
        false,
    ),
    (&["--key", "farmer", "kv", "get", "motd"], false),
    (&["--key", "//Bob", "farm", "create", "demo-farm"], true),
    (
        &["--key", "//Bob", "transfer", "farmer", "99999999999"],
        true,
    ),
    (&["farm", "list"], false),
];

pub fn run_demo(args: &[String]) -> Result<()> {
    let wait = !args.iter().any(|a| a == "--no-wait");
    run(Command::new("cargo").args(["build", "-p", "tfchain", "-p", "tfgrid"]))?;
    let root = std::env::current_dir()?;
    let local = root.join(".tfgrid-local");
    if local.exists() {
        std::fs::remove_dir_all(&local).with_context(|| format!("clearing {}", local.display()))?;
    }
    std::fs::create_dir_all(&local)?;
    let tfgrid = root.join("target/debug/tfgrid");
    let log = std::fs::File::create(local.join("tfchain.log"))?;
    let mut chain = Command::new(root.join("target/debug/tfchain"))
        .args(["--dev", "--rpc-addr", "127.0.0.1:9944", "--base-path"])
        .arg(local.join("chain"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting tfchain")?;
    let result = demo(&tfgrid, &local);
    if result.is_err() || !wait {
        let _ = chain.kill();
        let _ = chain.wait();
        return result;
    }
    println!("\nThe chain keeps running at {RPC} (log: .tfgrid-local/tfchain.log). Try:");
    println!("  export TFGRID_HOME=$PWD/.tfgrid-local/home");
    println!("  target/debug/tfgrid --key farmer farm show demo-farm");
    println!("  target/debug/tfgrid --key //Alice transfer //Charlie 5");
    println!("Ctrl-C stops it.");
    let status = chain.wait()?;
    println!("tfchain stopped: {status}");
    Ok(())
}

fn demo(tfgrid: &Path, local: &Path) -> Result<()> {
    let home = local.join("home");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Wait for the chain's RPC to answer.
    loop {
        let probe = Command::new(tfgrid)
            .args(["--rpc", RPC, "chain", "status"])
            .output()?;
        if probe.status.success() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the chain did not answer at {RPC} within 30 s (is the port taken?): {}",
                String::from_utf8_lossy(&probe.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (args, should_fail) in STEPS {
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if a.contains(' ') {
                    format!("{a:?}")
                } else {
                    a.to_string()
                }
            })
            .collect();
        println!(
            "\n$ tfgrid {}{}",
            shown.join(" "),
            if *should_fail {
                "    # refused, on purpose"
            } else {
                ""
            }
        );
        let out = Command::new(tfgrid)
            .args(*args)
            .env("TFGRID_HOME", &home)
            .env("TFGRID_RPC", RPC)
            .output()?;
        // Progress and errors (stderr) come before the result (stdout), as a terminal shows them.
        print!("{}", String::from_utf8_lossy(&out.stderr));
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if out.status.success() == *should_fail {
            bail!(
                "the demo step `tfgrid {}` did not behave as expected",
                args.join(" ")
            );
        }
    }
    Ok(())
}
