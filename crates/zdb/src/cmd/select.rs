//! SELECT: switch namespace, with a password in clear or as `SECURE sha1(nonce:password)`.

use super::Ctx;
use crate::error::CmdError;
use crate::limits::{NAMESPACE_NAME_MAX, PASSWORD_MAX};
use crate::resp::Reply;
use crate::session::secure_hash;
use zdb_core::DEFAULT_NAMESPACE;

/// How the client proved (or did not prove) it knows the password.
enum Proof<'a> {
    None,
    Clear(&'a [u8]),
    Secure(&'a [u8]),
}

impl Proof<'_> {
    fn matches(&self, password: &[u8], nonce: Option<&str>) -> bool {
        match self {
            Proof::None => false,
            Proof::Clear(given) => *given == password,
            Proof::Secure(hash) => {
                nonce.is_some_and(|n| secure_hash(n, password).as_bytes() == *hash)
            }
        }
    }
}

/// `SELECT ns [password]` or `SELECT ns SECURE <sha1 hex>` → `+OK`.
pub fn select(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let proof = match ctx.args.len() {
        2 => Proof::None,
        3 => {
            if ctx.arg(2).len() > PASSWORD_MAX {
                return Err(CmdError::PasswordTooLong);
            }
            Proof::Clear(ctx.arg(2))
        }
        4 => {
            if !ctx.arg(2).eq_ignore_ascii_case(b"SECURE") {
                return Err(CmdError::OnlySecure);
            }
            if ctx.session.nonce.is_none() {
                return Err(CmdError::NoChallenge);
            }
            if ctx.arg(3).len() != 40 {
                return Err(CmdError::InvalidHashLength);
            }
            Proof::Secure(ctx.arg(3))
        }
        1 => return Err(CmdError::UnexpectedArguments),
        _ => return Err(CmdError::TooManyArguments),
    };
    let name = ctx.arg(1);
    if name.len() > NAMESPACE_NAME_MAX {
        return Err(CmdError::NamespaceTooLong);
    }
    let name = String::from_utf8(name.to_vec()).map_err(|_| CmdError::NamespaceNotFound)?;
    let shared = ctx.shared;
    let engine = &*ctx.engine;
    let slot = engine.get(&name).ok_or(CmdError::NamespaceNotFound)?;
    let settings = slot.ns.settings();
    let nonce = ctx.session.nonce.as_deref();
    let writable = match &settings.password {
        Some(password) => {
            if proof.matches(password, nonce) {
                true
            } else if !matches!(proof, Proof::None) {
                return Err(CmdError::AccessDenied);
            } else if settings.public {
                false
            } else {
                return Err(CmdError::NamespaceProtected);
            }
        }
        None if name == DEFAULT_NAMESPACE && shared.config.protect => {
            let admin = shared.config.admin.as_deref().unwrap_or_default();
            if proof.matches(admin.as_bytes(), nonce) {
                true
            } else if matches!(proof, Proof::None) {
                false
            } else {
                return Err(CmdError::AccessDenied);
            }
        }
        None => true,
    };
    let generation = slot.generation;
    ctx.session.ns = name;
    ctx.session.generation = generation;
    ctx.session.writable = writable;
    Ok(Reply::ok())
}
