//! The `zstor` command line: 0-stor v2's commands (`store`, `retrieve`, `check`, `rebuild`,
//! `status`, and the repair daemon, also called `monitor`) over the library. A file is keyed by its
//! path below the config's `root` (its absolute path without one), or by `--key`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Component, Path, PathBuf};
use zstor::{Config, StoreOutcome, Zstor};

#[derive(Parser, Debug)]
#[command(
    name = "zstor",
    version,
    about = "Dispersed storage over 0-db namespaces"
)]
struct Cli {
    /// The TOML config.
    #[arg(short, long, env = "ZSTOR_CONFIG", default_value = "zstor_config.toml")]
    config: PathBuf,
    /// Debug logging.
    #[arg(short, long)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// Which file: a path (keyed below the root), a key, or both (store and retrieve read or write the
/// path, keyed by the key).
#[derive(clap::Args, Debug)]
struct Target {
    #[arg(short, long)]
    file: Option<PathBuf>,
    #[arg(short, long)]
    key: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Store a file (skipped if the same content is already stored under its key).
    Store(Target),
    /// Retrieve a file to its path.
    Retrieve(Target),
    /// Read every piece of a stored file, report missing or corrupt ones; exit 1 unless healthy.
    Check(Target),
    /// Regenerate missing or corrupt pieces, moving shards off unreachable backends.
    Rebuild {
        #[command(flatten)]
        target: Target,
        /// Every stored file.
        #[arg(long, conflicts_with_all = ["file", "key"])]
        all: bool,
    },
    /// Every backend: reachable or not, mode, entries, space.
    Status,
    /// List the keys of the stored files.
    List,
    /// Run the repair loop until SIGINT or SIGTERM.
    #[command(alias = "monitor")]
    Daemon,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let filter = if cli.verbose {
        "debug"
    } else if matches!(cli.command, Command::Daemon) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Runs the command; `Ok(false)` for a check that found damage.
async fn run(cli: Cli) -> Result<bool> {
    let config = Config::load(&cli.config)?;
    let zstor = Zstor::new(config)?;
    match cli.command {
        Command::Store(target) => {
            let (file, key) = file_and_key(&zstor, &target)?;
            let file = file.context("store needs --file")?;
            match zstor.store_file(&key, &file).await? {
                StoreOutcome::Stored(meta) => println!(
                    "stored {key}: {} bytes, {} chunks, {}+{} shards",
                    meta.size_bytes,
                    meta.chunk_count(),
                    meta.data_shards,
                    meta.parity_shards
                ),
                StoreOutcome::Unchanged(meta) => {
                    println!("unchanged {key}: {} bytes already stored", meta.size_bytes)
                }
            }
        }
        Command::Retrieve(target) => {
            let (file, key) = file_and_key(&zstor, &target)?;
            let file = match file {
                Some(file) => file,
                None => zstor
                    .config()
                    .root
                    .as_ref()
                    .context("retrieve --key needs --file or a root in the config")?
                    .join(&key),
            };
            let meta = zstor.retrieve_file(&key, &file).await?;
            println!(
                "retrieved {key}: {} bytes to {}",
                meta.size_bytes,
                file.display()
            );
        }
        Command::Check(target) => {
            let (_, key) = file_and_key(&zstor, &target)?;
            let report = zstor.check(&key).await?;
            println!("{report}");
            return Ok(report.is_healthy());
        }
        Command::Rebuild { target, all } => {
            let keys = if all {
                zstor.list().await?
            } else {
                vec![file_and_key(&zstor, &target)?.1]
            };
            for key in keys {
                let report = zstor
                    .rebuild(&key)
                    .await
                    .with_context(|| format!("rebuilding {key}"))?;
                println!(
                    "rebuilt {}: {} pieces written, metadata on {} backends",
                    report.key, report.pieces_written, report.meta_copies
                );
                for (shard, from, to) in report.moved {
                    println!("  shard {shard} moved from {from} to {to}");
                }
            }
        }
        Command::Status => {
            let mut all_up = true;
            for backend in zstor.status().await {
                all_up &= backend.state.is_ok();
                println!("{backend}");
            }
            return Ok(all_up);
        }
        Command::List => {
            for key in zstor.list().await? {
                println!("{key}");
            }
        }
        Command::Daemon => {
            let path = cli.config.clone();
            let shutdown = async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            };
            tracing::info!("repair loop started");
            zstor::repair::run(&path, zstor, shutdown).await;
            tracing::info!("repair loop stopped");
        }
    }
    Ok(true)
}

/// The file path (if given) and the key: `--key`, or the path below the root (the absolute path
/// without a root).
fn file_and_key(zstor: &Zstor, target: &Target) -> Result<(Option<PathBuf>, String)> {
    let file = target.file.as_deref().map(absolute).transpose()?;
    let key = match (&target.key, &file) {
        (Some(key), _) => key.clone(),
        (None, Some(file)) => match &zstor.config().root {
            Some(root) => file
                .strip_prefix(absolute(root)?)
                .with_context(|| {
                    format!(
                        "{} is not under the root {} of the config",
                        file.display(),
                        root.display()
                    )
                })?
                .to_string_lossy()
                .into_owned(),
            None => file.to_string_lossy().into_owned(),
        },
        (None, None) => bail!("give --file or --key"),
    };
    if key.is_empty() {
        bail!("the key is empty");
    }
    Ok((file, key))
}

/// `path` made absolute against the working directory, with `.` and `..` resolved lexically (the
/// file may not exist yet).
fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = std::env::current_dir()
        .context("reading the working directory")?
        .join(path);
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}
