//! Primitives: what turns a workload into something running on the node. Each workload type has one
//! [`Primitive`] (install, remove, pause); [`NodePrimitives`] holds this node's and hands the engine
//! the one for a workload. This node runs `zdb` workloads, `zmachine`s as containers or VMs (behind
//! [`MachineRuntime`], chosen by the image), the `zmount`s and `volume`s mounted into them, their
//! private networks, public IPv4s (`ip`, on the node's public interface) and gateways (names and
//! FQDNs, on its public config's address); the other types are refused with a message saying so,
//! until their primitive exists. Also here: the helpers they share (running commands, starting the
//! services the node runs beside the agent).

pub mod container;
pub mod gateway;
pub mod machine;
pub mod network;
pub mod overlay;
pub mod proxy;
pub mod rootfs;
pub mod uplink;
pub mod vm;
pub mod volume;
pub mod zdb;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tfgrid_types::deployment::{ResultData, Workload, WorkloadData, Zmachine};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::chain::ChainSession;
use crate::store::Local;

/// What a primitive's operations return: a boxed future, so that primitives can be chosen at run
/// time (`dyn Primitive`).
pub type Op<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

/// Where a workload goes: the contract's deployment as the node will run it (its results being
/// made), the node's other deployments, and the chain (for what a primitive must read there).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub local: &'a Local,
    pub others: &'a [Local],
    pub chain: &'a ChainSession,
}

impl Target<'_> {
    /// The id of workload `name` of this contract on the node.
    pub fn id(&self, name: &str) -> String {
        workload_id(self.local.twin_id, self.local.contract_id, name)
    }
}

/// What one workload type does on the node. `install` creates the workload (secrets open) or
/// updates it to `w`, and says what its result holds; `remove` takes it and what it used away;
/// `pause` stops or resumes what it serves (a contract in its grace period).
pub trait Primitive: Send {
    fn install<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ResultData>;
    fn remove<'a>(&'a mut self, at: Target<'a>, w: &'a Workload) -> Op<'a, ()>;
    fn pause<'a>(&'a mut self, at: Target<'a>, w: &'a Workload, pause: bool) -> Op<'a, ()>;
}

/// The primitive of each workload type a node runs.
pub trait Primitives: Send {
    /// The primitive for workloads like `w`, if the node has one.
    fn of(&mut self, w: &WorkloadData) -> Option<&mut dyn Primitive>;
}

/// This node's primitives.
#[derive(Debug)]
pub struct NodePrimitives {
    pub zdb: zdb::ZdbServer,
    pub volumes: volume::Volumes,
    pub networks: network::Networks,
    pub ips: network::PublicIps,
    pub machines: machine::MachinePrimitive,
    pub gateway: proxy::GatewayPrimitive,
}

impl Primitives for NodePrimitives {
    fn of(&mut self, w: &WorkloadData) -> Option<&mut dyn Primitive> {
        Some(match w {
            WorkloadData::Zdb(_) => &mut self.zdb,
            WorkloadData::Zmount(_) | WorkloadData::Volume(_) => &mut self.volumes,
            WorkloadData::Network(_) => &mut self.networks,
            WorkloadData::Ip(_) => &mut self.ips,
            WorkloadData::Zmachine(_) => &mut self.machines,
            WorkloadData::GatewayNameProxy(_) | WorkloadData::GatewayFqdnProxy(_) => {
                &mut self.gateway
            }
            _ => return None,
        })
    }
}

pub(crate) fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An operation that has nothing to do.
pub(crate) fn nothing<'a>() -> Op<'a, ()> {
    Box::pin(async { Ok(()) })
}

/// Whether process `pid` is alive and was started for `dir` (an argument of its command line is
/// `dir` or a path below it): a recorded PID may have been reused by another process, or be a
/// zombie.
pub(crate) fn alive(pid: u32, dir: &Path) -> bool {
    let dir = dir.to_string_lossy();
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // An argument, or a `key=value` in a comma-separated one (QEMU's `path=...`).
    cmdline.split(|b| *b == 0).any(|arg| {
        String::from_utf8_lossy(arg).split(',').any(|piece| {
            let value = piece.split_once('=').map_or(piece, |(_, v)| v);
            value == dir || value.starts_with(&format!("{dir}/"))
        })
    })
}

/// Sends `signal` to process `pid`, a service named `name` in the error.
pub(crate) fn signal(pid: u32, signal: rustix::process::Signal, name: &str) -> Result<()> {
    let pid = rustix::process::Pid::from_raw(pid as i32).context("a zero PID")?;
    rustix::process::kill_process(pid, signal).with_context(|| format!("signalling {name}"))
}

