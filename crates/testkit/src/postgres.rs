//! A PostgreSQL server for tests and benchmarks: Debian's `postgresql` package, run as the
//! `postgres` user on a free loopback port with its cluster in a temporary directory, killed when
//! dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_for};

#[derive(Debug)]
pub struct PgServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// The directory of the installed server's binaries, if a server is installed.
pub fn bin_dir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .find(|p| p.join("postgres").exists())
}

impl PgServer {
    pub async fn start() -> PgServer {
        let bin_dir = bin_dir().expect("PostgreSQL is not installed (Debian package `postgresql`)");
        let (uid, gid) = postgres_user();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let data = dir.path().join("data");
        let as_postgres = |program: &Path| {
            let mut c = Command::new(program);
            std::os::unix::process::CommandExt::uid(&mut c, uid);
            std::os::unix::process::CommandExt::gid(&mut c, gid);
            c.current_dir(dir.path());
            c
        };
        let out = as_postgres(&bin_dir.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
        let child = as_postgres(&bin_dir.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = PgServer {
            child,
            port,
            _dir: dir,
        };
        let ready = bin_dir.join("pg_isready");
        wait_for(
            "PostgreSQL to accept connections",
            Duration::from_secs(30),
            || {
                let ok = Command::new(&ready)
                    .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                    .status()
                    .is_ok_and(|s| s.success());
                async move { ok.then_some(()) }
            },
        )
        .await;
        server
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no postgres user (Debian package `postgresql`)");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}
