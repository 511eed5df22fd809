//! `znet`: the WireGuard side of one user network on one node, run by the node agent (one process
//! per network, adopted across agent restarts like `zgw`), and the key tools a user or a test
//! needs (`genkey`, `pubkey`, as `wg` has them).

mod device;
mod tun;

use std::io::Read;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use gotatun::x25519::{PublicKey, StaticSecret};
use znet::{key, key_text};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A node's part of a user network: userspace WireGuard in its namespace"
)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs the device of the run directory `dir` (its `config.json`) until TERM; SIGHUP re-reads
    /// the config.
    Run { dir: PathBuf },
    /// Prints a new private key.
    Genkey,
    /// Prints the public key of the private key read from standard input.
    Pubkey,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Args::parse().command {
        Cmd::Run { dir } => device::run(&dir).await,
        Cmd::Genkey => {
            let secret = StaticSecret::random_from_rng(rand::rngs::OsRng);
            println!("{}", key_text(&secret.to_bytes()));
            Ok(())
        }
        Cmd::Pubkey => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            let public = PublicKey::from(&StaticSecret::from(key(&text)?));
            println!("{}", key_text(public.as_bytes()));
            Ok(())
        }
    }
}
