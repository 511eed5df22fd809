//! Hooks: `--hook <exe>` is run (no shell) with argv `[hook name, instance id, args...]` on server
//! events; the last runs are kept for the HOOKS command.

use crate::limits::{HOOKS_LISTED_SECS, HOOKS_REMEMBERED_MAX};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One hook execution.
#[derive(Debug, Clone)]
pub struct HookRun {
    pub name: String,
    pub args: Vec<String>,
    pub pid: u32,
    pub created: u64,
    /// 0 while running.
    pub finished: u64,
    /// Exit status (-1 if killed by a signal or not started).
    pub status: i32,
}

#[derive(Debug)]
pub struct Hooks {
    exe: Option<PathBuf>,
    instance_id: String,
    index_dir: PathBuf,
    data_dir: PathBuf,
    runs: Arc<Mutex<VecDeque<HookRun>>>,
}

impl Hooks {
    pub fn new(
        exe: Option<PathBuf>,
        instance_id: String,
        index_dir: PathBuf,
        data_dir: PathBuf,
    ) -> Hooks {
        Hooks {
            exe,
            instance_id,
            index_dir,
            data_dir,
            runs: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    fn command(&self, name: &str, args: &[&str]) -> Option<tokio::process::Command> {
        let exe = self.exe.as_ref()?;
        let mut command = tokio::process::Command::new(exe);
        command
            .arg(name)
            .arg(&self.instance_id)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(false);
        Some(command)
    }

    fn record(&self, run: HookRun) {
        let mut runs = self.runs.lock().expect("hooks lock");
        if runs.len() >= HOOKS_REMEMBERED_MAX {
            runs.pop_front();
        }
        runs.push_back(run);
    }

    /// Starts a hook without waiting for it.
    pub fn fire(&self, name: &str, args: &[&str]) {
        let Some(mut command) = self.command(name, args) else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let created = crate::server::unix_now().as_secs();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        match command.spawn() {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                self.record(HookRun {
                    name: name.to_owned(),
                    args,
                    pid,
                    created,
                    finished: 0,
                    status: 0,
                });
                let runs = Arc::clone(&self.runs);
                tokio::spawn(async move {
                    let status = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
                    let mut runs = runs.lock().expect("hooks lock");
                    if let Some(run) = runs.iter_mut().rev().find(|r| r.pid == pid) {
                        run.finished = crate::server::unix_now().as_secs().max(1);
                        run.status = status;
                    }
                });
            }
            Err(e) => {
                tracing::warn!("hook {name} could not start: {e}");
                self.record(HookRun {
                    name: name.to_owned(),
                    args,
                    pid: 0,
                    created,
                    finished: created,
                    status: -1,
                });
            }
        }
    }

    /// Runs a hook to completion and returns its exit status (0 when no hook is configured).
    pub async fn run(&self, name: &str, args: &[&str]) -> std::io::Result<i32> {
        let Some(mut command) = self.command(name, args) else {
            return Ok(0);
        };
        let created = crate::server::unix_now().as_secs();
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        let status = child.wait().await?.code().unwrap_or(-1);
        self.record(HookRun {
            name: name.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            pid,
            created,
            finished: crate::server::unix_now().as_secs(),
            status,
        });
        Ok(status)
    }

    /// Fires `jump-index` and `jump-data` after a rotation of `ns` from file `old` to `new`.
    pub fn jump(&self, ns: &str, old: u32, new: u32) {
        if self.exe.is_none() {
            return;
        }
        let path = |root: &PathBuf, prefix: char, id: u32| {
            root.join(ns)
                .join(format!("{prefix}{id}"))
                .display()
                .to_string()
        };
        let (old_index, new_index) = (
            path(&self.index_dir, 'i', old),
            path(&self.index_dir, 'i', new),
        );
        let (old_data, new_data) = (
            path(&self.data_dir, 'd', old),
            path(&self.data_dir, 'd', new),
        );
        self.fire("jump-index", &[&old_index, &new_index]);
        self.fire("jump-data", &[&old_data, &new_data]);
    }

    /// Runs that are still going or finished within the last minute.
    pub fn recent(&self) -> Vec<HookRun> {
        let now = crate::server::unix_now().as_secs();
        let runs = self.runs.lock().expect("hooks lock");
        runs.iter()
            .filter(|r| r.finished == 0 || r.finished + HOOKS_LISTED_SECS >= now)
            .cloned()
            .collect()
    }
}
