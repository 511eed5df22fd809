//! The server: shared state (engine behind one lock, counters, WAIT and replication channels,
//! hooks), the TCP and unix-socket accept loops with a bound on clients, background syncing, and
//! shutdown that drains connections and syncs the files.

use crate::config::Config;
use crate::connection;
use crate::error::CmdError;
use crate::hooks::Hooks;
use crate::limits::{CLIENTS_MAX, REPLICATION_BACKLOG_MAX, WAIT_EVENTS_MAX};
use crate::replication;
use crate::session::Session;
use anyhow::{Context, Result};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinHandle;
use zdb_core::{DEFAULT_NAMESPACE, Engine, Settings};

/// Time since the unix epoch.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Counters reported by INFO.
#[derive(Debug, Default)]
pub struct Stats {
    pub clients_lifetime: AtomicU64,
    pub clients_connected: AtomicU64,
    pub commands_executed: AtomicU64,
    pub commands_failed: AtomicU64,
    pub commands_unauthorized: AtomicU64,
    pub network_rx_bytes: AtomicU64,
    pub network_tx_bytes: AtomicU64,
}

impl Stats {
    pub fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn executed(&self) {
        self.add(&self.commands_executed, 1);
    }

    pub fn failed(&self) {
        self.add(&self.commands_failed, 1);
    }

    pub fn unauthorized(&self) {
        self.add(&self.commands_unauthorized, 1);
    }
}

/// A command ran in a namespace: what WAIT clients listen to.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    pub generation: u64,
    pub client: u64,
    pub command: crate::cmd::Command,
}

/// A namespace change, streamed to replicas in the order the engine applied it. A SET carries
/// where its entry lies, not the value: the stream reads it from the (append-only) data file.
#[derive(Debug, Clone)]
pub enum ReplOp {
    Set {
        ns: String,
        key: Vec<u8>,
        file: u32,
        offset: u32,
    },
    Del {
        ns: String,
        key: Vec<u8>,
        ts: u32,
    },
    Namespace {
        ns: String,
        settings: Settings,
    },
    NamespaceDeleted {
        ns: String,
    },
    Flush {
        ns: String,
    },
}

/// Everything the connections share.
#[derive(Debug)]
pub struct Shared {
    engine: Mutex<Engine>,
    pub config: Config,
    pub stats: Stats,
    pub hooks: Hooks,
    pub boot_secs: u64,
    pub instance_id: String,
    events: broadcast::Sender<Event>,
    repl: broadcast::Sender<ReplOp>,
    /// Clients blocked in WAIT and replicas being streamed to: checked before each send, so a
    /// server nobody listens to pays nothing for the channels.
    waiters: Arc<AtomicUsize>,
    replicas: Arc<AtomicUsize>,
    replica: AtomicBool,
    replica_task: Mutex<Option<JoinHandle<()>>>,
    /// Whether this replica has finished its initial snapshot from the master.
    pub replica_synced: AtomicBool,
    next_client: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// With `--sync`: one flush-and-sync at a time; whoever holds it writes every pending append.
    sync_turn: tokio::sync::Mutex<()>,
}

impl Shared {
    pub fn new(config: Config, engine: Engine) -> Arc<Shared> {
        let instance_id = hex::encode(rand::random::<[u8; 4]>());
        let hooks = Hooks::new(
            config.hook.clone(),
            instance_id.clone(),
            config.index.clone(),
            config.data.clone(),
        );
        Arc::new(Shared {
            engine: Mutex::new(engine),
            config,
            stats: Stats::default(),
            hooks,
            boot_secs: unix_now().as_secs(),
            instance_id,
            events: broadcast::channel(WAIT_EVENTS_MAX).0,
            repl: broadcast::channel(REPLICATION_BACKLOG_MAX).0,
            waiters: Arc::new(AtomicUsize::new(0)),
            replicas: Arc::new(AtomicUsize::new(0)),
            replica: AtomicBool::new(false),
            replica_task: Mutex::new(None),
            replica_synced: AtomicBool::new(false),
            next_client: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
            sync_turn: tokio::sync::Mutex::new(()),
        })
    }

