//! A real browser for the app's tests: Debian's headless Chromium driven
//! through chromedriver's W3C WebDriver protocol.
//!
//! The client is these few commands over plain HTTP/1.1 on loopback with
//! `std::net` and `serde_json` (already dependencies), rather than a
//! WebDriver crate: fantoccini or thirtyfour would bring an async HTTP
//! client, TLS features and their trees to the build for what is a dozen
//! JSON requests to a local process.
//!
//! Where no browser is installed, [`Browser::start`] says why on stderr
//! and the test is skipped; under CI (`CI` set, as `.ci/run` installs the
//! browser) a missing browser fails the test instead.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Chromium's switches for a machine with no internet: without them it
/// keeps trying update, sync and QUIC connections that are refused.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,760",
];

/// Starts `baro run --ui 127.0.0.1:0` on loopback (no mDNS, a sync round
/// every second), connecting to `bootstrap` if given; the node, the app's
/// address and its login URL once it is served.
pub fn run_with_app(
    device: &crate::Baro,
    bootstrap: Option<&str>,
) -> (crate::RunningNode, String, String) {
    run_with_app_on(device, bootstrap, "127.0.0.1:0")
}

/// [`run_with_app`] with the app on `ui` (an address, or a fixed port to
/// come back to after a restart).
pub fn run_with_app_on(
    device: &crate::Baro,
    bootstrap: Option<&str>,
    ui: &str,
) -> (crate::RunningNode, String, String) {
    let mut args = vec![
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--sync-interval",
        "1",
        "--ui",
        ui,
    ];
    if let Some(address) = bootstrap {
        args.extend(["--bootstrap", address]);
    }
    let node = device.spawn(args);
    let url = crate::eventually(30, "the app's URL in the log", || {
        node.log()
            .lines()
            .find_map(|line| line.strip_prefix("app: ").map(str::to_string))
    });
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("an address")
        .to_string();
    (node, addr, url)
}

/// The browser binary and its driver, if installed.
fn installed() -> Result<(PathBuf, PathBuf), String> {
    let find = |names: &[&str]| names.iter().map(PathBuf::from).find(|path| path.exists());
    let chromium = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"])
        .ok_or("no /usr/bin/chromium (apt-get install chromium chromium-driver)")?;
    let driver = find(&["/usr/bin/chromedriver"])
        .ok_or("no /usr/bin/chromedriver (apt-get install chromium-driver)")?;
    Ok((chromium, driver))
}

/// One headless Chromium with its own profile, and its chromedriver.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: tempfile::TempDir,
}

