//! Protocol tests: the real `zdb` binary started as a process on loopback (TCP port 0 and a unix
//! socket in a temp dir), driven through the `redis` client crate and through raw sockets for
//! malformed frames. Covers every command and its error replies in both modes, namespaces and
//! authentication, WAIT, hooks, replication, restarts, and durability: acknowledged writes survive
//! a kill -9 of the process (the page cache keeps them, with or without `--sync`), and, in
//! `power_loss`, a power cut of the disk under `--sync` (what was not flushed is lost without it).

mod power_loss;

use redis::{Connection, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

/// A running `zdb` with its own directories.
struct Server {
    child: Child,
    /// Holds the socket and the data and index directories.
    root: PathBuf,
    /// Removes `root` at the end, when the server made it.
    _temp: Option<tempfile::TempDir>,
    args: Vec<String>,
    port: u16,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let temp = tempfile::tempdir().unwrap();
        let mut server = Server::start_at(temp.path(), extra);
        server._temp = Some(temp);
        server
    }

    /// Starts on the directories under `root`, which the caller keeps.
    fn start_at(root: &Path, extra: &[&str]) -> Server {
        let args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let (child, port) = spawn(root, &args);
        Server {
            child,
            root: root.to_owned(),
            _temp: None,
            args,
            port,
        }
    }

    fn socket(&self) -> PathBuf {
        self.root.join("zdb.sock")
    }

    fn tcp(&self) -> Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    fn unix(&self) -> Connection {
        redis::Client::open(format!("redis+unix://{}", self.socket().display()))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    fn raw(&self) -> std::net::TcpStream {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap()
    }

    /// Stops with SIGTERM (clean shutdown) and starts again on the same directories.
    fn restart(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success());
        self.respawn();
    }

    /// SIGKILL, then start again.
    fn crash_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.respawn();
    }

    fn respawn(&mut self) {
        let (child, port) = spawn(&self.root, &self.args);
        self.child = child;
        self.port = port;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(root: &Path, extra: &[String]) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zdb"))
        .args(["--listen", "127.0.0.1", "--port", "0", "--dualnet"])
        .arg("--socket")
        .arg(root.join("zdb.sock"))
        .arg("--data")
        .arg(root.join("data"))
        .arg("--index")
        .arg(root.join("index"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut port = None;
    let mut unix = false;
    while port.is_none() || !unix {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "zdb exited early");
        if let Some(addr) = line.trim().strip_prefix("zdb: listening on tcp ") {
            port = Some(addr.rsplit(':').next().unwrap().parse().unwrap());
        }
        unix |= line.starts_with("zdb: listening on unix");
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (child, port.unwrap())
}

/// Sends a command; `Ok(value)` or `Err(full error text as the server sent it)`.
fn call(con: &mut Connection, args: &[&[u8]]) -> Result<Value, String> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query::<Value>(con)
        .map_err(|e| match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            (Some(code), None) => code.to_owned(),
            _ => e.to_string(),
        })
}

fn ok(con: &mut Connection, args: &[&[u8]]) -> Value {
    call(con, args).unwrap_or_else(|e| panic!("{:?} failed: {e}", args[0]))
}

fn err(con: &mut Connection, args: &[&[u8]]) -> String {
    match call(con, args) {
        Ok(v) => panic!(
            "{:?} succeeded with {v:?}",
            String::from_utf8_lossy(args[0])
        ),
        Err(e) => e,
    }
}

fn bulk(v: &[u8]) -> Value {
    Value::BulkString(v.to_vec())
}

fn status(s: &str) -> Value {
    if s == "OK" {
        Value::Okay
    } else {
        Value::SimpleString(s.to_owned())
    }
}

fn text(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::SimpleString(s) => s,
        other => panic!("not text: {other:?}"),
    }
}

