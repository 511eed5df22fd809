//! The `zdb` binary: parse 0-db's flags, open the engine (recovering every namespace), serve until
//! SIGINT or SIGTERM, then drain clients and sync the files.

use anyhow::{Context, Result};
use zdb::config::Config;
use zdb::server::{self, Shared};
use zdb_core::{Engine, EngineConfig};

fn main() -> Result<()> {
    // A panic means an assertion about the store failed: stop the whole process (a supervisor
    // restarts it and recovery runs) rather than keep serving from a state nobody checked.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
    let config = Config::from_args(std::env::args())?;
    let filter = if config.verbose { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let engine = Engine::open(EngineConfig {
        index_dir: config.index.clone(),
        data_dir: config.data.clone(),
        mode: config.mode,
        datasize: config.datasize,
        default_maxsize: config.maxsize,
        sync_on_rotate: config.sync || config.secure,
        read_cache_bytes: config.read_cache_bytes,
    })
    .context("opening the database")?;
    let runtime = if config.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .enable_all()
            .build()
    }
    .context("starting the runtime")?;
    runtime.block_on(async move {
        let shared = Shared::new(config, engine);
        server::run(shared, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
