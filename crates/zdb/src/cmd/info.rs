//! DBSIZE and INFO.

use super::{Ctx, ns_read};
use crate::error::CmdError;
use crate::resp::Reply;
use std::fmt::Write;

/// `DBSIZE` → live entries in the current namespace.
pub fn dbsize(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.arity(0)?;
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    Ok(Reply::Int(ns.len() as i64))
}

/// `INFO` → server facts and counters, one `name: value` per `\n`-terminated line.
pub fn info(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let shared = ctx.shared;
    let stats = &shared.stats;
    let uptime = crate::server::unix_now()
        .as_secs()
        .saturating_sub(shared.boot_secs);
    let mut out = String::new();
    let version = env!("CARGO_PKG_VERSION");
    let _ = writeln!(out, "# server");
    let _ = writeln!(out, "server_name: 0-db (zdb, rust)");
    let _ = writeln!(out, "server_revision: {version}");
    let _ = writeln!(out, "engine_revision: {version}");
    let _ = writeln!(out, "instance_id: {}", shared.instance_id);
    let _ = writeln!(out, "boot_time: {}", shared.boot_secs);
    let _ = writeln!(out, "uptime: {uptime}");
    let _ = writeln!(out, "mode: {}", mode_name(shared.config.mode));
    let _ = writeln!(
        out,
        "role: {}",
        if shared.is_replica() {
            "replica"
        } else {
            "master"
        }
    );
    let _ = writeln!(out, "\n# clients");
    let _ = writeln!(
        out,
        "clients_lifetime: {}",
        stats.get(&stats.clients_lifetime)
    );
    let _ = writeln!(
        out,
        "clients_connected: {}",
        stats.get(&stats.clients_connected)
    );
    let _ = writeln!(out, "\n# internals");
    let _ = writeln!(out, "sequential_key_size: 8");
    let _ = writeln!(out, "data_version: {}", zdb_core::FORMAT_VERSION);
    let _ = writeln!(out, "index_version: {}", zdb_core::FORMAT_VERSION);
    let _ = writeln!(out, "\n# stats");
    let _ = writeln!(
        out,
        "commands_executed: {}",
        stats.get(&stats.commands_executed)
    );
    let _ = writeln!(
        out,
        "commands_failed: {}",
        stats.get(&stats.commands_failed)
    );
    let _ = writeln!(
        out,
        "commands_unauthorized: {}",
        stats.get(&stats.commands_unauthorized)
    );
    let rx = stats.get(&stats.network_rx_bytes);
    let tx = stats.get(&stats.network_tx_bytes);
    let _ = writeln!(out, "network_rx_bytes: {rx}");
    let _ = writeln!(out, "network_rx_mb: {:.2}", rx as f64 / 1048576.0);
    let _ = writeln!(out, "network_tx_bytes: {tx}");
    let _ = writeln!(out, "network_tx_mb: {:.2}", tx as f64 / 1048576.0);
    Ok(Reply::bulk(out))
}

fn mode_name(mode: Option<zdb_core::Mode>) -> &'static str {
    match mode {
        None => "mixed",
        Some(zdb_core::Mode::User) => "userkey",
        Some(zdb_core::Mode::Seq) => "sequential",
    }
}
