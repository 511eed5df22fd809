//! The OpenAPI 3 document of the API, generated from the table the router is built from
//! ([`super::routes::ROUTES`]); a test checks each route's documented query parameters against
//! those its handler accepts.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use super::routes::ROUTES;

fn parameter(name: &str, kind: &str, description: &str, place: &str) -> Value {
    json!({
        "name": name, "in": place, "required": place == "path",
        "description": description, "schema": { "type": kind },
    })
}

/// A method as OpenAPI names it (`get`).
fn method_name(method: &axum::http::Method) -> String {
    method.as_str().to_ascii_lowercase()
}

fn document() -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for e in ROUTES {
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
        let operation = json!({
                "summary": e.summary,
                "parameters": params,
                "responses": {
                    "200": { "description": "OK",
                             "content": { "application/json": { "schema": schema } } },
                    "400": { "description": "a bad parameter, named in `error`" },
                    "404": { "description": "not found" },
                    "500": { "description": "the store failed" },
                },
        });
        paths
            .entry(e.path)
            .or_default()
            .insert(method_name(&e.method), operation);
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
        let mut documented: Vec<(String, &str)> = paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().unwrap().keys();
                methods.map(move |m| (m.clone(), path.as_str()))
            })
            .collect();
        let mut routes: Vec<(String, &str)> = ROUTES
            .iter()
            .map(|r| (method_name(&r.method), r.path))
            .collect();
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
        assert_eq!(served, doc);
    }
}
