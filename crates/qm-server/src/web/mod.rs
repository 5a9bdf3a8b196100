//! The server-rendered web UI: the signed-in user (`WebUser`), CSRF on every form, sign-in and
//! out, assets and the routes; the pages live by domain in `dashboard`, `counter`, `books`, `counts` and `safety`.

mod access;
mod books;
mod counter;
mod counts;
mod dashboard;
pub(crate) mod directives;
mod incidents;
mod notifications;
mod people;
mod safety;
mod sites;

use books::*;
use counter::*;
use counts::*;
use dashboard::*;
use directives::*;
use incidents::*;
use notifications::*;
use sites::{site_books_page, sites_page};

use crate::auth::{self, same_secret, ClientIp, Principal};
use crate::error::ApiError;
use crate::views::{self, page};
use crate::AppState;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;

pub(crate) const CSS: &str = include_str!("../assets/app.css");

pub(crate) const JS: &str = include_str!("../assets/app.js");

/// A signed-in web user; anyone else is sent to the sign-in page.
pub struct WebUser(pub Principal);

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<WebUser, Response> {
        match auth::resolve(st, parts).await {
            Ok(Some(p)) => Ok(WebUser(p)),
            Ok(None) => Err(Redirect::to(&signin_then(parts)).into_response()),
            Err(e) => Err(WebError(e).into_response()),
        }
    }
}

/// The sign-in page, then back to where the person was: the page asked for, or for a form posted
/// after the session ended, the page the form was on (its `Referer`). What was scanned at the
/// counter is kept by the page itself (app.js), so an expired session loses nothing.
fn signin_then(parts: &Parts) -> String {
    let here = if parts.method == axum::http::Method::GET {
        parts.uri.path_and_query().map(|p| p.as_str().to_string())
    } else {
        let referer = parts.headers.get(header::REFERER).and_then(|v| v.to_str().ok()).and_then(|r| r.parse::<axum::http::Uri>().ok());
        referer.and_then(|u| u.path_and_query().map(|p| p.as_str().to_string()))
    };
    // The counter's preview and confirmation are forms' answers: back to the counter, where the page
    // has kept the scans.
    let here = here.map(|h| if h.starts_with("/counter/") { "/counter".to_string() } else { h });
    match here.as_deref().and_then(local_path) {
        Some(p) if p != "/" => format!("/signin?next={}", urlencode(p)),
        _ => "/signin".into(),
    }
}

/// A path on this site to go back to after signing in; anything else (another host, `//host`, a
/// backslash trick, the sign-in page itself) is not followed.
pub(crate) fn local_path(p: &str) -> Option<&str> {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.chars().any(char::is_control)
        && p.len() <= 2048
        && !p.starts_with("/signin")
        && !p.starts_with("/api/");
    ok.then_some(p)
}

/// Who is looking at a page, extracted once for every page handler: the site, the signed-in
/// person (or a redirect to the sign-in page) and the client's address.
pub struct Visitor {
    pub st: AppState,
    pub p: Principal,
    pub ip: String,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Visitor, Response> {
        let WebUser(p) = WebUser::from_request_parts(parts, st).await?;
        Ok(Visitor { st: st.clone(), p, ip: auth::client_ip(parts) })
    }
}

/// An error shown as a page.
pub struct WebError(pub ApiError);

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> WebError {
        WebError(e)
    }
}

