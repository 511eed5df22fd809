//! `cargo xtask bench overlay` (as root): two nodes laid out as zos lays them out, and between
//! their network namespaces TCP throughput (`iperf3`, one stream and four) and round-trip time
//! (`busybox ping`) over our `znet` overlay, over Debian's `wireguard-go`, and over the bare veth
//! link, in one run, interleaved round by round; prints medians and the ratios znet/wireguard-go
//! and znet/bare.
//!
//! Each node is a host namespace (the node's own; a veth joins the two) and, per overlay, a network
//! namespace holding that overlay's TUN device. Both implementations run in the host namespace
//! (`nsenter --net`), create their TUN device there, which is then moved into the network namespace
//! (znet moves its own; wireguard-go's is moved after it starts, and it follows the device across
//! namespaces), and keep their UDP socket in the host namespace: the same veth, the same hops.
//! Everything made (namespaces, and with them links and devices; processes, by PID; files) is
//! undone on return, on error, and on SIGINT, SIGTERM or SIGHUP.
//!
//! Options: `--rounds N` (default 5), `--seconds S` (per iperf3 run, default 5), `--pings N` (per
//! ping run, default 200).

use crate::bench_zdb::median;
use crate::setup;
use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The veth's /24: host A is `.1`, host B `.2`.
const LINK_NET: &str = "192.168.100";
const ZNET_PORT: u16 = 51820;
const WIREGUARD_GO_PORT: u16 = 51821;
const IPERF_PORT: u16 = 5201;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Seconds between pings.
const PING_INTERVAL: &str = "0.01";
/// The overlay's MTU, as zos sets it.
const MTU: u16 = znet::MTU;

#[derive(Debug, Clone, Copy)]
struct Options {
    rounds: usize,
    seconds: u32,
    pings: u32,
}

pub fn run(args: &[String]) -> Result<()> {
    let mut options = Options {
        rounds: 5,
        seconds: 5,
        pings: 200,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => options.rounds = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            "--pings" => options.pings = value()?.parse()?,
            other => {
                bail!("unknown option {other:?} (expected --rounds N, --seconds S, --pings N)")
            }
        }
    }
    if options.rounds == 0 || options.pings == 0 {
        bail!("--rounds and --pings must be at least 1");
    }
    if !setup::is_root() {
        bail!(
            "cargo xtask bench overlay must run as root: it makes network namespaces, a veth link \
             and TUN devices (try `sudo -E env PATH=$PATH cargo xtask bench overlay`)"
        );
    }
    setup::ensure_debian_packages(setup::BENCH_OVERLAY_PACKAGES)?;
    setup::run(Command::new("cargo").args(["build", "--release", "-p", "znet", "--bin", "znet"]))?;
    let znet = setup::target_dir().join("release/znet");
    let lab = Lab::new()?;
    let paths = lab.build(&znet)?;
    let results = measure(&paths, options)?;
    drop(lab);
    print_table(&paths, &results, options);
    Ok(())
}

/// What the benchmark made, undone by [`Made::clean`] once, in reverse order of making.
#[derive(Debug, Default)]
struct Made {
    children: Vec<Child>,
    netns: Vec<String>,
    /// Files and directories, removed whole.
    files: Vec<PathBuf>,
}

impl Made {
    fn clean(&mut self) {
        for mut child in self.children.drain(..).rev() {
            setup::stop(&mut child);
        }
        // A namespace takes its links and devices with it, the veth's other end too.
        for ns in self.netns.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        for file in self.files.drain(..).rev() {
            let _ = std::fs::remove_dir_all(&file).or_else(|_| std::fs::remove_file(&file));
        }
    }
}

/// The benchmark's namespaces and processes: named after this process, cleaned up on drop and on
/// a terminating signal (from a thread that waits for one).
#[derive(Debug)]
struct Lab {
    made: Arc<Mutex<Made>>,
    /// Short and unique on the host: `ob<pid>`; interface names stay within 15 bytes.
    prefix: String,
    work: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        lock(&self.made).clean();
    }
}

