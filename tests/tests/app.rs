//! The officials' app (`baro run --ui`), end to end: real `baro run`
//! processes serving it, plain HTTP requests for its guards, and headless
//! Chromium (tests/src/browser.rs) for what an official sees and types.

use std::time::{Duration, Instant};

use baro_tests::browser::{Browser, http_request, run_with_app, run_with_app_on};
use baro_tests::{
    Baro, agency_with, baro_bin, enroll_labelled, eventually, init_korean_agency, listen_address,
    start_on_loopback,
};

const ROOM: &str = "MOIS/Division 2";

fn get(addr: &str, path: &str, headers: &str) -> (u16, String, String) {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"),
    )
}

fn post(addr: &str, host: &str, headers: &str, body: &str) -> (u16, String, String) {
    http_request(
        addr,
        &format!(
            "POST /api HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn the_app_serves_only_its_own_host_origin_and_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim]) = agency_with(dir.path(), ROOM, ["kim"]);
    let (_node, addr, url) = run_with_app(&kim, None);

    use std::os::unix::fs::PermissionsExt;
    let file = kim.home().join("ui.url");
    let mode = std::fs::metadata(&file)
        .expect("ui.url")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "ui.url is owner-only");
    assert_eq!(std::fs::read_to_string(&file).expect("ui.url").trim(), url);

    // Without the token: the login page and nothing else.
    let (status, head, body) = get(&addr, "/", "");
    assert_eq!(status, 200);
    assert!(
        body.contains("login-page") && !body.contains("app.js"),
        "{body}"
    );
    let csp = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .expect("a CSP")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    for path in ["/app.js", "/i18n.js", "/events", "/api/rooms"] {
        assert_eq!(get(&addr, path, "").0, 401, "{path} without a session");
    }
    let origin = format!("Origin: http://{addr}\r\n");
    assert_eq!(
        post(&addr, &addr, &origin, r#"{"request":"status"}"#).0,
        401
    );
    assert_eq!(get(&addr, "/login?token=00", "").0, 403, "a wrong token");

    // The token becomes an HttpOnly, SameSite=Strict session cookie.
    let token = url.split("token=").nth(1).expect("token");
    let (status, head, _) = get(&addr, &format!("/login?token={token}"), "");
    assert_eq!(status, 200, "{head}");
    let set_cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a cookie")
        .to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie_pair = set_cookie
        .split_once(':')
        .map(|(_, v)| v.trim())
        .and_then(|v| v.split(';').next())
        .expect("name=value")
        .to_string();
    let cookie = format!("Cookie: {cookie_pair}\r\n");
    let (status, _, body) = get(&addr, "/", &cookie);
    assert_eq!(status, 200);
    assert!(body.contains("data-testid=\"composer\""), "the app itself");
    let (status, _, body) = post(
        &addr,
        &addr,
        &format!("{cookie}{origin}"),
        r#"{"request":"status"}"#,
    );
    assert_eq!(status, 200);
    assert!(body.contains("\"response\":\"status\""), "{body}");

    // Requests naming a path on this machine are not the page's to make:
    // it could otherwise send /etc/passwd, or the home's keys, to a room.
    let secret = kim.home().join("ui.url");
    for request in [
        format!(
            r#"{{"request":"send_file","room":"{ROOM}","path":"{}"}}"#,
            secret.display()
        ),
        format!(
            r#"{{"request":"fetch_file","room":"{ROOM}","file":"abcdef","out":"{}"}}"#,
            kim.home().join("written-by-the-page").display()
        ),
    ] {
        let (status, _, body) = post(&addr, &addr, &format!("{cookie}{origin}"), &request);
        assert_eq!(status, 200);
        assert!(body.contains("/api/upload"), "{request}: {body}");
    }
    assert!(!kim.home().join("written-by-the-page").exists());

    // A foreign Host (DNS rebinding), a foreign Origin, a cross-site
    // fetch, and a change without an Origin are refused, session or not.
    let port = addr.rsplit(':').next().expect("port");
    let rebound = format!("evil.example:{port}");
    let (status, _, body) = http_request(
        &addr,
        &format!("GET / HTTP/1.1\r\nHost: {rebound}\r\n{cookie}Connection: close\r\n\r\n"),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Host"), "{body}");
    for (host, headers) in [
        (rebound.as_str(), format!("{cookie}{origin}")),
        (
            addr.as_str(),
            format!("{cookie}Origin: http://evil.example\r\n"),
        ),
        (
            addr.as_str(),
            format!("{cookie}Origin: http://127.0.0.1:1\r\n"),
        ),
        (addr.as_str(), cookie.clone()),
    ] {
        let (status, _, body) = post(&addr, host, &headers, r#"{"request":"status"}"#);
        assert_eq!(status, 403, "{host} {headers}: {body}");
    }
    let (status, _, _) = get(
        &addr,
        "/app.js",
        &format!("{cookie}Sec-Fetch-Site: cross-site\r\n"),
    );
    assert_eq!(status, 403, "a script tag on another site");
    let (status, _, _) = get(
        &addr,
        "/app.js",
        &format!("{cookie}Sec-Fetch-Site: same-site\r\n"),
    );
    assert_eq!(status, 403, "another port of localhost is another origin");
}

/// Logs `browser` in with `url` and waits for the room list.
fn log_in(browser: &Browser, url: &str) {
    browser.goto(url);
    browser.wait_for(
        20,
        &format!("[data-testid=room-item][data-room-name='{ROOM}']"),
    );
}

fn messages(browser: &Browser) -> Vec<String> {
    browser
        .find_all("[data-testid=message] .text")
        .iter()
        .map(|m| browser.text(m))
        .collect()
}

#[test]
fn two_officials_chat_in_two_browsers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim, lee]) = agency_with(dir.path(), ROOM, ["kim", "lee"]);
    let (_kim_node, kim_addr, kim_url) = run_with_app(&kim, None);
    let bootstrap = listen_address(&kim);
    let (_lee_node, _, lee_url) = run_with_app(&lee, Some(&bootstrap));
    eventually(30, "lee admitted", || {
        (kim.run(["--json", "status"]).json()["peers"] == 1).then_some(())
    });

    let Some(kim_browser) = Browser::start("ko-KR") else {
        return;
    };
    let Some(lee_browser) = Browser::start("en-US") else {
        return;
    };

    // A browser without the token sees only the login page.
    kim_browser.goto(&format!("http://{kim_addr}/"));
    kim_browser.wait_for(10, "[data-testid=login-page]");
    assert!(kim_browser.find_all("[data-testid=composer]").is_empty());

    log_in(&kim_browser, &kim_url);
    log_in(&lee_browser, &lee_url);
    // Korean from the browser's language.
    assert!(kim_browser.page_text().contains("새 1:1 대화"), "Korean UI");
    assert!(lee_browser.page_text().contains("New 1:1"), "English UI");
    let online = lee_browser.wait_for(10, "[data-testid=offline-indicator][data-state=online]");
    assert!(lee_browser.text(&online).contains("1"), "one peer");

    // Kim writes in Korean, with Enter; Shift+Enter is a new line.
    kim_browser.click_on(
        5,
        &format!("[data-testid=room-item][data-room-name='{ROOM}']"),
    );
    let composer = kim_browser.wait_for(5, "[data-testid=composer]");
    // Enter while an input method composes a Hangul syllable sends nothing
    // (the handler runs synchronously: a send would disable the button).
    let composing = kim_browser.execute(
        "const c = document.querySelector('[data-testid=composer]');
         c.value = '한';
         const e = new KeyboardEvent('keydown', { key: 'Enter', isComposing: true, bubbles: true, cancelable: true });
         c.dispatchEvent(e);
         const seen = [c.value, e.defaultPrevented, document.querySelector('[data-testid=send-button]').disabled];
         c.value = '';
         return seen;",
        serde_json::json!([]),
    );
    assert_eq!(
        composing,
        serde_json::json!(["한", false, false]),
        "no send mid-syllable"
    );
    let korean = "안녕하세요, 회의는 3시입니다";
    kim_browser.type_text(
        &composer,
        &format!("{korean}\u{E008}\u{E007}\u{E000}자료는 공유 폴더에\u{E007}"),
    );
    let sent = Instant::now();

    // Lee's list shows it unread, with its last message, before Lee opens it.
    let badge = lee_browser.wait_for(10, "[data-testid=unread-badge]");
    let arrived = sent.elapsed();
    assert_eq!(lee_browser.text(&badge), "1");
    let lee_room = lee_browser.wait_for(
        5,
        &format!("[data-testid=room-item][data-room-name='{ROOM}']"),
    );
    assert!(
        lee_browser.text(&lee_room).contains("회의는 3시"),
        "last message shown"
    );
    lee_browser.click_on(
        5,
        &format!("[data-testid=room-item][data-room-name='{ROOM}']"),
    );
    let expected = format!("{korean}\n자료는 공유 폴더에");
    eventually(10, "the Korean message in Lee's conversation", || {
        messages(&lee_browser).contains(&expected).then_some(())
    });
    println!("browser to browser (Kim's Enter to Lee's unread badge): {arrived:?}");

    // The attacker's text stays text: no image, no script, no alert.
    let xss = "<img src=x onerror=alert(1)>";
    let lee_composer = lee_browser.wait_for(5, "[data-testid=composer]");
    lee_browser.type_text(&lee_composer, xss);
    let send = lee_browser.wait_for(5, "[data-testid=send-button]");
    let typed = Instant::now();
    lee_browser.click(&send);
    eventually(10, "the literal text in Kim's open conversation", || {
        messages(&kim_browser)
            .iter()
            .any(|m| m == xss)
            .then_some(())
    });
    let live = typed.elapsed();
    println!("browser to browser (Lee's click to Kim's open conversation): {live:?}");
    for browser in [&kim_browser, &lee_browser] {
        assert!(
            browser.find_all("[data-testid=message] img").is_empty(),
            "no image made"
        );
        assert!(!browser.alert_open(), "no script ran");
    }
    assert!(live < Duration::from_secs(5), "{live:?}");

    // Kim's message shows its honest state: read by Lee, by name.
    eventually(10, "read by Lee on Kim's page", || {
        kim_browser
            .find_all("[data-testid=message] .state[data-progress=read]")
            .first()
            .map(|s| kim_browser.text(s))
            .filter(|text| text.contains("Official lee"))
    });

    // A phone's width: the conversation alone, with a way back.
    kim_browser.resize(360, 740);
    let shot = kim_browser.screenshot();
    assert!(shot.starts_with(b"\x89PNG"), "a PNG");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("app-phone.png");
    std::fs::write(&out, &shot).expect("write screenshot");
    kim_browser.resize(1100, 760);
    let shot = kim_browser.screenshot();
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("app-chat.png");
    std::fs::write(&out, &shot).expect("write screenshot");
    println!("screenshots: {}", out.display());
    // `BARO_README_SCREENSHOT=1` refreshes the README's picture.
    if std::env::var_os("BARO_README_SCREENSHOT").is_some() {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/app-chat.png");
        std::fs::write(readme, &shot).expect("write the README's screenshot");
    }

    // A new 1:1 by searching the people Kim's device knows.
    let new_chat = kim_browser.wait_for(5, "#new-chat");
    kim_browser.click(&new_chat);
    let search = kim_browser.wait_for(5, "#people-input");
    kim_browser.type_text(&search, "lee\u{E007}");
    kim_browser.click_on(10, "[data-testid=person] button");
    let composer = kim_browser.wait_for(5, "[data-testid=composer]");
    kim_browser.type_text(&composer, "개인적으로 한 말씀\u{E007}");
    eventually(10, "the 1:1 in Lee's list", || {
        lee_browser
            .find_all("[data-testid=room-item]")
            .iter()
            .any(|r| lee_browser.text(r).contains("개인적으로 한 말씀"))
            .then_some(())
    });

    // A group with Lee: it appears in Lee's list by its name.
    let new_group = kim_browser.wait_for(5, "#new-group");
    kim_browser.click(&new_group);
    let name = kim_browser.wait_for(5, "#group-name");
    kim_browser.type_text(&name, "예산 TF");
    let members = kim_browser.wait_for(5, "#group-members");
    kim_browser.type_text(&members, "lee\u{E007}");
    kim_browser.wait_for(
        10,
        "[data-testid=room-item][data-room-name='예산 TF'][aria-current=true]",
    );
    lee_browser.wait_for(15, "[data-testid=room-item][data-room-name='예산 TF']");

    // A photo attached with the button in Kim's page reaches Lee's page.
    let photo = dir.path().join("현장 사진.png");
    std::fs::write(&photo, &shot).expect("photo");
    let input = kim_browser.wait_for(5, "[data-testid=attach-input]");
    kim_browser.type_text(&input, &photo.display().to_string());
    kim_browser.wait_for(15, "[data-testid=message] [data-testid=attachment]");
    lee_browser.click_on(5, "[data-testid=room-item][data-room-name='예산 TF']");
    let attachment = lee_browser.wait_for(15, "[data-testid=message] [data-testid=attachment]");
    let shown = lee_browser.text(&attachment);
    assert!(
        shown.contains("현장 사진.png") && shown.contains("image/png"),
        "{shown}"
    );
    // Lee fetches it from the mesh and sees the photo itself in the page.
    lee_browser.click_on(5, "[data-testid=attachment] [data-testid=download]");
    lee_browser.wait_for(30, "[data-testid=attachment] img[data-testid=image]");
    let width = eventually(10, "the photo decoded", || {
        let width = lee_browser.execute(
            "return document.querySelector('[data-testid=attachment] img[data-testid=image]').naturalWidth;",
            serde_json::json!([]),
        );
        width.as_u64().filter(|w| *w > 0)
    });
    assert_eq!(width, 1100, "the screenshot's own width");
    let previews = lee_browser.execute(
        "return document.querySelectorAll('[data-testid=attachment] img[data-testid=preview]').length;",
        serde_json::json!([]),
    );
    assert_eq!(previews, 0, "the preview gave way to the photo");
}

#[test]
fn revoking_the_lost_phone_from_the_pc_page_wipes_it_and_the_page_outlives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Baro::new(baro_bin(), dir.path().join("console"));
    init_korean_agency(&operator, "행정안전부", &[]).success();
    let kim = ("kim.minji", "김민지", "행정안전부/디지털정부국/2과");
    let (pc, _) = enroll_labelled(&operator, dir.path(), "kim-pc", kim, "PC");
    let (phone, phone_id) = enroll_labelled(&operator, dir.path(), "kim-phone", kim, "휴대폰");
    // A fixed port, so the page finds the node again after its restart.
    let ui = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let (pc_node, _, pc_url) = run_with_app_on(&pc, None, &ui);
    let address = listen_address(&pc);
    let mut phone_node = start_on_loopback(&phone, Some(&address));
    eventually(30, "the phone admitted", || {
        (pc.run(["--json", "status"]).json()["peers"] == 1).then_some(())
    });

    let Some(browser) = Browser::start("ko-KR") else {
        return;
    };
    browser.goto(&pc_url);
    browser.wait_for(20, "[data-testid=offline-indicator][data-state=online]");

    // My devices, then the phone's button, pressed and confirmed.
    let open = browser.wait_for(5, "#devices-button");
    browser.click(&open);
    let phone_entry = format!("[data-testid=device][data-device='{phone_id}']");
    let revoke = browser.wait_for(10, &format!("{phone_entry} [data-testid=revoke-device]"));
    assert!(
        browser.text(&revoke).contains("폐기"),
        "{}",
        browser.text(&revoke)
    );
    browser.click_on(5, &format!("{phone_entry} [data-testid=revoke-device]"));
    browser.wait_for(
        5,
        &format!("{phone_entry} [data-testid=revoke-device].armed"),
    );
    assert!(
        phone_node.wait_exit(1).is_none(),
        "one press alone revokes nothing"
    );
    browser.click_on(
        5,
        &format!("{phone_entry} [data-testid=revoke-device].armed"),
    );

    let status = phone_node
        .wait_exit(30)
        .expect("the phone wipes itself and stops");
    assert!(!status.success(), "{}", phone_node.log());
    assert!(
        std::fs::read_dir(phone.home())
            .map(|entries| entries.count())
            .unwrap_or(0)
            <= 1,
        "the phone's home is erased (a revocation notice at most)"
    );
    let receipt = browser.wait_for(
        30,
        &format!("{phone_entry} [data-testid=wipe-state][data-wiped=true]"),
    );
    assert!(
        browser.text(&receipt).contains("삭제 확인"),
        "{}",
        browser.text(&receipt)
    );

    // The node restarts: the page says so, then comes back by itself.
    assert!(pc_node.stop(), "the PC stops cleanly");
    browser.wait_for(10, "[data-testid=offline-indicator][data-state=node-down]");
    let (_pc_node, _, new_url) = run_with_app_on(&pc, None, &ui);
    assert_ne!(new_url, pc_url, "a fresh token at each start");
    let back = Instant::now();
    browser.wait_for(
        15,
        "[data-testid=offline-indicator]:not([data-state=node-down])",
    );
    println!(
        "the page reconnected {:?} after the node served again",
        back.elapsed()
    );
    assert!(
        browser.find_all("[data-testid=login-page]").is_empty(),
        "still logged in"
    );
}

