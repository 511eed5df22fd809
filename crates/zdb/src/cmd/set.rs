//! SET (and its alias SETX): `SET key value [timestamp]`, replying with the key, or nil when the
//! value is byte-identical to the stored one.

use super::{Ctx, ns_write, timestamp_arg};
use crate::error::CmdError;
use crate::limits::KEY_MAX;
use crate::resp::Reply;
use crate::server::ReplOp;
use zdb_core::SetOutcome;

pub fn set(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let ts = match ctx.args.len() {
        3 => ctx.now_secs(),
        4 => {
            ctx.require_admin()?;
            timestamp_arg(ctx.arg(3))
        }
        _ => return Err(CmdError::UnexpectedArguments),
    };
    let key = ctx.arg(1);
    let value = ctx.arg(2);
    if key.len() > KEY_MAX {
        return Err(CmdError::KeyTooLarge);
    }
    let shared = ctx.shared;
    let engine = &mut *ctx.engine;
    let ns = ns_write(shared, engine, ctx.session)?;
    let before = ns.current_file();
    match ns.set(key, value, ts)? {
        SetOutcome::Unchanged => Ok(Reply::Nil),
        SetOutcome::Written(key) => {
            let after = ns.current_file();
            if shared.has_replicas() {
                let loc = ns.lookup(&key).expect("a written key is live");
                shared.replicate(ReplOp::Set {
                    ns: ns.name().to_owned(),
                    key: key.clone(),
                    file: loc.file_id,
                    offset: loc.data_off,
                });
            }
            if after != before {
                let name = ns.name().to_owned();
                shared.hooks.jump(&name, before, after);
            }
            Ok(Reply::bulk(key))
        }
    }
}