fn bytes(v: Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b,
        other => panic!("not bulk: {other:?}"),
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

/// Every key a SCAN (forward) or RSCAN (backward) returns, in order.
fn scan_all(con: &mut Connection, forward: bool) -> Vec<Vec<u8>> {
    let command: &[u8] = if forward { b"SCAN" } else { b"RSCAN" };
    let mut keys = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let reply = match &cursor {
            None => call(con, &[command]),
            Some(c) => call(con, &[command, c]),
        };
        match reply {
            Ok(v) => {
                let mut page = array(v);
                let entries = array(page.pop().unwrap());
                cursor = Some(bytes(page.pop().unwrap()));
                for entry in entries {
                    let mut fields = array(entry);
                    assert!(
                        matches!(fields[1], Value::Int(_)) && matches!(fields[2], Value::Int(_))
                    );
                    keys.push(bytes(fields.swap_remove(0)));
                }
            }
            Err(e) => {
                assert_eq!(e, "No more data");
                return keys;
            }
        }
    }
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn user_mode_commands(con: &mut Connection) {
    assert_eq!(ok(con, &[b"PING"]), status("PONG"));
    let time = array(ok(con, &[b"TIME"]));
    assert_eq!(time.len(), 2);
    assert!(text(time[0].clone()).parse::<u64>().unwrap() > 1_600_000_000);
    assert_eq!(ok(con, &[b"SET", b"k1", b"v1"]), bulk(b"k1"));
    assert_eq!(ok(con, &[b"SET", b"k1", b"v1"]), Value::Nil);
    assert_eq!(ok(con, &[b"SETX", b"k2", b""]), bulk(b"k2"));
    assert_eq!(ok(con, &[b"SET", b"k3", b"v3"]), bulk(b"k3"));
    assert_eq!(ok(con, &[b"SET", b"k1", b"v1b"]), bulk(b"k1"));
    assert_eq!(ok(con, &[b"GET", b"k1"]), bulk(b"v1b"));
    assert_eq!(ok(con, &[b"GET", b"k2"]), bulk(b""));
    assert_eq!(ok(con, &[b"GET", b"nope"]), Value::Nil);
    assert_eq!(
        err(con, &[b"SET", b"", b"x"]),
        "Invalid argument, key needed"
    );
    assert_eq!(err(con, &[b"SET", &[b'k'; 256], b"x"]), "Key too large");
    assert_eq!(err(con, &[b"GET", &[b'k'; 256]]), "Invalid key");
    assert_eq!(err(con, &[b"SET", b"k"]), "Unexpected arguments");
    assert_eq!(err(con, &[b"GET"]), "Unexpected arguments");
    assert_eq!(
        ok(con, &[b"MGET", b"k1", b"nope", b"k3"]),
        Value::Array(vec![bulk(b"v1b"), Value::Nil, bulk(b"v3")])
    );
    assert_eq!(err(con, &[b"MGET"]), "Invalid arguments");
    assert_eq!(ok(con, &[b"EXISTS", b"k1"]), Value::Int(1));
    assert_eq!(ok(con, &[b"EXISTS", b"nope"]), Value::Int(0));
    assert_eq!(ok(con, &[b"CHECK", b"k1"]), Value::Int(1));
    assert_eq!(ok(con, &[b"CHECK", b"nope"]), Value::Nil);
    assert_eq!(ok(con, &[b"LENGTH", b"k1"]), Value::Int(3));
    assert_eq!(ok(con, &[b"LENGTH", b"nope"]), Value::Nil);
    assert!(matches!(ok(con, &[b"KEYTIME", b"k1"]), Value::Int(t) if t > 1_600_000_000));
    assert_eq!(ok(con, &[b"KEYTIME", b"nope"]), Value::Nil);
    assert_eq!(ok(con, &[b"DBSIZE"]), Value::Int(3));
    // Insertion order of the live versions: k2, k3, k1 (k1 was rewritten last).
    assert_eq!(
        scan_all(con, true),
        vec![b"k2".to_vec(), b"k3".to_vec(), b"k1".to_vec()]
    );
    assert_eq!(
        scan_all(con, false),
        vec![b"k1".to_vec(), b"k3".to_vec(), b"k2".to_vec()]
    );
    let cursor = bytes(ok(con, &[b"KEYCUR", b"k2"]));
    assert_eq!(cursor.len(), 17);
    let page = array(ok(con, &[b"SCAN", &cursor]));
    let first = array(array(page[1].clone())[0].clone());
    assert_eq!(first[0], bulk(b"k3"));
    assert_eq!(err(con, &[b"KEYCUR", b"nope"]), "Key not found");
    assert_eq!(err(con, &[b"SCAN", b"short"]), "Invalid key format");
    assert_eq!(err(con, &[b"SCAN", &[0xFFu8; 17]]), "Invalid index");
    assert_eq!(err(con, &[b"SCAN", b"a", b"b"]), "Unexpected arguments");
    // History: k1 has two versions.
    let latest = array(ok(con, &[b"HISTORY", b"k1"]));
    assert_eq!(latest[2], bulk(b"v1b"));
    let previous = bytes(latest[0].clone());
    let older = array(ok(con, &[b"HISTORY", b"k1", &previous]));
    assert_eq!(
        (older[0].clone(), older[2].clone()),
        (Value::Nil, bulk(b"v1"))
    );
    assert_eq!(err(con, &[b"HISTORY", b"nope"]), "Key not found");
    assert_eq!(
        err(con, &[b"HISTORY", b"k3", &previous]),
        "Invalid arguments (invalid key)"
    );
    assert_eq!(
        err(con, &[b"HISTORY", b"k1", b"short"]),
        "Invalid arguments (index query)"
    );
    assert_eq!(err(con, &[b"HISTORY"]), "Invalid arguments");
    assert_eq!(ok(con, &[b"DEL", b"k3"]), Value::Okay);
    assert_eq!(err(con, &[b"DEL", b"k3"]), "Key not found");
    assert_eq!(err(con, &[b"DEL"]), "Unexpected arguments");
    assert_eq!(ok(con, &[b"GET", b"k3"]), Value::Nil);
    assert_eq!(ok(con, &[b"EXISTS", b"k3"]), Value::Int(0));
    assert_eq!(ok(con, &[b"DBSIZE"]), Value::Int(2));
    let info = text(ok(con, &[b"INFO"]));
    assert!(info.contains("sequential_key_size: 8\n"), "{info}");
    assert_eq!(
        err(con, &[b"KSCAN", b"k"]),
        "Command disabled in release code, not yet available"
    );
    assert_eq!(err(con, &[b"NOPE"]), "Command not supported");
    assert_eq!(err(con, &[b"STOP"]), "Unauthorized");
    assert_eq!(err(con, &[b"*"]), "This is not a valid command");
    // Pipelined batch: replies come back in order.
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("p{i}")).arg(i);
    }
    let replies: Vec<Value> = pipe.query(con).unwrap();
    assert_eq!(replies.len(), 500);
    assert_eq!(replies[499], bulk(b"p499"));
    assert_eq!(ok(con, &[b"DBSIZE"]), Value::Int(502));
    // Values up to the 8 MiB limit.
    let big = vec![7u8; 8 * 1024 * 1024];
    assert_eq!(ok(con, &[b"SET", b"big", &big]), bulk(b"big"));
    assert_eq!(ok(con, &[b"GET", b"big"]), bulk(&big));
}

