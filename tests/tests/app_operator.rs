//! The app's operator pages (issue 20, deliverable 5) on an operator's
//! console running `baro run --ui`: enroll a device from its request file
//! and download its bundle, revoke a device with a reason and a wipe
//! order behind a confirmation, and the revocation list with its coverage;
//! and the control API's operator requests refusing a wrong passphrase,
//! a bad request file and a device that is no operator's console.

use baro_node::api::{self, Request, Response, SecretText};
use baro_tests::browser::{Browser, http_request, run_with_app};
use baro_tests::{
    Baro, PASSPHRASE, agency_with, args, baro_bin, eventually, listen_address, start_on_loopback,
};

const ROOM: &str = "MOIS/Division 2";

/// A session cookie header for the app at `addr` (logs in with `url`).
fn session(addr: &str, url: &str) -> String {
    let token = url.split("token=").nth(1).expect("token");
    let (status, head, _) = http_request(
        addr,
        &format!("GET /login?token={token} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200, "{head}");
    let pair = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l.split_once(':').map(|(_, v)| v.trim().to_string()))
        })
        .flatten()
        .and_then(|v| v.split(';').next().map(str::to_string))
        .expect("a session cookie");
    format!("Cookie: {pair}\r\nOrigin: http://{addr}\r\n")
}

