//! A backend inside a network namespace (as a user network's machines are): the gateway connects
//! from inside the namespace the route names, to an address that exists only there.

use std::process::{Child, Command, Stdio};

use zgw::route::Route;

use crate::harness::{Dirs, Zgw};

/// A network namespace with its loopback up and a python HTTP server on 127.0.0.1:8000 inside,
/// serving `dir`; both go when dropped, whatever the test did.
struct Namespace {
    name: String,
    server: Option<Child>,
}

impl Namespace {
    fn new(dir: &std::path::Path) -> Namespace {
        let name = format!("zgwtest-{}", std::process::id());
        ip(&["netns", "add", &name]);
        let mut ns = Namespace { name, server: None };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        let server = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .args([
                "python3",
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "8000",
            ])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip netns exec python3");
        ns.server = Some(server);
        ns
    }

    fn path(&self) -> std::path::PathBuf {
        format!("/var/run/netns/{}", self.name).into()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip");
    assert!(status.success(), "ip {args:?} (this test runs as root)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaches_a_backend_inside_a_network_namespace() {
    let dirs = Dirs::new();
    let site = dirs.tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let text = format!(
        "served from inside the namespace of test {}\n",
        std::process::id()
    );
    std::fs::write(site.join("hello.txt"), &text).unwrap();
    let ns = Namespace::new(&site);
    let route = Route::new(
        "inside.example.test",
        false,
        vec!["http://127.0.0.1:8000".to_string()],
        Some(ns.path()),
    );
    dirs.route("1-1-inside", &route);
    let zgw = Zgw::start(dirs).await;

    // 502 until python is up inside the namespace.
    let reply = zgw
        .http_until("inside.example.test", "/hello.txt", 200)
        .await;
    assert_eq!(reply.body, text);

    // A namespace that does not exist is named in the 502.
    let gone = Route {
        netns: Some("/var/run/netns/zgwtest-none".into()),
        ..route.clone()
    };
    zgw.dirs.route("1-1-inside", &gone);
    zgw.signal("HUP").await;
    let reply = zgw
        .http_until("inside.example.test", "/hello.txt", 502)
        .await;
    assert!(
        reply
            .body
            .contains("http://127.0.0.1:8000: opening /var/run/netns/zgwtest-none: "),
        "{reply:?}"
    );
}
