//! WAIT: block this client (not the server) until another client runs a command in its namespace.

use super::{Command, Ctx, Outcome, ns_read, parse_u64};
use crate::error::CmdError;
use crate::limits::{WAIT_TIMEOUT_DEFAULT_MS, WAIT_TIMEOUT_MAX_MS, WAIT_TIMEOUT_MIN_MS};

/// `WAIT command|* [timeout_ms]` → `+<command name>` or `-Timeout`.
pub fn wait(ctx: &mut Ctx<'_>) -> Result<Outcome, CmdError> {
    if ctx.args.len() != 2 && ctx.args.len() != 3 {
        return Err(CmdError::InvalidArguments);
    }
    let filter = if &ctx.arg(1)[..] == b"*" {
        None
    } else {
        Some(Command::lookup(ctx.arg(1)).ok_or(CmdError::UnknownCommandToWatch)?)
    };
    let timeout_ms = match ctx.args.get(2) {
        None => WAIT_TIMEOUT_DEFAULT_MS,
        Some(t) => parse_u64(t)
            .filter(|t| (WAIT_TIMEOUT_MIN_MS..=WAIT_TIMEOUT_MAX_MS).contains(t))
            .ok_or(CmdError::InvalidTimeout)?,
    };
    let engine = &mut *ctx.engine;
    ns_read(engine, ctx.session)?;
    Ok(Outcome::Wait {
        filter,
        timeout_ms,
        events: ctx.shared.subscribe_events(),
    })
}
