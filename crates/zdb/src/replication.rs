//! Replication. A replica connects to its master, authenticates with the shared admin password and
//! sends REPLSYNC. The master answers with a stream of RESP requests: `RESET`, then a snapshot (`NS`
//! for every namespace, `SET` for every live key, read in steps with the engine unlocked between
//! steps), `SYNCED`, and from then on every change as it happens. Every op is idempotent, so
//! changes made while the snapshot is read are simply applied again. A replica that falls more
//! than the backlog behind is disconnected and starts over with a fresh snapshot.

use crate::limits::{REPLICATION_FRAME_BYTES_MAX, REPLICATION_SNAPSHOT_STEP};
use crate::resp::{self, Reply};
use crate::server::{ReplOp, Shared};
use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use zdb_core::{Engine, Error as Core, Settings};

/// Pause between attempts to reach an unreachable master.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Bytes of stream buffered before they are written to the replica.
const STREAM_FLUSH_BYTES: usize = 256 * 1024;

/// Master side: streams the snapshot and then every change to one replica connection.
pub async fn serve_replica<S>(shared: &Arc<Shared>, mut stream: S, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut changes = shared.subscribe_replication();
    let mut out = BytesMut::new();
    resp::encode_request(&[b"RESET"], &mut out);
    if snapshot(shared, &mut stream, &mut out).await.is_err() {
        return;
    }
    resp::encode_request(&[b"SYNCED"], &mut out);
    loop {
        if stream.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
        let op = tokio::select! {
            op = changes.rx.recv() => op,
            _ = stop.changed() => return,
        };
        match op {
            Ok(op) => encode_op(shared, &op, &mut out),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!("replica fell {n} changes behind; it will resynchronise");
                return;
            }
            Err(RecvError::Closed) => return,
        }
        // Send whatever else is already queued in the same write.
        while out.len() < STREAM_FLUSH_BYTES {
            match changes.rx.try_recv() {
                Ok(op) => encode_op(shared, &op, &mut out),
                Err(_) => break,
            }
        }
    }
}

async fn snapshot<S>(shared: &Shared, stream: &mut S, out: &mut BytesMut) -> Result<()>
where
    S: AsyncWrite + Unpin,
{
    let names: Vec<(String, Settings)> = {
        let engine = shared.lock_engine();
        engine
            .namespaces()
            .map(|slot| (slot.ns.name().to_owned(), slot.ns.settings().clone()))
            .collect()
    };
    for (name, settings) in names {
        resp::encode_request(&[b"NS", name.as_bytes(), &settings.encode(&name)], out);
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            {
                let mut engine = shared.lock_engine();
                let Some(slot) = engine.get_mut(&name) else {
                    break;
                };
                let ns = &mut slot.ns;
                let page = match ns.scan(cursor.as_deref(), true, REPLICATION_SNAPSHOT_STEP) {
                    Ok(page) => page,
                    Err(Core::NoMoreData) => break,
                    Err(e) => return Err(e).context("snapshot scan"),
                };
                for entry in &page.entries {
                    if let Some(value) = ns.get(&entry.key).context("snapshot read")? {
                        let ts = entry.ts.to_string();
                        resp::encode_request(
                            &[b"SET", name.as_bytes(), &entry.key, &value, ts.as_bytes()],
                            out,
                        );
                    }
                }
                cursor = Some(page.cursor);
            }
            stream.write_all(out).await?;
            out.clear();
        }
    }
    Ok(())
}

fn encode_op(shared: &Shared, op: &ReplOp, out: &mut BytesMut) {
    match op {
        ReplOp::Set {
            ns,
            key,
            file,
            offset,
        } => {
            let mut engine = shared.lock_engine();
            let Some(slot) = engine.get_mut(ns) else {
                return;
            };
            // Gone only if the namespace was flushed or removed since: a later op says so.
            let Ok(raw) = slot.ns.data_raw(*file, *offset) else {
                return;
            };
            let Some(value) = raw.payload else { return };
            if raw.key != *key {
                return;
            }
            let ts = raw.ts.to_string();
            resp::encode_request(&[b"SET", ns.as_bytes(), key, &value, ts.as_bytes()], out);
        }
        ReplOp::Del { ns, key, ts } => {
            let ts = ts.to_string();
            resp::encode_request(&[b"DEL", ns.as_bytes(), key, ts.as_bytes()], out);
        }
        ReplOp::Namespace { ns, settings } => {
            resp::encode_request(&[b"NS", ns.as_bytes(), &settings.encode(ns)], out);
        }
        ReplOp::NamespaceDeleted { ns } => {
            resp::encode_request(&[b"NSDEL", ns.as_bytes()], out);
        }
        ReplOp::Flush { ns } => {
            resp::encode_request(&[b"FLUSH", ns.as_bytes()], out);
        }
    }
}

