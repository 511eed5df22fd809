//! The image hub: content-addressed image archives (tar) named by the blake3 of their bytes, served
//! over HTTP, so a deployment names an image by URL and hash and a node can check what it fetched.
//! `tfgrid image push` stores an archive (and names it: `/tags/<name>` answers its hash, which is
//! how deployment files say `image = "demo"`); `tfgrid hub serve` serves the store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::output;

#[derive(Debug, Serialize)]
pub struct Pushed {
    pub hash: String,
    pub file: String,
    pub size_bytes: u64,
}

/// Stores an archive in the hub directory under its hash, and names it `name` if given.
pub fn push(archive: &Path, dir: &Path, name: Option<&str>) -> Result<Pushed> {
    let bytes = std::fs::read(archive).with_context(|| format!("reading {}", archive.display()))?;
    let hash = blake3::hash(&bytes).to_hex().to_string();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = format!("{hash}.tar");
    let tmp = dir.join(format!("{file}.part"));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, dir.join(&file))?;
    if let Some(name) = name {
        if !valid_tag(name) {
            bail!("an image name is 1 to 64 letters, digits, '-', '_' and '.', not {name:?}");
        }
        let tags = dir.join("tags");
        std::fs::create_dir_all(&tags)?;
        let tmp = tags.join(format!(".{name}.part"));
        std::fs::write(&tmp, &hash)?;
        std::fs::rename(&tmp, tags.join(name))?;
    }
    Ok(Pushed {
        hash,
        file,
        size_bytes: bytes.len() as u64,
    })
}

fn valid_name(name: &str) -> bool {
    name.strip_suffix(".tar")
        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

fn valid_tag(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What the hub serves, and the URL nodes reach it at.
#[derive(Clone)]
struct Hub {
    dir: PathBuf,
    public_url: String,
}

/// `/tags/{name}`: the hash, file and URL an image name stands for.
async fn tag(State(hub): State<Hub>, UrlPath(name): UrlPath<String>) -> impl IntoResponse {
    if !valid_tag(&name) {
        return (
            StatusCode::BAD_REQUEST,
            format!("{name:?} is not an image name"),
        )
            .into_response();
    }
    match tokio::fs::read_to_string(hub.dir.join("tags").join(&name)).await {
        Ok(hash) => {
            let hash = hash.trim().to_owned();
            let file = format!("{hash}.tar");
            let url = format!("{}/{file}", hub.public_url);
            axum::Json(serde_json::json!({ "hash": hash, "file": file, "url": url }))
                .into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, format!("no image named {name:?}")).into_response(),
    }
}

async fn get(State(hub): State<Hub>, UrlPath(name): UrlPath<String>) -> impl IntoResponse {
    if !valid_name(&name) {
        return (
            StatusCode::BAD_REQUEST,
            "an image is <64 hex digits>.tar".to_string(),
        )
            .into_response();
    }
    match tokio::fs::read(hub.dir.join(&name)).await {
        Ok(bytes) => (StatusCode::OK, bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, format!("no image {name}")).into_response(),
    }
}

/// Serves the hub directory until the process ends.
pub async fn serve(dir: PathBuf, listen: SocketAddr, public_url: Option<String>) -> Result<()> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let app = axum::Router::new()
        .route("/{name}", axum::routing::get(get))
        .route("/tags/{name}", axum::routing::get(tag))
        .with_state(Hub {
            public_url: public_url
                .unwrap_or_else(|| format!("http://{listen}"))
                .trim_end_matches('/')
                .to_owned(),
            dir,
        });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    output::note(format_args!(
        "hub serving on http://{}",
        listener.local_addr()?
    ));
    axum::serve(listener, app).await?;
    Ok(())
}
