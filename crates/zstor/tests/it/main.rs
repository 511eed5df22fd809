//! End-to-end tests of zstor against real `zdb` processes (built next to this test executable:
//! `cargo build -p zdb --bin zdb`): round trips from empty to hundreds of MiB, lost backends,
//! shards corrupted on disk, rebuilds, the repair daemon, and the error messages.

mod errors;
mod failures;
mod repair;
mod roundtrip;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use zstor::config::BackendConfig;
use zstor::zdb::{Conn, Reply};
use zstor::{Config, Zstor};

pub const KEY: &str = "8f3a0c55e4b1d2f6a7c8e9d0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0";
pub const DATA_NS: &str = "zstor";
pub const DATA_PASSWORD: &str = "data-secret";
pub const META_NS: &str = "zstor-meta";
pub const META_PASSWORD: &str = "meta-secret";

/// A `zdb` process with its own directories, killed when dropped.
#[derive(Debug)]
pub struct Zdb {
    child: Option<Child>,
    dir: tempfile::TempDir,
    mode: &'static str,
    pub port: u16,
}

impl Zdb {
    /// Starts a zdb in `mode` ("seq" or "user") on a free port, with no read cache so every read
    /// goes to the files.
    pub fn start(mode: &'static str) -> Zdb {
        let mut zdb = Zdb {
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
            mode,
            port: 0,
        };
        zdb.spawn();
        zdb
    }

    fn spawn(&mut self) {
        let root = self.dir.path();
        let mut child = Command::new(testkit::bin("zdb"))
            .args(["--listen", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--mode", self.mode, "--cache", "0"])
            .arg("--data")
            .arg(root.join("data"))
            .arg("--index")
            .arg(root.join("index"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting zdb");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).expect("zdb output") > 0,
                "zdb exited before listening"
            );
            if let Some(addr) = line.trim().strip_prefix("zdb: listening on tcp ") {
                self.port = addr.rsplit(':').next().unwrap().parse().unwrap();
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        self.child = Some(child);
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaping zdb");
        }
    }

    /// The data files of namespace `ns`.
    pub fn data_files(&self, ns: &str) -> Vec<PathBuf> {
        let dir = self.dir.path().join("data").join(ns);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("namespace data directory")
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('d'))
            .collect();
        files.sort();
        files
    }

    /// A connection to the default namespace (every client is admin: no --admin).
    pub async fn admin(&self) -> Conn {
        Conn::connect(&BackendConfig {
            address: self.address(),
            namespace: "default".into(),
            password: None,
        })
        .await
        .expect("connecting to zdb")
    }

    /// Creates namespace `ns` with `password`, private.
    pub async fn create_namespace(&self, ns: &str, password: &str) {
        let mut conn = self.admin().await;
        for args in [
            vec!["NSNEW", ns],
            vec!["NSSET", ns, "password", password],
            vec!["NSSET", ns, "public", "0"],
        ] {
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            let reply = conn.call(&args).await.expect("namespace command");
            assert_eq!(reply, Reply::Status("OK".into()));
        }
    }

    pub fn backend(&self, ns: &str, password: &str) -> BackendConfig {
        BackendConfig {
            address: self.address(),
            namespace: ns.into(),
            password: Some(password.into()),
        }
    }
}

impl Drop for Zdb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Data and metadata zdbs, and a config over them.
#[derive(Debug)]
pub struct Cluster {
    pub data: Vec<Zdb>,
    pub meta: Vec<Zdb>,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// `data` sequential-mode zdbs and `meta` user-mode ones, each with its namespace.
    pub async fn start(data: usize, meta: usize) -> Cluster {
        let cluster = Cluster {
            data: (0..data).map(|_| Zdb::start("seq")).collect(),
            meta: (0..meta).map(|_| Zdb::start("user")).collect(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for zdb in &cluster.data {
            zdb.create_namespace(DATA_NS, DATA_PASSWORD).await;
        }
        for zdb in &cluster.meta {
            zdb.create_namespace(META_NS, META_PASSWORD).await;
        }
        cluster
    }

    /// Config text for 4+2 over the data zdbs `using`, one group each, with `extra` lines on top.
    pub fn config_text(&self, using: &[usize], extra: &str) -> String {
        let mut text = format!(
            "data_shards = 4\nparity_shards = 2\n{extra}\n\
             [encryption]\nalgorithm = \"AES\"\nkey = \"{KEY}\"\n\
             [compression]\nalgorithm = \"zstd\"\n\
             [meta]\ntype = \"zdb\"\n[meta.config]\nprefix = \"test\"\n"
        );
        for zdb in &self.meta {
            text += &format!(
                "[[meta.config.backends]]\naddress = \"{}\"\nnamespace = \"{META_NS}\"\npassword = \"{META_PASSWORD}\"\n",
                zdb.address()
            );
        }
        for &i in using {
            text += &format!(
                "[[groups]]\n[[groups.backends]]\naddress = \"{}\"\nnamespace = \"{DATA_NS}\"\npassword = \"{DATA_PASSWORD}\"\n",
                self.data[i].address()
            );
        }
        text
    }

    /// A zstor over the data zdbs `using`.
    pub fn zstor(&self, using: &[usize]) -> Zstor {
        Zstor::new(Config::parse(&self.config_text(using, "")).expect("config")).expect("zstor")
    }

    /// Writes the config over `using` to a file, for the binary.
    pub fn write_config(&self, using: &[usize], extra: &str) -> PathBuf {
        let path = self.dir.path().join("zstor.toml");
        std::fs::write(&path, self.config_text(using, extra)).expect("writing config");
        path
    }

    /// The index of the data zdb at `address`.
    pub fn data_index(&self, address: &str) -> usize {
        self.data
            .iter()
            .position(|z| z.address() == address)
            .expect("a data zdb of the cluster")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Writes `len` bytes of xorshift noise (seeded) to `path` in 1 MiB blocks, never holding it all.
pub fn write_noise(path: &Path, len: u64, seed: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("creating file"));
    let mut state = seed | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n]).expect("writing file");
        left -= n as u64;
    }
    out.flush().expect("flushing file");
}

/// blake3 of a file, streamed.
pub fn hash_file(path: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    let mut file = std::fs::File::open(path).expect("opening file");
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("reading file");
        if n == 0 {
            return hasher.finalize();
        }
        hasher.update(&buf[..n]);
    }
}

/// Runs the `zstor` binary.
pub fn zstor_cli(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zstor"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("running zstor")
}

/// Stdout of a command that must succeed; panics with everything it printed otherwise.
pub fn ok(out: std::process::Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "zstor failed:\n{all}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub use testkit::{fails, wait_for};
