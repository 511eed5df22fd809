//! SCAN, SCANX and RSCAN: walk the namespace in insertion order, forward or backward.

use super::{Ctx, ns_read};
use crate::error::CmdError;
use crate::limits::SCAN_PAGE_MAX;
use crate::resp::Reply;
use zdb_core::{CURSOR_LEN, Error as Core};

/// `SCAN [cursor]` → `[next cursor, [[key, :size, :timestamp] ...]]`, `-No more data` at the end.
pub fn scan(ctx: &mut Ctx<'_>, forward: bool) -> Result<Reply, CmdError> {
    let cursor = match ctx.args.len() {
        1 => None,
        2 => {
            let c = ctx.arg(1);
            if c.len() != CURSOR_LEN {
                return Err(CmdError::InvalidCursorFormat);
            }
            Some(&c[..])
        }
        _ => return Err(CmdError::UnexpectedArguments),
    };
    let engine = &mut *ctx.engine;
    let ns = ns_read(engine, ctx.session)?;
    let page = ns
        .scan(cursor, forward, SCAN_PAGE_MAX)
        .map_err(|e| match e {
            Core::InvalidCursor => CmdError::InvalidIndex,
            other => CmdError::Engine(other),
        })?;
    let entries = page
        .entries
        .into_iter()
        .map(|e| {
            Reply::Array(vec![
                Reply::bulk(e.key),
                Reply::Int(i64::from(e.len)),
                Reply::Int(i64::from(e.ts)),
            ])
        })
        .collect();
    Ok(Reply::Array(vec![
        Reply::bulk(page.cursor),
        Reply::Array(entries),
    ]))
}
