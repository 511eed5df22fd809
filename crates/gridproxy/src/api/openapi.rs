//! The OpenAPI 3 document of the API, built from one table of endpoints and their parameters; a test
//! checks the table against the router's routes and each handler's accepted parameters.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

struct Endpoint {
    path: &'static str,
    summary: &'static str,
    /// Query parameters: name, JSON schema type, description.
    query: &'static [(&'static str, &'static str, &'static str)],
    paged: bool,
    /// Fields of the answer (of each item, for a list): name, JSON schema type, description.
    fields: &'static [(&'static str, &'static str, &'static str)],
}

/// Amounts are decimal strings of TFT units (10^-7 TFT), as the chain's JSON carries them.
const CONTRACT_FIELDS: &[(&str, &str, &str)] = &[
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

const NODE_QUERY: &[(&str, &str, &str)] = &[
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

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        path: "/",
        summary: "the web dashboard (HTML)",
        query: &[],
        paged: false,
        fields: &[],
    },
    Endpoint {
        path: "/health",
        summary: "the indexer's progress",
        query: &[],
        paged: false,
        fields: &[],
    },
    Endpoint {
        path: "/openapi.json",
        summary: "this document",
        query: &[],
        paged: false,
        fields: &[],
    },
    Endpoint {
        path: "/farms",
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
    Endpoint {
        path: "/nodes",
        summary: "nodes",
        query: NODE_QUERY,
        paged: true,
        fields: &[],
    },
    Endpoint {
        path: "/nodes/{id}",
        summary: "one node",
        query: &[],
        paged: false,
        fields: &[],
    },
    Endpoint {
        path: "/gateways",
        summary: "nodes with a domain",
        query: NODE_QUERY,
        paged: true,
        fields: &[],
    },
    Endpoint {
        path: "/gateways/{id}",
        summary: "one gateway",
        query: &[],
        paged: false,
        fields: &[],
    },
    Endpoint {
        path: "/twins",
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
    Endpoint {
        path: "/twins/{id}/consumption",
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
    Endpoint {
        path: "/contracts",
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
    Endpoint {
        path: "/contracts/{id}",
        summary: "one contract with its deployment and workload states",
        query: &[],
        paged: false,
        fields: CONTRACT_FIELDS,
    },
    Endpoint {
        path: "/contracts/{id}/bills",
        summary: "a contract's bills",
        query: &[],
        paged: true,
        fields: &[],
    },
    Endpoint {
        path: "/public_ips",
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
    Endpoint {
        path: "/stats",
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

fn parameter(name: &str, kind: &str, description: &str, place: &str) -> Value {
    json!({
        "name": name, "in": place, "required": place == "path",
        "description": description, "schema": { "type": kind },
    })
}

fn document() -> Value {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let mut params: Vec<Value> = Vec::new();
        if e.path.contains("{id}") {
            params.push(parameter("id", "integer", "id", "path"));
        }
        for (name, kind, description) in e.query {
            params.push(parameter(name, kind, description, "query"));
        }
        if e.paged {
            params.push(parameter("page", "integer", "page number, from 1", "query"));
            params.push(parameter(
                "size",
                "integer",
                "page size, 1 to 1000 (default 50)",
                "query",
            ));
            params.push(parameter(
                "ret_count",
                "boolean",
                "add count, size and pages headers",
                "query",
            ));
            params.push(parameter("sort_by", "string", "field to sort by", "query"));
            params.push(parameter("sort_order", "string", "asc or desc", "query"));
        }
        let properties: Map<String, Value> = e
            .fields
            .iter()
            .map(|(name, kind, description)| {
                (
                    (*name).to_owned(),
                    json!({ "type": kind, "description": description }),
                )
            })
            .collect();
        let item = if properties.is_empty() {
            json!({})
        } else {
            json!({ "type": "object", "properties": properties })
        };
        let schema = if e.paged {
            json!({ "type": "array", "items": item })
        } else {
            item
        };
        paths.insert(
            e.path.to_owned(),
            json!({ "get": {
                "summary": e.summary,
                "parameters": params,
                "responses": {
                    "200": { "description": "OK",
                             "content": { "application/json": { "schema": schema } } },
                    "400": { "description": "a bad parameter, named in `error`" },
                    "404": { "description": "not found" },
                    "500": { "description": "the store failed" },
                },
            }}),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "gridproxy",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The grid's explorer: what the chain holds, indexed, with the grid proxy's filters.",
        },
        "paths": paths,
    })
}

/// The document, rendered once.
pub static OPENAPI: LazyLock<String> = LazyLock::new(|| document().to_string());

#[cfg(test)]
mod tests {
    use super::super::params::PAGING;
    use super::*;

    fn documented(path: &str) -> Vec<String> {
        let doc = document();
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} is not documented"))
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn check(path: &str, accepted: &[&str], paged: bool) {
        let mut expect: Vec<String> = accepted.iter().map(|s| s.to_string()).collect();
        if paged {
            expect.extend(PAGING.iter().map(|s| s.to_string()));
        }
        let mut got = documented(path);
        expect.sort();
        got.sort();
        assert_eq!(got, expect, "{path}");
    }

    #[test]
    fn every_route_and_parameter_is_documented() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
        let mut routes = super::super::ROUTES.to_vec();
        documented.sort();
        routes.sort();
        assert_eq!(documented, routes);
        check("/nodes", super::super::nodes::FILTERS, true);
        check("/gateways", super::super::nodes::FILTERS, true);
        check("/farms", super::super::farms::FARM_FILTERS, true);
        check("/public_ips", super::super::farms::IP_FILTERS, true);
        check("/contracts", super::super::contracts::FILTERS, true);
        check("/twins", super::super::twins::FILTERS, true);
        check("/contracts/{id}/bills", &[], true);
        check("/stats", super::super::stats::STATS_FILTERS, false);
        // The served text is the document.
        let served: Value = serde_json::from_str(&OPENAPI).unwrap();
        assert_eq!(served["openapi"], "3.0.3");
    }
}
