//! Operator commands: HOOKS, INDEX DIRTY, DATA RAW and RELOAD (all admin-only).

use super::{Ctx, ns_read, parse_u64};
use crate::error::CmdError;
use crate::resp::Reply;
use zdb_core::Error as Core;

/// `HOOKS` → `[[type, [args], :pid, :created, :finished, :status] ...]` for recent hook runs.
pub fn hooks(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.require_admin()?;
    ctx.arity(0)?;
    let runs = ctx.shared.hooks.recent();
    Ok(Reply::Array(
        runs.into_iter()
            .map(|run| {
                Reply::Array(vec![
                    Reply::bulk(run.name),
                    Reply::Array(run.args.into_iter().map(Reply::bulk).collect()),
                    Reply::Int(i64::from(run.pid)),
                    Reply::Int(run.created as i64),
                    Reply::Int(run.finished as i64),
                    Reply::Int(i64::from(run.status)),
                ])
            })
            .collect(),
    ))
}

/// `INDEX DIRTY` → ids of index files changed since the last `INDEX DIRTY RESET`.
pub fn index(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.require_admin()?;
    if ctx.args.len() < 2 || !ctx.arg(1).eq_ignore_ascii_case(b"DIRTY") {
        return Err(CmdError::UnknownIndexSubcommand);
    }
    let reset = match ctx.args.len() {
        2 => false,
        3 if ctx.arg(2).eq_ignore_ascii_case(b"RESET") => true,
        _ => return Err(CmdError::UnknownIndexDirtySubcommand),
    };
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    if reset {
        ns.reset_dirty();
        return Ok(Reply::ok());
    }
    Ok(Reply::Array(
        ns.dirty_indexes()
            .into_iter()
            .map(|id| Reply::Int(i64::from(id)))
            .collect(),
    ))
}

/// `DATA RAW fileid offset` → `[key, :previous, "0x%08x" crc, :flags, :timestamp, payload or nil]`.
pub fn data(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.require_admin()?;
    if ctx.args.len() < 2 || !ctx.arg(1).eq_ignore_ascii_case(b"RAW") {
        return Err(CmdError::UnknownDataSubcommand);
    }
    if ctx.args.len() != 4 {
        return Err(CmdError::InvalidRequest);
    }
    let file = parse_u64(ctx.arg(2)).and_then(|v| u32::try_from(v).ok());
    let offset = parse_u64(ctx.arg(3)).and_then(|v| u32::try_from(v).ok());
    let (Some(file), Some(offset)) = (file, offset) else {
        return Err(CmdError::InvalidRequest);
    };
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    let raw = ns.data_raw(file, offset).map_err(|e| match e {
        Core::Eof => CmdError::Eof,
        Core::InvalidEntry => CmdError::InvalidRequest,
        _ => CmdError::UnexpectedInternalError,
    })?;
    Ok(Reply::Array(vec![
        Reply::bulk(raw.key),
        Reply::Int(i64::from(raw.previous_offset)),
        Reply::bulk(format!("0x{:08x}", raw.crc)),
        Reply::Int(i64::from(raw.flags)),
        Reply::Int(i64::from(raw.ts)),
        raw.payload.map_or(Reply::Nil, Reply::bulk),
    ]))
}

/// `RELOAD ns` → reopens the namespace from disk.
pub fn reload(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.require_admin()?;
    ctx.arity(1)?;
    let name = String::from_utf8(ctx.arg(1).to_vec()).map_err(|_| CmdError::NamespaceNotFound)?;
    let engine = &mut *ctx.engine;
    engine.reload(&name).map_err(|e| match e {
        Core::NamespaceNotFound => CmdError::NamespaceNotFound,
        other => CmdError::Engine(other),
    })?;
    ctx.shared.hooks.fire("namespace-reloaded", &[&name]);
    Ok(Reply::ok())
}
