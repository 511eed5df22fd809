//! Routes: what the gateway serves, one file per workload, `<routes dir>/<workload id>.json`,
//! written by the node agent (atomically: a temporary file renamed into place) and read by `zgw`
//! when it starts and on every SIGHUP. Version 1 of the format:
//!
//! ```json
//! {"version": 1, "fqdn": "web.gw1.grid.tf", "tls_passthrough": false,
//!  "backends": ["http://10.20.1.2:80"], "netns": "/var/run/netns/n-1a2b", "paused": false}
//! ```
//!
//! `backends` are `http://ip[:port]` (port 80 by default) when the gateway terminates TLS, and
//! `ip:port` with TLS passthrough; `netns` names the network namespace the backends are reached
//! from (a user network's), or is absent for the gateway's own; a paused route (its contract in
//! its grace period) is answered with 503.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::limits::{BACKENDS_MAX, FQDN_BYTES_MAX, ROUTE_FILE_BYTES_MAX};

/// The route file format this build writes and reads.
pub const ROUTE_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub version: u32,
    /// The host name served, lowercase.
    pub fqdn: String,
    pub tls_passthrough: bool,
    pub backends: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    #[serde(default)]
    pub paused: bool,
}

/// Why a route file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {len} bytes, more than {ROUTE_FILE_BYTES_MAX}")]
    TooLarge { path: String, len: u64 },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Route {
    /// A route of the current version.
    pub fn new(
        fqdn: &str,
        tls_passthrough: bool,
        backends: Vec<String>,
        netns: Option<PathBuf>,
    ) -> Route {
        Route {
            version: ROUTE_FORMAT_VERSION,
            fqdn: fqdn.to_ascii_lowercase(),
            tls_passthrough,
            backends,
            netns,
            paused: false,
        }
    }

    /// Where the route of workload `id` lives in `dir`.
    pub fn path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    /// Writes the route of workload `id` into `dir`, replacing its previous one at once.
    pub fn write(&self, dir: &Path, id: &str) -> Result<(), RouteError> {
        let path = Route::path(dir, id);
        let tmp = dir.join(format!(".{id}.json.tmp"));
        let write_error = |source| RouteError::Write {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write_error)?;
        let text = serde_json::to_vec_pretty(self).expect("a route serializes");
        std::fs::write(&tmp, text).map_err(write_error)?;
        std::fs::rename(&tmp, &path).map_err(write_error)
    }

    /// Removes the route of workload `id`; a missing one is not an error.
    pub fn remove(dir: &Path, id: &str) -> Result<(), RouteError> {
        let path = Route::path(dir, id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RouteError::Write {
                path: path.display().to_string(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Reads and checks one route file.
    pub fn read(path: &Path) -> Result<Route, RouteError> {
        let shown = || path.display().to_string();
        let read_error = |source| RouteError::Read {
            path: shown(),
            source,
        };
        let len = std::fs::metadata(path).map_err(read_error)?.len();
        if len > ROUTE_FILE_BYTES_MAX {
            return Err(RouteError::TooLarge { path: shown(), len });
        }
        let text = std::fs::read(path).map_err(read_error)?;
        let route: Route = serde_json::from_slice(&text).map_err(|e| RouteError::Invalid {
            path: shown(),
            reason: e.to_string(),
        })?;
        route.check().map_err(|reason| RouteError::Invalid {
            path: shown(),
            reason,
        })?;
        Ok(route)
    }

    /// The rules a route must meet; the reason when it does not.
    pub fn check(&self) -> Result<(), String> {
        if self.version != ROUTE_FORMAT_VERSION {
            return Err(format!(
                "route format version {} (this gateway reads {ROUTE_FORMAT_VERSION})",
                self.version
            ));
        }
        let labels_ok = self.fqdn.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        });
        if self.fqdn.len() > FQDN_BYTES_MAX || !labels_ok {
            return Err(format!("{:?} is not a lowercase host name", self.fqdn));
        }
        if self.backends.is_empty() || self.backends.len() > BACKENDS_MAX {
            return Err(format!("a route has 1 to {BACKENDS_MAX} backends"));
        }
        for backend in &self.backends {
            self.backend_address(backend)?;
        }
        Ok(())
    }

    /// The socket address of a backend: `ip:port` with passthrough, `http://ip[:port]` otherwise.
    pub fn backend_address(&self, backend: &str) -> Result<SocketAddr, String> {
        let (host_port, default_port) = if self.tls_passthrough {
            (backend, None)
        } else {
            let rest = backend
                .strip_prefix("http://")
                .ok_or_else(|| format!("backend {backend:?} is not http://ip[:port]"))?;
            (rest.trim_end_matches('/'), Some(80))
        };
        if let Ok(addr) = host_port.parse::<SocketAddr>() {
            return Ok(addr);
        }
        match (
            default_port,
            host_port.trim_matches(['[', ']']).parse::<IpAddr>(),
        ) {
            (Some(port), Ok(ip)) => Ok(SocketAddr::new(ip, port)),
            _ if self.tls_passthrough => Err(format!("backend {backend:?} is not ip:port")),
            _ => Err(format!("backend {backend:?} does not name an IP")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(passthrough: bool, backends: &[&str]) -> Route {
        Route::new(
            "Web.GW1.grid.tf",
            passthrough,
            backends.iter().map(|b| b.to_string()).collect(),
            None,
        )
    }

    #[test]
    fn backends_parse_per_mode() {
        let r = route(
            false,
            &[
                "http://10.20.1.2",
                "http://10.20.1.3:8080/",
                "http://[fd00::2]:81",
            ],
        );
        assert_eq!(r.fqdn, "web.gw1.grid.tf");
        r.check().unwrap();
        assert_eq!(
            r.backend_address("http://10.20.1.2").unwrap(),
            "10.20.1.2:80".parse().unwrap()
        );
        assert_eq!(
            r.backend_address("http://[fd00::2]:81").unwrap(),
            "[fd00::2]:81".parse().unwrap()
        );
        route(true, &["10.20.1.2:443"]).check().unwrap();
        let cases: [(bool, &[&str], &str); 4] = [
            (false, &["10.20.1.2:80"], "is not http://ip[:port]"),
            (false, &["http://web:80"], "does not name an IP"),
            (true, &["10.20.1.2"], "is not ip:port"),
            (false, &[], "1 to 16 backends"),
        ];
        for (passthrough, backends, expect) in cases {
            let err = route(passthrough, backends).check().unwrap_err();
            assert!(err.contains(expect), "{backends:?}: {err}");
        }
    }

    #[test]
    fn files_round_trip_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let r = Route {
            netns: Some("/var/run/netns/n-1".into()),
            ..route(false, &["http://10.20.1.2"])
        };
        r.write(dir.path(), "2-7-web").unwrap();
        assert_eq!(Route::read(&Route::path(dir.path(), "2-7-web")).unwrap(), r);
        Route::remove(dir.path(), "2-7-web").unwrap();
        Route::remove(dir.path(), "2-7-web").unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"version": 2, "fqdn": "a.b", "tls_passthrough": false, "backends": ["http://1.2.3.4"]}"#).unwrap();
        let err = Route::read(&bad).unwrap_err().to_string();
        assert!(err.contains("route format version 2"), "{err}");
        std::fs::write(&bad, "not json").unwrap();
        assert!(
            Route::read(&bad)
                .unwrap_err()
                .to_string()
                .contains("bad.json")
        );
    }
}
