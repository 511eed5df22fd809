//! The two HTTP services a client reads besides the chain: the explorer (`gridproxy`), which finds
//! nodes with room and shows farms' nodes, and the image hub, which names images. Blocking `ureq`
//! calls, run off the async runtime's threads.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::project::{NodeChoice, ResolvedImage};

/// What a search for a node needs: capacity in bytes and public IPs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub cru: u64,
    pub mru: u64,
    pub sru: u64,
    pub hru: u64,
    pub ipv4: u64,
    /// A gateway domain (for gateway names).
    pub domain: bool,
    /// A public config: what runs there is reached from outside (FQDN gateways, public IPs,
    /// 0-dbs), so the node may not be hidden.
    pub public_config: bool,
}

/// A node as the explorer shows it (the fields the client uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplorerNode {
    pub node_id: u32,
    pub farm_id: u32,
    pub farm_name: String,
    pub status: String,
    pub country: String,
    pub city: String,
    /// Seconds of uptime the node last reported.
    pub uptime: u64,
    pub last_uptime_report: u64,
    #[serde(rename = "total_resources")]
    pub total: Resources,
    #[serde(rename = "used_resources")]
    pub used: Resources,
    #[serde(rename = "free_resources")]
    pub free: Resources,
    #[serde(rename = "farm_free_ips")]
    pub free_ips: u64,
    pub certification_type: String,
}

/// `/nodes/{id}` adds these.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeDetail {
    #[serde(flatten)]
    pub node: ExplorerNode,
    pub num_contracts: u64,
    /// Units of TFT, as a decimal string.
    pub farming_rewards_total: String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Resources {
    #[serde(default)]
    pub cru: u64,
    pub mru: u64,
    pub sru: u64,
    pub hru: u64,
}

#[derive(Debug, Clone)]
pub struct Explorer {
    base: String,
}

async fn get_json<T: DeserializeOwned + Send + 'static>(
    url: String,
    service: &'static str,
) -> Result<T, Error> {
    let unreachable = |e: String| Error::Service {
        service,
        url: url.clone(),
        message: e,
    };
    let fetch_url = url.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<T, String> {
        let response = ureq::get(&fetch_url)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {}", body.trim()));
        }
        serde_json::from_str(&body).map_err(|e| format!("unexpected answer: {e}"))
    })
    .await
    .map_err(|e| unreachable(e.to_string()))?;
    result.map_err(unreachable)
}

impl Explorer {
    pub fn new(base: &str) -> Explorer {
        Explorer {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Nodes that are up, available to `twin`, meet the constraints and have room for `needs`,
    /// those with the most free memory first.
    pub async fn find_nodes(
        &self,
        choice: &NodeChoice,
        needs: Needs,
        twin: u32,
    ) -> Result<Vec<ExplorerNode>, Error> {
        let mut q = vec![
            ("status".to_owned(), "up".to_owned()),
            ("available_for".into(), twin.to_string()),
            ("free_mru".into(), needs.mru.to_string()),
            ("free_sru".into(), needs.sru.to_string()),
            ("free_hru".into(), needs.hru.to_string()),
            ("sort_by".into(), "free_mru".into()),
            ("sort_order".into(), "desc".into()),
            ("size".into(), "50".into()),
        ];
        if needs.ipv4 > 0 {
            q.push(("free_ips".into(), needs.ipv4.to_string()));
        }
        if needs.domain {
            q.push(("domain".into(), "true".into()));
        } else if needs.public_config {
            q.push(("ipv4".into(), "true".into()));
        }
        let optional = [
            ("farm_name", choice.farm.clone()),
            ("farm_ids", choice.farm_id.map(|f| f.to_string())),
            ("country", choice.country.clone()),
            ("city", choice.city.clone()),
            ("dedicated", choice.dedicated.map(|d| d.to_string())),
            (
                "certification_type",
                choice
                    .certified
                    .map(|c| if c { "Certified" } else { "Diy" }.to_owned()),
            ),
        ];
        q.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?))),
        );
        let nodes: Vec<ExplorerNode> = self.get(&format!("/nodes?{}", query(&q))).await?;
        // The explorer does not filter on CPU: a node's cores are never fewer than one machine's ask.
        Ok(nodes
            .into_iter()
            .filter(|n| n.total.cru >= needs.cru)
            .collect())
    }

    /// Nodes up, whatever their room: to say why none fits.
    pub async fn count_up(&self) -> Result<usize, Error> {
        let nodes: Vec<serde_json::Value> = self.get("/nodes?status=up&size=1000").await?;
        Ok(nodes.len())
    }

    pub async fn farm_nodes(&self, farm_id: u32) -> Result<Vec<NodeDetail>, Error> {
        let nodes: Vec<ExplorerNode> = self
            .get(&format!(
                "/nodes?farm_ids={farm_id}&size=1000&sort_by=node_id"
            ))
            .await?;
        let mut out = Vec::with_capacity(nodes.len());
        for n in nodes {
            out.push(self.get(&format!("/nodes/{}", n.node_id)).await?);
        }
        Ok(out)
    }

    async fn get<T: DeserializeOwned + Send + 'static>(&self, path: &str) -> Result<T, Error> {
        get_json(format!("{}{path}", self.base), "explorer").await
    }
}

fn query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where a container's `image` is: a hub name resolved through `<hub>/tags/<name>` (which answers
/// the URL nodes fetch it from), or a URL
/// with its hash given or in its file name (`<64 hex>.tar`).
pub async fn resolve_image(
    hub: &str,
    image: &str,
    hash: Option<&str>,
) -> Result<ResolvedImage, Error> {
    let hub = hub.trim_end_matches('/');
    let is_hash = |h: &str| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit());
    if image.contains("://") {
        let named = image
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".tar"))
            .filter(|h| is_hash(h));
        let hash = hash.or(named).ok_or_else(|| Error::Image {
            image: image.to_owned(),
            message: "an image URL needs image_hash (the blake3 of the archive) unless it is named <hash>.tar".into(),
        })?;
        if !is_hash(hash) {
            return Err(Error::Image {
                image: image.to_owned(),
                message: format!("image_hash {hash:?} is not 64 hex digits"),
            });
        }
        return Ok(ResolvedImage {
            url: image.to_owned(),
            hash: hash.to_lowercase(),
        });
    }
    #[derive(Deserialize)]
    struct Tag {
        hash: String,
        /// Where nodes fetch it.
        url: String,
    }
    let tag: Tag = get_json(format!("{hub}/tags/{}", encode(image)), "image hub")
        .await
        .map_err(|e| Error::Image {
            image: image.to_owned(),
            message: format!("the hub does not name it: {e}"),
        })?;
    if hash.is_some_and(|h| !h.eq_ignore_ascii_case(&tag.hash)) {
        return Err(Error::Image {
            image: image.to_owned(),
            message: format!(
                "the hub names hash {}, the file says {}",
                tag.hash,
                hash.unwrap_or_default()
            ),
        });
    }
    Ok(ResolvedImage {
        url: tag.url,
        hash: tag.hash,
    })
}
