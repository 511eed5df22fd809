//! Command dispatch: the [`Command`] enum names every command, [`execute`] checks arity and
//! permissions and calls the command's file. Each file holds one command or a small group.

mod admin;
mod auth;
mod del;
mod get;
mod info;
mod keys;
mod ns;
mod ping;
mod replicaof;
mod scan;
mod select;
mod set;
mod wait;

use crate::error::CmdError;
use crate::resp::Reply;
use crate::server::{Event, Shared};
use crate::session::Session;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use zdb_core::{Engine, Namespace};

/// Every command the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Ping,
    Time,
    Set,
    Get,
    Mget,
    Del,
    Exists,
    Check,
    Length,
    Keytime,
    Keycur,
    Scan,
    Rscan,
    Kscan,
    History,
    Dbsize,
    Info,
    Nsnew,
    Nsdel,
    Nsinfo,
    Nslist,
    Nsset,
    Nsjump,
    Select,
    Auth,
    Wait,
    Flush,
    Hooks,
    Index,
    Data,
    Reload,
    Replicaof,
    Replsync,
    Stop,
    Star,
}

/// Command names as clients send them (case-insensitive), with the aliases SETX and SCANX.
const TABLE: &[(&str, Command)] = &[
    ("PING", Command::Ping),
    ("TIME", Command::Time),
    ("SET", Command::Set),
    ("SETX", Command::Set),
    ("GET", Command::Get),
    ("MGET", Command::Mget),
    ("DEL", Command::Del),
    ("EXISTS", Command::Exists),
    ("CHECK", Command::Check),
    ("LENGTH", Command::Length),
    ("KEYTIME", Command::Keytime),
    ("KEYCUR", Command::Keycur),
    ("SCAN", Command::Scan),
    ("SCANX", Command::Scan),
    ("RSCAN", Command::Rscan),
    ("KSCAN", Command::Kscan),
    ("HISTORY", Command::History),
    ("DBSIZE", Command::Dbsize),
    ("INFO", Command::Info),
    ("NSNEW", Command::Nsnew),
    ("NSDEL", Command::Nsdel),
    ("NSINFO", Command::Nsinfo),
    ("NSLIST", Command::Nslist),
    ("NSSET", Command::Nsset),
    ("NSJUMP", Command::Nsjump),
    ("SELECT", Command::Select),
    ("AUTH", Command::Auth),
    ("WAIT", Command::Wait),
    ("FLUSH", Command::Flush),
    ("HOOKS", Command::Hooks),
    ("INDEX", Command::Index),
    ("DATA", Command::Data),
    ("RELOAD", Command::Reload),
    ("REPLICAOF", Command::Replicaof),
    ("REPLSYNC", Command::Replsync),
    ("STOP", Command::Stop),
    ("*", Command::Star),
];

impl Command {
    /// Exact, case-insensitive lookup (0-db also matches prefixes; real clients never send them).
    pub fn lookup(name: &[u8]) -> Option<Command> {
        TABLE
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, c)| c)
    }

    /// Canonical name, as WAIT reports it.
    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|&&(_, c)| c == self)
            .map(|&(n, _)| n)
            .expect("every command is in the table")
    }
}

/// What the connection must do after a command.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// The command already encoded its reply into the output buffer.
    Written,
    /// Block this client until another one runs `filter` (any command when `None`) in its namespace.
    Wait {
        filter: Option<Command>,
        timeout_ms: u64,
        events: crate::server::Subscription<Event>,
    },
    /// The client is a replica: stream every change to it from now on.
    Replicate,
}

/// State a command runs with.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub session: &'a mut Session,
    pub args: &'a [Bytes],
    /// The engine, locked once for the whole batch this request belongs to.
    pub engine: &'a mut Engine,
    /// The batch's reply buffer, for commands that encode their reply themselves.
    pub out: &'a mut BytesMut,
}

impl<'a> Ctx<'a> {
    /// Current time in unix seconds, as the engine stores it.
    pub fn now_secs(&self) -> u32 {
        crate::server::unix_now().as_secs() as u32
    }

    pub fn require_admin(&self) -> Result<(), CmdError> {
        if self.session.admin {
            Ok(())
        } else {
            Err(CmdError::PermissionDenied)
        }
    }

    /// Requires exactly `n` arguments after the command name.
    pub fn arity(&self, n: usize) -> Result<(), CmdError> {
        if self.args.len() == n + 1 {
            Ok(())
        } else {
            Err(CmdError::UnexpectedArguments)
        }
    }

    pub fn arg(&self, i: usize) -> &'a Bytes {
        &self.args[i]
    }
}

/// The client's namespace, checked for reads: still there, not frozen.
pub fn ns_read<'e>(
    engine: &'e mut Engine,
    session: &Session,
) -> Result<&'e mut Namespace, CmdError> {
    let slot = engine
        .get_mut(&session.ns)
        .filter(|s| s.generation == session.generation)
        .ok_or(CmdError::NamespaceGone)?;
    if slot.ns.frozen {
        return Err(CmdError::NamespaceFrozen);
    }
    Ok(&mut slot.ns)
}

