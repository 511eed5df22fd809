//! GET and MGET. Values are copied from the engine straight into the reply buffer.

use super::{Ctx, Outcome, ns_read};
use crate::error::CmdError;
use crate::limits::{KEY_MAX, MGET_KEYS_MAX};
use crate::resp::{self, Reply};
use bytes::{BufMut, BytesMut};
use zdb_core::Namespace;

/// `GET key` → bulk, or nil when missing or deleted.
pub fn get(ctx: &mut Ctx<'_>) -> Result<Outcome, CmdError> {
    ctx.arity(1)?;
    let key = ctx.arg(1);
    if key.len() > KEY_MAX {
        return Err(CmdError::InvalidKey);
    }
    let ns = ns_read(ctx.engine, ctx.session)?;
    let mark = ctx.out.len();
    if let Err(e) = put_value(ns, key, ctx.out) {
        ctx.out.truncate(mark);
        return Err(e);
    }
    Ok(Outcome::Written)
}

/// `MGET k1 [k2 ...]` → one GET reply per key.
pub fn mget(ctx: &mut Ctx<'_>) -> Result<Outcome, CmdError> {
    let keys = &ctx.args[1..];
    if keys.is_empty() || keys.len() > MGET_KEYS_MAX {
        return Err(CmdError::InvalidArguments);
    }
    let ns = ns_read(ctx.engine, ctx.session)?;
    let mark = ctx.out.len();
    resp::put_array_header(ctx.out, keys.len());
    for key in keys {
        let result = if key.len() > KEY_MAX {
            Reply::Nil.encode(ctx.out);
            Ok(())
        } else {
            put_value(ns, key, ctx.out)
        };
        if let Err(e) = result {
            ctx.out.truncate(mark);
            return Err(e);
        }
    }
    Ok(Outcome::Written)
}

/// Appends the value of `key` as a bulk string, or nil; on error the caller truncates `out`.
fn put_value(ns: &mut Namespace, key: &[u8], out: &mut BytesMut) -> Result<(), CmdError> {
    let Some(loc) = ns.lookup(key) else {
        Reply::Nil.encode(out);
        return Ok(());
    };
    let len = loc.len as usize;
    resp::put_bulk_header(out, len);
    let start = out.len();
    out.resize(start + len, 0);
    ns.read_value(loc, key.len(), &mut out[start..])
        .map_err(|_| CmdError::InternalError)?;
    out.put_slice(b"\r\n");
    Ok(())
}
