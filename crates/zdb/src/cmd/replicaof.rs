//! Replication commands: `REPLICAOF host port` / `REPLICAOF NO ONE` (admin) make this server a
//! read-only replica of a master, or promote it; `REPLSYNC` (admin) is what a replica sends to a
//! master to receive the snapshot and then the stream of changes.

use super::{Ctx, Outcome, parse_u64};
use crate::error::CmdError;
use crate::resp::Reply;

pub fn replicaof(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.require_admin()?;
    ctx.arity(2)?;
    if ctx.arg(1).eq_ignore_ascii_case(b"NO") && ctx.arg(2).eq_ignore_ascii_case(b"ONE") {
        ctx.shared.promote();
        return Ok(Reply::ok());
    }
    let host = String::from_utf8(ctx.arg(1).to_vec()).map_err(|_| CmdError::InvalidArgument)?;
    let port = parse_u64(ctx.arg(2))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(CmdError::InvalidArgument)?;
    ctx.shared
        .follow(host, port)
        .map_err(|e| CmdError::ReplicationFailed(e.to_string()))?;
    Ok(Reply::ok())
}

pub fn replsync(ctx: &mut Ctx<'_>) -> Result<Outcome, CmdError> {
    ctx.require_admin()?;
    ctx.arity(0)?;
    Ok(Outcome::Replicate)
}
