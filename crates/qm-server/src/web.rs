//! The web UI: server-rendered pages (maud) for the counter, stock, items, custody, transfers, counts,
//! the event log, the HQ dashboard and labels. Every form carries the session's CSRF token, checked
//! on every POST; scripts and styles are served from the binary (`/assets`), never a CDN.

use crate::api::{self, counter_commands, id, items, opt, perform, WitnessIn};
use crate::auth::{self, now, resolve, same_secret, ClientIp, Principal};
use crate::error::ApiError;
use crate::scope::{self, sees};
use crate::views::{self, page};
use crate::AppState;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use qm_app::query::{self, StockFilter};
use qm_core::*;
use serde::Deserialize;
use time::Duration;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// Custody held longer than this is an overdue return.
pub const OVERDUE_AFTER_H: i64 = 24;

/// A signed-in web user; anyone else is sent to the sign-in page.
pub struct WebUser(pub Principal);

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<WebUser, Response> {
        match resolve(st, parts).await {
            Ok(Some(p)) => Ok(WebUser(p)),
            Ok(None) => Err(Redirect::to("/signin").into_response()),
            Err(e) => Err(WebError(e).into_response()),
        }
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
        let body = html! { (views::err(&self.0.message)) p { a href="/" { "Back to the dashboard" } } };
        (self.0.status, page("Something went wrong", None, "", body)).into_response()
    }
}

type WebResult = Result<Response, WebError>;

fn check_csrf(p: &Principal, sent: &str) -> Result<(), WebError> {
    if same_secret(sent, p.csrf()) && !sent.is_empty() {
        Ok(())
    } else {
        Err(WebError(ApiError::forbidden(
            "csrf",
            "refused: this form is stale or did not come from this session; reload the page (rule csrf)",
        )))
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

async fn assets_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS).into_response()
}

async fn assets_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], JS).into_response()
}

// ---- sign-in ----------------------------------------------------------------------------

fn signin_page(csrf: &str, badge: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        "",
        html! {
            @if let Some(e) = error { (views::err(e)) }
            form.card method="post" action="/signin" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Badge" input #badge name="badge" value=(badge) autofocus autocomplete="username" required; }
                label { "Password" input #password type="password" name="password" autocomplete="current-password" required; }
                button #signin type="submit" { "Sign in" }
            }
        },
    )
}

async fn signin_get(State(st): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    // An anonymous session carries the sign-in form's CSRF token; signing in replaces it. A live one
    // is reused, so that a second tab (or a stray request) does not invalidate the form on screen.
    let live = auth::session_id(&headers).and_then(|id| st.auth.get(&id).filter(|s| s.badge.is_none()).map(|s| (id, s.csrf)));
    let (sid, csrf) = live.unwrap_or_else(|| st.auth.create(None));
    ([(header::SET_COOKIE, st.auth.cookie(&sid))], signin_page(&csrf, "", None)).into_response()
}

#[derive(Deserialize)]
struct SignInForm {
    csrf: String,
    badge: String,
    password: String,
}