impl From<qm_app::AppError> for WebError {
    fn from(e: qm_app::AppError) -> WebError {
        WebError(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut r = (self.0.status, page("Something went wrong", None, "", error_body(&self.0.message, None))).into_response();
        r.extensions_mut().insert(Refused(self.0.message));
        r
    }
}

/// A refusal or error shown as a page, remembered on the response so that `keep_navigation` can
/// show it again inside the person's menu.
#[derive(Clone)]
struct Refused(String);

fn error_body(message: &str, back: Option<&str>) -> Markup {
    html! {
        (views::err(message))
        p.back {
            @if let Some(b) = back { a #go-back href=(b) { "Back to the page before" } " · " }
            a href="/" { "Back to the dashboard" }
        }
    }
}

/// Every refusal keeps the page's navigation and a way back: an error page rendered without the
/// signed-in person (a handler's `?`) is drawn again with their menu and a link to the page they
/// came from (a path on this site only).
pub(crate) async fn keep_navigation(State(st): State<AppState>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // Machines' routes (the API, the tiles, the mirror, the witness, the feed down) answer as they do.
    const MACHINES: [&str; 6] = ["/api/", "/ledger/", "/mirror/", "/witness/", "/down", "/assets/"];
    if MACHINES.iter().any(|m| req.uri().path().starts_with(m)) {
        return next.run(req).await;
    }
    let (headers, uri) = (req.headers().clone(), req.uri().clone());
    let response = next.run(req).await;
    let status = response.status();
    let plain = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/plain"));
    let message = match response.extensions().get::<Refused>().cloned() {
        Some(Refused(m)) => m,
        // axum's own answers to a form or a query that does not read (plain text): said on a page.
        None if plain && (status.is_client_error() || status.is_server_error()) => {
            let body = axum::body::to_bytes(response.into_body(), 16 * 1024).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&body).trim().to_string();
            let m = if status.is_server_error() {
                "internal error; the server's log has the details".to_string()
            } else {
                format!("not accepted: {text}")
            };
            let back = html! { p { a href="/" { "Back to the dashboard" } } };
            let fallback = (status, page("Not accepted", None, "", html! { (views::err(&m)) (back) })).into_response();
            return with_menu(&st, &headers, uri, status, m, fallback).await;
        }
        None => return response,
    };
    with_menu(&st, &headers, uri, status, message, response).await
}

/// The error page `message` drawn again inside the signed-in person's menu (else `response` as it is).
async fn with_menu(
    st: &AppState,
    headers: &axum::http::HeaderMap,
    uri: axum::http::Uri,
    status: StatusCode,
    message: String,
    response: Response,
) -> Response {
    let mut probe = axum::http::Request::new(());
    *probe.headers_mut() = headers.clone();
    *probe.uri_mut() = uri;
    let (parts, ()) = probe.into_parts();
    let Ok(Some(p)) = auth::resolve(st, &parts).await else { return response };
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok()).and_then(|r| r.parse::<axum::http::Uri>().ok());
    let back = referer.and_then(|u| u.path_and_query().map(|x| x.as_str().to_string()));
    let back = back.as_deref().and_then(local_path).filter(|b| *b != parts.uri.path());
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => "Refused",
        StatusCode::BAD_REQUEST => "Not accepted",
        _ => "Something went wrong",
    };
    (status, page(title, Some(&p), "", error_body(&message, back))).into_response()
}

pub(crate) type WebResult = Result<Response, WebError>;

pub(crate) fn check_csrf(p: &Principal, sent: &str) -> Result<(), WebError> {
    if same_secret(sent, p.csrf()) && !sent.is_empty() {
        Ok(())
    } else {
        Err(WebError(ApiError::forbidden(
            "csrf",
            "refused: this form is stale or did not come from this session; reload the page (rule csrf)",
        )))
    }
}

pub(crate) fn lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

pub(crate) async fn assets_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS).into_response()
}

pub(crate) async fn assets_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], JS).into_response()
}

