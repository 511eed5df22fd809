//! The `gridproxy` binary: opens the store in the data directory, follows the chain, serves the API
//! on loopback, and stops cleanly on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use gridproxy::api::{AppState, router};
use gridproxy::indexer::{self, Progress};
use gridproxy::store::{Postgres, Sqlite, Store};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The grid's explorer: indexes the chain and serves the grid proxy API"
)]
struct Args {
    /// The chain's RPC endpoint, or a comma-separated list of one chain's endpoints to fail over
    /// through (ws://a:9944,ws://b:9944).
    #[arg(long, env = "GRIDPROXY_CHAIN", default_value = "ws://127.0.0.1:9944")]
    chain: String,
    /// Where the API listens.
    #[arg(long, env = "GRIDPROXY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the index lives (`gridproxy.sqlite`) when `--db` is not given.
    #[arg(long, env = "GRIDPROXY_DATA_DIR", default_value = ".gridproxy")]
    data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://user@host:port/db`) instead of SQLite.
    #[arg(long, env = "GRIDPROXY_DB")]
    db: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let store = open_store(&args).await?;
    let progress = Arc::new(Progress::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let mut indexer = tokio::spawn(indexer::run(
        store.clone(),
        args.chain.clone(),
        progress.clone(),
        stop_rx.clone(),
    ));
    let state = AppState::new(store, progress);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!("serving the API on http://{}", listener.local_addr()?);
    let mut server_stop = stop_rx.clone();
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    });
    let mut server = tokio::spawn(async move { server.await });

    let outcome = tokio::select! {
        _ = shutdown_signal() => Ok(()),
        r = &mut indexer => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("indexing the chain")),
            Err(e) => Err(anyhow::Error::new(e).context("the indexer task")),
        },
        r = &mut server => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("serving the API")),
            Err(e) => Err(anyhow::Error::new(e).context("the server task")),
        },
    };
    let _ = stop_tx.send(true);
    if !indexer.is_finished() {
        let _ = indexer.await;
    }
    if !server.is_finished() {
        let _ = server.await;
    }
    outcome
}

async fn open_store(args: &Args) -> Result<Arc<dyn Store>> {
    match &args.db {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let url = url.clone();
            // The client blocks while it connects: not on the async threads.
            let store = tokio::task::spawn_blocking(move || Postgres::open(&url))
                .await?
                .context("opening the PostgreSQL store")?;
            Ok(Arc::new(store))
        }
        Some(other) => anyhow::bail!("--db takes a postgres:// URL, not {other:?}"),
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("creating {}", args.data_dir.display()))?;
            let path = args.data_dir.join("gridproxy.sqlite");
            let store = Sqlite::open(&path)
                .with_context(|| format!("opening the store {}", path.display()))?;
            Ok(Arc::new(store))
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
}
