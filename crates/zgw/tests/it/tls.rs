//! The TLS listener: termination with a generated or a farmer's certificate, passthrough to a
//! backend that terminates TLS itself, and the connections it closes.

use zgw::certs::Certs;
use zgw::route::Route;

use crate::harness::{Backend, Dirs, Zgw, certificate, http_route, subject_and_names};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminates_tls_with_a_generated_certificate() {
    let backend = Backend::start("a").await;
    let dirs = Dirs::new();
    dirs.route("1-1-web", &http_route("web.example.test", &[backend.addr]));
    let zgw = Zgw::start(dirs).await;
    let port = zgw.https;

    let reply = zgw
        .https("web.example.test", "/secure?q=1", &["-k", "-v"])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body,
        format!(
            "a GET /secure?q=1\nhost: web.example.test:{port}\nx-forwarded-for: 127.0.0.1\n\
             x-forwarded-proto: https\nx-forwarded-host: web.example.test:{port}\n"
        )
    );
    assert!(
        reply.stderr.contains("subject: CN=web.example.test"),
        "{}",
        reply.stderr
    );
    assert!(
        reply.stderr.contains("ALPN: server accepted http/1.1"),
        "{}",
        reply.stderr
    );

    // The certificate the gateway wrote is the one it presents, and it names the host: curl
    // verifies the chain against it and the host name against its subject alternative name.
    let (crt, key) = Certs::paths(&zgw.dirs.certs(), "web.example.test");
    let names = subject_and_names(&crt).await;
    assert!(names.contains("CN = web.example.test"), "{names}");
    assert!(names.contains("DNS:web.example.test"), "{names}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let cacert = crt.to_str().unwrap();
    let reply = zgw
        .https("web.example.test", "/", &["--cacert", cacert])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // Kept across a reload: the same files, still served.
    let pem = std::fs::read(&crt).unwrap();
    zgw.signal("HUP").await;
    let reply = zgw
        .https("web.example.test", "/", &["--cacert", cacert])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(std::fs::read(&crt).unwrap(), pem);

    // A request naming another host than the handshake did.
    let reply = zgw
        .https(
            "web.example.test",
            "/",
            &["-k", "-H", "Host: other.example.test"],
        )
        .await;
    assert_eq!(reply.status, 421, "{reply:?}");
    assert_eq!(
        reply.body,
        "other.example.test is not served on this connection, which is for web.example.test\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_farmers_own_certificate_is_used() {
    let backend = Backend::start("a").await;
    let dirs = Dirs::new();
    let (pem, key_pem, _) = certificate("shop.example.test", "the farmer's certificate");
    std::fs::create_dir_all(dirs.certs()).unwrap();
    let (crt, key) = Certs::paths(&dirs.certs(), "shop.example.test");
    std::fs::write(&crt, &pem).unwrap();
    std::fs::write(&key, &key_pem).unwrap();
    dirs.route(
        "1-1-shop",
        &http_route("shop.example.test", &[backend.addr]),
    );
    let zgw = Zgw::start(dirs).await;

    let reply = zgw
        .https(
            "shop.example.test",
            "/",
            &["-v", "--cacert", crt.to_str().unwrap()],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply
            .stderr
            .contains("subject: CN=the farmer's certificate"),
        "{}",
        reply.stderr
    );
    assert!(reply.body.starts_with("a GET /\n"), "{reply:?}");
    assert_eq!(
        std::fs::read_to_string(&crt).unwrap(),
        pem,
        "left as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_reaches_a_backend_that_terminates_tls() {
    let dirs = Dirs::new();
    let (pem, _, config) = certificate("vault.example.test", "the backend's certificate");
    let backend = Backend::start_tls("tls-backend", config).await;
    let route = Route::new(
        "vault.example.test",
        true,
        vec![backend.addr.to_string()],
        None,
    );
    dirs.route("1-1-vault", &route);
    let backend_crt = dirs.tmp.path().join("backend.crt");
    std::fs::write(&backend_crt, &pem).unwrap();
    let zgw = Zgw::start(dirs).await;

    let cacert = backend_crt.to_str().unwrap();
    let reply = zgw
        .https(
            "vault.example.test",
            "/inner?z",
            &["-v", "--cacert", cacert],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply
            .stderr
            .contains("subject: CN=the backend's certificate"),
        "{}",
        reply.stderr
    );
    // The bytes went through untouched: no header of the gateway's.
    let port = zgw.https;
    assert_eq!(
        reply.body,
        format!("tls-backend GET /inner?z\nhost: vault.example.test:{port}\n")
    );
    let (gateway_crt, _) = Certs::paths(&zgw.dirs.certs(), "vault.example.test");
    assert!(
        !gateway_crt.exists(),
        "no certificate is made for a passthrough route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_tls_clients_it_cannot_route() {
    let backend = Backend::start("a").await;
    let dirs = Dirs::new();
    let paused = Route {
        paused: true,
        ..http_route("paused.example.test", &[backend.addr])
    };
    dirs.route("1-1-paused", &paused);
    dirs.route("1-2-web", &http_route("web.example.test", &[backend.addr]));
    let zgw = Zgw::start(dirs).await;

    for fqdn in ["nobody.example.test", "paused.example.test"] {
        let reply = zgw.https(fqdn, "/", &["-k"]).await;
        assert_eq!(reply.status, 0, "{fqdn}: {reply:?}");
    }
    // No server name at all: an IP address in the URL.
    let output = tokio::process::Command::new("curl")
        .args(["-s", "-k", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://127.0.0.1:{}/", zgw.https))
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "000");
    // Plain HTTP on the TLS port.
    let output = tokio::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{}/", zgw.https))
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "000");
    let log = zgw.log();
    for expect in [
        "no route for the tls server name: closed",
        "route paused: tls client closed",
        "tls client named no server: closed",
        "not a tls handshake",
    ] {
        assert!(log.contains(expect), "{expect:?} not in the log:\n{log}");
    }
    // The routed name still works.
    assert_eq!(
        zgw.https("web.example.test", "/", &["-k"]).await.status,
        200
    );
}
