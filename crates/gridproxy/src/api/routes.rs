//! The API's one table of routes: method, path, handler and documentation of each. The router is
//! built from it ([`super::router`]) and the OpenAPI document generated from it
//! ([`super::OPENAPI`]), so no route is served undocumented nor documented unserved.

use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

use super::{AppState, contracts, farms, nodes, stats, twins};

/// One route: what it answers, with what, and how it is documented.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// The path as axum matches it and OpenAPI writes it: `{id}` is a path parameter.
    pub path: &'static str,
    /// The handler, on the method it is given (this route's).
    pub handler: fn(MethodFilter) -> MethodRouter<AppState>,
    pub summary: &'static str,
    /// Query parameters: name, JSON schema type, description.
    pub query: &'static [Field],
    /// A list answered a page at a time (the paging parameters apply).
    pub paged: bool,
    /// Fields of the answer (of each item, for a list): name, JSON schema type, description.
    pub fields: &'static [Field],
}

/// A documented name: name, JSON schema type, description.
pub type Field = (&'static str, &'static str, &'static str);

/// Amounts are decimal strings of TFT units (10^-7 TFT), as the chain's JSON carries them.
const CONTRACT_FIELDS: &[Field] = &[
    ("contract_id", "integer", "id"),
    ("twin_id", "integer", "owner twin"),
    ("type", "string", "node, name or rent"),
    ("state", "string", "Created, GracePeriod or Deleted"),
    (
        "grace_since_block",
        "integer",
        "block the grace period began, if in it",
    ),
    ("cause", "string", "why a deleted contract ended"),
    ("created_at", "integer", "unix seconds"),
    ("updated_at", "integer", "unix seconds"),
    (
        "cost_per_hour",
        "string",
        "TFT units an hour of the contract costs now before the balance discount, as the chain \
         bills it (0 once deleted; null before the indexer knows the prices)",
    ),
    (
        "details",
        "object",
        "node, deployment hash and version, public IPs, farm, resources and reported resources \
         of a node contract; the name of a name contract; the node of a rent contract",
    ),
];

const NODE_QUERY: &[Field] = &[
    (
        "free_mru",
        "integer",
        "at least this much free memory, bytes (total − used − system reserve)",
    ),
    ("free_sru", "integer", "at least this much free SSD, bytes"),
    ("free_hru", "integer", "at least this much free HDD, bytes"),
    ("total_mru", "integer", "at least this much memory, bytes"),
    ("total_sru", "integer", "at least this much SSD, bytes"),
    ("total_hru", "integer", "at least this much HDD, bytes"),
    ("total_cru", "integer", "at least this many cores"),
    (
        "status",
        "string",
        "comma-separated list of up, down, standby",
    ),
    ("farm_ids", "string", "comma-separated farm ids"),
    ("farm_name", "string", "farm name (any case)"),
    ("farm_name_contains", "string", "part of the farm name"),
    ("country", "string", "country (any case)"),
    ("country_contains", "string", "part of the country"),
    ("city", "string", "city (any case)"),
    ("city_contains", "string", "part of the city"),
    ("dedicated", "boolean", "in a dedicated farm"),
    ("in_dedicated_farm", "boolean", "in a dedicated farm"),
    ("rentable", "boolean", "in a dedicated farm and not rented"),
    ("rented", "boolean", "has a rent contract"),
    ("rented_by", "integer", "rented by this twin"),
    (
        "available_for",
        "integer",
        "this twin may deploy on it: not rented and not dedicated, or rented by the twin",
    ),
    (
        "domain",
        "boolean",
        "has a domain in its public config (gateway)",
    ),
    ("ipv4", "boolean", "has a public IPv4 config"),
    ("ipv6", "boolean", "has a public IPv6 config"),
    (
        "free_ips",
        "integer",
        "its farm has at least this many free public IPs",
    ),
    ("node_id", "integer", "this node"),
    ("node_ids", "string", "comma-separated node ids"),
    ("twin_id", "integer", "the node's twin"),
    ("owned_by", "integer", "the farmer's twin"),
    (
        "excluded",
        "string",
        "comma-separated node ids to leave out",
    ),
    ("certification_type", "string", "Certified or Diy"),
];

/// Every route of the API, in the order the document lists them.
pub const ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/",
        handler: |m| on(m, crate::dashboard::index),
        summary: "the web dashboard (HTML)",
        query: &[],
        paged: false,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/health",
        handler: |m| on(m, super::health),
        summary: "the indexer's progress",
        query: &[],
        paged: false,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/openapi.json",
        handler: |m| on(m, super::openapi_json),
        summary: "this document",
        query: &[],
        paged: false,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/farms",
        handler: |m| on(m, farms::list),
        summary: "farms with their public IPs",
        query: &[
            ("farm_id", "integer", "this farm"),
            ("twin_id", "integer", "the farmer's twin"),
            ("name", "string", "name (any case)"),
            ("name_contains", "string", "part of the name"),
            ("certification_type", "string", "NotCertified or Gold"),
            ("dedicated", "boolean", "dedicated farm"),
            ("pricing_policy_id", "integer", "pricing policy"),
            ("stellar_address", "string", "payout address"),
            ("free_ips", "integer", "at least this many free public IPs"),
            ("total_ips", "integer", "at least this many public IPs"),
            (
                "node_available_for",
                "integer",
                "has a node this twin may deploy on",
            ),
        ],
        paged: true,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/nodes",
        handler: |m| on(m, nodes::list),
        summary: "nodes",
        query: NODE_QUERY,
        paged: true,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/nodes/{id}",
        handler: |m| on(m, nodes::one),
        summary: "one node",
        query: &[],
        paged: false,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/gateways",
        handler: |m| on(m, nodes::gateways),
        summary: "nodes with a domain",
        query: NODE_QUERY,
        paged: true,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/gateways/{id}",
        handler: |m| on(m, nodes::gateway),
        summary: "one gateway",
        query: &[],
        paged: false,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/twins",
        handler: |m| on(m, twins::list),
        summary: "twins",
        query: &[
            ("twin_id", "integer", "this twin"),
            ("account_id", "string", "SS58 address"),
            ("relay", "string", "relay"),
            ("public_key", "string", "hex public key"),
        ],
        paged: true,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/twins/{id}/consumption",
        handler: |m| on(m, twins::consumption),
        summary: "TFT a twin paid, in all and in the last hour, and what an hour costs it now",
        query: &[],
        paged: false,
        fields: &[
            ("twin_id", "integer", "the twin"),
            ("total_billed", "string", "TFT units billed in all"),
            (
                "last_hour_billed",
                "string",
                "TFT units billed in the last hour of chain time",
            ),
            ("last_bill_s", "integer", "unix seconds of the last bill"),
            ("active_contracts", "integer", "contracts not deleted"),
            (
                "cost_per_hour",
                "string",
                "TFT units an hour of the active contracts costs now, the sum of their \
                 cost_per_hour (null before the indexer knows the prices)",
            ),
        ],
    },
    Route {
        method: Method::GET,
        path: "/contracts",
        handler: |m| on(m, contracts::list),
        summary: "contracts (deleted ones too)",
        query: &[
            ("contract_id", "integer", "this contract"),
            ("twin_id", "integer", "owner twin"),
            ("node_id", "integer", "node of a node or rent contract"),
            ("type", "string", "comma-separated: node, name, rent"),
            (
                "state",
                "string",
                "comma-separated: Created, GracePeriod, Deleted",
            ),
            ("name", "string", "name of a name contract"),
            ("number_of_public_ips", "integer", "public IPs reserved"),
            ("deployment_hash", "string", "hex deployment hash"),
            ("farm_id", "integer", "farm of the contract's node"),
        ],
        paged: true,
        fields: CONTRACT_FIELDS,
    },
    Route {
        method: Method::GET,
        path: "/contracts/{id}",
        handler: |m| on(m, contracts::one),
        summary: "one contract with its deployment and workload states",
        query: &[],
        paged: false,
        fields: CONTRACT_FIELDS,
    },
    Route {
        method: Method::GET,
        path: "/contracts/{id}/bills",
        handler: |m| on(m, contracts::bills),
        summary: "a contract's bills",
        query: &[],
        paged: true,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/public_ips",
        handler: |m| on(m, farms::public_ips),
        summary: "farms' public IPs",
        query: &[
            ("farm_ids", "string", "comma-separated farm ids"),
            ("free", "boolean", "not used by a contract"),
            ("ip", "string", "address with prefix"),
            ("gateway", "string", "gateway"),
            ("contract_id", "integer", "used by this contract"),
        ],
        paged: true,
        fields: &[],
    },
    Route {
        method: Method::GET,
        path: "/stats",
        handler: |m| on(m, stats::stats),
        summary: "grid statistics",
        query: &[(
            "status",
            "string",
            "count only nodes of these statuses: up, down, standby",
        )],
        paged: false,
        fields: &[],
    },
];
