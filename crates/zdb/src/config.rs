//! Command-line flags, named as 0-db's (single-dash long options such as `-port` are accepted too).

use anyhow::{Result, bail};
use clap::Parser;
use std::path::PathBuf;
use zdb_core::Mode;

#[derive(Debug, Parser)]
#[command(
    name = "zdb",
    version,
    about = "0-db compatible always-append key-value store (RESP)"
)]
struct Flags {
    /// Directory of the data files.
    #[arg(long, default_value = "./zdb-data")]
    data: PathBuf,
    /// Directory of the index files.
    #[arg(long, default_value = "./zdb-index")]
    index: PathBuf,
    /// Runtime mode: user, seq (direct is an alias of seq); absent = each namespace chooses.
    #[arg(long)]
    mode: Option<String>,
    /// Data file size before rotation (bytes, or with a k/m/g suffix); 512k to 4g-1.
    #[arg(long, default_value = "256m")]
    datasize: String,
    /// Address to listen on.
    #[arg(long, default_value = "::")]
    listen: String,
    /// TCP port (0 picks a free one; the bound address is printed).
    #[arg(long, default_value_t = 9900)]
    port: u16,
    /// Unix socket path; replaces TCP unless --dualnet.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Listen on TCP and on the unix socket.
    #[arg(long)]
    dualnet: bool,
    /// Admin password; without it every client is admin.
    #[arg(long)]
    admin: Option<String>,
    /// Default namespace is read-only unless selected with the admin password (needs --admin).
    #[arg(long)]
    protect: bool,
    /// Maximum size of the default namespace, bytes.
    #[arg(long)]
    maxsize: Option<u64>,
    /// Wait for the disk before acknowledging every write batch.
    #[arg(long)]
    sync: bool,
    /// Sync all files every this many seconds.
    #[arg(long)]
    synctime: Option<u64>,
    /// Sync files when rotating.
    #[arg(long)]
    secure: bool,
    /// Executable run on events (ready, close, jump-index, jump-data, namespace-*).
    #[arg(long)]
    hook: Option<PathBuf>,
    /// Start as a replica of host:port.
    #[arg(long)]
    replicaof: Option<String>,
    /// Memory for reads of recent data, shared equally by the namespaces (k/m/g suffix; 0 = none).
    #[arg(long, default_value = "64m")]
    cache: String,
    /// Worker threads (1 runs everything on one thread, as 0-db does).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Verbose logging.
    #[arg(long)]
    verbose: bool,
}

/// The server's configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    pub index: PathBuf,
    pub mode: Option<Mode>,
    pub datasize: u64,
    pub listen: String,
    pub port: u16,
    pub socket: Option<PathBuf>,
    pub dualnet: bool,
    pub admin: Option<String>,
    pub protect: bool,
    pub maxsize: u64,
    pub sync: bool,
    pub synctime: Option<u64>,
    pub secure: bool,
    pub hook: Option<PathBuf>,
    pub replicaof: Option<(String, u16)>,
    pub threads: usize,
    pub read_cache_bytes: usize,
    pub verbose: bool,
}

impl Config {
    /// Parses the process arguments.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config> {
        let args = args.into_iter().enumerate().map(|(i, a)| {
            if i > 0 && a.starts_with('-') && !a.starts_with("--") && a.len() > 2 {
                format!("-{a}")
            } else {
                a
            }
        });
        let flags = Flags::parse_from(args);
        let mode = match flags.mode.as_deref() {
            None => None,
            Some("user") => Some(Mode::User),
            Some("seq" | "direct") => Some(Mode::Seq),
            Some(other) => bail!("unknown mode {other:?} (expected user or seq)"),
        };
        let datasize = parse_size(&flags.datasize)?;
        if !(zdb_core::engine::DATASIZE_MIN..=zdb_core::engine::DATASIZE_MAX).contains(&datasize) {
            bail!("datasize {datasize} out of range (512 KiB to 4 GiB - 1)");
        }
        if flags.protect && flags.admin.is_none() {
            bail!("--protect needs --admin");
        }
        if let Some(admin) = &flags.admin
            && admin.len() > crate::limits::PASSWORD_MAX
        {
            bail!(
                "admin password longer than {} bytes",
                crate::limits::PASSWORD_MAX
            );
        }
        let replicaof = match flags.replicaof {
            None => None,
            Some(s) => {
                let (host, port) = s
                    .rsplit_once(':')
                    .ok_or_else(|| anyhow::anyhow!("--replicaof expects host:port"))?;
                Some((host.to_owned(), port.parse()?))
            }
        };
        Ok(Config {
            data: flags.data,
            index: flags.index,
            mode,
            datasize,
            listen: flags.listen,
            port: flags.port,
            socket: flags.socket,
            dualnet: flags.dualnet,
            admin: flags.admin,
            protect: flags.protect,
            maxsize: flags.maxsize.unwrap_or(0),
            sync: flags.sync,
            synctime: flags.synctime,
            secure: flags.secure,
            hook: flags.hook,
            replicaof,
            threads: flags.threads.max(1),
            read_cache_bytes: usize::try_from(parse_size(&flags.cache)?)?,
            verbose: flags.verbose,
        })
    }
}

/// Parses `123`, `512k`, `256M`, `1g` (binary units).
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("bad size {text:?}"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => bail!("bad size unit in {text:?}"),
    };
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| anyhow::anyhow!("size {text:?} too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_single_dash_flags() {
        assert_eq!(parse_size("512k").unwrap(), 512 * 1024);
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("12x").is_err());
        let args = ["zdb", "-port", "1234", "--mode", "seq", "--datasize", "1m"].map(String::from);
        let config = Config::from_args(args).unwrap();
        assert_eq!(
            (config.port, config.mode, config.datasize),
            (1234, Some(Mode::Seq), 1 << 20)
        );
        assert!(Config::from_args(["zdb", "--protect"].map(String::from)).is_err());
    }
}
