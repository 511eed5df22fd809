//! Namespace administration: NSNEW, NSDEL, NSINFO, NSLIST, NSSET and NSJUMP.

use super::{Ctx, ns_read, parse_u64};
use crate::error::CmdError;
use crate::limits::{NAMESPACE_NAME_MAX, PASSWORD_MAX};
use crate::resp::Reply;
use crate::server::ReplOp;
use std::fmt::Write;
use std::path::Path;
use zdb_core::{DEFAULT_NAMESPACE, Engine, Error as Core, Mode};

fn name_arg(ctx: &Ctx<'_>) -> Result<String, CmdError> {
    ctx.arity(1)?;
    let name = ctx.arg(1);
    if name.is_empty() {
        return Err(CmdError::InvalidArgument);
    }
    if name.len() > NAMESPACE_NAME_MAX {
        return Err(CmdError::NamespaceTooLong);
    }
    String::from_utf8(name.to_vec()).map_err(|_| CmdError::NameNotAllowed)
}

fn writable_server(ctx: &Ctx<'_>) -> Result<(), CmdError> {
    if ctx.shared.is_replica() {
        return Err(CmdError::ReplicaReadOnly);
    }
    Ok(())
}

/// `NSNEW name` (admin) → `+OK`.
pub fn nsnew(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.require_admin()?;
    let name = name_arg(ctx)?;
    writable_server(ctx)?;
    if !Engine::name_allowed(&name) {
        return Err(CmdError::NameNotAllowed);
    }
    let engine = &mut *ctx.engine;
    engine.create(&name).map_err(|e| match e {
        Core::NamespaceExists => CmdError::NamespaceNotAvailable,
        Core::NameNotAllowed => CmdError::NameNotAllowed,
        _ => CmdError::CouldNotCreateNamespace,
    })?;
    let settings = engine
        .get(&name)
        .expect("just created")
        .ns
        .settings()
        .clone();
    ctx.shared.replicate(ReplOp::Namespace {
        ns: name.clone(),
        settings,
    });
    ctx.shared.hooks.fire("namespace-created", &[&name]);
    Ok(Reply::ok())
}

/// `NSDEL name` (admin) → `+OK`.
pub fn nsdel(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.require_admin()?;
    let name = name_arg(ctx)?;
    writable_server(ctx)?;
    if name == DEFAULT_NAMESPACE {
        return Err(CmdError::CannotRemoveDefault);
    }
    let engine = &mut *ctx.engine;
    let Some(slot) = engine.get(&name) else {
        return Err(CmdError::NamespaceDoesNotExist);
    };
    if slot.generation == ctx.session.generation {
        return Err(CmdError::CannotRemoveCurrent);
    }
    engine.delete(&name)?;
    ctx.shared
        .replicate(ReplOp::NamespaceDeleted { ns: name.clone() });
    ctx.shared.hooks.fire("namespace-deleted", &[&name]);
    Ok(Reply::ok())
}

/// `NSLIST` → namespace names.
pub fn nslist(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.arity(0)?;
    let engine = &*ctx.engine;
    Ok(Reply::Array(
        engine
            .names()
            .map(|n| Reply::bulk(n.as_bytes().to_vec()))
            .collect(),
    ))
}

