//! The REST API (axum): the grid proxy's endpoints over the index, served and documented from one
//! table ([`ROUTES`]). Every request reads one snapshot of the store on a blocking thread;
//! [`status_of`] is the one table from errors to HTTP statuses.

mod contracts;
mod farms;
mod nodes;
mod openapi;
pub mod params;
mod routes;
mod stats;
mod twins;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodFilter;
use serde_json::{Value as Json_, json};

use crate::error::Error;
use crate::indexer::Progress;
use crate::limits::CONCURRENT_REQUESTS_MAX;
use crate::store::{self, Sql, Store};

pub use openapi::OPENAPI;
pub use routes::{Field, ROUTES, Route};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The indexer's progress, and the chain's uptime report interval, which says when a node is
    /// up.
    pub progress: Arc<Progress>,
    pub stats_cache: Arc<stats::StatsCache>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, progress: Arc<Progress>) -> AppState {
        AppState {
            store,
            progress,
            stats_cache: Arc::default(),
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("up_window_s", &self.progress.up_window_s())
            .finish_non_exhaustive()
    }
}

/// The query string as name-value pairs, decoded.
pub type RawQuery = Query<Vec<(String, String)>>;

/// The one mapping from errors to HTTP statuses.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::BadParam { .. } => StatusCode::BAD_REQUEST,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Chain(_) => StatusCode::BAD_GATEWAY,
        Error::Store(_) | Error::Overflow { .. } | Error::OtherChain { .. } | Error::Gap { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// An error as an HTTP reply: `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if status.is_server_error() {
            tracing::error!("request failed: {}", self.0);
        }
        (status, Json(json!({ "error": self.0.to_string() }))).into_response()
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// Runs a read on a blocking thread, on one snapshot of the store.
pub async fn read<T: Send + 'static>(
    state: &AppState,
    f: impl FnMut(&mut dyn Sql) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store::read(&*store, f))
        .await
        .map_err(|e| Error::Store(format!("read task failed: {e}")))?
}

/// Unix seconds now.
pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One page of a listing — `SELECT {columns} {from} {where} {order}` with the page's LIMIT and OFFSET —
/// and, when the client asked for it (`ret_count`), the count of all matching rows.
#[derive(Debug, Clone)]
pub struct PageQuery {
    rows_sql: String,
    rows_params: Vec<crate::store::Value>,
    count_sql: String,
    count_params: Vec<crate::store::Value>,
    ret_count: bool,
}

impl PageQuery {
    pub fn new(
        columns: &str,
        from: &str,
        filter: params::Filter,
        order: &str,
        paging: params::Paging,
    ) -> PageQuery {
        let rows_sql = format!(
            "SELECT {columns} {from} {} {order} LIMIT ${} OFFSET ${}",
            filter.where_sql(),
            filter.params.len() + 1,
            filter.params.len() + 2
        );
        let count_sql = format!("SELECT COUNT(*) {from} {}", filter.where_sql());
        let mut rows_params = filter.params.clone();
        rows_params.push(paging.limit());
        rows_params.push(paging.offset());
        PageQuery {
            rows_sql,
            rows_params,
            count_sql,
            count_params: filter.params,
            ret_count: paging.ret_count,
        }
    }

    /// Runs in the caller's snapshot.
    pub fn run(&self, sql: &mut dyn Sql) -> Result<(Vec<crate::store::Row>, Option<i64>), Error> {
        let rows = sql.query(&self.rows_sql, &self.rows_params)?;
        let count = if self.ret_count {
            Some(sql.query_i64(&self.count_sql, &self.count_params)?)
        } else {
            None
        };
        Ok((rows, count))
    }
}

/// A [`PageQuery`] on one snapshot.
pub async fn page_rows(
    state: &AppState,
    columns: &str,
    from: &str,
    filter: params::Filter,
    order: &str,
    paging: params::Paging,
) -> Result<(Vec<crate::store::Row>, Option<i64>), Error> {
    let query = PageQuery::new(columns, from, filter, order, paging);
    read(state, move |sql| query.run(sql)).await
}

/// A page of a list, with the grid proxy's `count`, `size` and `pages` headers when asked for.
pub fn page_response(items: Vec<Json_>, count: Option<i64>, size: u64) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(count) = count {
        let pages = (count as u64).div_ceil(size);
        headers.insert("count", HeaderValue::from(count));
        headers.insert("size", HeaderValue::from(size));
        headers.insert("pages", HeaderValue::from(pages));
    }
    (headers, Json(Json_::Array(items))).into_response()
}

/// TFT units as a decimal string, as the chain's JSON carries amounts.
pub fn units(v: i64) -> Json_ {
    Json_::String(v.to_string())
}

async fn health(State(state): State<AppState>) -> ApiResult {
    let indexed = read(&state, |sql| crate::indexer::indexed(sql)).await?;
    let p = &state.progress;
    Ok(Json(json!({
        "status": "ok",
        "chain_connected": p.connected.load(std::sync::atomic::Ordering::Relaxed),
        "chain_height": p.chain_height.load(std::sync::atomic::Ordering::Relaxed),
        "indexed_height": indexed.as_ref().map(|i| i.height),
        "indexed_hash": indexed.as_ref().map(|i| i.hash.clone()),
        "indexed_timestamp_ms": indexed.as_ref().map(|i| i.timestamp_ms),
    }))
    .into_response())
}

async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI.as_str(),
    )
        .into_response()
}

/// The API's router: every route of [`ROUTES`], and the not-found reply for any other.
pub fn router(state: AppState) -> Router {
    ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            let method = MethodFilter::try_from(route.method.clone())
                .unwrap_or_else(|e| panic!("route {} {}: {e}", route.method, route.path));
            router.route(route.path, (route.handler)(method))
        })
        .fallback(|| async { ApiError(Error::NotFound("route".into())).into_response() })
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            CONCURRENT_REQUESTS_MAX,
        ))
        .layer(axum::middleware::map_response(cors))
        .with_state(state)
}

/// CORS `*` with the paging headers exposed, as the grid proxy.
async fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("count, size, pages"),
    );
    response
}

/// Parses a path id.
pub fn path_id(name: &str, raw: &str) -> Result<i64, Error> {
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| Error::bad_param(name, format!("{raw:?} is not a non-negative integer")))
}