fn lock(made: &Mutex<Made>) -> std::sync::MutexGuard<'_, Made> {
    made.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One node: its host namespace, its address on the veth, and its index `k` in the overlays.
#[derive(Debug, Clone)]
struct Node {
    host: String,
    address: String,
    k: u8,
    side: char,
}

/// Where a measurement runs from and to.
#[derive(Debug, Clone)]
struct Target {
    name: &'static str,
    /// The namespace the clients run in.
    from: String,
    /// The address the servers listen on.
    to: String,
}

impl Lab {
    fn new() -> Result<Lab> {
        let prefix = format!("ob{}", std::process::id());
        let work = std::env::temp_dir().join(format!("overlay-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let made = Arc::new(Mutex::new(Made {
            files: vec![work.clone()],
            ..Made::default()
        }));
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ])?;
        let on_signal = Arc::clone(&made);
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                eprintln!("signal {signal}: removing the benchmark's namespaces and processes");
                lock(&on_signal).clean();
                std::process::exit(128 + signal);
            }
        });
        Ok(Lab { made, prefix, work })
    }

    /// The two nodes joined by the veth, both overlays between them, and an iperf3 server at the
    /// far end of each path.
    fn build(&self, znet: &Path) -> Result<Vec<Target>> {
        let nodes = [('a', 1u8), ('b', 2)].map(|(side, k)| Node {
            host: format!("{}-h{side}", self.prefix),
            address: format!("{LINK_NET}.{k}"),
            k,
            side,
        });
        for node in &nodes {
            self.netns(&node.host)?;
        }
        let (a, b) = (&nodes[0], &nodes[1]);
        let (veth_a, veth_b) = (format!("{}a", self.prefix), format!("{}b", self.prefix));
        ip(&[
            "-n", &a.host, "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b,
            "netns", &b.host,
        ])?;
        for (node, veth) in [(a, &veth_a), (b, &veth_b)] {
            ip(&[
                "-n",
                &node.host,
                "addr",
                "add",
                &format!("{}/24", node.address),
                "dev",
                veth,
            ])?;
            ip(&["-n", &node.host, "link", "set", veth, "up"])?;
        }
        let mut paths = Vec::new();
        for (name, n, start) in [
            ("znet", 1u8, Self::start_znet as StartFn),
            ("wireguard-go", 2, Self::start_wireguard_go),
        ] {
            let keys = [self.keypair(znet)?, self.keypair(znet)?];
            let netns = nodes
                .clone()
                .map(|node| format!("{}-{}{}", self.prefix, &name[..1], node.side));
            for (i, node) in nodes.iter().enumerate() {
                self.netns(&netns[i])?;
                let overlay = Overlay {
                    netns: &netns[i],
                    n,
                    node,
                    private_key: &keys[i].0,
                    peer: &nodes[1 - i],
                    peer_key: &keys[1 - i].1,
                };
                start(self, znet, &overlay)?;
            }
            self.serve(&netns[1])?;
            paths.push(Target {
                name,
                from: netns[0].clone(),
                to: format!("100.64.{n}.{}", b.k),
            });
        }
        self.serve(&b.host)?;
        paths.push(Target {
            name: "bare veth",
            from: a.host.clone(),
            to: b.address.clone(),
        });
        for path in &paths {
            self.wait_reachable(path)?;
        }
        Ok(paths)
    }

    fn netns(&self, name: &str) -> Result<()> {
        let mut made = lock(&self.made);
        ip(&["netns", "add", name])?;
        made.netns.push(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// A new (private, public) key pair, from `znet genkey` and `znet pubkey`.
    fn keypair(&self, znet: &Path) -> Result<(String, String)> {
        let private = output(Command::new(znet).arg("genkey"))?;
        let mut child = Command::new(znet)
            .arg("pubkey")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        std::io::Write::write_all(
            &mut child.stdin.take().context("stdin")?,
            private.as_bytes(),
        )?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("znet pubkey failed: {}", out.status);
        }
        Ok((
            private.trim().to_string(),
            String::from_utf8(out.stdout)?.trim().to_string(),
        ))
    }

    /// Starts `program` in namespace `ns` (its own process group, so that Ctrl-C reaches only
    /// this process, which then stops it), logging to `<work>/<log>.log`; returns its PID.
    fn spawn(&self, ns: &str, log: &str, program: &OsStr, args: &[&str]) -> Result<u32> {
        let log_file = std::fs::File::create(self.work.join(format!("{log}.log")))?;
        let mut made = lock(&self.made);
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{ns}"))
            .arg(program)
            .args(args)
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {program:?} in {ns}"))?;
        let pid = child.id();
        made.children.push(child);
        Ok(pid)
    }

    /// Waits until `ready` holds, failing when the child `pid` exits first (with its log).
    fn wait(&self, what: &str, pid: u32, log: &str, mut ready: impl FnMut() -> bool) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ready() {
            let exited = lock(&self.made)
                .children
                .iter_mut()
                .find(|c| c.id() == pid)
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let text = std::fs::read_to_string(self.work.join(format!("{log}.log")))
                    .unwrap_or_default();
                bail!("{what} did not come up ({exited:?}); its log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// znet as zos runs it: in the host namespace, its config naming the network namespace.
    fn start_znet(&self, znet: &Path, o: &Overlay) -> Result<()> {
        let dir = self.work.join(format!("znet-{}", o.node.side));
        let config = znet::Config {
            netns: o.netns.to_string(),
            tun: format!("{}z{}", self.prefix, o.node.side),
            private_key: o.private_key.to_string(),
            listen_port: ZNET_PORT,
            address: o.address(),
            peers: vec![znet::PeerConfig {
                public_key: o.peer_key.to_string(),
                endpoint: Some(format!("{}:{ZNET_PORT}", o.peer.address).parse()?),
                allowed_ips: o.peer_allowed_ips(),
                keepalive: None,
            }],
        };
        config.store(&dir)?;
        let log = format!("znet-{}", o.node.side);
        let dir_arg = dir.to_str().context("work directory path")?;
        let pid = self.spawn(&o.node.host, &log, znet.as_os_str(), &["run", dir_arg])?;
        self.wait("znet", pid, &log, || dir.join(znet::PORT_FILE).exists())
    }

    /// wireguard-go laid out as znet is: started in the host namespace (where it makes its TUN
    /// device and binds its UDP socket), its device then moved into the network namespace and
    /// configured there, its peer set with `wg` through its control socket.
    fn start_wireguard_go(&self, _znet: &Path, o: &Overlay) -> Result<()> {
        let tun = format!("{}w{}", self.prefix, o.node.side);
        let socket = PathBuf::from(format!("/var/run/wireguard/{tun}.sock"));
        let log = format!("wireguard-go-{}", o.node.side);
        let pid = self.spawn(&o.node.host, &log, "wireguard-go".as_ref(), &["-f", &tun])?;
        lock(&self.made).files.push(socket.clone());
        self.wait("wireguard-go", pid, &log, || socket.exists())?;
        ip(&["-n", &o.node.host, "link", "set", &tun, "netns", o.netns])?;
        ip(&["-n", o.netns, "addr", "add", &o.address(), "dev", &tun])?;
        ip(&[
            "-n",
            o.netns,
            "link",
            "set",
            &tun,
            "mtu",
            &MTU.to_string(),
            "up",
        ])?;
        let allowed = o.peer_allowed_ips();
        for route in &allowed {
            ip(&["-n", o.netns, "route", "replace", route, "dev", &tun])?;
        }
        let key_file = self.work.join(format!("{tun}.key"));
        std::fs::write(&key_file, o.private_key)?;
        setup::run(
            Command::new("wg")
                .args(["set", &tun, "private-key"])
                .arg(&key_file)
                .args(["listen-port", &WIREGUARD_GO_PORT.to_string()])
                .args(["peer", o.peer_key, "endpoint"])
                .arg(format!("{}:{WIREGUARD_GO_PORT}", o.peer.address))
                .args(["allowed-ips", &allowed.join(",")]),
        )
    }

    /// An iperf3 server in `ns`, listening once this returns.
    fn serve(&self, ns: &str) -> Result<()> {
        let log = format!("iperf3-{ns}");
        let port = IPERF_PORT.to_string();
        let pid = self.spawn(ns, &log, "iperf3".as_ref(), &["-s", "-p", &port])?;
        let listening = || {
            Command::new("nsenter")
                .arg(format!("--net=/run/netns/{ns}"))
                .args(["ss", "-Hltn", &format!("sport = :{IPERF_PORT}")])
                .output()
                .is_ok_and(|o| !o.stdout.trim_ascii().is_empty())
        };
        self.wait("iperf3 -s", pid, &log, listening)
    }

    /// Waits for a first reply over `path` (for an overlay: its handshake done).
    fn wait_reachable(&self, path: &Target) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let reply = in_netns(&path.from, "busybox")
                .args(["ping", "-c", "1", "-W", "1", &path.to])
                .output()?;
            if reply.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "no reply over {} from {} to {}",
                    path.name,
                    path.from,
                    path.to
                );
            }
        }
    }
}

