//! `tfgrid up --demo` as a newcomer runs it: a whole grid comes up, the demo deploys, the printed
//! results are real, and Ctrl-C stops and cleans up everything (processes, mounts, namespaces).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use testkit::{bin, free_port};
use zos::primitives::network::{Networks, short};

#[test]
fn up_demo_runs_and_ctrl_c_cleans_up() {
    let data = tempfile::tempdir().unwrap();
    let (rpc_port, hub_port, explorer_port) = (free_port(), free_port(), free_port());
    let up = Command::new(bin("tfgrid"))
        .args([
            "up",
            "--demo",
            "--nodes",
            "2",
            "--rpc-port",
            &rpc_port.to_string(),
            "--hub-port",
            &hub_port.to_string(),
            "--explorer-port",
            &explorer_port.to_string(),
            "--data",
        ])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Dropped before `data`: a failing test still stops the grid while its records exist.
    let mut up = StopOnDrop(up);
    let (lines, received) = mpsc::channel();
    let stdout = up.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut output = String::new();
    while !output.contains("Ctrl-C stops the grid") {
        match received.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                output.push_str(&line);
                output.push('\n');
            }
            Err(_) => panic!("tfgrid up did not finish starting:\n{output}"),
        }
    }
    for expected in [
        "nodes    1 to 2",
        "demo: contract 1 on node 1",
        "db   Ok",
        "web  Ok",
        "\"ip\":\"10.20.1.2\"",
    ] {
        assert!(
            output.contains(expected),
            "missing {expected:?} in:\n{output}"
        );
    }
    // The explorer indexes the grid: its API lists both nodes.
    let explorer = format!("http://127.0.0.1:{explorer_port}/nodes");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("curl")
            .args(["-s", "-m", "3", &explorer])
            .output()
            .unwrap();
        let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if nodes.as_array().is_some_and(|n| n.len() == 2) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the explorer did not list the nodes: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The web container answers in its private network.
    let ns = std::fs::read_dir("/var/run/netns")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("n-"))
        .collect::<Vec<_>>();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let served = ns.iter().any(|n| {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    n,
                    "curl",
                    "-s",
                    "-m",
                    "3",
                    "http://10.20.1.2/",
                ])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("hello from the grid"))
        });
        if served {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo web container did not answer"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Ctrl-C: everything stops and nothing is left behind.
    Command::new("kill")
        .args(["-INT", &up.0.id().to_string()])
        .status()
        .unwrap();
    let status = up.0.wait().unwrap();
    assert!(status.success(), "tfgrid up exited with {status}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(&*data.path().to_string_lossy()),
        "mounts left behind"
    );
    // The demo's network (Bob is twin 4: after Alice and the two nodes) and its container.
    for ns in [Networks::namespace("4-net"), short("c-", "4-1-web")] {
        assert!(
            !std::path::Path::new("/var/run/netns").join(&ns).exists(),
            "network namespace {ns} left behind"
        );
    }
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains(&*data.path().to_string_lossy()),
        "processes left behind"
    );
}

/// Interrupts `tfgrid up` (as Ctrl-C does) and waits for it, if it still runs.
struct StopOnDrop(std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
}