    /// Locks the engine. A panic while it was held means its state cannot be trusted: propagate it.
    pub fn lock_engine(&self) -> MutexGuard<'_, Engine> {
        self.engine
            .lock()
            .expect("engine lock poisoned by an earlier panic")
    }

    /// A session for a new client: `default` namespace, admin if no admin password is set.
    pub fn new_session(&self) -> Session {
        let generation = self
            .lock_engine()
            .get(DEFAULT_NAMESPACE)
            .expect("default namespace always exists")
            .generation;
        Session {
            id: self.next_client.fetch_add(1, Ordering::Relaxed),
            ns: DEFAULT_NAMESPACE.to_owned(),
            generation,
            admin: self.config.admin.is_none(),
            writable: !self.config.protect,
            nonce: None,
        }
    }

    pub fn notify(&self, event: Event) {
        if self.waiters.load(Ordering::Relaxed) > 0 {
            let _ = self.events.send(event);
        }
    }

    pub fn subscribe_events(&self) -> Subscription<Event> {
        Subscription::new(self.events.subscribe(), &self.waiters)
    }

    /// Queues a change for the replicas; call it with the engine locked so the order is the engine's.
    pub fn replicate(&self, op: ReplOp) {
        if self.has_replicas() {
            let _ = self.repl.send(op);
        }
    }

    pub fn has_replicas(&self) -> bool {
        self.replicas.load(Ordering::Relaxed) > 0
    }

    /// Subscribes to the change stream; take it before reading the snapshot.
    pub fn subscribe_replication(&self) -> Subscription<ReplOp> {
        Subscription::new(self.repl.subscribe(), &self.replicas)
    }

    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Acquire)
    }

    /// Becomes a read-only replica of `host:port` (replacing any previous master).
    pub fn follow(self: &Arc<Shared>, host: String, port: u16) -> Result<()> {
        let mut task = self.replica_task.lock().expect("replica task lock");
        if let Some(old) = task.take() {
            old.abort();
        }
        self.replica.store(true, Ordering::Release);
        self.replica_synced.store(false, Ordering::Release);
        let shared = Arc::clone(self);
        *task = Some(tokio::spawn(replication::follow(shared, host, port)));
        Ok(())
    }

    /// Stops following a master and accepts writes again.
    pub fn promote(&self) {
        if let Some(old) = self.replica_task.lock().expect("replica task lock").take() {
            old.abort();
        }
        self.replica.store(false, Ordering::Release);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Group commit of a batch that appended: first let the other ready connections run their
    /// batches, then hand every pending append to the OS in one write. With `--sync`, flush and
    /// `fdatasync` happen under one turn at a time: a connection whose appends were written by an
    /// earlier turn finds nothing pending once it gets its turn, because that turn also synced.
    pub async fn group_commit(&self) -> Result<()> {
        tokio::task::yield_now().await;
        if !self.config.sync {
            self.lock_engine().commit().context("writing appends")?;
            return Ok(());
        }
        let _turn = self.sync_turn.lock().await;
        let files = self.lock_engine().commit().context("writing appends")?;
        self.sync_files(files)
    }

    /// Hands the pending appends to the OS and, with `--sync`, waits until they are on disk.
    pub async fn commit(&self) -> Result<()> {
        let files = self.lock_engine().commit().context("writing appends")?;
        self.sync_files(files)
    }

    /// With `--sync`, waits until the files written by a commit reach the disk. On one thread this
    /// blocks the loop, as 0-db and redis do: the requests that arrive meanwhile queue up and go out
    /// in the next group commit. With several worker threads the others keep serving.
    pub fn sync_files(&self, files: Vec<Arc<File>>) -> Result<()> {
        if !self.config.sync || files.is_empty() {
            return Ok(());
        }
        let sync = move || -> std::io::Result<()> {
            for file in files {
                file.sync_data()?;
            }
            Ok(())
        };
        if self.config.threads > 1 {
            tokio::task::block_in_place(sync)
        } else {
            sync()
        }
        .context("syncing data files")
    }
}

