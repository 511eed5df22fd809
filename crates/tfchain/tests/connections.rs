//! End-to-end checks of the node's RPC connection policy. A real node takes 1,000 idle WebSocket
//! connections from one local client, and another local client still connects, reads the status
//! and gets a transfer into a block, while a subscribed client keeps its connection and the node
//! closes the flood's sockets beyond the address's cap. A real `tfchain` process run with a
//! one-second idle time-out closes an idle WebSocket and keeps a subscribed one. Every wait is on a
//! condition with a generous deadline.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tfchain::limits::RPC_CONNECTIONS_PER_CLIENT_MAX;
use tfchain::listener::IDLE_TIMEOUT_ENV;
use tfchain::node::{Node, Role};
use tfchain::spec::ChainSpec;
use tfchain_client::Client;
use tfchain_client::api::TfchainApiClient;
use tfchain_runtime::{Call, balances};
use tfgrid_types::{Keypair, UNITS_PER_TFT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FLOOD: usize = 1_000;
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `what` to its end, or panics naming `step` after [`DEADLINE`].
async fn within<T>(step: &str, what: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, what)
        .await
        .unwrap_or_else(|_| panic!("{step}: nothing after {DEADLINE:?}"))
}

/// A WebSocket connection that completed its handshake and will send nothing more.
async fn idle_websocket(addr: SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.expect("connecting");
    socket
        .write_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .expect("sending the handshake");
    let mut reply = Vec::new();
    while !reply.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        let n = socket.read(&mut byte).await.expect("reading the handshake");
        assert_eq!(
            n,
            1,
            "closed during the handshake: {:?}",
            String::from_utf8_lossy(&reply)
        );
        reply.push(byte[0]);
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.1 101"),
        "handshake refused: {reply}"
    );
    socket
}

/// How many of `sockets` the server has closed (reading what it sent, without waiting).
fn closed_by_server(sockets: &mut [TcpStream]) -> usize {
    let mut buf = [0u8; 64];
    sockets
        .iter_mut()
        .filter(|socket| {
            loop {
                match socket.try_read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                    Err(_) => break true,
                }
            }
        })
        .count()
}

fn transfer_to_bob() -> Call {
    Call::Balances(balances::Call::Transfer {
        dest: Keypair::from_uri("//Bob").unwrap().account(),
        amount: UNITS_PER_TFT,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_websockets_from_one_local_client_locks_no_one_out() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Keypair::from_uri("//Alice").unwrap();
    let node = Node::start(
        ChainSpec::dev(),
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        Role::Solo(alice.clone()),
    )
    .await
    .unwrap();
    let url = format!("ws://{}", node.rpc_addr);
    // Like a node's chain session: connected before the flood, following finalized heads.
    let reporter = Client::connect(&url).await.unwrap();
    let mut heads = reporter.rpc().subscribe_finalized_heads().await.unwrap();

    let start = Instant::now();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(idle_websocket(node.rpc_addr).await);
    }
    eprintln!("{FLOOD} idle WebSockets opened in {:?}", start.elapsed());

    let start = Instant::now();
    let newcomer = within("a new client connects", Client::connect(&url))
        .await
        .expect("a new local client connects after the flood");
    let status = within("status", newcomer.rpc().status()).await.unwrap();
    eprintln!(
        "new client connected and read the status in {:?}",
        start.elapsed()
    );
    let included = within("a transfer", newcomer.execute(&alice, transfer_to_bob()))
        .await
        .expect("the transfer is included");
    assert!(included.height > status.height);
    eprintln!(
        "its transfer was in a finalized block after {:?}",
        start.elapsed()
    );

    let head = within("a head after the flood", heads.next()).await;
    assert!(head.expect("the subscription is open").is_ok());
    within("the subscribed client's status", reporter.rpc().status())
        .await
        .expect("the subscribed client kept its connection");

    // The flood holds no more than its address's share: the node closed the rest.
    let share = RPC_CONNECTIONS_PER_CLIENT_MAX as usize - 2;
    within("the node closes the flood beyond the cap", async {
        while closed_by_server(&mut flood) < FLOOD - share {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    drop(flood);
    within("the node stops", node.run_until(async {}))
        .await
        .unwrap();
}

/// A `tfchain --dev` process, killed when dropped.
struct NodeProcess {
    child: Child,
    rpc_addr: SocketAddr,
}

impl NodeProcess {
    /// Starts the node with `idle_timeout_s`, on a port of its choosing, which its log names.
    async fn start(dir: &Path, idle_timeout_s: u64) -> NodeProcess {
        let log_path = dir.join("tfchain.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tfchain"))
            .args(["--dev", "--rpc-addr", "127.0.0.1:0", "--base-path"])
            .arg(dir.join("data"))
            .env(IDLE_TIMEOUT_ENV, idle_timeout_s.to_string())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting tfchain");
        let mut node = NodeProcess {
            child,
            rpc_addr: "0.0.0.0:0".parse().unwrap(),
        };
        node.rpc_addr = within("the node's RPC address in its log", async {
            loop {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                let addr = text
                    .lines()
                    .filter(|l| l.contains("RPC listening"))
                    .flat_map(|l| l.split_whitespace())
                    .find_map(|word| word.strip_prefix("rpc_addr="));
                if let Some(addr) = addr {
                    return addr.parse().expect("an address");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        node
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_past_the_time_out_is_closed_a_subscribed_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), 1).await;
    let url = format!("ws://{}", node.rpc_addr);
    let subscriber = within("connecting", Client::connect(&url)).await.unwrap();
    let mut heads = subscriber.rpc().subscribe_finalized_heads().await.unwrap();

    let mut idle = idle_websocket(node.rpc_addr).await;
    let mut rest = Vec::new();
    within(
        "the server closes the idle connection",
        idle.read_to_end(&mut rest),
    )
    .await
    .expect("reading until the server closes");
    // Last, a WebSocket close frame (FIN, opcode 8) with status 1000 (normal), then the end.
    assert!(rest.ends_with(&[0x88, 2, 0x03, 0xe8]), "{rest:x?}");

    // The subscriber's connection is older than the idle one that was closed, and still served.
    let head = within("a head after the idle connection closed", heads.next()).await;
    assert!(head.expect("the subscription is open").is_ok());
    within("the subscriber's status", subscriber.rpc().status())
        .await
        .expect("the subscribed connection stayed open");
}