fn seq_mode_commands(con: &mut Connection) {
    let id0 = bytes(ok(con, &[b"SET", b"", b"first"]));
    let id1 = bytes(ok(con, &[b"SET", b"", b"second"]));
    assert_eq!(id0, 0u64.to_le_bytes());
    assert_eq!(id1, 1u64.to_le_bytes());
    assert_eq!(ok(con, &[b"GET", &id0]), bulk(b"first"));
    assert_eq!(ok(con, &[b"SET", &id0, b"first-b"]), bulk(&id0));
    assert_eq!(ok(con, &[b"GET", &id0]), bulk(b"first-b"));
    assert_eq!(
        err(con, &[b"SET", &9u64.to_le_bytes(), b"x"]),
        "Invalid key, only update authorized"
    );
    assert_eq!(
        err(con, &[b"SET", b"abc", b"x"]),
        "Invalid key, only update authorized"
    );
    assert_eq!(ok(con, &[b"LENGTH", &id1]), Value::Int(6));
    assert_eq!(ok(con, &[b"DBSIZE"]), Value::Int(2));
    assert_eq!(scan_all(con, true), vec![id1.clone(), id0.clone()]);
    let history = array(ok(con, &[b"HISTORY", &id0]));
    let older = array(ok(con, &[b"HISTORY", &id0, &bytes(history[0].clone())]));
    assert_eq!(older[2], bulk(b"first"));
    assert_eq!(ok(con, &[b"DEL", &id1]), Value::Okay);
    assert_eq!(ok(con, &[b"GET", &id1]), Value::Nil);
    assert_eq!(err(con, &[b"DEL", &id1]), "Key not found");
    // The overwrite of id 0 spent id 2, as in 0-db.
    let id3 = bytes(ok(con, &[b"SET", b"", b"third"]));
    assert_eq!(id3, 3u64.to_le_bytes());
    assert_eq!(ok(con, &[b"GET", &2u64.to_le_bytes()]), Value::Nil);
    assert!(text(ok(con, &[b"NSINFO", b"default"])).contains("mode: sequential\n"));
}

#[test]
fn user_mode_over_tcp_and_unix_socket() {
    let server = Server::start(&["--mode", "user"]);
    user_mode_commands(&mut server.tcp());
    let mut unix = server.unix();
    assert_eq!(ok(&mut unix, &[b"GET", b"k1"]), bulk(b"v1b"));
    assert_eq!(ok(&mut unix, &[b"DEL", b"k1"]), Value::Okay);
    assert_eq!(ok(&mut unix, &[b"DBSIZE"]), Value::Int(502));
    let other = Server::start(&["--mode", "user"]);
    user_mode_commands(&mut other.unix());
}

#[test]
fn seq_mode_over_tcp_and_unix_socket() {
    let server = Server::start(&["--mode", "seq"]);
    seq_mode_commands(&mut server.tcp());
    let other = Server::start(&["--mode", "seq"]);
    seq_mode_commands(&mut other.unix());
}

#[test]
fn data_survives_clean_restart_and_crash() {
    let mut server = Server::start(&["--mode", "user", "--datasize", "512k"]);
    let mut con = server.tcp();
    let value = vec![b'x'; 10_000];
    for i in 0..200 {
        ok(&mut con, &[b"SET", format!("key{i}").as_bytes(), &value]);
    }
    ok(&mut con, &[b"DEL", b"key7"]);
    server.restart();
    let mut con = server.unix();
    assert_eq!(ok(&mut con, &[b"DBSIZE"]), Value::Int(199));
    assert_eq!(ok(&mut con, &[b"GET", b"key199"]), bulk(&value));
    assert_eq!(ok(&mut con, &[b"GET", b"key7"]), Value::Nil);
    let info = text(ok(&mut con, &[b"NSINFO", b"default"]));
    assert!(info.contains("data_current_id: 3\n"), "{info}");
    ok(&mut con, &[b"SET", b"after", b"restart"]);
    server.crash_and_restart();
    let mut con = server.tcp();
    assert_eq!(ok(&mut con, &[b"GET", b"after"]), bulk(b"restart"));
    assert_eq!(ok(&mut con, &[b"DBSIZE"]), Value::Int(200));
}

/// A killed process loses nothing it acknowledged: without `--sync` a write is acknowledged once
/// the OS has it, and the page cache outlives the process (a power cut is `power_loss`'s).
#[test]
fn acknowledged_writes_survive_a_process_kill() {
    acknowledged_writes_survive_kill_9(&["--mode", "user"]);
}

/// The same with group commit across two threads (`--sync`, so its path is the one killed).
#[test]
fn acknowledged_writes_survive_a_process_kill_on_two_threads() {
    acknowledged_writes_survive_kill_9(&["--mode", "seq", "--sync", "--threads", "2"]);
}