/// `request` posted to the app's /api; the answer's JSON.
fn post(addr: &str, session: &str, request: &serde_json::Value) -> serde_json::Value {
    let body = request.to_string();
    let (status, _, answer) = http_request(
        addr,
        &format!(
            "POST /api HTTP/1.1\r\nHost: {addr}\r\n{session}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 200, "{answer}");
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
}

/// The error line of an answer, or a failure naming what came instead.
#[track_caller]
fn error_of(answer: &serde_json::Value) -> String {
    assert_eq!(answer["response"], "error", "{answer}");
    let message = answer["body"].as_str().expect("a message").to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

/// `device init --name NAME --label LABEL --out DIR/HOME.request` in a new
/// home; the device, its request file and its id.
fn new_device(
    dir: &std::path::Path,
    home: &str,
    name: &str,
    label: &str,
) -> (Baro, std::path::PathBuf, String) {
    let device = Baro::new(baro_bin(), dir.join(home)).with_passphrase(None);
    let request = dir.join(format!("{home}.request"));
    let init = device
        .run(args(
            &[
                "--json", "device", "init", "--name", name, "--label", label, "--out",
            ],
            &[&request],
        ))
        .json();
    let id = init["device_id"].as_str().expect("device id").to_string();
    (device, request, id)
}

/// A control API request to the node running on `home`; its answer (an
/// error as [`Response::Error`]).
fn ask(home: &std::path::Path, request: &Request) -> Response {
    match api::request(home, request) {
        Ok(response) => response,
        Err(api::ApiError::Node(message)) => Response::Error(message),
        Err(e) => panic!("{request:?}: {e}"),
    }
}

/// The `value` property of the element `css` finds (what is typed now).
fn value_of(browser: &Browser, css: &str) -> serde_json::Value {
    browser.execute(
        "const e = document.querySelector(arguments[0]); return e ? e.value : null;",
        serde_json::json!([css]),
    )
}

#[track_caller]
fn refused(response: Response, needle: &str) {
    match response {
        Response::Error(message) => {
            assert!(message.contains(needle), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn operator_requests_need_the_console_and_its_passphrase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, [kim]) = agency_with(dir.path(), ROOM, ["kim"]);
    let (console_node, addr, url) = run_with_app(&operator, None);
    let cookie = session(&addr, &url);
    let (lee, request_file, lee_id) = new_device(dir.path(), "lee", "Lee Jun", "phone");
    let request_hex = hex::encode(std::fs::read(&request_file).expect("request file"));
    let wrong = "not the passphrase at all";

    // The console says what it is, without a passphrase.
    let console = post(
        &addr,
        &cookie,
        &serde_json::json!({ "request": "operator_console" }),
    );
    assert_eq!(console["response"], "console", "{console}");
    assert_eq!(console["body"]["operator"], "park");
    assert_eq!(console["body"]["agency"], "MOIS");

    // Through the app: a wrong or missing passphrase, a file that is not
    // a request, the operator role: each refused in one line.
    let enroll = |passphrase: &str, file: &str, role: &str| {
        serde_json::json!({
            "request": "enroll", "file": file, "user": "lee", "org": ROOM,
            "role": role, "passphrase": passphrase,
        })
    };
    for (request, expected) in [
        (enroll(wrong, &request_hex, "member"), "wrong passphrase"),
        (
            enroll("", &request_hex, "member"),
            "give the operator passphrase",
        ),
        (enroll(PASSPHRASE, "zz", "member"), "not hex"),
        (
            enroll(
                PASSPHRASE,
                &hex::encode(b"a photo, not a request"),
                "member",
            ),
            "not an enrollment request",
        ),
        (
            enroll(PASSPHRASE, &request_hex, "operator"),
            "operator role is refused",
        ),
        (
            serde_json::json!({
                "request": "agency_revoke", "user": "kim", "reason": "lost",
                "wipe": true, "passphrase": wrong,
            }),
            "wrong passphrase",
        ),
        (
            serde_json::json!({
                "request": "agency_revoke", "reason": "lost", "passphrase": PASSPHRASE,
            }),
            "name what to revoke",
        ),
    ] {
        let error = error_of(&post(&addr, &cookie, &request));
        assert!(error.contains(expected), "{request}: {error}");
    }
    let list = post(
        &addr,
        &cookie,
        &serde_json::json!({ "request": "revocations" }),
    );
    assert_eq!(list["body"], serde_json::json!([]), "nothing was revoked");

    // Through the control socket: the same refusal, then an enrollment
    // whose bundle the new device installs.
    let revoke = |passphrase: &str| Request::AgencyRevoke {
        device: None,
        user: Some("kim".into()),
        serial: None,
        reason: "lost".into(),
        wipe: false,
        passphrase: SecretText::new(passphrase),
    };
    refused(ask(operator.home(), &revoke(wrong)), "wrong passphrase");
    let enroll = Request::Enroll {
        file: request_hex.clone(),
        user: "lee".into(),
        display_name: None,
        org: ROOM.into(),
        role: None,
        days: None,
        bootstrap: Vec::new(),
        passphrase: SecretText::new(PASSPHRASE),
    };
    let Response::Enrolled(enrolled) = ask(operator.home(), &enroll) else {
        panic!("not enrolled");
    };
    assert_eq!(enrolled.device.to_string(), lee_id);
    assert_eq!(
        (
            enrolled.user.as_str(),
            enrolled.display_name.as_str(),
            enrolled.role.as_str()
        ),
        ("lee", "Lee Jun", "member")
    );
    let bundle = dir.path().join("lee.bundle");
    std::fs::write(&bundle, hex::decode(&enrolled.bundle).expect("hex")).expect("write");
    lee.run(args(&["device", "install"], &[&bundle])).success();
    assert_eq!(lee.run(["--json", "whoami"]).json()["user_id"], "lee");

    // A member's device is no console: every operator request is refused,
    // with the right passphrase too.
    let _kim_node = start_on_loopback(&kim, Some(&listen_address(&operator)));
    eventually(30, "kim's control socket", || {
        api::request(kim.home(), &Request::Status).ok()
    });
    for request in [
        Request::OperatorConsole,
        enroll,
        revoke(PASSPHRASE),
        revoke(""),
    ] {
        refused(ask(kim.home(), &request), "not an operator's console");
    }

    // The console revokes a whole user (every device of kim).
    let user_revocation = serde_json::json!({
        "request": "agency_revoke", "user": "kim", "reason": "left the agency",
        "wipe": false, "passphrase": PASSPHRASE,
    });
    let revoked = post(&addr, &cookie, &user_revocation);
    assert_eq!(revoked["response"], "revocation", "{revoked}");
    assert_eq!(
        (
            &revoked["body"]["scope"],
            &revoked["body"]["user"],
            &revoked["body"]["wipe"]
        ),
        (
            &serde_json::json!("user"),
            &serde_json::json!("kim"),
            &serde_json::json!(false)
        )
    );
    let list = post(
        &addr,
        &cookie,
        &serde_json::json!({ "request": "revocations" }),
    );
    assert_eq!(list["body"].as_array().map(Vec::len), Some(1), "{list}");

    // The passphrase was never written to the console's log.
    assert!(console_node.stop(), "the console stops cleanly");
    let log = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(!log.is_empty(), "the logs were read");
    assert!(
        !log.contains(PASSPHRASE) && !log.contains(wrong),
        "a passphrase in a log: {log}"
    );
}

#[test]
fn the_operator_page_enrolls_a_device_then_revokes_and_wipes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (operator, [_kim]) = agency_with(dir.path(), ROOM, ["kim"]);
    let (_console_node, _, url) = run_with_app(&operator, None);
    let (lee, request_file, lee_id) = new_device(dir.path(), "lee", "이준호", "휴대폰");

    let Some(browser) = Browser::start("ko-KR") else {
        return;
    };
    browser.goto(&url);
    browser.click_on(20, "[data-testid=operator-button]:not([hidden])");
    browser.wait_for(10, "[data-testid=enroll-form]");

    // Enroll from the request file: upload it, name the owner, unlock.
    let file = browser.wait_for(5, "[data-testid=enroll-file]");
    browser.type_text(&file, &request_file.display().to_string());
    for (testid, text) in [
        ("enroll-user", "lee.junho"),
        ("enroll-org", ROOM),
        ("enroll-passphrase", PASSPHRASE),
    ] {
        let input = browser.wait_for(5, &format!("[data-testid={testid}]"));
        browser.type_text(&input, text);
    }
    browser.click_on(5, "[data-testid=enroll-submit]");
    let link = browser.wait_for(20, "[data-testid=bundle-download]");
    assert_eq!(
        browser.attr(&link, "data-device").as_deref(),
        Some(lee_id.as_str())
    );
    assert_eq!(
        value_of(&browser, "[data-testid=enroll-passphrase]"),
        "",
        "the passphrase field is cleared once answered"
    );
    let name = browser.attr(&link, "download").expect("a file name");
    browser.click(&link);
    let bundle = dir.path().join("lee-from-the-page.bundle");
    std::fs::write(&bundle, browser.downloaded(20, &name)).expect("write bundle");

    // The downloaded bundle is the device's: it installs and joins.
    lee.run(args(&["device", "install"], &[&bundle])).success();
    let whoami = lee.run(["--json", "whoami"]).json();
    assert_eq!(
        (&whoami["user_id"], &whoami["display_name"]),
        (
            &serde_json::json!("lee.junho"),
            &serde_json::json!("이준호")
        )
    );
    let mut lee_node = start_on_loopback(&lee, Some(&listen_address(&operator)));
    eventually(30, "the new device admitted by the console", || {
        (operator.run(["--json", "status"]).json()["peers"] == 1).then_some(())
    });

    // Revoke it with a reason and a wipe order: a wrong passphrase first.
    assert_eq!(value_of(&browser, "[data-testid=revoke-kind]"), "device");
    for (testid, text) in [
        ("revoke-target", lee_id.as_str()),
        ("revoke-reason", "휴대폰 분실"),
        ("revoke-passphrase", "not the passphrase"),
    ] {
        let input = browser.wait_for(5, &format!("[data-testid={testid}]"));
        browser.type_text(&input, text);
    }
    let wipe = browser.execute(
        "return document.querySelector('[data-testid=revoke-wipe]').checked;",
        serde_json::json!([]),
    );
    assert_eq!(wipe, true, "a wipe is ordered by default");
    browser.click_on(5, "[data-testid=revoke-submit]");
    browser.click_on(5, "[data-testid=revoke-submit].armed");
    let error = browser.wait_for(20, "[data-testid=revoke-error]");
    assert!(
        browser.text(&error).contains("wrong passphrase"),
        "{}",
        browser.text(&error)
    );
    assert_eq!(value_of(&browser, "[data-testid=revoke-passphrase]"), "");
    assert!(
        lee_node.wait_exit(1).is_none(),
        "a wrong passphrase revokes nothing"
    );

    let passphrase = browser.wait_for(5, "[data-testid=revoke-passphrase]");
    browser.type_text(&passphrase, PASSPHRASE);
    browser.click_on(5, "[data-testid=revoke-submit]");
    browser.wait_for(5, "[data-testid=revoke-submit].armed");
    assert!(
        lee_node.wait_exit(1).is_none(),
        "one press alone revokes nothing"
    );
    browser.click_on(5, "[data-testid=revoke-submit].armed");
    browser.wait_for(20, "[data-testid=revoke-result] .state");

    let status = lee_node
        .wait_exit(30)
        .expect("the device wipes itself and stops");
    assert!(!status.success(), "{}", lee_node.log());
    // Listed with its coverage: held by the device itself, and its wipe
    // receipt (its key acknowledged the order).
    let entry = format!(
        "[data-testid=revocation][data-device='{lee_id}'][data-wiped=true]:not([data-held='0'])"
    );
    let listed = browser.wait_for(30, &entry);
    let text = browser.text(&listed);
    assert!(
        text.contains("휴대폰 분실") && text.contains("삭제 확인") && text.contains("이준호"),
        "{text}"
    );
}