async fn signin_post(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: axum::http::HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let anon = auth::session_id(&headers).and_then(|id| st.auth.get(&id).map(|s| (id, s)));
    let Some((anon_id, anon)) = anon.filter(|(_, s)| s.badge.is_none() && same_secret(&f.csrf, &s.csrf)) else {
        let (sid, csrf) = st.auth.create(None);
        let page = signin_page(&csrf, &f.badge, Some("This sign-in form expired; please sign in again."));
        return (StatusCode::FORBIDDEN, [(header::SET_COOKIE, st.auth.cookie(&sid))], page).into_response();
    };
    match auth::sign_in(&st, &ip, &f.badge, &f.password).await {
        Ok((sid, _)) => {
            st.auth.remove(&anon_id);
            ([(header::SET_COOKIE, st.auth.cookie(&sid))], Redirect::to("/")).into_response()
        }
        Err(e) => (e.status, signin_page(&anon.csrf, &f.badge, Some(&e.message))).into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn signout(State(st): State<AppState>, WebUser(p): WebUser, Form(f): Form<CsrfForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    if let auth::Via::Session { id, .. } = &p.via {
        st.auth.remove(id);
    }
    Ok(([(header::SET_COOKIE, st.auth.clear_cookie())], Redirect::to("/signin")).into_response())
}

// ---- dashboard --------------------------------------------------------------------------

struct UnitRow {
    unit: UnitId,
    name: String,
    depth: usize,
    discrepancies: usize,
    overdue: usize,
    in_transit: usize,
    people: usize,
    magazines_near: usize,
}

fn unit_rows(s: &qm_core::State, scope_unit: &UnitId, at: time::OffsetDateTime) -> Vec<UnitRow> {
    let mut out = vec![];
    let mut stack = vec![(scope_unit.clone(), 0usize)];
    let overdue_before = at - Duration::hours(OVERDUE_AFTER_H);
    while let Some((u, depth)) = stack.pop() {
        let Some(unit) = s.units.get(&u) else { continue };
        let within = |x: &UnitId| s.unit_within(x, &u);
        let discrepancies = s
            .discrepancies
            .values()
            .filter(|d| d.resolution.is_none() && scope::discrepancy_units(s, &d.facts).iter().flatten().any(within))
            .count();
        let person_within = |b: &Badge| s.people.get(b).is_some_and(|p| within(&p.unit));
        let overdue = s
            .serials
            .values()
            .filter(|si| matches!(&si.account, Account::Person(b) if person_within(b)) && si.since < overdue_before)
            .count()
            + s.balances
                .iter()
                .filter(|((a, _), b)| {
                    matches!(a, Account::Person(x) if person_within(x)) && b.quantity.is_positive() && b.since < overdue_before
                })
                .count();
        let in_transit =
            s.transfers.values().filter(|t| t.received_at_location.is_none() && (within(&t.from_unit) || within(&t.to_unit))).count();
        let people = s.people.values().filter(|p| p.unit == u).count();
        let magazines_near = crate::safety::near_limit(s, &u);
        out.push(UnitRow { unit: u.clone(), name: unit.name.clone(), depth, discrepancies, overdue, in_transit, people, magazines_near });
        let mut children: Vec<&UnitId> = s.units.iter().filter(|(_, x)| x.parent.as_ref() == Some(&u)).map(|(k, _)| k).collect();
        children.sort();
        for c in children.into_iter().rev() {
            stack.push((c.clone(), depth + 1));
        }
    }
    out
}

/// Size and age of the latest checkpoint, and the ledger's size.
struct LedgerStatus {
    size: u64,
    checkpoint_size: u64,
    checkpoint_age: Option<String>,
}

fn ledger_status(site: &qm_app::Site) -> LedgerStatus {
    let cps = site.store().checkpoints().unwrap_or_default();
    let last = cps.last();
    // The checkpoint's time is the time of the last entry it covers.
    let age = last.and_then(|c| c.size.checked_sub(1)).and_then(|seq| site.envelope(seq).ok()).map(|e| age(now() - e.at));
    LedgerStatus { size: site.size(), checkpoint_size: last.map(|c| c.size).unwrap_or(0), checkpoint_age: age }
}

fn age(d: Duration) -> String {
    let m = d.whole_minutes();
    if m < 1 {
        "under a minute".into()
    } else if m < 120 {
        format!("{m} min")
    } else if m < 48 * 60 {
        format!("{} h", m / 60)
    } else {
        format!("{} days", m / 1440)
    }
}

async fn dashboard(State(st): State<AppState>, WebUser(p): WebUser) -> WebResult {
    let pp = p.clone();
    let (rows, ls) = st.site.call(move |site| (unit_rows(site.state(), &pp.unit, now()), ledger_status(site))).await?;
    let body = html! {
        p.lead {
            "Ledger: " strong { (ls.size) " entries" } "; latest signed checkpoint covers " strong #cp-size { (ls.checkpoint_size) }
            @if let Some(a) = &ls.checkpoint_age { " (last entry it covers: " (a) " ago)" }
            @if ls.checkpoint_size < ls.size { span.warn { " · " (ls.size - ls.checkpoint_size) " entries not yet checkpointed" } }
        }
        table #units {
            thead { tr { th { "Unit" } th.n { "Open discrepancies" } th.n { "Overdue returns (> " (OVERDUE_AFTER_H) " h)" } th.n { "Transfers in transit" } th.n { "Magazines near a limit" } th.n { "Staff" } th { "" } } }
            tbody {
                @for r in &rows {
                    tr {
                        td { span class=(format!("d{}", r.depth.min(4))) { strong { (r.unit) } " " (r.name) } }
                        td.n.(flag(r.discrepancies)) { (r.discrepancies) }
                        td.n.(flag(r.overdue)) { (r.overdue) }
                        td.n.(flag(r.in_transit)) { (r.in_transit) }
                        td.n.(flag(r.magazines_near)) { @if r.magazines_near > 0 { a href=(format!("/magazines?unit={}", r.unit)) { (r.magazines_near) } } @else { (r.magazines_near) } }
                        td.n { (r.people) }
                        td { a href=(format!("/stock?unit={}", r.unit)) { "stock" } }
                    }
                }
            }
        }
        p.hint { "Each row counts its whole subtree. Checkpoints are signed for the whole site (one ledger)." }
    };
    Ok(page("Dashboard", Some(&p), "Dashboard", body).into_response())
}

fn flag(n: usize) -> &'static str {
    if n > 0 {
        "bad"
    } else {
        "good"
    }
}

// ---- counter ----------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct CounterQuery {
    mode: Option<String>,
    badge: Option<String>,
    location: Option<String>,
    items: Option<String>,
}