pub(crate) fn signin_page(csrf: &str, badge: &str, next: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        "",
        html! {
            @if let Some(e) = error { (views::err(e)) }
            form.card method="post" action="/signin" {
                input type="hidden" name="csrf" value=(csrf);
                @if local_path(next).is_some() { input type="hidden" name="next" value=(next); }
                label { "Badge" input #badge name="badge" value=(badge) autofocus autocomplete="username" required; }
                label { "Password" input #password type="password" name="password" autocomplete="current-password" required; }
                button #signin type="submit" { "Sign in" }
            }
        },
    )
}

/// The sign-in form keeps no state on the server: its CSRF token is a random value set as a cookie
/// and repeated in the form (a double submit), compared when the form is posted. A flood of
/// `GET /signin` costs the server nothing it keeps, and evicts no signed-in session.
pub(crate) async fn signin_get(State(st): State<AppState>, headers: axum::http::HeaderMap, Query(q): Query<NextQuery>) -> Response {
    // A form already on screen in another tab keeps working: the cookie it was given is reused.
    let csrf = auth::signin_token(&headers).unwrap_or_else(auth::random_token);
    let next = q.next.unwrap_or_default();
    ([(header::SET_COOKIE, st.auth.signin_cookie(&csrf))], signin_page(&csrf, "", &next, None)).into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct NextQuery {
    pub(crate) next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    pub(crate) csrf: String,
    pub(crate) badge: String,
    pub(crate) password: String,
    #[serde(default)]
    pub(crate) next: String,
}

pub(crate) async fn signin_post(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: axum::http::HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let Some(csrf) = auth::signin_token(&headers).filter(|c| same_secret(&f.csrf, c)) else {
        let csrf = auth::random_token();
        let page = signin_page(&csrf, &f.badge, &f.next, Some("This sign-in form expired; please sign in again."));
        return (StatusCode::FORBIDDEN, [(header::SET_COOKIE, st.auth.signin_cookie(&csrf))], page).into_response();
    };
    match auth::sign_in(&st, &ip, &f.badge, &f.password).await {
        Ok((sid, _)) => {
            let cookies = [(header::SET_COOKIE, st.auth.cookie(&sid)), (header::SET_COOKIE, auth::SIGNIN_COOKIE_CLEAR.to_string())];
            (axum::response::AppendHeaders(cookies), Redirect::to(local_path(&f.next).unwrap_or("/"))).into_response()
        }
        Err(e) => (e.status, signin_page(&csrf, &f.badge, &f.next, Some(&e.message))).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

pub(crate) async fn signout(Visitor { st, p, .. }: Visitor, Form(f): Form<CsrfForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    if let auth::Via::Session { id, .. } = &p.via {
        st.auth.remove(id);
    }
    Ok(([(header::SET_COOKIE, st.auth.clear_cookie())], Redirect::to("/signin")).into_response())
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Leaves the outcome of a form for the page it redirects to (`auth::Flash`), then redirects there.
/// Whether one of the person's roles allows `op` (which forms a page shows; deciding checks again).
pub(crate) fn may(p: &Principal, op: qm_core::permissions::Op) -> bool {
    p.roles.iter().any(|r| qm_core::permissions::role_allows(*r, op))
}

pub(crate) fn redirect_with(st: &AppState, p: &Principal, to: &str, outcome: Result<String, ApiError>) -> Response {
    if let Some(id) = p.session_id() {
        let flash = match outcome {
            Ok(m) => auth::Flash::Done(m),
            Err(e) => auth::Flash::Refused(e.message),
        };
        st.auth.set_flash(id, flash);
    }
    Redirect::to(to).into_response()
}

/// The banner for the message a form left for this page, if any (once).
pub(crate) fn flash(st: &AppState, p: &Principal) -> Markup {
    match p.session_id().and_then(|id| st.auth.take_flash(id)) {
        Some(auth::Flash::Done(m)) => views::ok(&m),
        Some(auth::Flash::Refused(m)) => html! { div.msg.err #refusal role="alert" { (m) } },
        None => html! {},
    }
}

pub(crate) async fn not_found(WebUser(p): WebUser) -> Response {
    (StatusCode::NOT_FOUND, page("Not found", Some(&p), "", html! { (views::err("There is no such page.")) })).into_response()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assets/app.css", get(assets_css))
        .route("/assets/app.js", get(assets_js))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/signin", get(signin_get).post(signin_post))
        .route("/signout", post(signout))
        .route("/", get(dashboard))
        .route("/counter", get(counter))
        .route("/counter/preview", post(counter_preview))
        .route("/counter/confirm", post(counter_confirm))
        .route("/stock", get(stock))
        .route("/items", get(items_search))
        .route("/items/{what}", get(item_page))
        .route("/custody", get(custody))
        .route("/transfers", get(transfers))
        .route("/counts", get(counts))
        .route("/counts/start", post(count_start))
        .route("/counts/{id}", get(count_page))
        .route("/counts/{id}/record", post(count_record))
        .route("/counts/{id}/close", post(count_close))
        .route("/discrepancies/{id}/resolve", post(resolve_discrepancy))
        .route("/directives", get(directives_page).post(directive_issue_form))
        .route("/directives/{id}", get(directive_page))
        .route("/directives/{id}/{step}", post(directive_step_form))
        .route("/incidents", get(incidents_page).post(incident_open))
        .route("/incidents/{id}", get(incident_page))
        .route("/incidents/{id}/{step}", post(incident_step))
        .route("/notifications", get(notifications_page))
        .route("/sites", get(sites_page))
        .route("/sites/{origin}", get(site_books_page))
        .route("/notifications/outbox/{id}/retry", post(notification_retry))
        .route("/people", get(people::people_page))
        .route("/people/add", post(people::person_add))
        .route("/people/{badge}", get(people::person_page))
        .route("/people/{badge}/{step}", post(people::person_step))
        .route("/log", get(log))
        .route("/log/checkpoint", post(log_checkpoint))
        .route("/labels", get(labels))
        .route("/labels/item/{what}", get(label_item))
        .merge(safety::routes())
        .merge(access::routes())
        .fallback(not_found)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_a_path_on_this_site_is_followed_after_signing_in() {
        for ok in ["/counter", "/counter?mode=return&badge=1110", "/people/1117"] {
            assert_eq!(local_path(ok), Some(ok));
        }
        for bad in ["//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "", "/signin?next=/x", "/api/me", "/a\u{7}b"] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
        assert_eq!(local_path(&format!("/{}", "a".repeat(3000))), None);
    }
}