/// A broadcast receiver that is counted while it lives.
#[derive(Debug)]
pub struct Subscription<T> {
    pub rx: broadcast::Receiver<T>,
    count: Arc<AtomicUsize>,
}

impl<T: Clone> Subscription<T> {
    fn new(rx: broadcast::Receiver<T>, count: &Arc<AtomicUsize>) -> Subscription<T> {
        count.fetch_add(1, Ordering::SeqCst);
        Subscription {
            rx,
            count: Arc::clone(count),
        }
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs the server until `stop` resolves: listeners, background sync, replication, then a drain.
pub async fn run(shared: Arc<Shared>, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    let config = &shared.config;
    let clients = Arc::new(Semaphore::new(CLIENTS_MAX));
    let mut tasks = tokio::task::JoinSet::new();
    let tcp = config.socket.is_none() || config.dualnet;
    if tcp {
        let addr = if config.listen.contains(':') {
            format!("[{}]:{}", config.listen, config.port)
        } else {
            format!("{}:{}", config.listen, config.port)
        };
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        println!("zdb: listening on tcp {local}");
        let (shared, clients) = (Arc::clone(&shared), Arc::clone(&clients));
        tasks.spawn(async move {
            let mut stop = shared.shutdown_signal();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            spawn_client(&shared, &clients, stream);
                        }
                        Err(e) => tracing::warn!("accept failed: {e}"),
                    },
                    _ = stop.changed() => break,
                }
            }
        });
    }
    if let Some(path) = &config.socket {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path)
            .with_context(|| format!("binding unix socket {}", path.display()))?;
        println!("zdb: listening on unix {}", path.display());
        let (shared, clients) = (Arc::clone(&shared), Arc::clone(&clients));
        tasks.spawn(async move {
            let mut stop = shared.shutdown_signal();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => spawn_client(&shared, &clients, stream),
                        Err(e) => tracing::warn!("accept failed: {e}"),
                    },
                    _ = stop.changed() => break,
                }
            }
        });
    }
    if let Some(secs) = config.synctime {
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            let mut stop = shared.shutdown_signal();
            let mut tick = tokio::time::interval(Duration::from_secs(secs.max(1)));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = shared.lock_engine().sync_all() {
                            tracing::error!("periodic sync failed: {e}");
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        });
    }
    if let Some((host, port)) = &config.replicaof {
        shared.follow(host.clone(), *port)?;
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    if shared.hooks.run("ready", &[]).await.unwrap_or(-1) != 0 && config.hook.is_some() {
        anyhow::bail!("the ready hook refused the start");
    }
    stop.await;
    tracing::info!("shutting down");
    let _ = shared.shutdown.send(true);
    shared.promote();
    // Connections finish their current batch; wait until the last client slot is returned.
    let drained = clients.acquire_many(CLIENTS_MAX as u32);
    let _ = tokio::time::timeout(Duration::from_secs(10), drained).await;
    while tasks.join_next().await.is_some() {}
    shared.lock_engine().sync_all().context("final sync")?;
    let _ = shared.hooks.run("close", &[]).await;
    Ok(())
}

fn spawn_client<S>(shared: &Arc<Shared>, clients: &Arc<Semaphore>, mut stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::clone(shared);
    match Arc::clone(clients).try_acquire_owned() {
        Ok(permit) => {
            tokio::spawn(async move {
                shared.stats.add(&shared.stats.clients_lifetime, 1);
                shared.stats.add(&shared.stats.clients_connected, 1);
                connection::serve(&shared, stream).await;
                shared
                    .stats
                    .clients_connected
                    .fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
        Err(_) => {
            tokio::spawn(async move {
                let reply = format!("-{}\r\n", crate::error::message(&CmdError::TooManyClients));
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    }
}
