//! The `zgw` binary: the node's gateway. `zgw --routes DIR --certs DIR --http ADDR --https ADDR`
//! loads the routes, binds both listeners, prints `zgw: listening on http <addr> https <addr>`,
//! reloads the routes on SIGHUP and drains its connections on SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use zgw::limits::CONNECTIONS_MAX;
use zgw::server::{self, Gateway};

#[derive(Parser, Debug)]
#[command(version, about = "The node's HTTP(S) gateway")]
struct Args {
    /// The directory of route files (`<workload>.json`), written by the node agent.
    #[arg(long)]
    routes: PathBuf,
    /// The directory of certificates (`<fqdn>.crt`, `<fqdn>.key`); missing ones are made here.
    #[arg(long)]
    certs: PathBuf,
    /// The plain HTTP listener, e.g. `185.206.122.11:80` (port 0: any free port).
    #[arg(long)]
    http: SocketAddr,
    /// The TLS listener, e.g. `185.206.122.11:443` (port 0: any free port).
    #[arg(long)]
    https: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    for dir in [&args.routes, &args.certs] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let gateway = Arc::new(Gateway::new(args.routes.clone(), args.certs.clone()));
    let loading = gateway.clone();
    tokio::task::spawn_blocking(move || loading.reload())
        .await
        .context("loading the routes")?;
    let http = TcpListener::bind(args.http)
        .await
        .with_context(|| format!("binding --http {}", args.http))?;
    let https = TcpListener::bind(args.https)
        .await
        .with_context(|| format!("binding --https {}", args.https))?;
    // Every handler is in place before the line: a SIGHUP right after it must reload, not kill.
    let mut hangup = signal(SignalKind::hangup()).context("handling SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "zgw: listening on http {} https {}",
        http.local_addr().context("the http listener's address")?,
        https.local_addr().context("the https listener's address")?
    )
    .and_then(|()| stdout.flush())
    .context("writing to stdout")?;
    drop(stdout);
    let reloading = gateway.clone();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the routes");
            let gateway = reloading.clone();
            if let Err(error) = tokio::task::spawn_blocking(move || gateway.reload()).await {
                tracing::error!(%error, "reloading the routes");
            }
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
        }
    };
    server::serve(gateway, http, https, CONNECTIONS_MAX, shutdown).await;
    Ok(())
}
