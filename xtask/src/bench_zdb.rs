//! `cargo xtask bench zdb`: runs Debian's `redis-benchmark` against `zdb` and against
//! `redis-server --appendonly yes` on the same machine in one run (SET and GET, random keys, 50
//! clients, without pipelining and with `-P 16`), alternating which server goes first, prints the
//! median of each cell over several rounds and the median ratio zdb/redis of back-to-back pairs,
//! then loads 1,000,000 keys into fresh instances of both and
//! reports their resident memory.
//!
//! Options: `--rounds N` (default 5), `--requests N` (per unpipelined run, default 200000; the
//! pipelined runs use 5x as many).

use crate::setup;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: u32 = 50;
const KEYSPACE: u32 = 1_000_000;
const MEMORY_KEYS: u32 = 1_000_000;
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A server started for the benchmark, stopped by its PID when dropped.
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        setup::stop(&mut self.child);
    }
}

impl Server {
    fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .context("no VmRSS line")
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let mut rounds = 5usize;
    let mut requests = 200_000u32;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rounds" => rounds = it.next().context("--rounds N")?.parse()?,
            "--requests" => requests = it.next().context("--requests N")?.parse()?,
            other => bail!("unknown option {other:?} (expected --rounds N, --requests N)"),
        }
    }
    setup::ensure_debian_packages(setup::BENCH_ZDB_PACKAGES)?;
    setup::run(Command::new("cargo").args(["build", "--release", "-p", "zdb"]))?;
    let zdb_bin = setup::target_dir().join("release/zdb");
    let work = std::env::temp_dir().join(format!("zdb-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = bench(&zdb_bin, &work, rounds, requests);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// One cell of the table: (label, redis-benchmark test name, pipeline depth).
const CELLS: [(&str, &str, u32); 4] = [
    ("SET  P=1 ", "SET", 1),
    ("GET  P=1 ", "GET", 1),
    ("SET  P=16", "SET", 16),
    ("GET  P=16", "GET", 16),
];

fn bench(zdb_bin: &Path, work: &Path, rounds: usize, requests: u32) -> Result<()> {
    let zdb = start_zdb(zdb_bin, &work.join("zdb"))?;
    let redis = start_redis(&work.join("redis"))?;
    // Same warm-up for both: most keys of the key space exist before the first measured GET.
    for server in [&zdb, &redis] {
        redis_benchmark(server.port, 16, KEYSPACE)?;
    }
    // rps[server][cell] per round, and the ratio of each back-to-back pair.
    let mut rps = vec![vec![Vec::new(); CELLS.len()]; 2];
    let mut ratios = vec![Vec::new(); CELLS.len()];
    for round in 0..rounds {
        for pipeline in [1u32, 16] {
            let n = if pipeline == 1 {
                requests
            } else {
                requests * 5
            };
            // Alternate who goes first, so a drift in machine load does not favour one side.
            let order: [(usize, &Server); 2] = if round % 2 == 0 {
                [(0, &zdb), (1, &redis)]
            } else {
                [(1, &redis), (0, &zdb)]
            };
            for (s, server) in order {
                let results = redis_benchmark(server.port, pipeline, n)?;
                for (c, (_, test, p)) in CELLS.iter().enumerate() {
                    if *p == pipeline {
                        let value = results
                            .iter()
                            .find(|(t, _)| t == test)
                            .map(|(_, v)| *v)
                            .with_context(|| format!("no {test} result from {}", server.name))?;
                        rps[s][c].push(value);
                    }
                }
            }
            for (c, (_, _, p)) in CELLS.iter().enumerate() {
                if *p == pipeline {
                    ratios[c].push(rps[0][c][round] / rps[1][c][round]);
                }
            }
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    drop(zdb);
    drop(redis);
    println!();
    println!(
        "redis-benchmark -t set,get -c {CLIENTS} -r {KEYSPACE} -n {requests} (-P 16: -n {}), {rounds} rounds",
        requests * 5
    );
    println!(
        "zdb --mode user (no --sync)  vs  redis-server --appendonly yes (appendfsync everysec)"
    );
    println!("medians of requests/s, and the median of the ratios of back-to-back pairs:");
    println!(
        "{:<10} {:>12} {:>12} {:>10}",
        "cell", "zdb", "redis", "zdb/redis"
    );
    for (c, (label, _, _)) in CELLS.iter().enumerate() {
        let z = median(&mut rps[0][c]);
        let r = median(&mut rps[1][c]);
        let ratio = median(&mut ratios[c]);
        println!("{label:<10} {z:>12.0} {r:>12.0} {ratio:>10.2}");
    }
    // Memory for 1,000,000 keys, fresh instances of both.
    let zdb = start_zdb(zdb_bin, &work.join("zdb-mem"))?;
    let redis = start_redis(&work.join("redis-mem"))?;
    let zdb_before = zdb.rss_kib()?;
    let redis_before = redis.rss_kib()?;
    load_keys(zdb.port, MEMORY_KEYS)?;
    load_keys(redis.port, MEMORY_KEYS)?;
    let (zdb_rss, redis_rss) = (zdb.rss_kib()?, redis.rss_kib()?);
    println!();
    println!("resident memory after {MEMORY_KEYS} keys (key:%012d, 3-byte values), VmRSS:");
    println!(
        "zdb   {:>8.1} MiB (empty: {:.1} MiB)",
        zdb_rss as f64 / 1024.0,
        zdb_before as f64 / 1024.0
    );
    println!(
        "redis {:>8.1} MiB (empty: {:.1} MiB)",
        redis_rss as f64 / 1024.0,
        redis_before as f64 / 1024.0
    );
    println!("ratio zdb/redis: {:.2}", zdb_rss as f64 / redis_rss as f64);
    Ok(())
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_zdb(bin: &Path, dir: &Path) -> Result<Server> {
    std::fs::create_dir_all(dir)?;
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1", "--port", "0", "--mode", "user"])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--index")
        .arg(dir.join("index"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut stdout = BufReader::new(child.stdout.take().context("zdb stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("unexpected first line from zdb: {line:?}"))?;
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let server = Server {
        name: "zdb",
        child,
        port,
    };
    wait_ready(port)?;
    Ok(server)
}

fn start_redis(dir: &Path) -> Result<Server> {
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--appendonly", "yes", "--save", ""])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server")?;
    let server = Server {
        name: "redis",
        child,
        port,
    };
    wait_ready(port)?;
    Ok(server)
}

/// Polls PING until the server answers, with a deadline.
fn wait_ready(port: u16) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let mut reply = [0u8; 7];
            if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
                && stream.read_exact(&mut reply).is_ok()
                && &reply == b"+PONG\r\n"
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("server on port {port} did not answer PING");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one redis-benchmark (SET then GET) and returns requests/s per test.
fn redis_benchmark(port: u16, pipeline: u32, requests: u32) -> Result<Vec<(String, f64)>> {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set,get", "-c", &CLIENTS.to_string()])
        .args(["-r", &KEYSPACE.to_string(), "-n", &requests.to_string()])
        .args(["-P", &pipeline.to_string(), "--csv"])
        .stderr(Stdio::null())
        .output()
        .context("running redis-benchmark")?;
    if !output.status.success() {
        bail!("redis-benchmark failed: {}", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
        if fields.len() >= 2
            && let Ok(rps) = fields[1].parse::<f64>()
        {
            out.push((fields[0].to_owned(), rps));
        }
    }
    Ok(out)
}

/// Writes `count` keys `key:%012d` with 3-byte values, pipelined in batches, and checks every reply.
fn load_keys(port: u16, count: u32) -> Result<()> {
    const BATCH: u32 = 1000;
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut line = String::new();
    let mut next = 0;
    while next < count {
        buf.clear();
        let end = (next + BATCH).min(count);
        for i in next..end {
            let key = format!("key:{i:012}");
            write!(
                buf,
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$3\r\nxxx\r\n",
                key.len()
            )?;
        }
        stream.write_all(&buf)?;
        for _ in next..end {
            line.clear();
            reader.read_line(&mut line)?;
            if line.starts_with('-') {
                bail!("SET failed: {}", line.trim());
            }
            if line.starts_with('$') && line.trim() != "$-1" {
                line.clear();
                reader.read_line(&mut line)?;
            }
        }
        next = end;
    }
    Ok(())
}