/// Replica side: follows the master until aborted (promotion or a new REPLICAOF), reconnecting
/// after failures.
pub async fn follow(shared: Arc<Shared>, host: String, port: u16) {
    loop {
        match follow_once(&shared, &host, port).await {
            Ok(()) => tracing::warn!("master {host}:{port} closed the stream"),
            Err(e) => tracing::warn!("replication from {host}:{port}: {e:#}"),
        }
        shared.replica_synced.store(false, Ordering::Release);
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

async fn follow_once(shared: &Shared, host: &str, port: u16) -> Result<()> {
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .context("connecting to master")?;
    stream.set_nodelay(true)?;
    let mut input = BytesMut::with_capacity(64 * 1024);
    if let Some(admin) = &shared.config.admin {
        let mut out = BytesMut::new();
        resp::encode_request(&[b"AUTH", admin.as_bytes()], &mut out);
        stream.write_all(&out).await?;
        match read_reply(&mut stream, &mut input).await? {
            Reply::Status(_) => {}
            other => bail!("master refused AUTH: {other:?}"),
        }
    }
    let mut out = BytesMut::new();
    resp::encode_request(&[b"REPLSYNC"], &mut out);
    stream.write_all(&out).await?;
    loop {
        loop {
            // The master may answer REPLSYNC with an error instead of the stream.
            if input.first() == Some(&b'-') {
                let reply = read_reply(&mut stream, &mut input).await?;
                bail!("master refused REPLSYNC: {reply:?}");
            }
            match resp::decode(&mut input) {
                Ok(Some(args)) => apply(shared, &args).context("applying a change")?,
                Ok(None) => break,
                Err(e) => bail!("bad frame from master: {}", e.message()),
            }
        }
        shared.commit().await?;
        if input.len() > REPLICATION_FRAME_BYTES_MAX {
            bail!("frame from master too large");
        }
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}

async fn read_reply<S>(stream: &mut S, input: &mut BytesMut) -> Result<Reply>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some(reply) = resp::decode_reply(input).map_err(|e| anyhow::anyhow!(e.message()))? {
            return Ok(reply);
        }
        if stream.read_buf(input).await? == 0 {
            bail!("master closed the connection");
        }
    }
}

fn utf8(arg: &Bytes) -> Result<String> {
    String::from_utf8(arg.to_vec()).context("namespace name is not utf-8")
}

fn ts_arg(arg: &Bytes) -> Result<u32> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .context("bad timestamp")
}

/// Applies one op of the stream to the local engine.
fn apply(shared: &Shared, args: &[Bytes]) -> Result<()> {
    let mut engine = shared.lock_engine();
    match (&args[0][..], args.len()) {
        (b"RESET", 1) => engine.wipe()?,
        (b"SYNCED", 1) => shared.replica_synced.store(true, Ordering::Release),
        (b"NS", 3) => {
            let name = utf8(&args[1])?;
            let (_, settings) = Settings::decode(&args[2])?;
            upsert_namespace(&mut engine, &name, settings)?;
        }
        (b"NSDEL", 2) => match engine.delete(&utf8(&args[1])?) {
            Ok(()) | Err(Core::NamespaceNotFound) => {}
            Err(e) => return Err(e.into()),
        },
        (b"FLUSH", 2) => {
            if let Some(slot) = engine.get_mut(&utf8(&args[1])?) {
                slot.ns.reset_files()?;
            }
        }
        (b"SET", 5) => {
            let ts = ts_arg(&args[4])?;
            if let Some(slot) = engine.get_mut(&utf8(&args[1])?) {
                // The master already enforced worm and quota; a change replayed over the snapshot
                // may trip them transiently, and the ops that follow restore the master's state.
                match slot.ns.set_replicated(&args[2], &args[3], ts) {
                    Ok(_) | Err(Core::Worm | Core::NoSpace) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        (b"DEL", 4) => {
            let ts = ts_arg(&args[3])?;
            if let Some(slot) = engine.get_mut(&utf8(&args[1])?) {
                match slot.ns.delete(&args[2], ts) {
                    Ok(()) | Err(Core::KeyNotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        _ => bail!(
            "unknown replication op {:?}",
            String::from_utf8_lossy(&args[0])
        ),
    }
    Ok(())
}

fn upsert_namespace(engine: &mut Engine, name: &str, settings: Settings) -> Result<()> {
    if engine.get(name).is_none() {
        engine.create(name)?;
    }
    let slot = engine.get_mut(name).expect("namespace exists");
    if slot.ns.settings() != &settings {
        slot.ns.update_settings(settings)?;
    }
    Ok(())
}
