//! The app's routes: the login, the page and its files, the control API
//! as JSON over POST, the room list and history search, and the event
//! stream. Every request first passes [`guard`](crate::guard); everything
//! but the login page and the style sheet needs a session.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request as HttpRequest, State as Extract};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use baro_node::Handle;
use baro_node::api::{MAX_LINE, Request, Response, dispatch_in_home};
use tokio_util::sync::CancellationToken;

use crate::guard::{CSP, Origins};
use crate::session::{COOKIE, Sessions};
use crate::{assets, events, overview};

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct State(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    handle: Handle,
    home: std::path::PathBuf,
    origins: Origins,
    sessions: Sessions,
    shutdown: CancellationToken,
}

impl State {
    /// The state of an app talking to `handle`.
    pub fn new(
        handle: Handle,
        home: std::path::PathBuf,
        origins: Origins,
        sessions: Sessions,
        shutdown: CancellationToken,
    ) -> Self {
        State(Arc::new(Inner {
            handle,
            home,
            origins,
            sessions,
            shutdown,
        }))
    }

    fn has_session(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .any(|secret| self.0.sessions.is_open(secret))
    }
}

/// The app's router.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login))
        .route("/app.js", get(app_js))
        .route("/i18n.js", get(i18n_js))
        .route("/style.css", get(style_css))
        .route("/icon.svg", get(icon_svg))
        .route("/api", post(api))
        .route("/api/rooms", get(rooms))
        .route("/api/search", post(search))
        .route(
            "/api/upload",
            post(upload).layer(DefaultBodyLimit::max(
                baro_node::wire::MAX_FILE_LEN as usize,
            )),
        )
        .route("/api/file", get(file_download))
        .route("/events", get(event_stream))
        .layer(DefaultBodyLimit::max(MAX_LINE))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Refuses foreign hosts and cross-site requests; adds the security
