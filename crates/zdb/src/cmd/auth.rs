//! AUTH: become admin with the `--admin` password, in clear or by challenge
//! (`AUTH SECURE CHALLENGE`, then `AUTH SECURE sha1(nonce:password)`).

use super::Ctx;
use crate::error::CmdError;
use crate::limits::PASSWORD_MAX;
use crate::resp::Reply;
use crate::session::secure_hash;

pub fn auth(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    // A challenge is also what SELECT ... SECURE needs, with or without an admin password.
    if ctx.args.len() == 3
        && ctx.arg(1).eq_ignore_ascii_case(b"SECURE")
        && ctx.arg(2).eq_ignore_ascii_case(b"CHALLENGE")
    {
        let nonce = hex::encode(rand::random::<[u8; 8]>());
        ctx.session.nonce = Some(nonce.clone());
        return Ok(Reply::Status(nonce));
    }
    let Some(admin) = ctx.shared.config.admin.clone() else {
        return Err(CmdError::AuthenticationDisabled);
    };
    match ctx.args.len() {
        2 => {
            let given = ctx.arg(1);
            if given.len() > PASSWORD_MAX {
                return Err(CmdError::PasswordTooLong);
            }
            if given[..] != *admin.as_bytes() {
                return Err(CmdError::AccessDenied);
            }
        }
        3 if ctx.arg(1).eq_ignore_ascii_case(b"SECURE") => {
            let Some(nonce) = ctx.session.nonce.take() else {
                return Err(CmdError::NoChallenge);
            };
            if ctx.arg(2).len() != 40 {
                return Err(CmdError::InvalidHashLength);
            }
            if secure_hash(&nonce, admin.as_bytes()).as_bytes() != &ctx.arg(2)[..] {
                return Err(CmdError::AccessDenied);
            }
        }
        _ => return Err(CmdError::UnexpectedArguments),
    }
    ctx.session.admin = true;
    Ok(Reply::ok())
}
