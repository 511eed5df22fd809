//! The node's capacity: what the machine has (logical CPUs, memory, the size of the storage
//! directories), or a virtual capacity given with `--capacity`, so several nodes can share a machine.

use std::path::Path;

use anyhow::{Context, Result, bail};
use tfchain_runtime::types::Resources;

const GIB: u64 = 1024 * 1024 * 1024;

/// Parses `cru=4,mru=8G,sru=200G,hru=1T` (sizes with K, M, G or T, powers of 1024).
pub fn parse(text: &str) -> Result<Resources> {
    let mut r = Resources::default();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .with_context(|| format!("{part:?} is not key=value"))?;
        let number = |v: &str| -> Result<u64> {
            let (digits, unit) =
                v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
            let n: u64 = digits
                .parse()
                .with_context(|| format!("{v:?} is not a size"))?;
            let factor = match unit.to_ascii_uppercase().as_str() {
                "" => 1,
                "K" => 1024,
                "M" => 1024 * 1024,
                "G" => GIB,
                "T" => GIB * 1024,
                other => bail!("unknown size unit {other:?} (use K, M, G or T)"),
            };
            n.checked_mul(factor).context("size too large")
        };
        match key {
            "cru" => r.cru = number(value)?,
            "mru" => r.mru = number(value)?,
            "sru" => r.sru = number(value)?,
            "hru" => r.hru = number(value)?,
            other => bail!("unknown resource {other:?} (cru, mru, sru, hru)"),
        }
    }
    Ok(r)
}

/// What the machine has: logical CPUs, total memory, and the size of the file system holding `data`
/// (counted as SSD; a machine with HDDs gives them with `--capacity`).
pub fn detect(data: &Path) -> Result<Resources> {
    let cru = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no MemTotal in /proc/meminfo")?;
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=size"])
        .arg(data)
        .output()
        .context("running df")?;
    let sru = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .context("reading the disk size from df")?;
    Ok(Resources {
        cru,
        mru: kib * 1024,
        sru,
        hru: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_capacities() {
        let r = parse("cru=4, mru=8G,sru=200G,hru=1T").unwrap();
        assert_eq!(
            (r.cru, r.mru, r.sru, r.hru),
            (4, 8 * GIB, 200 * GIB, 1024 * GIB)
        );
        assert!(
            parse("cru=4,gpu=1")
                .unwrap_err()
                .to_string()
                .contains("unknown resource")
        );
        assert!(
            parse("mru=8X")
                .unwrap_err()
                .to_string()
                .contains("unknown size unit")
        );
        assert!(parse("mru").is_err());
    }

    #[test]
    fn detects_this_machine() {
        let r = detect(Path::new("/")).unwrap();
        assert!(r.cru >= 1 && r.mru > GIB && r.sru > 0);
    }
}