type StartFn = fn(&Lab, &Path, &Overlay) -> Result<()>;

/// One node's side of one overlay: network `n`, the node's address `100.64.n.k/16`, its peer.
#[derive(Debug)]
struct Overlay<'a> {
    netns: &'a str,
    n: u8,
    node: &'a Node,
    private_key: &'a str,
    peer: &'a Node,
    peer_key: &'a str,
}

impl Overlay<'_> {
    fn address(&self) -> String {
        format!("100.64.{}.{}/16", self.n, self.node.k)
    }

    /// What the planner gives a public peer: its /24 and its overlay address.
    fn peer_allowed_ips(&self) -> Vec<String> {
        vec![
            format!("10.{}.{}.0/24", self.n, self.peer.k),
            format!("100.64.{}.{}/32", self.n, self.peer.k),
        ]
    }
}

fn in_netns(ns: &str, program: &str) -> Command {
    let mut command = Command::new("nsenter");
    command.arg(format!("--net=/run/netns/{ns}")).arg(program);
    command
}

fn ip(args: &[&str]) -> Result<()> {
    output(Command::new("ip").args(args)).map(drop)
}

/// A command's standard output; a failure is an error with what it said.
fn output(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Per path, per round: Gbit/s with one and four streams, and every round trip's time.
#[derive(Debug, Default, Clone)]
struct Samples {
    gbits: [Vec<f64>; 2],
    rtt_ms: Vec<Vec<f64>>,
    lost: u32,
}

const STREAMS: [u32; 2] = [1, 4];

fn measure(paths: &[Target], options: Options) -> Result<Vec<Samples>> {
    let mut samples = vec![Samples::default(); paths.len()];
    for round in 0..options.rounds {
        // Each round starts with another path, so that a drift in load favours none.
        let order: Vec<usize> = (0..paths.len())
            .map(|i| (i + round) % paths.len())
            .collect();
        for (s, streams) in STREAMS.iter().enumerate() {
            for &p in &order {
                let json = output(
                    in_netns(&paths[p].from, "iperf3")
                        .args(["-c", &paths[p].to, "-p", &IPERF_PORT.to_string()])
                        .args(["-t", &options.seconds.to_string(), "-O", "1", "-J"])
                        .args(["-P", &streams.to_string(), "--connect-timeout", "5000"]),
                )
                .with_context(|| format!("iperf3 over {}", paths[p].name))?;
                samples[p].gbits[s].push(iperf_gbits(&json)?);
            }
        }
        for &p in &order {
            let text = output(
                in_netns(&paths[p].from, "busybox")
                    .args([
                        "ping",
                        "-c",
                        &options.pings.to_string(),
                        "-i",
                        PING_INTERVAL,
                    ])
                    .args(["-w", &(options.pings / 50 + 10).to_string(), &paths[p].to]),
            )
            .with_context(|| format!("ping over {}", paths[p].name))?;
            let ping = ping_rtts(&text)?;
            samples[p].lost += ping.sent - ping.received;
            samples[p].rtt_ms.push(ping.rtt_ms);
        }
        eprintln!("round {}/{} done", round + 1, options.rounds);
    }
    Ok(samples)
}

fn print_table(paths: &[Target], samples: &[Samples], options: Options) {
    let Options {
        rounds,
        seconds,
        pings,
    } = options;
    println!();
    println!("cargo xtask bench overlay: {rounds} rounds, the paths in turn within each round");
    println!(
        "  iperf3 -c <peer> -t {seconds} -O 1 -J [-P 4]  (receiver's rate; medians of the rounds)"
    );
    println!(
        "  busybox ping -c {pings} -i {PING_INTERVAL}  (median and p99 of all {} round trips)",
        rounds as u32 * pings
    );
    println!("layout: per node a host namespace (veth {LINK_NET}.1 <-> .2, MTU 1500) and per");
    println!("  overlay a network namespace with its TUN device (100.64.N.k/16, MTU {MTU}); znet");
    println!(
        "  and wireguard-go both run in the host namespace, make their TUN device there, move"
    );
    println!("  it into the network namespace and keep their UDP socket on the veth's side; the");
    println!("  bare path runs host namespace to host namespace over the same veth");
    println!();
    let figures: Vec<[f64; 4]> = samples.iter().map(figures).collect();
    println!(
        "{:<18} {:>10} {:>10} {:>11} {:>11}",
        "path", "TCP P=1", "TCP P=4", "RTT median", "RTT p99"
    );
    println!(
        "{:<18} {:>10} {:>10} {:>11} {:>11}",
        "", "Gbit/s", "Gbit/s", "ms", "ms"
    );
    for (path, f) in paths.iter().zip(&figures) {
        println!(
            "{:<18} {:>10.2} {:>10.2} {:>11.3} {:>11.3}",
            path.name, f[0], f[1], f[2], f[3]
        );
    }
    for (other, name) in [(1, "znet/wireguard-go"), (2, "znet/bare")] {
        let r = ratios(&samples[0], &samples[other]);
        println!(
            "{name:<18} {:>10.2} {:>10.2} {:>11.2} {:>11.2}",
            r[0], r[1], r[2], r[3]
        );
    }
    println!("ratios: throughput, median of the rounds' ratios (above 1: znet faster); RTT, of");
    println!("  the figures above (below 1: znet quicker)");
    for (path, s) in paths.iter().zip(samples) {
        if s.lost > 0 {
            println!(
                "{}: {} pings of {} lost",
                path.name,
                s.lost,
                rounds as u32 * pings
            );
        }
    }
}

/// A path's figures: median Gbit/s with one and four streams, median and p99 round trip (ms).
fn figures(s: &Samples) -> [f64; 4] {
    let mut rtts: Vec<f64> = s.rtt_ms.iter().flatten().copied().collect();
    rtts.sort_by(f64::total_cmp);
    [
        median(&mut s.gbits[0].clone()),
        median(&mut s.gbits[1].clone()),
        percentile(&rtts, 50.0),
        percentile(&rtts, 99.0),
    ]
}

/// znet's figures over another path's: throughput as the median of the per-round ratios, round
/// trips as the ratio of the pooled figures.
fn ratios(znet: &Samples, other: &Samples) -> [f64; 4] {
    let per_round = |s: usize| {
        let mut r: Vec<f64> = znet.gbits[s]
            .iter()
            .zip(&other.gbits[s])
            .map(|(z, o)| z / o)
            .collect();
        median(&mut r)
    };
    let (z, o) = (figures(znet), figures(other));
    [per_round(0), per_round(1), z[2] / o[2], z[3] / o[3]]
}

/// The nearest-rank percentile `p` (0 to 100) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The receiver's throughput of an `iperf3 -J` run, all streams together, in Gbit/s.
fn iperf_gbits(json: &str) -> Result<f64> {
    let value: serde_json::Value = serde_json::from_str(json).context("iperf3's JSON")?;
    if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
        bail!("iperf3: {error}");
    }
    value
        .pointer("/end/sum_received/bits_per_second")
        .and_then(|b| b.as_f64())
        .map(|b| b / 1e9)
        .context("iperf3's JSON has no end.sum_received.bits_per_second")
}