#[test]
fn baro_app_runs_the_node_with_the_app_and_opens_it_without_the_token_on_a_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_operator, [kim]) = agency_with(dir.path(), ROOM, ["kim"]);
    // A stand-in for the desktop's opener: records what it was asked to open.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let opened = dir.path().join("opened");
    let opener = bin.join("xdg-open");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", opened.display()),
    )
    .expect("opener");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kim = kim.with_env("PATH", path);

    let node = kim.spawn(["app", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
    let url = eventually(30, "the app's URL", || {
        node.log()
            .lines()
            .find_map(|line| line.strip_prefix("app: ").map(str::to_string))
    });
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/login?token="),
        "{url}"
    );
    let launcher = kim.home().join("ui-open.html");
    let asked = eventually(10, "the browser opened", || {
        std::fs::read_to_string(&opened)
            .ok()
            .filter(|s| !s.is_empty())
    });
    assert_eq!(
        asked.trim(),
        launcher.display().to_string(),
        "the page, not the URL"
    );
    let page = std::fs::read_to_string(&launcher).expect("launcher");
    assert!(page.contains(&url), "{page}");
    let mode = std::fs::metadata(&launcher)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "owner-only");

    // Asked again while the node runs: the same app is opened.
    let again = kim.run(["app"]).success();
    assert!(again.contains(&url), "{again}");
    eventually(10, "opened a second time", || {
        let text = std::fs::read_to_string(&opened).unwrap_or_default();
        (text.lines().count() == 2).then_some(())
    });
    kim.run(["relay", "--ui"])
        .fails_with("a relay serves no app");
}