fn counter_form(p: &Principal, q: &CounterQuery, locations: &[(String, String)], message: Option<Markup>) -> Markup {
    let mode = q.mode.as_deref().unwrap_or("issue");
    html! {
        @if let Some(m) = message { (m) }
        form #counter.card method="post" action="/counter/preview" {
            (views::csrf(p))
            fieldset.modes {
                legend { "Operation" }
                label { input type="radio" name="mode" value="issue" checked[mode == "issue"]; " Issue" }
                label { input type="radio" name="mode" value="return" checked[mode == "return"]; " Return" }
            }
            label { "Badge (scan or type, then Enter)"
                input #badge name="badge" value=(q.badge.as_deref().unwrap_or("")) autofocus autocomplete="off" required; }
            label { "Location (lots are drawn from it on issue; everything goes back to it on return)"
                input #location name="location" list="locations" value=(q.location.as_deref().unwrap_or("")) autocomplete="off"; }
            datalist #locations { @for (l, name) in locations { option value=(l) { (name) } } }
            label { "Scan an item (serial, or LOT:QTY), then Enter; Enter on an empty field shows the preview"
                input #scan autocomplete="off" data-target="items"; }
            label { "Items, one per line"
                textarea #items name="items" rows="6" { (q.items.as_deref().unwrap_or("")) } }
            button #preview type="submit" { "Preview" }
        }
    }
}

async fn locations_in_scope(st: &AppState, p: &Principal) -> Result<Vec<(String, String)>, WebError> {
    let unit = p.unit.clone();
    Ok(st
        .site
        .call(move |site| {
            let s = site.state();
            s.locations.iter().filter(|(_, l)| s.unit_within(&l.unit, &unit)).map(|(k, l)| (k.to_string(), l.name.clone())).collect()
        })
        .await?)
}

async fn counter(State(st): State<AppState>, WebUser(p): WebUser, Query(q): Query<CounterQuery>) -> WebResult {
    let locs = locations_in_scope(&st, &p).await?;
    Ok(page("Counter", Some(&p), "Counter", counter_form(&p, &q, &locs, None)).into_response())
}

#[derive(Deserialize)]
struct CounterForm {
    csrf: String,
    mode: String,
    badge: String,
    location: Option<String>,
    items: String,
    key: Option<String>,
    witness_badge: Option<String>,
    witness_pin: Option<String>,
}

async fn counter_preview(State(st): State<AppState>, WebUser(p): WebUser, Form(f): Form<CounterForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let list = lines(&f.items);
    let q = CounterQuery {
        mode: Some(f.mode.clone()),
        badge: Some(f.badge.clone()),
        location: f.location.clone(),
        items: Some(f.items.clone()),
    };
    let commands = match counter_commands(&f.mode, &f.badge, &f.location, &list) {
        Ok(c) => c,
        Err(e) => {
            let locs = locations_in_scope(&st, &p).await?;
            return Ok(
                (e.status, page("Counter", Some(&p), "Counter", counter_form(&p, &q, &locs, Some(views::err(&e.message))))).into_response()
            );
        }
    };
    let b = Badge::parse(&f.badge).ok();
    let person = st
        .site
        .call(move |site| {
            let s = site.state();
            b.and_then(|b| query::custody(s, &b).ok())
        })
        .await?;
    let pv = api::preview_all(&st, &p, None, commands).await?;
    let key = uuid::Uuid::now_v7().to_string();
    let verb = if f.mode == "return" { "Return from" } else { "Issue to" };
    let body = html! {
        div.card #preview-card {
            h2 { (verb) " " @if let Some(c) = &person { (c.name) " · badge " (c.badge) " · unit " (c.unit) } @else { "badge " (f.badge) } }
            @if pv.ok || pv.needs_witness {
                @if pv.ok {
                    p { "This will be recorded:" }
                    ul #will { @for s in &pv.summaries { li { (s) } } }
                } @else {
                    @if let Some(e) = &pv.error { div.msg.warn #refusal role="alert" { (e.message) } }
                    p { "A witness confirms with their own badge and PIN:" }
                }
                form #confirm method="post" action="/counter/confirm" {
                    (views::csrf(&p))
                    input type="hidden" name="mode" value=(f.mode);
                    input type="hidden" name="badge" value=(f.badge);
                    input type="hidden" name="location" value=(f.location.as_deref().unwrap_or(""));
                    input type="hidden" name="items" value=(f.items);
                    input type="hidden" name="key" value=(key);
                    @if pv.needs_witness {
                        label { "Witness badge" input #witness_badge name="witness_badge" autofocus autocomplete="off" required; }
                        label { "Witness PIN" input #witness_pin type="password" name="witness_pin" autocomplete="off" required; }
                        button #confirm-button type="submit" { "Confirm with witness" }
                    } @else {
                        button #confirm-button type="submit" autofocus { "Confirm (Enter)" }
                    }
                }
            } @else {
                @if let Some(e) = &pv.error { div.msg.err #refusal role="alert" { strong { "Refused: " } (e.message.strip_prefix("refused: ").unwrap_or(&e.message)) } }
                p { "Nothing was recorded." }
            }
            p { a #back href=(back_link(&q)) { "Back and change (Esc)" } }
        }
        @if let Some(c) = &person {
            h2 { "Holds now" }
            (custody_table(c))
        }
    };
    Ok(page("Counter — check before confirming", Some(&p), "Counter", body).into_response())
}

fn back_link(q: &CounterQuery) -> String {
    let enc = |s: &Option<String>| urlencode(s.as_deref().unwrap_or(""));
    format!("/counter?mode={}&badge={}&location={}&items={}", enc(&q.mode), enc(&q.badge), enc(&q.location), enc(&q.items))
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

fn custody_table(c: &query::Custody) -> Markup {
    html! {
        @if c.holds.is_empty() { p.hint { "Nothing in custody." } } @else {
            table.custody { thead { tr { th { "Item" } th { "Type" } th.n { "Quantity" } th { "Since" } } }
                tbody { @for h in &c.holds { tr { td { (h.item) } td { (h.item_type) } td.n { (h.quantity) } td { (h.since) } } } } }
        }
    }
}

async fn counter_confirm(State(st): State<AppState>, WebUser(p): WebUser, ClientIp(ip): ClientIp, Form(f): Form<CounterForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let list = lines(&f.items);
    let q = CounterQuery {
        mode: Some(f.mode.clone()),
        badge: Some(f.badge.clone()),
        location: f.location.clone(),
        items: Some(f.items.clone()),
    };
    let witness = f
        .witness_badge
        .clone()
        .filter(|w| !w.trim().is_empty())
        .map(|badge| WitnessIn { badge, pin: f.witness_pin.clone().unwrap_or_default() });
    // Two commands when serials and lots are issued together; each has its own idempotency key
    // derived from the form's, so a double submit records nothing twice.
    let key = f.key.clone().filter(|k| !k.is_empty()).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let result: Result<Vec<qm_app::Outcome>, ApiError> = async {
        let mut done = vec![];
        for (i, c) in counter_commands(&f.mode, &f.badge, &f.location, &list)?.into_iter().enumerate() {
            let w = witness.as_ref().map(|w| WitnessIn { badge: w.badge.clone(), pin: w.pin.clone() });
            match perform(&st, &p, &ip, w, Some(format!("{key}-{i}")), c).await {
                Ok(o) => done.push(o),
                Err(e) if done.is_empty() => return Err(e),
                Err(e) => return Err(ApiError { message: format!("{} (the serial items above it were recorded)", e.message), ..e }),
            }
        }
        Ok(done)
    }
    .await;
    let locs = locations_in_scope(&st, &p).await?;
    match result {
        Ok(o) => {
            let done = html! {
                div.msg.ok #done role="status" {
                    strong { (if f.mode == "return" { "Returned. " } else { "Issued. " }) }
                    @for o in &o { @for e in o.entries.iter() { (query::summarize(e)) " (entry " (e.seq) ") " } }
                    @if o.iter().any(|x| x.replayed) { " — already recorded; nothing new appended." }
                }
            };
            let fresh = CounterQuery { mode: Some(f.mode.clone()), location: f.location.clone(), ..CounterQuery::default() };
            Ok(page("Counter", Some(&p), "Counter", counter_form(&p, &fresh, &locs, Some(done))).into_response())
        }
        Err(e) => Ok((
            e.status,
            page(
                "Counter",
                Some(&p),
                "Counter",
                counter_form(&p, &q, &locs, Some(html! { div.msg.err #refusal role="alert" { strong { "Refused: " } (e.message.strip_prefix("refused: ").unwrap_or(&e.message)) } })),
            ),
        )
            .into_response()),
    }
}

// ---- stock, items, custody, transfers ---------------------------------------------------

#[derive(Deserialize)]
struct StockQ {
    unit: Option<String>,
    location: Option<String>,
    item_type: Option<String>,
}

async fn stock(State(st): State<AppState>, WebUser(p): WebUser, Query(q): Query<StockQ>) -> WebResult {
    let f = StockFilter {
        unit: opt(&q.unit, UnitId::parse)?,
        location: opt(&q.location, LocationId::parse)?,
        item_type: opt(&q.item_type, ItemTypeId::parse)?,
    };
    let pp = p.clone();
    let lines = match st.site.call(move |site| api::stock_for(site.state(), &pp, f)).await? {
        Ok(l) => l,
        Err(what) => {
            let why = scope::outside(&p, &what);
            auth::record_denial(&st, p.badge.as_str(), "read", &why).await;
            return Err(WebError(ApiError::forbidden("permission.subtree", format!("refused: {why} (rule permission.subtree)"))));
        }
    };
    let body = html! {
        form.filters method="get" action="/stock" {
            label { "Unit" input name="unit" value=(q.unit.as_deref().unwrap_or(p.unit.as_str())); }
            label { "Location" input name="location" value=(q.location.as_deref().unwrap_or("")); }
            label { "Item type" input name="item_type" value=(q.item_type.as_deref().unwrap_or("")); }
            button type="submit" { "Show" }
        }
        table #stock {
            thead { tr { th { "Unit" } th { "Held at / by" } th { "Item type" } th { "Lot" } th { "Status" } th.n { "Quantity" } th { "" } } }
            tbody {
                @for l in &lines {
                    tr {
                        td { (l.unit) } td { (l.account) } td { (l.item_type) }
                        td { @if let Some(lot) = &l.lot { a href=(format!("/items/{lot}")) { (lot) } } }
                        td { (l.status.as_deref().unwrap_or("")) }
                        td.n { (l.quantity) " " (l.unit_of_measure) }
                        td { @if let Some(loc) = l.account.strip_prefix("location:") { a href=(format!("/labels?location={loc}")) { "labels" } } }
                    }
                }
            }
        }
        @if lines.is_empty() { p.hint { "Nothing held here." } }
    };
    Ok(page("Stock", Some(&p), "Stock", body).into_response())
}

#[derive(Deserialize)]
struct ItemQ {
    q: Option<String>,
}

async fn items_search(WebUser(p): WebUser, Query(q): Query<ItemQ>) -> Response {
    if let Some(x) = q.q.filter(|x| !x.trim().is_empty()) {
        return Redirect::to(&format!("/items/{}", urlencode(x.trim()))).into_response();
    }
    let body = html! {
        form.filters method="get" action="/items" {
            label { "Serial or lot (scan or type)" input #q name="q" autofocus autocomplete="off"; }
            button type="submit" { "Show history" }
        }
    };
    page("Items", Some(&p), "Items", body).into_response()
}

async fn item(State(st): State<AppState>, WebUser(p): WebUser, Path(what): Path<String>) -> WebResult {
    let (pp, w) = (p.clone(), what.clone());
    let (history, whereis, visible) = st
        .site
        .call(move |site| -> Result<_, ApiError> {
            let s = site.state();
            let h = query::history(site, &w)?;
            let wi = Serial::parse(&w).ok().and_then(|x| query::where_is(s, &x).ok());
            Ok((h, wi, api::item_visible(s, &pp, &w)))
        })
        .await??;
    if !visible {
        let why = scope::outside(&p, &format!("item {what}"));
        auth::record_denial(&st, p.badge.as_str(), "read", &why).await;
        return Err(WebError(ApiError::forbidden("permission.subtree", format!("refused: {why} (rule permission.subtree)"))));
    }
    let body = html! {
        @if let Some(w) = &whereis {
            p.lead #where { strong { (w.serial) } " (" (w.item_type) ") is at " strong { (w.account) }
                @if let Some(h) = &w.holder { " — " (h) } " since " (w.since) " (entry " (w.since_seq) ")." }
        }
        p { a href=(format!("/labels/item/{}", urlencode(&what))) { "Print a label" } }
        (log_table(&history))
    };
    Ok(page(&format!("History of {what}"), Some(&p), "Items", body).into_response())
}

fn log_table(lines: &[query::LogLine]) -> Markup {
    html! {
        table.log {
            thead { tr { th.n { "Entry" } th { "When" } th { "Who" } th { "Witness" } th { "What" } } }
            tbody {
                @for l in lines {
                    tr.(if l.r#type == "access_denied" { "denied" } else { "" }) {
                        td.n { (l.seq) } td { (l.at) } td { (l.actor) } td { (l.witness.as_deref().unwrap_or("")) } td { (l.summary) }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct BadgeQ {
    badge: Option<String>,
}

async fn custody(State(st): State<AppState>, WebUser(p): WebUser, Query(q): Query<BadgeQ>) -> WebResult {
    let pp = p.clone();
    let badge = q.badge.clone().filter(|b| !b.trim().is_empty());
    let b = badge.as_deref().map(Badge::parse).transpose().map_err(ApiError::usage)?;
    let (holders, one) = st
        .site
        .call(move |site| -> Result<_, ApiError> {
            let s = site.state();
            let one = match &b {
                Some(b) => {
                    let c = query::custody(s, b)?;
                    let unit = s.people.get(b).map(|x| x.unit.clone());
                    Some((c, sees(s, &pp, unit.as_ref())))
                }
                None => None,
            };
            // Everyone in the subtree who holds something right now.
            let mut holders: Vec<(String, String, usize)> = s
                .people
                .iter()
                .filter(|(_, x)| s.unit_within(&x.unit, &pp.unit))
                .filter_map(|(b, x)| {
                    let (serials, lots) = s.custody(b);
                    let n = serials.len() + lots.len();
                    (n > 0).then(|| (b.to_string(), x.name.clone(), n))
                })
                .collect();
            holders.sort();
            Ok((holders, one))
        })
        .await??;
    if let Some((c, false)) = &one {
        let why = scope::outside(&p, &format!("the custody of badge {}", c.badge));
        auth::record_denial(&st, p.badge.as_str(), "read", &why).await;
        return Err(WebError(ApiError::forbidden("permission.subtree", format!("refused: {why} (rule permission.subtree)"))));
    }
    let body = html! {
        form.filters method="get" action="/custody" {
            label { "Badge" input name="badge" value=(badge.as_deref().unwrap_or("")) autofocus autocomplete="off"; }
            button type="submit" { "Show custody" }
        }
        @if let Some((c, _)) = &one {
            h2 { (c.name) " · badge " (c.badge) " · unit " (c.unit) }
            (custody_table(c))
        }
        h2 { "Who holds something now" }
        table #holders { thead { tr { th { "Badge" } th { "Name" } th.n { "Lines" } } }
            tbody { @for (b, n, k) in &holders { tr { td { a href=(format!("/custody?badge={b}")) { (b) } } td { (n) } td.n { (k) } } } } }
    };
    Ok(page("Custody", Some(&p), "Custody", body).into_response())
}

async fn transfers(State(st): State<AppState>, WebUser(p): WebUser) -> WebResult {
    let pp = p.clone();
    let list = st.site.call(move |site| api::transfers_for(site.state(), &pp, false)).await?;
    let body = html! {
        table #transfers {
            thead { tr { th { "Transfer" } th { "From" } th { "To" } th { "Dispatched" } th { "Document" } th { "Lines" } } }
            tbody { @for t in &list { tr { td { (t.transfer) } td { (t.from_unit) } td { (t.to_unit) } td { (t.dispatched_at) } td { (t.document.as_deref().unwrap_or("")) } td { (t.lines.join(", ")) } } } }
        }
        @if list.is_empty() { p.hint { "Nothing in transit." } }
    };
    Ok(page("Transfers in transit", Some(&p), "Transfers", body).into_response())
}

// ---- counts -----------------------------------------------------------------------------

async fn counts(State(st): State<AppState>, WebUser(p): WebUser) -> WebResult {
    let pp = p.clone();
    let list = st.site.call(move |site| api::counts_for(site.state(), &pp)).await?;
    let locs = locations_in_scope(&st, &p).await?;
    let body = html! {
        form #count-start.card method="post" action="/counts/start" {
            (views::csrf(&p))
            label { "Location to count (and everything inside it)" input #count-location name="location" list="locations" required autocomplete="off"; }
            datalist #locations { @for (l, name) in &locs { option value=(l) { (name) } } }
            label.inline { input type="checkbox" name="blind" value="1"; " Blind (book figures hidden until closed)" }
            label.inline { input type="checkbox" name="cycle" value="1"; " Cycle count (only the places recorded)" }
            button #start type="submit" { "Start count" }
        }
        table #counts {
            thead { tr { th { "Count" } th { "Root" } th { "Kind" } th { "Counter" } th { "Started" } th { "State" } th.n { "Discrepancies" } } }
            tbody { @for c in list.iter().rev() { tr {
                td { a href=(format!("/counts/{}", c.count)) { (c.count) } } td { (c.root) } td { (c.kind) @if c.blind { " (blind)" } }
                td { (c.counter) } td { (c.started_at) } td { (if c.closed { "closed" } else { "open" }) } td.n { (c.discrepancies.len()) }
            } } }
        }
    };
    Ok(page("Counts", Some(&p), "Counts", body).into_response())
}

#[derive(Deserialize)]
struct CountStartForm {
    csrf: String,
    location: String,
    blind: Option<String>,
    cycle: Option<String>,
}

async fn count_start(State(st): State<AppState>, WebUser(p): WebUser, ClientIp(ip): ClientIp, Form(f): Form<CountStartForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let kind = if f.cycle.is_some() { CountKind::Cycle } else { CountKind::Full };
    let c = Command::StartCount { root: id(LocationId::parse(&f.location))?, kind, blind: f.blind.is_some() };
    let o = perform(&st, &p, &ip, None, None, c).await?;
    let count = o.entries.iter().find_map(|e| match &e.event {
        Event::CountStarted { count, .. } => Some(count.to_string()),
        _ => None,
    });
    Ok(Redirect::to(&format!("/counts/{}", count.unwrap_or_default())).into_response())
}

#[derive(Deserialize)]
struct MsgQ {
    msg: Option<String>,
    err: Option<String>,
}

async fn count_page(State(st): State<AppState>, WebUser(p): WebUser, Path(cid): Path<String>, Query(m): Query<MsgQ>) -> WebResult {
    let c = id(CountId::parse(&cid))?;
    let pp = p.clone();
    let (view, visible, locs) = st
        .site
        .call(move |site| -> Result<_, ApiError> {
            let s = site.state();
            let v = query::count_view(s, &c)?;
            let root = s.counts.get(&c).map(|x| x.root.clone());
            let unit = root.as_ref().and_then(|r| s.locations.get(r)).map(|l| l.unit.clone());
            let locs: Vec<String> = root.map(|r| s.location_subtree(&r).into_iter().map(|l| l.to_string()).collect()).unwrap_or_default();
            Ok((v, sees(s, &pp, unit.as_ref()), locs))
        })
        .await??;
    if !visible {
        return Err(WebError(ApiError::forbidden(
            "permission.subtree",
            format!("refused: {} (rule permission.subtree)", scope::outside(&p, &format!("count {cid}"))),
        )));
    }
    let body = html! {
        @if let Some(x) = &m.msg { (views::ok(x)) }
        @if let Some(x) = &m.err { div.msg.err #refusal role="alert" { (x) } }
        p.lead { (view.kind) " count of " strong { (view.root) } @if view.blind { " (blind)" } " by badge " (view.counter) ", started " (view.started_at) " — "
            strong #count-state { (if view.closed { "closed" } else { "open" }) } }
        @if !view.closed {
            form #count-record.card method="post" action=(format!("/counts/{cid}/record")) {
                (views::csrf(&p))
                label { "Location counted" select #record-location name="location" { @for l in &locs { option value=(l) { (l) } } } }
                label { "Scan an item (serial, or LOT:QTY), then Enter" input #scan autocomplete="off" data-target="items"; }
                label { "Items seen, one per line" textarea #items name="items" rows="5" {} }
                button #record type="submit" { "Record" }
            }
            form #count-close method="post" action=(format!("/counts/{cid}/close")) {
                (views::csrf(&p))
                button #close type="submit" { "Close the count and reconcile" }
            }
        }
        h2 { "Recorded" }
        ul #recorded { @for r in &view.recorded { li { (r) } } }
        @if let Some(book) = &view.book { h2 { "Books" } ul #book { @for b in book { li { (b) } } } }
        @if view.closed {
            h2 { "Reconciliation" }
            @if view.discrepancies.is_empty() { p #reconciled { "No discrepancies: the books match the count." } }
            @for d in &view.discrepancies {
                div.card.discrepancy {
                    h3 { (d.id) ": " (d.kind) }
                    p { (d.description) }
                    p.hint { "If approved: " (d.proposed_adjustment) }
                    @if let Some(r) = &d.resolution { p.resolved { "Resolved: " (r) } } @else {
                        form.resolve method="post" action=(format!("/discrepancies/{}/resolve?count={cid}", d.id)) {
                            (views::csrf(&p))
                            label { "Note" input name="note" required; }
                            label.inline { input type="radio" name="decision" value="approve" checked; " Approve (adjust the books)" }
                            label.inline { input type="radio" name="decision" value="explain"; " Explain (no change)" }
                            label { "Item type (only for a find the catalog does not know)" input name="item_type"; }
                            label { "Witness badge" input name="witness_badge" autocomplete="off"; }
                            label { "Witness PIN" input type="password" name="witness_pin" autocomplete="off"; }
                            button type="submit" { "Resolve" }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&format!("Count {cid}"), Some(&p), "Counts", body).into_response())
}

#[derive(Deserialize)]
struct RecordForm {
    csrf: String,
    location: String,
    items: String,
}

async fn count_record(
    State(st): State<AppState>,
    WebUser(p): WebUser,
    ClientIp(ip): ClientIp,
    Path(cid): Path<String>,
    Form(f): Form<RecordForm>,
) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let list = items(&lines(&f.items))?;
    let (serials, lots) = api::split_items(list);
    let c = Command::RecordCount { count: id(CountId::parse(&cid))?, location: id(LocationId::parse(&f.location))?, serials, lots };
    Ok(back_to_count(&cid, perform(&st, &p, &ip, None, None, c).await.map(|_| format!("Recorded at {}.", f.location))))
}

fn back_to_count(cid: &str, r: Result<String, ApiError>) -> Response {
    let q = match r {
        Ok(m) => format!("msg={}", urlencode(&m)),
        Err(e) => format!("err={}", urlencode(&e.message)),
    };
    Redirect::to(&format!("/counts/{}?{q}", urlencode(cid))).into_response()
}

async fn count_close(
    State(st): State<AppState>,
    WebUser(p): WebUser,
    ClientIp(ip): ClientIp,
    Path(cid): Path<String>,
    Form(f): Form<CsrfForm>,
) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let c = Command::CloseCount { count: id(CountId::parse(&cid))? };
    Ok(back_to_count(&cid, perform(&st, &p, &ip, None, None, c).await.map(|_| "Count closed and reconciled.".to_string())))
}

#[derive(Deserialize)]
struct ResolveForm {
    csrf: String,
    note: String,
    decision: String,
    item_type: Option<String>,
    witness_badge: Option<String>,
    witness_pin: Option<String>,
}

#[derive(Deserialize)]
struct CountQ {
    count: Option<String>,
}

async fn resolve_discrepancy(
    State(st): State<AppState>,
    WebUser(p): WebUser,
    ClientIp(ip): ClientIp,
    Path(did): Path<String>,
    Query(q): Query<CountQ>,
    Form(f): Form<ResolveForm>,
) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let c = Command::ResolveDiscrepancy {
        discrepancy: id(DiscrepancyId::parse(&did))?,
        approve: f.decision == "approve",
        note: f.note.clone(),
        item_type: opt(&f.item_type, ItemTypeId::parse)?,
    };
    let witness = f
        .witness_badge
        .clone()
        .filter(|w| !w.trim().is_empty())
        .map(|badge| WitnessIn { badge, pin: f.witness_pin.clone().unwrap_or_default() });
    let r = perform(&st, &p, &ip, witness, None, c).await.map(|_| format!("Discrepancy {did} resolved."));
    Ok(back_to_count(q.count.as_deref().unwrap_or(""), r))
}

// ---- log and checkpoints ----------------------------------------------------------------

#[derive(Deserialize)]
struct LogQ {
    limit: Option<usize>,
}

async fn log(State(st): State<AppState>, WebUser(p): WebUser, Query(q): Query<LogQ>, Query(m): Query<MsgQ>) -> WebResult {
    let limit = q.limit.unwrap_or(200).min(api::LOG_LIMIT_MAX);
    let pp = p.clone();
    let (mut lines, ls) =
        st.site.call(move |site| -> Result<_, ApiError> { Ok((api::log_for(site, &pp, limit)?, ledger_status(site))) }).await??;
    lines.reverse();
    let body = html! {
        @if let Some(x) = &m.msg { (views::ok(x)) }
        div.card #checkpoint-status {
            p { "Ledger size " strong { (ls.size) } "; latest signed checkpoint covers " strong { (ls.checkpoint_size) } " entries"
                @if let Some(a) = &ls.checkpoint_age { " (its last entry " (a) " ago)" } "." }
            @if ls.checkpoint_size < ls.size { p.warn { (ls.size - ls.checkpoint_size) " newer entries are durable but not yet covered by a signed checkpoint." } }
            @else { p.good { "Every entry is covered by a signed checkpoint." } }
            form method="post" action="/log/checkpoint" { (views::csrf(&p)) button type="submit" { "Sign a checkpoint now" } }
        }
        p.hint { "Newest first. Denied attempts are highlighted. " @if !p.at_root { "Entries by staff of your subtree only." } }
        (log_table(&lines))
    };
    Ok(page("Event log", Some(&p), "Log", body).into_response())
}

async fn log_checkpoint(State(st): State<AppState>, WebUser(p): WebUser, Form(f): Form<CsrfForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let size = st.site.call(|site| site.checkpoint().map(|_| site.size())).await??;
    Ok(Redirect::to(&format!("/log?msg={}", urlencode(&format!("Checkpoint signed at size {size}.")))).into_response())
}

// ---- labels -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct LabelQ {
    location: Option<String>,
}

struct Label {
    code: String,
    title: String,
    detail: String,
}

async fn labels(State(st): State<AppState>, WebUser(p): WebUser, Query(q): Query<LabelQ>) -> WebResult {
    let pp = p.clone();
    let loc = opt(&q.location, LocationId::parse)?;
    let (all_locs, labels) = st
        .site
        .call(move |site| -> Result<_, ApiError> {
            let s = site.state();
            let all: Vec<(String, String)> = s
                .locations
                .iter()
                .filter(|(_, l)| s.unit_within(&l.unit, &pp.unit))
                .map(|(k, l)| (k.to_string(), l.name.clone()))
                .collect();
            let Some(root) = loc else { return Ok((all, vec![])) };
            let l = s.locations.get(&root).ok_or_else(|| ApiError::not_found("location", root.as_str()))?;
            if !s.unit_within(&l.unit, &pp.unit) {
                return Err(ApiError::forbidden(
                    "permission.subtree",
                    format!("refused: {} (rule permission.subtree)", scope::outside(&pp, &format!("location {root}"))),
                ));
            }
            let mut out = vec![];
            for id in s.location_subtree(&root) {
                let Some(x) = s.locations.get(&id) else { continue };
                out.push(Label { code: id.to_string(), title: x.name.clone(), detail: format!("{} · unit {}", x.kind, x.unit) });
                let acc = Account::Location(id.clone());
                for (serial, si) in s.serials.iter().filter(|(_, si)| si.account == acc) {
                    out.push(Label { code: serial.to_string(), title: si.item_type.to_string(), detail: format!("serial · home {id}") });
                }
                for ((_, lot), b) in s.balances.iter().filter(|((a, _), b)| *a == acc && b.quantity.is_positive()) {
                    let t = s.lots.get(lot).map(|x| x.item_type.to_string()).unwrap_or_default();
                    out.push(Label { code: lot.to_string(), title: t, detail: format!("lot · {} at {id}", b.quantity) });
                }
            }
            out.truncate(500);
            Ok((all, out))
        })
        .await??;
    let body = html! {
        form.filters.noprint method="get" action="/labels" {
            label { "Location (with everything in it)" input name="location" list="locations" value=(q.location.as_deref().unwrap_or("")); }
            datalist #locations { @for (l, name) in &all_locs { option value=(l) { (name) } } }
            button type="submit" { "Make labels" }
            button.print type="button" { "Print" }
        }
        div.labels { @for l in &labels { (label_card(l)) } }
        @if labels.is_empty() { p.hint { "Choose a location: its label, and those of every serial item and lot in it, appear here ready to print." } }
    };
    Ok(page("Labels", Some(&p), "Labels", body).into_response())
}

fn label_card(l: &Label) -> Markup {
    html! {
        div.label {
            @match crate::labels::qr_svg(&l.code) { Ok(svg) => (views::svg(&svg)), Err(e) => (views::err(&e)) }
            div.code { (l.code) }
            div { (l.title) }
            div.hint { (l.detail) }
        }
    }
}

async fn label_item(State(st): State<AppState>, WebUser(p): WebUser, Path(what): Path<String>) -> WebResult {
    let (pp, w) = (p.clone(), what.clone());
    let label = st
        .site
        .call(move |site| {
            let s = site.state();
            if !api::item_visible(s, &pp, &w) {
                return None;
            }
            if let Some(si) = Serial::parse(&w).ok().and_then(|x| s.serials.get(&x)) {
                return Some(Label { code: w.clone(), title: si.item_type.to_string(), detail: "serial".into() });
            }
            LotNo::parse(&w).ok().and_then(|x| s.lots.get(&x)).map(|l| Label {
                code: w.clone(),
                title: l.item_type.to_string(),
                detail: format!("lot{}", l.expires.map(|e| format!(" · expires {e}")).unwrap_or_default()),
            })
        })
        .await?;
    let Some(label) = label else { return Err(WebError(ApiError::not_found("serial or lot in your subtree", &what))) };
    let body = html! { div.noprint { button.print type="button" { "Print" } } div.labels { (label_card(&label)) } };
    Ok(page(&format!("Label {what}"), Some(&p), "Labels", body).into_response())
}

async fn not_found(WebUser(p): WebUser) -> Response {
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
        .route("/items/{what}", get(item))
        .route("/custody", get(custody))
        .route("/transfers", get(transfers))
        .route("/counts", get(counts))
        .route("/counts/start", post(count_start))
        .route("/counts/{id}", get(count_page))
        .route("/counts/{id}/record", post(count_record))
        .route("/counts/{id}/close", post(count_close))
        .route("/discrepancies/{id}/resolve", post(resolve_discrepancy))
        .route("/log", get(log))
        .route("/log/checkpoint", post(log_checkpoint))
        .route("/labels", get(labels))
        .route("/labels/item/{what}", get(label_item))
        .fallback(not_found)
}
