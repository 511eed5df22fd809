//! One client connection. Each step runs every complete request in the read buffer under one
//! engine lock, commits the batch's appends (group commit across connections; synced with
//! `--sync`) before answering, then writes all replies in one go. A malformed frame is answered with 0-db's error and ends this
//! connection only.

use crate::cmd::{self, Outcome};
use crate::error::CmdError;
use crate::limits::{READ_CHUNK_BYTES, REPLY_BATCH_BYTES_MAX};
use crate::replication;
use crate::resp::{Decoder, Reply};
use crate::server::{Event, Shared, Subscription};
use crate::session::Session;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;

/// What a batch step ended on.
enum Step {
    /// The buffer holds no complete request.
    NeedInput,
    /// The reply buffer filled up; more requests are waiting.
    Full,
    /// A bad frame: answer and close.
    Close,
    /// A command that must run outside the lock.
    Special(Outcome),
}

/// Serves one client until it leaves, sends a bad frame, or the server shuts down.
pub async fn serve<S>(shared: &Arc<Shared>, mut stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = shared.new_session();
    let mut stop = shared.shutdown_signal();
    let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut output = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut decoder = Decoder::default();
    let mut args = Vec::new();
    loop {
        let (step, wrote) = run_batch(
            shared,
            &mut session,
            (&mut decoder, &mut args),
            &mut input,
            &mut output,
        );
        if wrote && let Err(e) = shared.group_commit().await {
            tracing::error!("commit failed, closing the connection unanswered: {e:#}");
            return;
        }
        if !write(shared, &mut stream, &mut output).await {
            return;
        }
        match step {
            Step::Full => continue,
            Step::Close => return,
            Step::NeedInput => {}
            Step::Special(Outcome::Reply(_) | Outcome::Written) => {
                unreachable!("plain replies stay in the batch")
            }
            Step::Special(Outcome::Wait {
                filter,
                timeout_ms,
                events,
            }) => {
                wait(&session, filter, timeout_ms, events)
                    .await
                    .encode(&mut output);
                if !write(shared, &mut stream, &mut output).await {
                    return;
                }
                continue;
            }
            Step::Special(Outcome::Replicate) => {
                replication::serve_replica(shared, stream, stop).await;
                return;
            }
        }
        if input.capacity() - input.len() < READ_CHUNK_BYTES / 4 {
            input.reserve(READ_CHUNK_BYTES);
        }
        let read = tokio::select! {
            read = stream.read_buf(&mut input) => read,
            _ = stop.changed() => return,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => shared.stats.add(&shared.stats.network_rx_bytes, n as u64),
        }
    }
}

/// Runs the buffered requests under one engine lock; tells whether they left appends pending,
/// which the caller commits (and syncs) before it answers.
fn run_batch(
    shared: &Arc<Shared>,
    session: &mut Session,
    (decoder, args): (&mut Decoder, &mut Vec<Bytes>),
    input: &mut BytesMut,
    output: &mut BytesMut,
) -> (Step, bool) {
    let mut engine = shared.lock_engine();
    let step = loop {
        if output.len() >= REPLY_BATCH_BYTES_MAX {
            break Step::Full;
        }
        match decoder.next(input, args) {
            Ok(true) => {}
            Ok(false) => break Step::NeedInput,
            Err(e) => {
                Reply::Error(e.message().to_owned()).encode(output);
                break Step::Close;
            }
        }
        match cmd::execute(shared, &mut engine, session, args, output) {
            Outcome::Reply(reply) => reply.encode(output),
            Outcome::Written => {}
            special => break Step::Special(special),
        }
    };
    args.clear();
    (step, engine.has_pending())
}

/// Blocks until another client of the same namespace runs a matching command, or times out.
async fn wait(
    session: &Session,
    filter: Option<cmd::Command>,
    timeout_ms: u64,
    mut events: Subscription<Event>,
) -> Reply {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        match tokio::time::timeout_at(deadline, events.rx.recv()).await {
            Ok(Ok(event)) => {
                if event.generation == session.generation
                    && event.client != session.id
                    && filter.is_none_or(|f| f == event.command)
                {
                    return Reply::Status(event.command.name().to_owned());
                }
            }
            Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) | Err(_) => return CmdError::Timeout.reply(),
        }
    }
}

/// Writes the replies; `false` if the client is gone.
async fn write<S>(shared: &Shared, stream: &mut S, output: &mut BytesMut) -> bool
where
    S: AsyncWrite + Unpin,
{
    if output.is_empty() {
        return true;
    }
    let ok = stream.write_all(output).await.is_ok();
    shared
        .stats
        .add(&shared.stats.network_tx_bytes, output.len() as u64);
    output.clear();
    if output.capacity() > REPLY_BATCH_BYTES_MAX {
        *output = BytesMut::with_capacity(READ_CHUNK_BYTES);
    }
    ok
}
