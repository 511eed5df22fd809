//! A small Chrome DevTools protocol driver for the browser test: headless Chromium (Debian's
//! `chromium`) with a debugging port, its blank page driven over the browser's WebSocket, and what a person does with
//! it: open an address, click what is on the screen, type into a field, read the text, take a
//! screenshot. Clicks and keys go through the browser's input pipeline (`Input.*`), not through
//! script.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use soketto::handshake::{Client as WsClient, ServerResponse};
use testkit::wait_for;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

type Socket = Compat<TcpStream>;

/// The browser's WebSocket, one command at a time.
struct Connection {
    sender: soketto::Sender<Socket>,
    receiver: soketto::Receiver<Socket>,
    next_id: u64,
}

/// A headless Chromium with one page; killed when dropped.
pub struct Browser {
    child: Child,
    connection: Mutex<Connection>,
    /// The page's session on the browser's connection; empty for the browser itself.
    session: String,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

/// How long a page may take to show what the test waits for.
const PAGE_WAIT: Duration = Duration::from_secs(30);

impl Browser {
    /// Starts Chromium on a blank page with a 1280×900 window.
    pub async fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running chromium (the Debian package `chromium` must be installed)");
        // Chromium writes the port it chose and the browser's WebSocket path to the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let (port, path) = wait_for("chromium's DevTools port", PAGE_WAIT, || {
            let port_file = port_file.clone();
            async move {
                let text = std::fs::read_to_string(port_file).ok()?;
                let mut lines = text.lines();
                let port: u16 = lines.next()?.parse().ok()?;
                Some((port, lines.next()?.to_owned()))
            }
        })
        .await;
        let host = format!("127.0.0.1:{port}");
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut client = WsClient::new(stream.compat(), &host, &path);
        match client.handshake().await.unwrap() {
            ServerResponse::Accepted { .. } => {}
            other => panic!("chromium refused the WebSocket: {other:?}"),
        }
        let (sender, receiver) = client.into_builder().finish();
        let mut browser = Browser {
            child,
            connection: Mutex::new(Connection {
                sender,
                receiver,
                next_id: 1,
            }),
            session: String::new(),
            _profile: profile,
        };
        // Drive the blank page that Chromium opened.
        let page = wait_for("chromium's page", PAGE_WAIT, || async {
            let targets = browser.call("Target.getTargets", json!({})).await;
            targets["targetInfos"]
                .as_array()?
                .iter()
                .find(|t| t["type"] == "page")
                .map(|t| t["targetId"].clone())
        })
        .await;
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({ "targetId": page, "flatten": true }),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    /// Sends one command and returns its result (events in between are not used).
    async fn call(&self, method: &str, params: Value) -> Value {
        let mut c = self.connection.lock().await;
        let id = c.next_id;
        c.next_id += 1;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            command["sessionId"] = self.session.clone().into();
        }
        let command = command.to_string();
        c.sender.send_text(command).await.unwrap();
        c.sender.flush().await.unwrap();
        loop {
            let mut message = Vec::new();
            c.receiver.receive_data(&mut message).await.unwrap();
            let reply: Value = serde_json::from_slice(&message).unwrap();
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of a script expression (awaited if a promise).
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(r["exceptionDetails"].is_null(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Opens `url` as if typed into the address bar.
    pub async fn open(&self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
    }

    /// Waits until the dashboard has rendered the page at `hash` (it marks each finished render).
    pub async fn rendered(&self, hash: &str) {
        let check = format!(
            "location.hash === {0} && document.getElementById('app')?.getAttribute('data-ready') === {0}",
            Value::from(hash)
        );
        let check = &check;
        wait_for(&format!("the page {hash}"), PAGE_WAIT, || async move {
            (self.eval(check).await == true).then_some(())
        })
        .await;
    }

    /// The text a person reads in the element `selector` (the whole page if `body`).
    pub async fn text(&self, selector: &str) -> String {
        let v = self
            .eval(&format!(
                "(document.querySelector({}) || {{}}).innerText || ''",
                Value::from(selector)
            ))
            .await;
        v.as_str().unwrap().to_owned()
    }

    /// The text of each row of the tables under `#app`.
    pub async fn rows(&self) -> Vec<String> {
        let v = self
            .eval("[...document.querySelectorAll('#app tbody tr')].map((tr) => tr.innerText)")
            .await;
        serde_json::from_value(v).unwrap()
    }

    /// Clicks the element `selector`, scrolled into view, with the mouse: on the middle of its first
    /// words if it starts with text (a link, a button, a field's label), else on its middle.
    pub async fn click(&self, selector: &str) {
        let at = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector({}); if (!el) return null; \
                 el.scrollIntoView({{ block: 'center' }}); let r = el.getBoundingClientRect(); \
                 const t = el.firstChild; \
                 if (t && t.nodeType === Node.TEXT_NODE && t.textContent.trim()) {{ \
                   const range = document.createRange(); range.selectNodeContents(t); \
                   r = range.getBoundingClientRect(); }} \
                 return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
                Value::from(selector)
            ))
            .await;
        assert!(at.is_array(), "nothing to click at {selector}");
        let (x, y) = (at[0].clone(), at[1].clone());
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }

    /// Clicks the field `selector` and types `text` into it.
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.click(selector).await;
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    /// Presses the keys of `text` one by one on whatever has the focus (a focused `select` picks
    /// the option they start).
    pub async fn keys(&self, text: &str) {
        for ch in text.chars() {
            let key = ch.to_string();
            for kind in ["keyDown", "keyUp"] {
                let mut event = json!({ "type": kind, "key": key });
                if kind == "keyDown" {
                    event["text"] = key.clone().into();
                }
                self.call("Input.dispatchKeyEvent", event).await;
            }
        }
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        base64_decode(r["data"].as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (the protocol's encoding of binary results).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A').into(),
            b'a'..=b'z' => (c - b'a' + 26).into(),
            b'0'..=b'9' => (c - b'0' + 52).into(),
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    };
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut bits = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            bits |= value(*c) << (18 - 6 * i);
        }
        out.extend_from_slice(&bits.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