/// The client's namespace, checked for writes: also not locked, not a replica, writable by this client.
pub fn ns_write<'e>(
    shared: &Shared,
    engine: &'e mut Engine,
    session: &Session,
) -> Result<&'e mut Namespace, CmdError> {
    let ns = ns_read(engine, session)?;
    if ns.locked {
        return Err(CmdError::NamespaceLocked);
    }
    if shared.is_replica() {
        return Err(CmdError::ReplicaReadOnly);
    }
    if !session.writable {
        return Err(CmdError::ReadOnly);
    }
    Ok(ns)
}

/// Parses a decimal argument.
pub fn parse_u64(arg: &[u8]) -> Option<u64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// The optional timestamp argument of SET and DEL, read as 0-db reads it: C's `atoll` on the bytes
/// before any NUL (leading white space, a sign, then digits up to the first other byte; no digits
/// is 0; out of range saturates), then kept in the 32 bits the entry stores (wrapping).
pub fn timestamp_arg(arg: &[u8]) -> u32 {
    let text = arg.split(|&b| b == 0).next().unwrap_or_default();
    let start = text
        .iter()
        .position(|b| !b" \t\n\x0b\x0c\r".contains(b))
        .unwrap_or(text.len());
    let (negative, digits) = match &text[start..] {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    let mut value: i64 = 0;
    for &b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        let digit = i64::from(b - b'0');
        value = value.saturating_mul(10);
        value = if negative {
            value.saturating_sub(digit)
        } else {
            value.saturating_add(digit)
        };
    }
    value as u32
}

/// Runs one request.
pub fn execute(
    shared: &Arc<Shared>,
    engine: &mut Engine,
    session: &mut Session,
    args: &[Bytes],
    out: &mut BytesMut,
) -> Outcome {
    assert!(
        !args.is_empty(),
        "the decoder never yields an empty request"
    );
    let Some(command) = Command::lookup(&args[0]) else {
        shared.stats.failed();
        return Outcome::Reply(CmdError::CommandNotSupported.reply());
    };
    let mut ctx = Ctx {
        shared,
        session,
        args,
        engine,
        out,
    };
    let result = run(command, &mut ctx);
    shared.stats.executed();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => {
            if matches!(error, CmdError::PermissionDenied) {
                shared.stats.unauthorized();
            }
            shared.stats.failed();
            Outcome::Reply(error.reply())
        }
    };
    shared.notify(Event {
        generation: ctx.session.generation,
        client: ctx.session.id,
        command,
    });
    outcome
}

fn run(command: Command, ctx: &mut Ctx<'_>) -> Result<Outcome, CmdError> {
    use Command::*;
    let reply = match command {
        Ping => ping::ping(ctx)?,
        Time => ping::time(ctx)?,
        Set => set::set(ctx)?,
        Get => return get::get(ctx),
        Mget => return get::mget(ctx),
        Del => del::del(ctx)?,
        Exists => keys::exists(ctx)?,
        Check => keys::check(ctx)?,
        Length => keys::length(ctx)?,
        Keytime => keys::keytime(ctx)?,
        Keycur => keys::keycur(ctx)?,
        Scan => scan::scan(ctx, true)?,
        Rscan => scan::scan(ctx, false)?,
        Kscan => return Err(CmdError::KscanDisabled),
        History => keys::history(ctx)?,
        Dbsize => info::dbsize(ctx)?,
        Info => info::info(ctx)?,
        Nsnew => ns::nsnew(ctx)?,
        Nsdel => ns::nsdel(ctx)?,
        Nsinfo => ns::nsinfo(ctx)?,
        Nslist => ns::nslist(ctx)?,
        Nsset => ns::nsset(ctx)?,
        Nsjump => ns::nsjump(ctx)?,
        Select => select::select(ctx)?,
        Auth => auth::auth(ctx)?,
        Wait => return wait::wait(ctx),
        Flush => del::flush(ctx)?,
        Hooks => admin::hooks(ctx)?,
        Index => admin::index(ctx)?,
        Data => admin::data(ctx)?,
        Reload => admin::reload(ctx)?,
        Replicaof => replicaof::replicaof(ctx)?,
        Replsync => return replicaof::replsync(ctx),
        Stop => return Err(CmdError::Unauthorized),
        Star => return Err(CmdError::NotAValidCommand),
    };
    Ok(Outcome::Reply(reply))
}

#[cfg(test)]
mod tests {
    use super::timestamp_arg;

    fn check(arg: &[u8], expect: u32) {
        assert_eq!(
            timestamp_arg(arg),
            expect,
            "{:?}",
            String::from_utf8_lossy(arg)
        );
    }

    #[test]
    fn timestamps_read_as_atoll_then_32_bits() {
        check(b"12345", 12345);
        check(b"extra", 0);
        check(b"", 0);
        check(b" \t\x0b12x9", 12);
        check(b"+7", 7);
        check(b"- 7", 0);
        check(b"12\x0034", 12);
        check(b"-1", u32::MAX);
        check(b"4294967297", 1);
        // Saturated at i64::MAX and i64::MIN, as glibc's strtoll does, then the low 32 bits.
        check(b"99999999999999999999999", i64::MAX as u32);
        check(b"-99999999999999999999999", 0);
    }
}
