//! DEL and FLUSH: the two ways to remove data.

use super::{Ctx, ns_write, timestamp_arg};
use crate::error::CmdError;
use crate::limits::KEY_MAX;
use crate::resp::Reply;
use crate::server::ReplOp;

/// `DEL key [timestamp]` → `+OK`. As in 0-db, the timestamp form is admin-only, checked before
/// anything else, and takes any key (an empty one is simply not found).
pub fn del(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let ts = match ctx.args.len() {
        2 if ctx.arg(1).is_empty() => return Err(CmdError::InvalidArgument),
        2 => ctx.now_secs(),
        3 => {
            ctx.require_admin()?;
            timestamp_arg(ctx.arg(2))
        }
        _ => return Err(CmdError::UnexpectedArguments),
    };
    let key = ctx.arg(1);
    if key.len() > KEY_MAX {
        return Err(CmdError::InvalidKey);
    }
    let shared = ctx.shared;
    let engine = &mut *ctx.engine;
    let ns = ns_write(shared, engine, ctx.session)?;
    ns.delete(key, ts)?;
    shared.replicate(ReplOp::Del {
        ns: ns.name().to_owned(),
        key: key.to_vec(),
        ts,
    });
    Ok(Reply::ok())
}

/// `FLUSH`: empties the current namespace, if it is private and has a password.
pub fn flush(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.arity(0)?;
    let shared = ctx.shared;
    let engine = &mut *ctx.engine;
    let ns = ns_write(shared, engine, ctx.session)?;
    if ns.settings().public || ns.settings().password.is_none() {
        return Err(CmdError::FlushPublicDenied);
    }
    ns.reset_files()?;
    shared.replicate(ReplOp::Flush {
        ns: ns.name().to_owned(),
    });
    Ok(Reply::ok())
}