/// What one `busybox ping` run measured.
#[derive(Debug, PartialEq)]
struct Ping {
    rtt_ms: Vec<f64>,
    sent: u32,
    received: u32,
}

/// The round trips of busybox ping's reply lines (`... time=0.123 ms`), and the counts of its
/// summary (`N packets transmitted, M packets received, ...`).
fn ping_rtts(text: &str) -> Result<Ping> {
    let rtt_ms = text
        .lines()
        .filter_map(|line| line.split_once(" time=")?.1.strip_suffix(" ms"))
        .map(|t| t.parse::<f64>().with_context(|| format!("ping time {t:?}")))
        .collect::<Result<Vec<f64>>>()?;
    let summary = text
        .lines()
        .find(|l| l.contains(" packets transmitted, "))
        .context("ping printed no summary")?;
    let count = |what: &str| -> Result<u32> {
        summary
            .split(", ")
            .find_map(|part| part.strip_suffix(what))
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| format!("no {what:?} in {summary:?}"))
    };
    let ping = Ping {
        rtt_ms,
        sent: count(" packets transmitted")?,
        received: count(" packets received")?,
    };
    if ping.rtt_ms.len() != ping.received as usize {
        bail!(
            "ping counted {} replies but printed {} times",
            ping.received,
            ping.rtt_ms.len()
        );
    }
    Ok(ping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf3_json_gives_the_receivers_rate() {
        // The parts of iperf3 3.12's `-J` output that matter, as it prints them.
        let json = r#"{"start": {"version": "iperf 3.12"}, "intervals": [],
            "end": {"sum_sent": {"seconds": 5.0, "bits_per_second": 2.5e9, "retransmits": 3},
                    "sum_received": {"start": 0, "end": 5.000604, "seconds": 5.000604,
                                     "bytes": 1841364939, "bits_per_second": 2.25e9}}}"#;
        assert_eq!(iperf_gbits(json).unwrap(), 2.25);
        // A failed run still exits 0 under -J: its error is in the JSON.
        let refused = r#"{"start": {"connected": []}, "intervals": [], "end": {},
            "error": "unable to connect to server: Connection refused"}"#;
        let error = iperf_gbits(refused).unwrap_err().to_string();
        assert!(error.contains("Connection refused"), "{error}");
        assert!(iperf_gbits(r#"{"end": {}}"#).is_err());
        assert!(iperf_gbits("iperf3: error").is_err());
    }

    #[test]
    fn ping_output_gives_each_round_trip_and_the_counts() {
        let text = "PING 100.64.1.2 (100.64.1.2): 56 data bytes\n\
                    64 bytes from 100.64.1.2: seq=0 ttl=64 time=0.742 ms\n\
                    64 bytes from 100.64.1.2: seq=2 ttl=64 time=0.256 ms\n\
                    64 bytes from 100.64.1.2: seq=2 ttl=64 time=0.301 ms (DUP!)\n\
                    \n\
                    --- 100.64.1.2 ping statistics ---\n\
                    3 packets transmitted, 2 packets received, 1 duplicates, 33% packet loss\n\
                    round-trip min/avg/max = 0.256/0.433/0.742 ms\n";
        assert_eq!(
            ping_rtts(text).unwrap(),
            Ping {
                rtt_ms: vec![0.742, 0.256],
                sent: 3,
                received: 2
            }
        );
        let unsummed = "64 bytes from 100.64.1.2: seq=0 ttl=64 time=0.742 ms\n";
        assert!(ping_rtts(unsummed).is_err());
        let miscounted = format!("{unsummed}1 packets transmitted, 0 packets received\n");
        assert!(ping_rtts(&miscounted).is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 100.0);
        assert_eq!(percentile(&values, 99.0), 198.0);
        assert_eq!(percentile(&values, 100.0), 200.0);
        assert_eq!(percentile(&values[..1], 99.0), 1.0);
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