/// headers to every answer.
async fn guard(Extract(state): Extract<State>, request: HttpRequest, next: Next) -> HttpResponse {
    let headers = request.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    // The login URL may be opened from anywhere (a file `baro app` opened,
    // another program): it needs the token, and only opens a session.
    let fetch_site = if request.uri().path() == "/login" && !changes {
        None
    } else {
        text(header::HeaderName::from_static("sec-fetch-site"))
    };
    let checked = state.0.origins.check(
        changes,
        text(header::HOST),
        text(header::ORIGIN),
        fetch_site,
    );
    let mut response = match checked {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!(reason = refusal.message(), "the app refused a request");
            (StatusCode::FORBIDDEN, refusal.message()).into_response()
        }
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

fn login_page(status: StatusCode) -> HttpResponse {
    (status, [(header::CONTENT_TYPE, HTML)], assets::LOGIN_HTML).into_response()
}

fn unauthorized() -> HttpResponse {
    (
        StatusCode::UNAUTHORIZED,
        "log in with the URL `baro run --ui` printed",
    )
        .into_response()
}

async fn index(Extract(state): Extract<State>, headers: HeaderMap) -> HttpResponse {
    if state.has_session(&headers) {
        file(HTML, assets::INDEX_HTML)
    } else {
        login_page(StatusCode::OK)
    }
}

async fn login(Extract(state): Extract<State>, uri: Uri) -> HttpResponse {
    let token = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="));
    match token {
        Some(token) if state.0.sessions.is_token(token) => {
            let secret = state.0.sessions.open();
            let cookie =
                format!("{COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000");
            let Ok(cookie) = HeaderValue::from_str(&cookie) else {
                return login_page(StatusCode::INTERNAL_SERVER_ERROR);
            };
            // Not a redirect: a SameSite=Strict cookie is not sent on a
            // redirect chain that began on another site; a refresh from
            // this page is same-origin.
            (
                [
                    (header::SET_COOKIE, cookie),
                    (header::CONTENT_TYPE, HeaderValue::from_static(HTML)),
                ],
                assets::ENTER_HTML,
            )
                .into_response()
        }
        _ => login_page(StatusCode::FORBIDDEN),
    }
}

async fn app_js(Extract(state): Extract<State>, headers: HeaderMap) -> HttpResponse {
    if !state.has_session(&headers) {
        return unauthorized();
    }
    file(JS, assets::APP_JS)
}

async fn i18n_js(Extract(state): Extract<State>, headers: HeaderMap) -> HttpResponse {
    if !state.has_session(&headers) {
        return unauthorized();
    }
    file(JS, assets::I18N_JS)
}

async fn style_css() -> HttpResponse {
    file("text/css; charset=utf-8", assets::STYLE_CSS)
}

async fn icon_svg() -> HttpResponse {
    file("image/svg+xml", assets::ICON_SVG)
}

fn json(value: &impl serde::Serialize) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// One control API request, answered as the control socket answers it.
async fn api(Extract(state): Extract<State>, headers: HeaderMap, body: Bytes) -> HttpResponse {
    if !state.has_session(&headers) {
        return unauthorized();
    }
    let parsed = serde_json::from_slice::<Request>(&body).map(Request::normalized);
    // The body may carry the operator's passphrase: cleared when this
    // handler holds the only reference to it (it does once read whole).
    if let Ok(mut bytes) = body.try_into_mut() {
        zeroize::Zeroize::zeroize(bytes.as_mut());
    }
    let response = match parsed {
        Err(e) => Response::Error(format!("bad request: {e}")),
        Ok(Request::Watch { .. }) => Response::Error("watch is /events here".into()),
        // The node reads or writes the paths these name, as the user: the
        // page hands over bytes (/api/upload) and takes them back
        // (/api/file) instead, so a page (or a script that got into one)
        // can never make the node send a file of its choosing.
        Ok(Request::SendFile { .. } | Request::FetchFile { out: Some(_), .. }) => {
            Response::Error("files travel through /api/upload and /api/file here".into())
        }
        Ok(request) => dispatch_in_home(request, &state.0.handle, &state.0.home).await,
    };
    json(&response)
}

/// A JSON answer `{"response": "ok", "body": value}`, or the error as
/// the control API words it.
fn answer<T: serde::Serialize>(result: Result<T, String>) -> HttpResponse {
    match result {
        Ok(value) => json(&serde_json::json!({ "response": "ok", "body": value })),
        Err(message) => json(&Response::Error(message)),
    }
}

async fn rooms(Extract(state): Extract<State>, headers: HeaderMap) -> HttpResponse {
    if !state.has_session(&headers) {
        return unauthorized();
    }
    answer(overview::rooms(&state.0.handle).await)
}

async fn search(Extract(state): Extract<State>, headers: HeaderMap, body: Bytes) -> HttpResponse {
    if !state.has_session(&headers) {
        return unauthorized();
    }
    #[derive(serde::Deserialize)]
    struct Search {
        text: String,
    }
    match serde_json::from_slice::<Search>(&body) {
        Ok(search) => answer(overview::search(&state.0.handle, &search.text).await),
        Err(e) => json(&Response::Error(format!("bad request: {e}"))),
    }
}

async fn event_stream(Extract(state): Extract<State>, headers: HeaderMap) -> HttpResponse {
    if !state.has_session(&headers) {
        return unauthorized();
    }
    events::stream(&state.0.handle, state.0.shutdown.clone()).into_response()
}

/// A file attached on the page: `?room=ID&name=NAME`, its bytes the body.
async fn upload(
    Extract(state): Extract<State>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> HttpResponse {
    if !state.has_session(&headers) {
        return unauthorized();
    }
    let query = |key: &str| {
        uri.query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    let (Some(room), Some(name)) = (query("room"), query("name")) else {
        return json(&Response::Error("name the room and the file".into()));
    };
    let name = match crate::upload::file_name(&name) {
        Ok(name) => name,
        Err(message) => return json(&Response::Error(message)),
    };
    json(&crate::upload::send(&state.0.handle, &state.0.home, &room, &name, &body).await)
}

/// A complete file of a room: `?room=ID&file=FILE_ID`. Images of a few
/// types inline (previews), anything else as a download.
async fn file_download(
    Extract(state): Extract<State>,
    headers: HeaderMap,
    uri: Uri,
) -> HttpResponse {
    if !state.has_session(&headers) {
        return unauthorized();
    }
    let query = |key: &str| {
        uri.query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    let (Some(room), Some(file)) = (query("room"), query("file")) else {
        return (StatusCode::BAD_REQUEST, "name the room and the file").into_response();
    };
    match crate::upload::fetched(&state.0.handle, &state.0.home, &room, &file).await {
        Ok((name, media_type, bytes)) => {
            let inline = crate::upload::INLINE_TYPES.contains(&media_type.as_str());
            let content_type = if inline {
                media_type
            } else {
                "application/octet-stream".to_string()
            };
            let encoded: String = name
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            let disposition = format!(
                "{}; filename*=UTF-8''{encoded}",
                if inline { "inline" } else { "attachment" }
            );
            match (
                HeaderValue::from_str(&content_type),
                HeaderValue::from_str(&disposition),
            ) {
                (Ok(content_type), Ok(disposition)) => (
                    [
                        (header::CONTENT_TYPE, content_type),
                        (header::CONTENT_DISPOSITION, disposition),
                    ],
                    bytes,
                )
                    .into_response(),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "a bad media type").into_response(),
            }
        }
        Err(message) => (StatusCode::CONFLICT, message).into_response(),
    }
}