fn acknowledged_writes_survive_kill_9(flags: &[&str]) {
    let mut server = Server::start(flags);
    let mut writers = Writers::start(&server, flags.contains(&"seq"), 0);
    writers.wait_for(400);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let acked = writers.finish();
    server.respawn();
    assert_all_kept(&mut server.tcp(), &acked);
}

/// A key and the value the server acknowledged for it.
type Acked = Vec<(Vec<u8>, Vec<u8>)>;

/// Four clients each writing distinct values as fast as the server takes them, until it goes away.
struct Writers {
    acks: std::sync::mpsc::Receiver<()>,
    seen: usize,
    threads: Vec<std::thread::JoinHandle<Acked>>,
}

impl Writers {
    /// Values are padded to `pad_bytes` (so that data files rotate); user-mode keys are the values'
    /// names, seq-mode keys the ids the server hands out.
    fn start(server: &Server, seq: bool, pad_bytes: usize) -> Writers {
        let (tx, acks) = std::sync::mpsc::sync_channel::<()>(1024);
        let threads = (0..4)
            .map(|w| {
                let mut con = server.tcp();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0.. {
                        let name = format!("w{w}-{i}");
                        let mut value = name.clone().into_bytes();
                        value.resize(value.len().max(pad_bytes), b'.');
                        let key: &[u8] = if seq { b"" } else { name.as_bytes() };
                        match call(&mut con, &[b"SET", key, &value]) {
                            Ok(Value::BulkString(key)) => {
                                acked.push((key, value));
                                if tx.send(()).is_err() {
                                    break;
                                }
                            }
                            Ok(other) => panic!("unexpected SET reply {other:?}"),
                            Err(_) => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        Writers {
            acks,
            seen: 0,
            threads,
        }
    }

    /// Returns once `n` writes in all were acknowledged.
    fn wait_for(&mut self, n: usize) {
        while self.seen < n {
            self.acks.recv().unwrap();
            self.seen += 1;
        }
    }

    /// Every acknowledged write, once the server went away.
    fn finish(self) -> Acked {
        drop(self.acks);
        let acked: Acked = self
            .threads
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        assert!(acked.len() >= self.seen);
        acked
    }
}

/// Every acknowledged write reads back.
fn assert_all_kept(con: &mut Connection, acked: &Acked) {
    for (key, value) in acked {
        assert_eq!(
            ok(con, &[b"GET", key]),
            bulk(value),
            "lost {}",
            String::from_utf8_lossy(&value[..value.len().min(12)])
        );
    }
}

#[test]
fn bad_frames_close_only_their_connection() {
    let server = Server::start(&[]);
    let mut good = server.tcp();
    let cases: [(&[u8], &str); 5] = [
        (b"PING\r\n", "-Malformed request, array expected\r\n"),
        (b"*0\r\n", "-Missing arguments\r\n"),
        (b"*1025\r\n", "-Too many arguments\r\n"),
        (b"*1\r\n:1\r\n", "-Malformed query string\r\n"),
        (b"*2\r\n$3\r\nSET\r\n$8388609\r\n", "-Payload too big\r\n"),
    ];
    for (input, expected) in cases {
        let mut raw = server.raw();
        raw.write_all(input).unwrap();
        let mut reply = Vec::new();
        raw.read_to_end(&mut reply).unwrap();
        assert_eq!(String::from_utf8_lossy(&reply), expected);
    }
    assert_eq!(ok(&mut good, &[b"PING"]), status("PONG"));
    // A frame split across writes is assembled.
    let mut raw = server.raw();
    raw.write_all(b"*1\r\n$4\r\nPI").unwrap();
    raw.flush().unwrap();
    raw.write_all(b"NG\r\n*1\r\n$4\r\nPING\r\n").unwrap();
    let mut reply = [0u8; 14];
    raw.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+PONG\r\n+PONG\r\n");
}

#[test]
fn namespaces_authentication_and_properties() {
    let server = Server::start(&["--admin", "secret"]);
    let mut admin = server.tcp();
    let mut user = server.unix();
    assert_eq!(err(&mut user, &[b"NSNEW", b"x"]), "Permission denied");
    assert_eq!(err(&mut admin, &[b"AUTH", b"wrong"]), "Access denied");
    assert_eq!(
        err(&mut admin, &[b"AUTH", &[b'p'; 129]]),
        "Password too long"
    );
    assert_eq!(ok(&mut admin, &[b"AUTH", b"secret"]), Value::Okay);
    // Challenge-response authentication on another connection.
    let mut secure = server.tcp();
    let nonce = text(ok(&mut secure, &[b"AUTH", b"SECURE", b"CHALLENGE"]));
    assert_eq!(nonce.len(), 16);
    let proof = sha1_hex(&format!("{nonce}:secret"));
    assert_eq!(
        ok(&mut secure, &[b"AUTH", b"SECURE", proof.as_bytes()]),
        Value::Okay
    );
    assert_eq!(
        err(&mut secure, &[b"AUTH", b"SECURE", proof.as_bytes()]),
        "No CHALLENGE requested, secure authentication not available"
    );
    assert_eq!(ok(&mut admin, &[b"NSNEW", b"x"]), Value::Okay);
    assert_eq!(
        err(&mut admin, &[b"NSNEW", b"x"]),
        "This namespace is not available"
    );
    assert_eq!(
        err(&mut admin, &[b"NSNEW", b"default"]),
        "This name is not allowed"
    );
    assert_eq!(
        err(&mut admin, &[b"NSNEW", b"a/b"]),
        "This name is not allowed"
    );
    assert_eq!(
        err(&mut admin, &[b"NSNEW", &[b'n'; 129]]),
        "Namespace too long"
    );
    let list: Vec<String> = array(ok(&mut admin, &[b"NSLIST"]))
        .into_iter()
        .map(text)
        .collect();
    assert_eq!(list, vec!["default", "x"]);
    // Password and public flag.
    ok(&mut admin, &[b"NSSET", b"x", b"password", b"pw"]);
    ok(&mut admin, &[b"NSSET", b"x", b"public", b"0"]);
    assert_eq!(
        err(&mut user, &[b"SELECT", b"x"]),
        "Namespace protected and private"
    );
    assert_eq!(err(&mut user, &[b"SELECT", b"x", b"bad"]), "Access denied");
    assert_eq!(err(&mut user, &[b"SELECT", b"nope"]), "Namespace not found");
    assert_eq!(
        err(&mut user, &[b"SELECT", b"x", b"a", b"b", b"c"]),
        "Too many arguments"
    );
    assert_eq!(
        err(&mut user, &[b"SELECT", b"x", b"PLAIN", b"b"]),
        "Only SECURE extra method supported"
    );
    assert_eq!(
        err(&mut user, &[b"SELECT", b"x", b"SECURE", b"b"]),
        "No CHALLENGE requested, secure authentication not available"
    );
    assert_eq!(ok(&mut user, &[b"SELECT", b"x", b"pw"]), Value::Okay);
    assert_eq!(ok(&mut user, &[b"SET", b"a", b"1"]), bulk(b"a"));
    let nonce = text(ok(&mut user, &[b"AUTH", b"SECURE", b"CHALLENGE"]));
    assert_eq!(
        err(&mut user, &[b"SELECT", b"x", b"SECURE", b"abc"]),
        "Invalid hash length"
    );
    let proof = sha1_hex(&format!("{nonce}:pw"));
    assert_eq!(
        ok(&mut user, &[b"SELECT", b"x", b"SECURE", proof.as_bytes()]),
        Value::Okay
    );
    // Public with a password: read-only without it.
    ok(&mut admin, &[b"NSSET", b"x", b"public", b"1"]);
    let mut reader = server.tcp();
    assert_eq!(ok(&mut reader, &[b"SELECT", b"x"]), Value::Okay);
    assert_eq!(ok(&mut reader, &[b"GET", b"a"]), bulk(b"1"));
    assert_eq!(
        err(&mut reader, &[b"SET", b"b", b"2"]),
        "Namespace is in read-only mode"
    );
    assert_eq!(
        err(&mut reader, &[b"FLUSH"]),
        "Namespace is in read-only mode"
    );
    // Quota, worm, lock, freeze.
    ok(&mut admin, &[b"NSSET", b"x", b"maxsize", b"10"]);
    assert_eq!(
        err(&mut user, &[b"SET", b"b", b"0123456789"]),
        "No space left on this namespace"
    );
    assert_eq!(ok(&mut user, &[b"SET", b"b", b"012345678"]), bulk(b"b"));
    ok(&mut admin, &[b"NSSET", b"x", b"maxsize", b"0"]);
    ok(&mut admin, &[b"NSSET", b"x", b"worm", b"1"]);
    assert_eq!(
        err(&mut user, &[b"SET", b"a", b"2"]),
        "Namespace is protected by worm mode"
    );
    assert_eq!(
        err(&mut user, &[b"DEL", b"a"]),
        "Cannot delete a key when namespace is in worm mode"
    );
    ok(&mut admin, &[b"NSSET", b"x", b"worm", b"0"]);
    ok(&mut admin, &[b"NSSET", b"x", b"lock", b"1"]);
    assert_eq!(
        err(&mut user, &[b"SET", b"a", b"2"]),
        "Namespace is temporarily locked (read-only)"
    );
    assert_eq!(ok(&mut user, &[b"GET", b"a"]), bulk(b"1"));
    ok(&mut admin, &[b"NSSET", b"x", b"lock", b"0"]);
    ok(&mut admin, &[b"NSSET", b"x", b"freeze", b"1"]);
    assert_eq!(
        err(&mut user, &[b"GET", b"a"]),
        "Namespace is temporarily frozen (read-write disabled)"
    );
    ok(&mut admin, &[b"NSSET", b"x", b"freeze", b"0"]);
    assert_eq!(
        err(&mut admin, &[b"NSSET", b"default", b"password", b"p"]),
        "Cannot update default namespace"
    );
    assert_eq!(
        err(&mut admin, &[b"NSSET", b"x", b"bogus", b"1"]),
        "Invalid property"
    );
    assert_eq!(
        err(&mut admin, &[b"NSSET", b"x", b"mode", b"fancy"]),
        "Invalid property value (expected: user, seq)"
    );
    assert_eq!(
        err(&mut admin, &[b"NSSET", b"x", b"mode", b"seq"]),
        "Cannot change mode of used namespace"
    );
    assert_eq!(
        err(&mut admin, &[b"NSSET", b"nope", b"worm", b"1"]),
        "Namespace not found"
    );
    assert_eq!(
        err(&mut user, &[b"NSSET", b"x", b"worm", b"1"]),
        "Permission denied"
    );
    let info = text(ok(&mut admin, &[b"NSINFO", b"x"]));
    for line in [
        "entries: 2\n",
        "password: yes\n",
        "public: yes\n",
        "mode: userkey\n",
        "data_size_bytes: 10\n",
    ] {
        assert!(info.contains(line), "{line} missing in {info}");
    }
    assert_eq!(
        err(&mut admin, &[b"NSINFO", b"nope"]),
        "Namespace not found"
    );
    // Mode per namespace (the server runs without --mode).
    ok(&mut admin, &[b"NSNEW", b"s"]);
    ok(&mut admin, &[b"NSSET", b"s", b"mode", b"seq"]);
    assert!(text(ok(&mut admin, &[b"NSINFO", b"s"])).contains("mode: sequential\n"));
    // FLUSH: only a private namespace with a password.
    assert_eq!(
        err(&mut admin, &[b"FLUSH"]),
        "Flushing public namespace denied"
    );
    ok(&mut admin, &[b"NSSET", b"x", b"public", b"0"]);
    assert_eq!(ok(&mut user, &[b"FLUSH"]), Value::Okay);
    assert_eq!(ok(&mut user, &[b"DBSIZE"]), Value::Int(0));
    ok(&mut user, &[b"SET", b"c", b"3"]);
    // NSJUMP, INDEX DIRTY, DATA RAW, RELOAD.
    ok(&mut admin, &[b"SELECT", b"x", b"pw"]);
    assert_eq!(
        ok(&mut admin, &[b"INDEX", b"DIRTY"]),
        Value::Array(vec![Value::Int(0)])
    );
    assert_eq!(ok(&mut admin, &[b"INDEX", b"DIRTY", b"RESET"]), Value::Okay);
    assert_eq!(ok(&mut admin, &[b"INDEX", b"DIRTY"]), Value::Array(vec![]));
    assert_eq!(
        err(&mut admin, &[b"INDEX", b"CLEAN"]),
        "Unknown INDEX subcommand"
    );
    assert_eq!(
        err(&mut admin, &[b"INDEX", b"DIRTY", b"X"]),
        "Unknown INDEX DIRTY subcommand"
    );
    let raw = array(ok(&mut admin, &[b"DATA", b"RAW", b"0", b"16"]));
    assert_eq!((raw[0].clone(), raw[5].clone()), (bulk(b"c"), bulk(b"3")));
    assert!(text(raw[2].clone()).starts_with("0x"));
    assert_eq!(err(&mut admin, &[b"DATA", b"RAW", b"0", b"99999"]), "EOF");
    assert_eq!(
        err(&mut admin, &[b"DATA", b"RAW", b"0", b"17"]),
        "Invalid Request"
    );
    assert_eq!(
        err(&mut admin, &[b"DATA", b"COOKED"]),
        "Unknown DATA subcommand"
    );
    assert_eq!(
        err(&mut user, &[b"DATA", b"RAW", b"0", b"16"]),
        "Permission denied"
    );
    assert_eq!(ok(&mut admin, &[b"NSJUMP"]), Value::Okay);
    assert!(text(ok(&mut admin, &[b"NSINFO", b"x"])).contains("data_current_id: 1\n"));
    ok(&mut user, &[b"SET", b"d", b"4"]);
    assert_eq!(ok(&mut admin, &[b"RELOAD", b"x"]), Value::Okay);
    assert_eq!(
        err(&mut admin, &[b"RELOAD", b"nope"]),
        "Namespace not found"
    );
    assert_eq!(
        ok(&mut user, &[b"MGET", b"c", b"d"]),
        Value::Array(vec![bulk(b"3"), bulk(b"4")])
    );
    assert!(matches!(ok(&mut admin, &[b"HOOKS"]), Value::Array(_)));
    // NSDEL.
    assert_eq!(
        err(&mut admin, &[b"NSDEL", b"default"]),
        "Cannot remove default namespace"
    );
    assert_eq!(
        err(&mut admin, &[b"NSDEL", b"nope"]),
        "This namespace doesn't exists"
    );
    assert_eq!(
        err(&mut admin, &[b"NSDEL", b"x"]),
        "Cannot remove namespace you're currently using."
    );
    ok(&mut admin, &[b"SELECT", b"default"]);
    assert_eq!(ok(&mut admin, &[b"NSDEL", b"x"]), Value::Okay);
    assert_eq!(
        err(&mut user, &[b"GET", b"c"]),
        "Your active namespace is not available anymore (probably removed)."
    );
    assert_eq!(err(&mut admin, &[b"AUTH"]), "Unexpected arguments");
}

#[test]
fn protect_and_fixed_mode_and_disabled_auth() {
    let server = Server::start(&["--admin", "secret", "--protect", "--mode", "user"]);
    let mut con = server.tcp();
    assert_eq!(
        err(&mut con, &[b"SET", b"a", b"1"]),
        "Namespace is in read-only mode"
    );
    assert_eq!(
        err(&mut con, &[b"SELECT", b"default", b"wrong"]),
        "Access denied"
    );
    assert_eq!(
        ok(&mut con, &[b"SELECT", b"default", b"secret"]),
        Value::Okay
    );
    assert_eq!(ok(&mut con, &[b"SET", b"a", b"1"]), bulk(b"a"));
    assert_eq!(
        err(&mut con, &[b"SET", b"a", b"2", b"12345"]),
        "Permission denied"
    );
    ok(&mut con, &[b"AUTH", b"secret"]);
    ok(&mut con, &[b"NSNEW", b"n"]);
    assert_eq!(
        err(&mut con, &[b"NSSET", b"n", b"mode", b"seq"]),
        "This server instance is configured to use a single runtime mode"
    );
    // Admin may set the timestamp.
    ok(&mut con, &[b"SET", b"t", b"v", b"12345"]);
    assert_eq!(ok(&mut con, &[b"KEYTIME", b"t"]), Value::Int(12345));
    let open = Server::start(&[]);
    let mut o = open.tcp();
    assert_eq!(err(&mut o, &[b"AUTH", b"x"]), "Authentication disabled");
    // Challenges work without an admin password: SELECT ... SECURE needs them.
    ok(&mut o, &[b"NSNEW", b"p"]);
    ok(&mut o, &[b"NSSET", b"p", b"password", b"pw"]);
    let nonce = text(ok(&mut o, &[b"AUTH", b"SECURE", b"CHALLENGE"]));
    let proof = sha1_hex(&format!("{nonce}:pw"));
    assert_eq!(
        ok(&mut o, &[b"SELECT", b"p", b"SECURE", proof.as_bytes()]),
        Value::Okay
    );
    assert_eq!(
        err(&mut o, &[b"SELECT", b"p", b"SECURE", &[b'0'; 40]]),
        "Access denied"
    );
}

/// Offset the next data entry of the client's namespace will take (NSINFO, as admin).
fn next_data_offset(con: &mut Connection) -> Vec<u8> {
    let info = text(ok(con, &[b"NSINFO", b"default"]));
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("data_current_offset: "))
        .unwrap_or_else(|| panic!("no offset in {info}"));
    line.as_bytes().to_vec()
}

/// `DEL key extra` as 0-db answers it (zdbd/commands_dataset.c): a third argument is the deletion's
/// timestamp, admin-only, read with `atoll` (so a word is 0 and digits count up to the first other
/// byte) and kept in 32 bits; more arguments are refused. Checked with and without `--admin`.
#[test]
fn del_with_an_extra_argument_is_an_admin_timestamp_as_in_0db() {
    // Without --admin every client is admin.
    let open = Server::start(&["--mode", "user"]);
    let mut con = open.tcp();
    for (extra, ts) in [
        (&b"extra"[..], 0),
        (b" 12345xyz", 12345),
        (b"-1", i64::from(u32::MAX)),
        (b"4294967297", 1),
    ] {
        ok(&mut con, &[b"SET", b"k", b"v"]);
        let marker = next_data_offset(&mut con);
        assert_eq!(
            ok(&mut con, &[b"DEL", b"k", extra]),
            Value::Okay,
            "{extra:?}"
        );
        assert_eq!(ok(&mut con, &[b"GET", b"k"]), Value::Nil);
        let raw = array(ok(&mut con, &[b"DATA", b"RAW", b"0", &marker]));
        assert_eq!(
            (raw[0].clone(), raw[4].clone(), raw[5].clone()),
            (bulk(b"k"), Value::Int(ts), Value::Nil),
            "marker of DEL k {extra:?}"
        );
    }
    ok(&mut con, &[b"SET", b"k", b"v"]);
    assert_eq!(
        err(&mut con, &[b"DEL", b"k", b"1", b"2"]),
        "Unexpected arguments"
    );
    assert_eq!(err(&mut con, &[b"DEL", b""]), "Invalid argument");
    assert_eq!(err(&mut con, &[b"DEL", b"", b"1"]), "Key not found");
    assert_eq!(err(&mut con, &[b"DEL", b"missing", b"1"]), "Key not found");
    assert_eq!(err(&mut con, &[b"DEL", &[b'k'; 256]]), "Invalid key");
    assert_eq!(err(&mut con, &[b"DEL", &[b'k'; 256], b"1"]), "Invalid key");
    assert_eq!(ok(&mut con, &[b"GET", b"k"]), bulk(b"v"));
    // Sequential mode takes the same path.
    let seq = Server::start(&["--mode", "seq"]);
    let mut con = seq.tcp();
    let id = bytes(ok(&mut con, &[b"SET", b"", b"v"]));
    assert_eq!(ok(&mut con, &[b"DEL", &id, b"extra"]), Value::Okay);
    assert_eq!(ok(&mut con, &[b"GET", &id]), Value::Nil);
    // With --admin, a client that did not AUTH is refused before anything else.
    let guarded = Server::start(&["--mode", "user", "--admin", "secret"]);
    let mut con = guarded.tcp();
    ok(&mut con, &[b"SET", b"k", b"v"]);
    assert_eq!(err(&mut con, &[b"DEL", b"k", b"1"]), "Permission denied");
    assert_eq!(
        err(&mut con, &[b"DEL", b"missing", b"1"]),
        "Permission denied"
    );
    assert_eq!(
        err(&mut con, &[b"DEL", b"k", b"1", b"2"]),
        "Unexpected arguments"
    );
    assert_eq!(ok(&mut con, &[b"GET", b"k"]), bulk(b"v"));
    ok(&mut con, &[b"AUTH", b"secret"]);
    assert_eq!(ok(&mut con, &[b"DEL", b"k", b"extra"]), Value::Okay);
    assert_eq!(ok(&mut con, &[b"GET", b"k"]), Value::Nil);
}

#[test]
fn wait_blocks_one_client_until_another_runs_the_command() {
    let server = Server::start(&[]);
    let mut con = server.tcp();
    assert_eq!(err(&mut con, &[b"WAIT", b"SET", b"5"]), "Invalid timeout");
    assert_eq!(
        err(&mut con, &[b"WAIT", b"BOGUS"]),
        "Unknown command to watch"
    );
    assert_eq!(err(&mut con, &[b"WAIT"]), "Invalid arguments");
    assert_eq!(err(&mut con, &[b"WAIT", b"SET", b"100"]), "Timeout");
    let mut waiter = server.unix();
    let handle = std::thread::spawn(move || call(&mut waiter, &[b"WAIT", b"SET", b"20000"]));
    let mut i = 0;
    wait_until("the WAIT to return", || {
        i += 1;
        ok(&mut con, &[b"GET", b"x"]);
        ok(&mut con, &[b"SET", b"x", i.to_string().as_bytes()]);
        handle.is_finished()
    });
    assert_eq!(handle.join().unwrap(), Ok(status("SET")));
}

#[test]
fn hooks_run_on_events() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hooks.log");
    let script = dir.path().join("hook.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let server = Server::start(&["--hook", script.to_str().unwrap()]);
    let mut con = server.tcp();
    ok(&mut con, &[b"NSNEW", b"hooked"]);
    ok(&mut con, &[b"NSJUMP"]);
    wait_until("hooks to run", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("ready ") && text.contains("namespace-created") && text.contains("jump-data")
    });
    let runs = array(ok(&mut con, &[b"HOOKS"]));
    assert!(runs.len() >= 3, "{runs:?}");
}

#[test]
fn replica_follows_master_and_can_be_promoted() {
    for mode in ["user", "seq"] {
        let master = Server::start(&["--admin", "secret", "--mode", mode]);
        let replica = Server::start(&["--admin", "secret", "--mode", mode]);
        let mut m = master.tcp();
        ok(&mut m, &[b"AUTH", b"secret"]);
        let key = |i: u64| -> Vec<u8> {
            if mode == "user" {
                format!("k{i}").into_bytes()
            } else {
                i.to_le_bytes().to_vec()
            }
        };
        let set_key = |i: u64| -> Vec<u8> { if mode == "user" { key(i) } else { Vec::new() } };
        for i in 0..50u64 {
            ok(&mut m, &[b"SET", &set_key(i), format!("v{i}").as_bytes()]);
        }
        ok(&mut m, &[b"DEL", &key(3)]);
        ok(&mut m, &[b"NSNEW", b"other"]);
        ok(&mut m, &[b"NSSET", b"other", b"password", b"pw"]);
        let mut r = replica.tcp();
        ok(&mut r, &[b"AUTH", b"secret"]);
        assert_eq!(
            ok(
                &mut r,
                &[
                    b"REPLICAOF",
                    b"127.0.0.1",
                    master.port.to_string().as_bytes()
                ]
            ),
            Value::Okay
        );
        wait_until("the snapshot", || {
            ok(&mut r, &[b"DBSIZE"]) == Value::Int(49)
        });
        assert_eq!(ok(&mut r, &[b"GET", &key(10)]), bulk(b"v10"));
        assert_eq!(ok(&mut r, &[b"GET", &key(3)]), Value::Nil);
        // Live changes stream after the snapshot.
        ok(&mut m, &[b"SET", &key(10), b"changed"]);
        // In seq mode the overwrite of id 10 spent id 50, as 0-db's does.
        let fresh = bytes(ok(&mut m, &[b"SET", &set_key(50), b"v50"]));
        assert_eq!(fresh, if mode == "user" { key(50) } else { key(51) });
        ok(&mut m, &[b"DEL", &key(11)]);
        wait_until("the stream", || {
            ok(&mut r, &[b"GET", &fresh]) == bulk(b"v50")
                && ok(&mut r, &[b"GET", &key(11)]) == Value::Nil
        });
        assert_eq!(ok(&mut r, &[b"GET", &key(10)]), bulk(b"changed"));
        // Timestamps travel with the values.
        ok(&mut m, &[b"SET", &key(12), b"stamped", b"12345"]);
        wait_until("the timestamped value", || {
            ok(&mut r, &[b"GET", &key(12)]) == bulk(b"stamped")
        });
        assert_eq!(ok(&mut r, &[b"KEYTIME", &key(12)]), Value::Int(12345));
        assert_eq!(ok(&mut r, &[b"SELECT", b"other", b"pw"]), Value::Okay);
        ok(&mut r, &[b"SELECT", b"default"]);
        assert_eq!(
            err(&mut r, &[b"SET", &set_key(60), b"x"]),
            "This instance is a read-only replica"
        );
        // Promotion.
        assert_eq!(ok(&mut r, &[b"REPLICAOF", b"NO", b"ONE"]), Value::Okay);
        let written = bytes(ok(&mut r, &[b"SET", &set_key(51), b"v51"]));
        // Seq mode: the replica spent ids for the two overwrites it replayed, as the master did.
        assert_eq!(written, if mode == "user" { key(51) } else { key(53) });
        assert_eq!(ok(&mut r, &[b"DBSIZE"]), Value::Int(50));
        assert_eq!(err(&mut r, &[b"REPLICAOF", b"x"]), "Unexpected arguments");
    }
}

/// SHA-1 in hex through the system's `sha1sum`, an implementation independent of the server's.
fn sha1_hex(input: &str) -> String {
    let mut child = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..40].to_owned()
}