/// An element found on the page (its WebDriver reference).
#[derive(Clone, Debug)]
pub struct Element(String);

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Starts a browser (`lang`: its language, e.g. "ko-KR"), or says on
    /// stderr why none can be started and returns `None` (outside CI only).
    pub fn start(lang: &str) -> Option<Browser> {
        match installed() {
            Ok((chromium, driver)) => Some(Browser::launch(&chromium, &driver, lang)),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("CI must run the browser tests, but: {why}")
            }
            Err(why) => {
                eprintln!("SKIPPED: browser test needs Chromium: {why}");
                None
            }
        }
    }

    fn launch(chromium: &Path, driver: &Path, lang: &str) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--lang={lang}"));
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            profile,
        };
        crate::eventually(20, "chromedriver ready", || {
            browser
                .http("GET", "/status", None)
                .ok()
                .filter(|v| v["value"]["ready"] == true)
        });
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                "prefs": {
                    "intl.accept_languages": lang,
                    "download.default_directory": browser.downloads(),
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let answer = browser
            .http("POST", "/session", Some(&capabilities))
            .expect("new session");
        browser.session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        browser
    }

    /// Where the browser saves downloads (inside its own profile).
    pub fn downloads(&self) -> PathBuf {
        self.profile.path().join("downloads")
    }

    /// The bytes of the download named `name`, once complete (waits up
    /// to `secs`).
    pub fn downloaded(&self, secs: u64, name: &str) -> Vec<u8> {
        let path = self.downloads().join(name);
        crate::eventually(secs, &format!("{name} downloaded"), || {
            // Chromium writes NAME.crdownload, then renames it.
            std::fs::read(&path).ok().filter(|bytes| !bytes.is_empty())
        })
    }

    /// One WebDriver request; the answer's JSON, or its error.
    fn http(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let raw = read_answer(&mut stream)?;
        let (head, body) = split_response(&raw)?;
        let value: Value = serde_json::from_slice(&body).map_err(|e| format!("{e}: {head}"))?;
        if value["value"]["error"].is_string() {
            return Err(format!(
                "{}: {}",
                value["value"]["error"], value["value"]["message"]
            ));
        }
        Ok(value)
    }

    fn command(&self, method: &str, what: &str, body: Option<&Value>) -> Result<Value, String> {
        let path = format!("/session/{}{what}", self.session);
        self.http(method, &path, body).map(|v| v["value"].clone())
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(&json!({ "url": url })))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Sets the window's size (e.g. a phone's 360 px).
    pub fn resize(&self, width: u32, height: u32) {
        self.command(
            "POST",
            "/window/rect",
            Some(&json!({ "width": width, "height": height })),
        )
        .expect("resize");
    }

    /// The elements matching a CSS selector now.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.command(
            "POST",
            "/elements",
            Some(&json!({ "using": "css selector", "value": css })),
        )
        .ok()
        .and_then(|v| {
            v.as_array().map(|all| {
                all.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.into())))
                    .collect()
            })
        })
        .unwrap_or_default()
    }

    /// Waits (at most `secs`) for an element matching `css`.
    #[track_caller]
    pub fn wait_for(&self, secs: u64, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(found) = self.find_all(css).into_iter().next() {
                return found;
            }
            if Instant::now() > deadline {
                let url = self.command("GET", "/url", None).unwrap_or_default();
                let source = self.command("GET", "/source", None).unwrap_or_default();
                panic!("timed out waiting for {css} on {url}: {source}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An element's text as shown.
    pub fn text(&self, element: &Element) -> String {
        self.command("GET", &format!("/element/{}/text", element.0), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// An element's attribute.
    pub fn attr(&self, element: &Element, name: &str) -> Option<String> {
        self.command(
            "GET",
            &format!("/element/{}/attribute/{name}", element.0),
            None,
        )
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
    }

    /// Clicks an element.
    pub fn click(&self, element: &Element) {
        self.command(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(&json!({})),
        )
        .expect("click");
    }

    /// Clicks the first element matching `css`, found again until the
    /// click lands (the page redraws lists as events arrive, which makes
    /// an element found a moment ago stale).
    #[track_caller]
    pub fn click_on(&self, secs: u64, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let clicked = self.find_all(css).into_iter().next().map(|element| {
                self.command(
                    "POST",
                    &format!("/element/{}/click", element.0),
                    Some(&json!({})),
                )
            });
            match clicked {
                Some(Ok(_)) => return,
                Some(Err(e)) if Instant::now() > deadline => panic!("click {css}: {e}"),
                None if Instant::now() > deadline => panic!("nothing to click: {css}"),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Types `text` into an element (`\u{E007}` is Enter, `\u{E008}` Shift).
    pub fn type_text(&self, element: &Element, text: &str) {
        self.command(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(&json!({ "text": text })),
        )
        .expect("type");
    }

    /// Types `keys` on the keyboard, into whatever has the focus (W3C key
    /// actions, each character pressed and released): text, and
    /// WebDriver's key codes such as `"\u{E004}"` (Tab) and `"\u{E007}"`
    /// (Enter).
    pub fn keyboard(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|key| {
                let key = key.to_string();
                [
                    json!({ "type": "keyDown", "value": key }),
                    json!({ "type": "keyUp", "value": key }),
                ]
            })
            .collect();
        self.key_actions(actions);
    }

    /// Presses `key` while `modifier` is held (e.g. Shift+Enter:
    /// `"\u{E008}"`, `"\u{E007}"`).
    pub fn chord(&self, modifier: &str, key: &str) {
        self.key_actions(vec![
            json!({ "type": "keyDown", "value": modifier }),
            json!({ "type": "keyDown", "value": key }),
            json!({ "type": "keyUp", "value": key }),
            json!({ "type": "keyUp", "value": modifier }),
        ]);
    }

    fn key_actions(&self, actions: Vec<Value>) {
        let body = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] });
        self.command("POST", "/actions", Some(&body))
            .expect("key actions");
    }

    /// An attribute of the element that has the focus (`None`: no such
    /// attribute, or nothing but the page has the focus).
    pub fn focused(&self, attribute: &str) -> Option<String> {
        self.execute(
            "const e = document.activeElement; return e && e !== document.body ? e.getAttribute(arguments[0]) : null;",
            json!([attribute]),
        )
        .as_str()
        .map(str::to_string)
    }

    /// Grants this page's origin a permission (e.g. "notifications"), as
    /// the user answering the browser's question would (the W3C
    /// permissions extension of WebDriver).
    pub fn grant(&self, permission: &str) {
        self.command(
            "POST",
            "/permissions",
            Some(&json!({ "descriptor": { "name": permission }, "state": "granted" })),
        )
        .expect("set permission");
    }

    /// Opens a new tab and switches to it (the one before is then hidden).
    pub fn new_tab(&self) {
        let opened = self
            .command("POST", "/window/new", Some(&json!({ "type": "tab" })))
            .expect("new tab");
        let handle = opened["handle"].as_str().unwrap_or_default();
        self.command("POST", "/window", Some(&json!({ "handle": handle })))
            .expect("switch tab");
    }

    /// Runs a script in the page; its return value.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
        .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// The page's text (the body's, as shown).
    pub fn page_text(&self) -> String {
        self.execute("return document.body.innerText;", json!([]))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Whether an alert (a script's `alert()`) is open.
    pub fn alert_open(&self) -> bool {
        self.command("GET", "/alert/text", None).is_ok()
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        let value = self
            .command("GET", "/screenshot", None)
            .expect("screenshot");
        base64_decode(value.as_str().unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.http("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Reads one HTTP/1.1 answer: to its Content-Length if it gives one
/// (chromedriver keeps the connection open), else to the end.
fn read_answer(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase();
            let length = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .and_then(|n| n.trim().parse::<usize>().ok())
            });
            if let Some(length) = length
                && raw.len() >= at + 4 + length
            {
                return Ok(raw);
            }
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// An HTTP/1.1 answer's head and body (plain, or chunked).
pub fn split_response(raw: &[u8]) -> Result<(String, Vec<u8>), String> {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..at]).into_owned();
    let mut body = raw[at + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut plain = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("bad chunk")?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..line_end])
                    .split(';')
                    .next()
                    .unwrap_or("0")
                    .trim(),
                16,
            )
            .map_err(|e| e.to_string())?;
            rest = &rest[line_end + 2..];
            if size == 0 || rest.len() < size {
                break;
            }
            plain.extend_from_slice(&rest[..size]);
            rest = &rest[(size + 2).min(rest.len())..];
        }
        body = plain;
    }
    Ok((head, body))
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for six in text.bytes().filter_map(value) {
        bits = (bits << 6) | u32::from(six);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// One plain HTTP request to `addr` (for the app's own checks, without a
/// browser): the status code, the head and the body.
pub fn http_request(addr: &str, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the app");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let started = Instant::now();
    let _ = stream.read_to_end(&mut raw);
    assert!(started.elapsed() < Duration::from_secs(10), "answered");
    let (head, body) = split_response(&raw).expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, head, String::from_utf8_lossy(&body).into_owned())
}
