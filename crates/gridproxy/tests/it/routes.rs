//! The route table against a running `gridproxy`: the document it serves lists exactly the table's
//! routes, and every route of the table answers 200 on a small grid where each `{id}` exists;
//! what the table does not hold is not served.

use std::collections::BTreeSet;

use gridproxy::api::ROUTES;
use tfchain_runtime::Call;
use tfchain_runtime::tfgrid::Call as GridCall;
use tfchain_runtime::types::*;
use tfgrid_types::Keypair;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_route_of_the_table_answers() {
    let chain = fast_chain().await;
    let client = chain.client().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| cli(home.path(), &chain, args);
    let alice = Keypair::from_uri("//Alice").unwrap();
    // Id 1 of everything a path names: twin 1 (Alice), farm 1, node 1 with a domain (a gateway),
    // contract 1 on it.
    run(&["--key", "//Alice", "twin", "create"]);
    run(&["--key", "//Alice", "farm", "create", "farm1"]);
    let node = Keypair::from_uri("//Node1").unwrap();
    register_node(&client, &node, NODE_RESOURCES, "Ghent", "Belgium").await;
    let public_config = PublicConfig {
        ip4: Ip4Config {
            ip: "185.206.122.50/24".into(),
            gw: "185.206.122.1".into(),
        },
        ip6: None,
        domain: Some("gw.example.com".into()),
    };
    client
        .execute(
            &alice,
            Call::Tfgrid(GridCall::AddNodePublicConfig {
                farm_id: 1,
                node_id: 1,
                public_config: Some(public_config),
            }),
        )
        .await
        .unwrap();
    let db = zdb_file(home.path(), "db.json", 1, false);
    run(&["--key", "//Alice", "contract", "create", "--node", "1", &db]);
    let proxy = Proxy::start(&chain.rpc_url()).await;
    proxy.caught_up(&client).await;

    let doc = proxy.json("/openapi.json").await;
    let served: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().unwrap().keys();
            methods.map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(served, table);
    assert_eq!(table.len(), ROUTES.len(), "a route is in the table twice");

    for route in ROUTES {
        let path = route.path.replace("{id}", "1");
        let reply = request(proxy.port, route.method.as_str(), &path)
            .await
            .unwrap();
        assert_eq!(
            reply.status, 200,
            "{} {path} (table's {}): {}",
            route.method, route.path, reply.body
        );
    }
    // The answers above are the routes', not the fallback's nor a refused method's.
    assert_eq!(proxy.reply("/no-such-route").await.status, 404);
    assert_eq!(
        request(proxy.port, "DELETE", "/nodes")
            .await
            .unwrap()
            .status,
        405
    );
}
