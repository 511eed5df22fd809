//! The plain HTTP listener: routing by host, what the backend sees, the gateway's own replies,
//! failing backends, reloads, bad route files and shutdown.

use std::sync::atomic::Ordering;

use zgw::route::Route;

use crate::harness::{Backend, Dirs, Zgw, eventually, http_route};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_and_forwards_path_query_and_headers() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dirs = Dirs::new();
    dirs.route("1-1-a", &http_route("a.example.test", &[a.addr]));
    dirs.route("1-2-b", &http_route("b.example.test", &[b.addr]));
    let zgw = Zgw::start(dirs).await;
    let port = zgw.http;

    let reply = zgw
        .http(
            "a.example.test",
            "/some/path?x=1&y=two",
            &["-H", "X-Forwarded-For: 10.9.9.9"],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let expect = format!(
        "a GET /some/path?x=1&y=two\nhost: a.example.test:{port}\n\
         x-forwarded-for: 10.9.9.9, 127.0.0.1\nx-forwarded-proto: http\n\
         x-forwarded-host: a.example.test:{port}\n"
    );
    assert_eq!(reply.body, expect);

    // Host names are matched without their case, and hop-by-hop headers stay with their hop.
    let reply = zgw
        .http(
            "b.example.test",
            "/",
            &[
                "-H",
                "Host: B.Example.Test",
                "-H",
                "Upgrade: websocket",
                "-H",
                "Connection: upgrade",
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body,
        "b GET /\nhost: B.Example.Test\nx-forwarded-for: 127.0.0.1\nx-forwarded-proto: http\n\
         x-forwarded-host: B.Example.Test\n"
    );

    // A request in absolute form is routed by its authority and sent on in origin form.
    let reply = zgw
        .http(
            "a.example.test",
            "/",
            &["--request-target", "http://b.example.test/abs?q"],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.starts_with("b GET /abs?q\n"), "{reply:?}");

    // Keep-alive: requests on one connection, each routed on its own.
    let url = |fqdn: &str| format!("http://{fqdn}:{port}/k");
    let output = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-v",
            "--resolve",
            &format!("a.example.test:{port}:127.0.0.1"),
        ])
        .args(["-H", "Host: b.example.test"])
        .args([url("a.example.test"), url("a.example.test")])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.ends_with(" /k")).collect();
    assert_eq!(lines, ["b GET /k", "b GET /k"]);
    let verbose = String::from_utf8(output.stderr).unwrap();
    assert!(
        verbose.contains("Re-using existing connection"),
        "{verbose}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_replies() {
    let backend = Backend::start("a").await;
    let dirs = Dirs::new();
    let paused = Route {
        paused: true,
        ..http_route("paused.example.test", &[backend.addr])
    };
    dirs.route("1-1-paused", &paused);
    let passthrough = Route::new(
        "tls-only.example.test",
        true,
        vec![backend.addr.to_string()],
        None,
    );
    dirs.route("1-2-tls", &passthrough);
    let zgw = Zgw::start(dirs).await;

    let reply = zgw.http("nobody.example.test", "/", &[]).await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.body,
        "no gateway serves nobody.example.test on this node\n"
    );

    let reply = zgw.http("paused.example.test", "/", &[]).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        "paused.example.test is paused: its contract is in its grace period\n"
    );

    let reply = zgw.http("tls-only.example.test", "/", &[]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        "tls-only.example.test is served over TLS only (passthrough): use https://\n"
    );

    let reply = zgw.http("paused.example.test", "/", &["-H", "Host:"]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body, "the request names no host\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_backends_give_502_and_a_dead_first_backend_is_skipped() {
    let dead = Backend::start("dead").await;
    let dead_addr = dead.addr;
    drop(dead);
    let live = Backend::start("live").await;
    let dirs = Dirs::new();
    dirs.route("1-1-down", &http_route("down.example.test", &[dead_addr]));
    dirs.route(
        "1-2-half",
        &http_route("half.example.test", &[dead_addr, live.addr]),
    );
    let zgw = Zgw::start(dirs).await;

    // The accept loop of the dropped backend may take a moment to let its port go.
    let reply = zgw.http_until("down.example.test", "/", 502).await;
    assert!(
        reply.body.starts_with(&format!(
            "no backend of down.example.test answered: http://{dead_addr}: "
        )),
        "{reply:?}"
    );
    assert!(reply.body.contains("refused"), "{reply:?}");

    // Round-robin starts on either backend: every request still reaches the live one.
    for _ in 0..4 {
        let reply = zgw.http("half.example.test", "/x", &[]).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(reply.body.starts_with("live GET /x\n"), "{reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_and_removes_routes() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dirs = Dirs::new();
    dirs.route("1-1-a", &http_route("a.example.test", &[a.addr]));
    let zgw = Zgw::start(dirs).await;
    assert_eq!(zgw.http("a.example.test", "/", &[]).await.status, 200);
    assert_eq!(zgw.http("b.example.test", "/", &[]).await.status, 404);

    zgw.dirs
        .route("1-2-b", &http_route("b.example.test", &[b.addr]));
    zgw.dirs.remove_route("1-1-a");
    // Nothing changes until the signal.
    assert_eq!(zgw.http("a.example.test", "/", &[]).await.status, 200);
    zgw.signal("HUP").await;
    let reply = zgw.http_until("b.example.test", "/", 200).await;
    assert!(reply.body.starts_with("b GET /\n"), "{reply:?}");
    assert_eq!(zgw.http("a.example.test", "/", &[]).await.status, 404);

    // A route changed in place: paused on the next reload, back again on the one after.
    let paused = Route {
        paused: true,
        ..http_route("b.example.test", &[b.addr])
    };
    zgw.dirs.route("1-2-b", &paused);
    zgw.signal("HUP").await;
    zgw.http_until("b.example.test", "/", 503).await;
    zgw.dirs
        .route("1-2-b", &http_route("b.example.test", &[b.addr]));
    zgw.signal("HUP").await;
    zgw.http_until("b.example.test", "/", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_route_files_are_skipped_while_good_ones_serve() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dirs = Dirs::new();
    dirs.route("1-1-good", &http_route("good.example.test", &[a.addr]));
    // The same host again in a file sorting later: the first one wins.
    dirs.route("1-2-again", &http_route("good.example.test", &[b.addr]));
    std::fs::write(dirs.routes().join("1-3-broken.json"), "{not json").unwrap();
    let future = format!(
        r#"{{"version": 2, "fqdn": "future.example.test", "tls_passthrough": false, "backends": ["http://{}"]}}"#,
        a.addr
    );
    std::fs::write(dirs.routes().join("1-4-future.json"), future).unwrap();
    let loopy = http_route("Bad Name", &[a.addr]);
    dirs.route("1-5-name", &loopy);
    let zgw = Zgw::start(dirs).await;

    let reply = zgw.http("good.example.test", "/", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.starts_with("a GET /\n"), "{reply:?}");
    assert_eq!(zgw.http("future.example.test", "/", &[]).await.status, 404);
    let log = zgw.log();
    for expect in [
        "1-3-broken.json: key must be a string",
        "1-4-future.json: route format version 2 (this gateway reads 1)",
        "is not a lowercase host name",
        "good.example.test is already served by",
    ] {
        assert!(log.contains(expect), "{expect:?} not in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish_and_exits_zero() {
    let backend = Backend::start("a").await;
    let dirs = Dirs::new();
    dirs.route("1-1-a", &http_route("a.example.test", &[backend.addr]));
    let mut zgw = Zgw::start(dirs).await;
    let port = zgw.http;
    let slow = tokio::spawn(
        tokio::process::Command::new("curl")
            .args(["-s", "--max-time", "10", "--resolve"])
            .arg(format!("a.example.test:{port}:127.0.0.1"))
            .arg(format!("http://a.example.test:{port}/slow"))
            .output(),
    );
    eventually("the slow request to reach the backend", || async {
        (backend.slow_seen.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    zgw.signal("TERM").await;
    // New connections are refused once the listener is closed...
    eventually("the listener to close", || async {
        (zgw.http("a.example.test", "/", &[]).await.status == 0).then_some(())
    })
    .await;
    // ...while the request in flight is answered.
    backend.release();
    let output = slow.await.unwrap().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().next(),
        Some("a GET /slow")
    );
    assert_eq!(zgw.exit_code().await, Some(0));
}
