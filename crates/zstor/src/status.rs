//! `status`: every configured backend, data and metadata, with whether it answers, its namespace
//! mode, and what NSINFO says about entries, used and free space.

use crate::Zstor;
use crate::config::BackendId;
use crate::zdb::Conn;
use futures::future::join_all;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// One backend as seen now.
#[derive(Debug, Clone)]
pub struct BackendStatus {
    /// `group <n>` or `meta`.
    pub role: String,
    pub backend: BackendId,
    /// NSINFO fields and the PING round trip, or why the backend did not answer.
    pub state: Result<(BTreeMap<String, String>, Duration), String>,
}

impl Zstor {
    /// Asks every configured backend for its namespace information.
    pub async fn status(&self) -> Vec<BackendStatus> {
        let config = self.config();
        let backends: Vec<(String, &crate::config::BackendConfig)> = config
            .groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| {
                group
                    .backends
                    .iter()
                    .map(move |b| (format!("group {g}"), b))
            })
            .chain(
                config
                    .meta
                    .config
                    .backends
                    .iter()
                    .map(|b| ("meta".to_owned(), b)),
            )
            .collect();
        join_all(backends.into_iter().map(|(role, backend)| async move {
            let state = async {
                let mut conn = Conn::connect(backend).await?;
                let info = conn.nsinfo(&backend.namespace).await?;
                Ok((info, conn.rtt))
            }
            .await
            .map_err(|e: crate::zdb::ZdbError| e.to_string());
            BackendStatus {
                role,
                backend: backend.id(),
                state,
            }
        }))
        .await
    }
}

impl fmt::Display for BackendStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<9} {:<40} ", self.role, self.backend.to_string())?;
        match &self.state {
            Err(reason) => write!(f, "unreachable: {reason}"),
            Ok((info, rtt)) => {
                let field = |name: &str| info.get(name).map_or("?", String::as_str);
                let limit = match field("data_limits_bytes") {
                    "0" => "unlimited",
                    other => other,
                };
                write!(
                    f,
                    "up, {} µs, mode {}, {} entries, {} bytes used, limit {}, {} bytes free on disk",
                    rtt.as_micros(),
                    field("mode"),
                    field("entries"),
                    field("data_size_bytes"),
                    limit,
                    field("data_disk_freespace_bytes"),
                )
            }
        }
    }
}