/// `NSINFO name` → namespace facts, one `name: value` per `\n`-terminated line.
pub fn nsinfo(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let name = name_arg(ctx)?;
    let admin = ctx.session.admin;
    let engine = &*ctx.engine;
    let slot = engine.get(&name).ok_or(CmdError::NamespaceNotFound)?;
    let ns = &slot.ns;
    let settings = ns.settings();
    let stats = ns.stats();
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut out = String::new();
    let _ = writeln!(out, "# namespace");
    let _ = writeln!(out, "name: {name}");
    let _ = writeln!(out, "entries: {}", stats.entries);
    let _ = writeln!(out, "public: {}", yes(settings.public));
    let _ = writeln!(out, "password: {}", yes(settings.password.is_some()));
    let _ = writeln!(out, "worm: {}", yes(settings.worm));
    let _ = writeln!(out, "locked: {}", yes(ns.locked));
    let _ = writeln!(out, "frozen: {}", yes(ns.frozen));
    let _ = writeln!(out, "data_size_bytes: {}", stats.live_bytes);
    let _ = writeln!(
        out,
        "data_size_mb: {:.2}",
        stats.live_bytes as f64 / 1048576.0
    );
    let _ = writeln!(out, "data_limits_bytes: {}", settings.maxsize);
    let _ = writeln!(out, "data_disk_bytes: {}", stats.data_disk_bytes);
    let _ = writeln!(out, "index_size_bytes: {}", stats.index_disk_bytes);
    let _ = writeln!(
        out,
        "index_size_kb: {:.2}",
        stats.index_disk_bytes as f64 / 1024.0
    );
    let _ = writeln!(out, "index_memory_bytes: {}", stats.index_memory_bytes);
    let _ = writeln!(out, "next_internal_id: 0x{:08x}", stats.next_id);
    let mode = match settings.mode {
        Mode::User => "userkey",
        Mode::Seq => "sequential",
    };
    let _ = writeln!(out, "mode: {mode}");
    for kind in ["index", "data"] {
        let _ = writeln!(out, "stats_{kind}_io_errors: 0");
        let _ = writeln!(out, "stats_{kind}_io_error_last: 0");
        let _ = writeln!(out, "stats_{kind}_faults: 0");
    }
    let _ = writeln!(out, "recovered_bytes_cut: {}", stats.recovered_bytes_cut);
    let _ = writeln!(
        out,
        "recovered_index_entries: {}",
        stats.recovered_index_entries
    );
    if settings.maxsize > 0 {
        let _ = writeln!(
            out,
            "space_available: {}",
            settings.maxsize.saturating_sub(stats.live_bytes)
        );
    }
    for (kind, path) in [("index", ns.index_dir()), ("data", ns.data_dir())] {
        let free = free_bytes(path);
        let _ = writeln!(out, "{kind}_disk_freespace_bytes: {free}");
        let _ = writeln!(
            out,
            "{kind}_disk_freespace_mb: {:.2}",
            free as f64 / 1048576.0
        );
    }
    if admin {
        let _ = writeln!(out, "data_path: {}", ns.data_dir().display());
        let _ = writeln!(out, "index_path: {}", ns.index_dir().display());
        let _ = writeln!(out, "data_current_id: {}", stats.current_file);
        let _ = writeln!(out, "data_current_offset: {}", stats.current_offset);
    }
    Ok(Reply::bulk(out))
}

fn free_bytes(path: &Path) -> u64 {
    rustix::fs::statvfs(path)
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .unwrap_or(0)
}

fn flag(value: &[u8]) -> Result<bool, CmdError> {
    match value {
        b"0" => Ok(false),
        b"1" => Ok(true),
        _ => Err(CmdError::InvalidArgument),
    }
}

/// `NSSET name property value` (admin) → `+OK`.
pub fn nsset(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.require_admin()?;
    ctx.arity(3)?;
    writable_server(ctx)?;
    let name = String::from_utf8(ctx.arg(1).to_vec()).map_err(|_| CmdError::NamespaceNotFound)?;
    let property = ctx.arg(2).to_ascii_lowercase();
    let value = ctx.arg(3);
    let shared = ctx.shared;
    let engine = &mut *ctx.engine;
    let server_mode = engine.config().mode;
    let slot = engine.get_mut(&name).ok_or(CmdError::NamespaceNotFound)?;
    let ns = &mut slot.ns;
    let is_default = name == DEFAULT_NAMESPACE;
    let runtime_only = matches!(property.as_slice(), b"lock" | b"freeze");
    if is_default && !runtime_only && property != b"mode" {
        return Err(CmdError::CannotUpdateDefault);
    }
    let mut settings = ns.settings().clone();
    match property.as_slice() {
        b"lock" => ns.locked = flag(value)?,
        b"freeze" => ns.frozen = flag(value)?,
        b"maxsize" => settings.maxsize = parse_u64(value).ok_or(CmdError::InvalidArgument)?,
        b"password" => {
            if value.len() > PASSWORD_MAX {
                return Err(CmdError::PasswordTooLong);
            }
            settings.password = (&value[..] != b"*").then(|| value.to_vec());
        }
        b"public" => settings.public = flag(value)?,
        b"worm" => settings.worm = flag(value)?,
        b"mode" => {
            if server_mode.is_some() {
                return Err(CmdError::SingleRuntimeMode);
            }
            settings.mode = match value.to_ascii_lowercase().as_slice() {
                b"user" => Mode::User,
                b"seq" => Mode::Seq,
                _ => return Err(CmdError::InvalidModeValue),
            };
        }
        _ => return Err(CmdError::InvalidProperty),
    }
    if !runtime_only {
        ns.update_settings(settings.clone()).map_err(|e| match e {
            Core::ModeInUse => CmdError::CannotChangeModeOfUsed,
            other => CmdError::Engine(other),
        })?;
        shared.replicate(ReplOp::Namespace {
            ns: name.clone(),
            settings,
        });
        shared.hooks.fire("namespace-updated", &[&name]);
    }
    Ok(Reply::ok())
}

/// `NSJUMP` (admin): closes the current file pair of the client's namespace and opens the next.
pub fn nsjump(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.require_admin()?;
    ctx.arity(0)?;
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    let (old, new) = ns.jump()?;
    let name = ns.name().to_owned();
    ctx.shared.hooks.jump(&name, old, new);
    Ok(Reply::ok())
}