/// Stops service `pid`, started for `dir`: TERM, then KILL if it is still there after `timeout`.
pub(crate) fn stop_service(pid: u32, dir: &Path, timeout: Duration, name: &str) -> Result<()> {
    signal(pid, rustix::process::Signal::TERM, name)?;
    let deadline = std::time::Instant::now() + timeout;
    while alive(pid, dir) {
        if std::time::Instant::now() > deadline {
            return signal(pid, rustix::process::Signal::KILL, name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Empties a machine's console log once it grows past [`MACHINE_LOG_BYTES_MAX`] (its writer
/// appends, so it goes on at the new end): what a machine prints cannot fill the node's disk.
pub(crate) fn cap_log(log: &Path) {
    if std::fs::metadata(log).is_ok_and(|m| m.len() > crate::limits::MACHINE_LOG_BYTES_MAX) {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(log);
    }
}

/// Runs a command like [`run`], killing it when it takes longer than `timeout`.
pub(crate) fn run_within(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {cmd:?}"))?;
    let deadline = std::time::Instant::now() + timeout;
    while child.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The PID recorded in `file`, if any.
pub(crate) fn recorded_pid(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Runs a command to its end; its output, or an error with what it said.
pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The node's two machine runtimes; a machine's image decides which one runs it.
#[derive(Debug, Clone)]
pub struct Machines {
    pub containers: container::Containers,
    pub vms: vm::Vms,
}

impl Machines {
    /// The runtime for the unpacked image `image`: a VM when it holds a kernel.
    pub fn for_image(&self, image: &Path) -> &dyn MachineRuntime {
        match vm::is_vm_image(image) {
            true => &self.vms,
            false => &self.containers,
        }
    }

    /// The runtime machine `id` runs under.
    pub fn of(&self, id: &str) -> &dyn MachineRuntime {
        match self.vms.exists(id) {
            true => &self.vms,
            false => &self.containers,
        }
    }
}

/// Where a machine joins its private network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineNet {
    /// The path of the machine's network namespace.
    pub netns: String,
    /// Its address with the subnet's prefix (`10.20.1.2/24`), and the subnet's gateway.
    pub cidr: String,
    pub gateway: String,
}

/// What runs a `zmachine`: a container runtime, or a hypervisor for images that hold a kernel.
/// Both keep one directory per machine with its root file system (`rootfs`), its output
/// (`output.log`) and their own state, and both are blocking: run them off the async threads.
pub trait MachineRuntime: std::fmt::Debug + Send + Sync {
    /// "container" or "VM", for messages.
    fn kind(&self) -> &'static str;
    /// Why machines of this kind cannot run on this node, if they cannot.
    fn available(&self) -> Result<()>;
    /// Starts (or restarts) machine `id` of `machine` (its secrets open) over the image root
    /// `image`; `mounts` are (host directory, mountpoint) pairs, `net` where it joins its network.
    fn start(
        &self,
        id: &str,
        hostname: &str,
        machine: &Zmachine,
        image: &Path,
        mounts: &[(PathBuf, String)],
        net: &MachineNet,
    ) -> Result<()>;
    /// `running`, `paused` or `stopped`, if the machine exists.
    fn status(&self, id: &str) -> Option<String>;
    fn pause(&self, id: &str, pause: bool) -> Result<()>;
    /// Stops the machine and removes everything it used.
    fn remove(&self, id: &str) -> Result<()>;
    /// The directory of machine `id` (its log is `output.log` there).
    fn dir(&self, id: &str) -> PathBuf;
}

/// Starts a service the node runs beside the agent (its 0-db server, its gateway) and waits until
/// it prints a line starting with `ready` on its standard output; returns its PID and the rest of
/// that line. The service outlives the agent: its output keeps being drained, and nothing kills
/// it when the agent stops.
pub async fn start_service(
    command: &mut tokio::process::Command,
    name: &str,
    ready: &str,
    timeout: Duration,
) -> Result<(u32, String)> {
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let waited = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix(ready) {
                return Ok::<_, std::io::Error>(Some(rest.trim().to_owned()));
            }
        }
        Ok(None)
    })
    .await;
    let rest = match waited {
        Ok(Ok(Some(rest))) => rest,
        failed => {
            // Not ready: it must not linger unrecorded (holding its ports).
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(match failed {
                Err(_) => anyhow::anyhow!("{name} did not start within {timeout:?}"),
                Ok(Err(e)) => anyhow::Error::new(e).context(format!("reading {name}'s output")),
                Ok(_) => anyhow::anyhow!("{name} exited before it was ready (see its log above)"),
            });
        }
    };
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let pid = child.id().with_context(|| format!("{name} has no pid"))?;
    // Dropping a tokio Child does not kill the process.
    drop(child);
    Ok((pid, rest))
}

/// The name of what a workload creates (namespace, container): `<twin>-<contract>-<name>`, as
/// Zero-OS names workloads.
pub fn workload_id(twin: u32, contract: u64, name: &str) -> String {
    format!("{twin}-{contract}-{name}")
}

/// Why a workload cannot run on this node, if it cannot. `containers` says why containers cannot
/// run here, when they cannot; `public_iface` is the node's interface on the farm's public network.
pub fn unsupported(
    workload: &Workload,
    containers: Option<&str>,
    public_iface: Option<&str>,
) -> Option<String> {
    match workload.data {
        WorkloadData::Zdb(_) => None,
        WorkloadData::Ip(ref ip) if ip.v6 => {
            Some("public IPv6 is not supported by this node yet".into())
        }
        WorkloadData::Ip(_) => match (containers, public_iface) {
            (Some(why), _) => Some(format!("this node cannot give public IPs: {why}")),
            (None, None) => Some(
                "this node has no interface on the farm's public network (zos --public-iface)"
                    .into(),
            ),
            (None, Some(_)) => None,
        },
        WorkloadData::Network(_) => {
            containers.map(|why| format!("this node cannot build networks: {why}"))
        }
        WorkloadData::Zmount(_) | WorkloadData::Volume(_) => {
            containers.map(|why| format!("this node cannot mount volumes: {why}"))
        }
        // Containers or VMs: which one the image decides, once fetched.
        WorkloadData::Zmachine(_) => None,
        WorkloadData::GatewayNameProxy(_) | WorkloadData::GatewayFqdnProxy(_) => {
            public_iface.is_none().then(|| {
                "this node cannot serve gateways: it has no interface on the farm's public \
                 network (zos --public-iface)"
                    .to_owned()
            })
        }
        ref other => Some(format!(
            "{} workloads are not supported by this node yet",
            other.type_name()
        )),
    }
}
