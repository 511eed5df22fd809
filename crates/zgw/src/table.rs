//! The routes the gateway serves right now: every route file of the routes directory, read at
//! start and on every reload, indexed by host name. A bad file is logged and skipped, never fatal;
//! of two files naming the same host the one whose name sorts first wins.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::limits::ROUTES_MAX;
use crate::route::{Route, RouteError};

/// One route as served: the route, its backends' addresses and whose turn is next.
#[derive(Debug)]
pub struct Served {
    pub route: Route,
    /// The file it came from.
    pub path: PathBuf,
    /// Each backend as the route names it, with its socket address.
    pub backends: Vec<(String, SocketAddr)>,
    next: AtomicUsize,
}

impl Served {
    /// A checked route (one [`Route::read`] returned).
    pub fn new(route: Route, path: PathBuf) -> Served {
        let backends = route
            .backends
            .iter()
            .map(|b| {
                let addr = route
                    .backend_address(b)
                    .expect("a checked route's backends parse");
                (b.clone(), addr)
            })
            .collect();
        Served {
            route,
            path,
            backends,
            next: AtomicUsize::new(0),
        }
    }

    /// Every backend once, in the order to try them: round-robin from a start that moves by one on
    /// every call.
    pub fn backends_in_turn(&self) -> impl Iterator<Item = &(String, SocketAddr)> {
        let n = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(move |i| &self.backends[(start + i) % n])
    }
}

/// The routes by host name.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_fqdn: HashMap<String, Arc<Served>>,
}

impl RouteTable {
    /// Reads every `*.json` file of `dir` not starting with `.` (temporary files), in name order.
    /// Fails only when the directory itself cannot be read.
    pub fn load(dir: &Path) -> Result<RouteTable, RouteError> {
        let read_error = |source| RouteError::Read {
            path: dir.display().to_string(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let name = entry.map_err(read_error)?.file_name();
            let Some(name) = name.to_str() else {
                tracing::warn!(dir = %dir.display(), name = ?name, "skipping a file whose name is not UTF-8");
                continue;
            };
            if name.ends_with(".json") && !name.starts_with('.') {
                names.push(name.to_string());
            }
        }
        names.sort();
        let mut table = RouteTable::default();
        for name in names {
            let path = dir.join(&name);
            if table.by_fqdn.len() == ROUTES_MAX {
                tracing::warn!(path = %path.display(), "skipping route file: more than {ROUTES_MAX} routes");
                continue;
            }
            let route = match Route::read(&path) {
                Ok(route) => route,
                Err(error) => {
                    tracing::warn!(%error, "skipping route file");
                    continue;
                }
            };
            if let Some(first) = table.by_fqdn.get(&route.fqdn) {
                tracing::warn!(
                    path = %path.display(),
                    "skipping route file: {} is already served by {}",
                    route.fqdn,
                    first.path.display()
                );
                continue;
            }
            table
                .by_fqdn
                .insert(route.fqdn.clone(), Arc::new(Served::new(route, path)));
        }
        Ok(table)
    }

    /// The route serving `fqdn` (lowercase).
    pub fn get(&self, fqdn: &str) -> Option<&Arc<Served>> {
        self.by_fqdn.get(fqdn)
    }

    pub fn len(&self) -> usize {
        self.by_fqdn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fqdn.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Served>> {
        self.by_fqdn.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(fqdn: &str, backends: &[&str]) -> Route {
        Route::new(
            fqdn,
            false,
            backends.iter().map(|b| b.to_string()).collect(),
            None,
        )
    }

    #[test]
    fn load_skips_bad_duplicate_and_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        route("a.example.com", &["http://10.0.0.1"])
            .write(dir.path(), "2-a")
            .unwrap();
        route("a.example.com", &["http://10.0.0.2"])
            .write(dir.path(), "1-a")
            .unwrap();
        route("b.example.com", &["http://10.0.0.3"])
            .write(dir.path(), ".hidden")
            .unwrap();
        route("c.example.com", &["http://10.0.0.4"])
            .write(dir.path(), "3-c")
            .unwrap();
        std::fs::write(dir.path().join("4-bad.json"), "{").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a route").unwrap();
        let table = RouteTable::load(dir.path()).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(
            table.get("a.example.com").unwrap().backends[0].1,
            "10.0.0.2:80".parse().unwrap()
        );
        assert!(table.get("b.example.com").is_none());
        assert!(table.get("c.example.com").is_some());
        assert!(RouteTable::load(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn backends_take_turns() {
        let served = Served::new(
            route(
                "a.b",
                &["http://10.0.0.1", "http://10.0.0.2", "http://10.0.0.3"],
            ),
            PathBuf::new(),
        );
        let firsts: Vec<String> = (0..4)
            .map(|_| served.backends_in_turn().next().unwrap().0.clone())
            .collect();
        assert_eq!(
            firsts,
            [
                "http://10.0.0.1",
                "http://10.0.0.2",
                "http://10.0.0.3",
                "http://10.0.0.1"
            ]
        );
        let all: Vec<&str> = served.backends_in_turn().map(|b| b.0.as_str()).collect();
        assert_eq!(
            all,
            ["http://10.0.0.2", "http://10.0.0.3", "http://10.0.0.1"]
        );
    }
}
