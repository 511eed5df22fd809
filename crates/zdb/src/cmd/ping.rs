//! PING and TIME.

use super::Ctx;
use crate::error::CmdError;
use crate::resp::Reply;

/// `PING` → `+PONG`.
pub fn ping(_ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    Ok(Reply::Status("PONG".into()))
}

/// `TIME` → seconds and microseconds as two bulk strings.
pub fn time(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    ctx.arity(0)?;
    let now = crate::server::unix_now();
    Ok(Reply::Array(vec![
        Reply::bulk(now.as_secs().to_string()),
        Reply::bulk(now.subsec_micros().to_string()),
    ]))
}
