//! Per-key inspection: EXISTS, CHECK, LENGTH, KEYTIME, KEYCUR and HISTORY.

use super::{Ctx, ns_read};
use crate::error::CmdError;
use crate::limits::KEY_MAX;
use crate::resp::Reply;
use zdb_core::{Error as Core, HISTORY_KEY_LEN};

fn key_arg<'a>(ctx: &Ctx<'a>) -> Result<&'a [u8], CmdError> {
    ctx.arity(1)?;
    let key = ctx.arg(1);
    if key.len() > KEY_MAX {
        return Err(CmdError::InvalidKey);
    }
    Ok(key)
}

/// `EXISTS key` → `:1` or `:0`.
pub fn exists(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let key = key_arg(ctx)?;
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    Ok(Reply::Int(i64::from(ns.lookup(key).is_some())))
}

/// `CHECK key` → `:1` if the payload matches its CRC, `:0` if not, nil if missing.
pub fn check(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let key = key_arg(ctx)?;
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    Ok(match ns.check(key).map_err(|_| CmdError::InternalError)? {
        Some(ok) => Reply::Int(i64::from(ok)),
        None => Reply::Nil,
    })
}

/// `LENGTH key` → payload length or nil.
pub fn length(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let key = key_arg(ctx)?;
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    Ok(ns
        .lookup(key)
        .map_or(Reply::Nil, |l| Reply::Int(i64::from(l.len))))
}

/// `KEYTIME key` → unix time of the last update, or nil.
pub fn keytime(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let key = key_arg(ctx)?;
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    Ok(ns
        .lookup(key)
        .map_or(Reply::Nil, |l| Reply::Int(i64::from(l.ts))))
}

/// `KEYCUR key` → the 17-byte cursor that makes SCAN continue after this key.
pub fn keycur(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let key = key_arg(ctx)?;
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    let cursor = ns.key_cursor(key).map_err(|e| match e {
        Core::KeyNotFound => CmdError::KeyNotFound,
        other => CmdError::Engine(other),
    })?;
    Ok(Reply::bulk(cursor))
}

/// `HISTORY key [history-key]` → `[previous history-key or nil, :timestamp, payload]`.
pub fn history(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    if ctx.args.len() != 2 && ctx.args.len() != 3 {
        return Err(CmdError::InvalidArguments);
    }
    let key = ctx.arg(1);
    if key.is_empty() || key.len() > KEY_MAX {
        return Err(CmdError::InvalidArguments);
    }
    let history_key = ctx.args.get(2);
    if let Some(hk) = history_key
        && hk.len() != HISTORY_KEY_LEN
    {
        return Err(CmdError::HistoryIndexQuery);
    }
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    let item = ns.history(key, history_key.map(|b| &b[..]))?;
    Ok(Reply::Array(vec![
        item.previous
            .map_or(Reply::Nil, |p| Reply::bulk(p.to_vec())),
        Reply::Int(i64::from(item.ts)),
        Reply::bulk(item.payload),
    ]))
}
