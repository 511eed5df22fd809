//! `tfgrid up` as a user runs it, in the background: a whole local grid on free ports with its data
//! in a temporary directory (a solo chain, or several validators), the lines it printed, and the
//! environment the CLI needs to use it (the chain's endpoints as `up` printed them).
//! Dropping it interrupts `up` (as Ctrl-C does), which stops and cleans up everything it started.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::{bin, free_port};

#[derive(Debug)]
pub struct LocalGrid {
    pub child: Child,
    /// What `up` printed until the grid was ready.
    pub output: String,
    /// The chain's endpoint list `up` printed.
    pub rpc: String,
    pub explorer: String,
    pub hub: String,
}

impl LocalGrid {
    /// Runs `tfgrid up --nodes N [--demo] --data DATA` (from DATA's parent, with DATA relative) and
    /// waits until it says the grid is ready.
    pub fn start(nodes: u32, demo: bool, data: &Path) -> LocalGrid {
        let demo = if demo { &["--demo"][..] } else { &[] };
        LocalGrid::start_args(nodes, demo, data)
    }

    /// Runs `tfgrid up --nodes N --validators V --data DATA` likewise: a chain of V validators.
    pub fn start_with_validators(nodes: u32, validators: u32, data: &Path) -> LocalGrid {
        let validators = validators.to_string();
        LocalGrid::start_args(nodes, &["--validators", &validators], data)
    }

    fn start_args(nodes: u32, args: &[&str], data: &Path) -> LocalGrid {
        let (rpc_port, hub_port, explorer_port) = (free_port(), free_port(), free_port());
        let mut command = Command::new(bin("tfgrid"));
        command
            .args(["up", "--nodes", &nodes.to_string()])
            .args(args);
        let child = command
            .args(["--rpc-port", &rpc_port.to_string()])
            .args(["--hub-port", &hub_port.to_string()])
            .args(["--explorer-port", &explorer_port.to_string()])
            // A relative data directory, as a newcomer's `.tfgrid-local`.
            .current_dir(data.parent().expect("the data directory's parent"))
            .arg("--data")
            .arg(data.file_name().expect("the data directory's name"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tfgrid up starts");
        let mut grid = LocalGrid {
            child,
            output: String::new(),
            rpc: String::new(),
            explorer: format!("http://127.0.0.1:{explorer_port}"),
            hub: format!("http://127.0.0.1:{hub_port}"),
        };
        let (lines, received) = mpsc::channel();
        let stdout = grid.child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        while !grid.output.contains("Ctrl-C stops the grid") {
            match received.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    grid.output.push_str(&line);
                    grid.output.push('\n');
                }
                Err(_) => panic!("tfgrid up did not finish starting:\n{}", grid.output),
            }
        }
        grid.rpc = printed_rpc(&grid.output)
            .unwrap_or_else(|| panic!("no TFGRID_RPC in what up printed:\n{}", grid.output));
        grid
    }

    /// The CLI acting as `key` against this grid, from `dir` (where state files go), with its
    /// keystore in `dir/home`.
    pub fn cli(&self, dir: &Path, key: &str) -> Command {
        let mut command = Command::new(bin("tfgrid"));
        command
            .current_dir(dir)
            .env("TFGRID_HOME", dir.join("home"))
            .env("TFGRID_RPC", &self.rpc)
            .env("TFGRID_EXPLORER", &self.explorer)
            .env("TFGRID_HUB", &self.hub)
            .env("TFGRID_KEY", key);
        command
    }

    /// Interrupts `up` and waits for it to finish cleaning up; true if it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.child.wait().is_ok_and(|s| s.success())
    }
}

/// The chain's endpoints in the `export TFGRID_RPC=...` line `up` prints.
fn printed_rpc(output: &str) -> Option<String> {
    let (_, rest) = output.split_once("export TFGRID_RPC=")?;
    Some(rest.split_whitespace().next()?.to_owned())
}

impl Drop for LocalGrid {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}
