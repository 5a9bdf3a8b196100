//! Explosives safety: the JSON API and the web pages for magazines (NEQ against every limit), lot
//! life, storage conditions (with the SVG chart served on its own route, so the CSP stays strict)
//! and the daily summary of magazine transactions (JSON and CSV). Every read is limited to the
//! principal's subtree; a read outside it is recorded and refused (403 `permission.subtree`).

use crate::api::{deny_read, id, opt};
use crate::auth::{ApiUser, Principal};
use crate::error::{ApiError, ErrorBody};
use crate::views::page;
use crate::web::{WebError, WebUser};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use maud::{html, Markup};
use qm_app::conditions::{self, ConditionsView};
use qm_app::magazines::{self, Dsmt, LotFilter, LotView, MagazineView, QdLine};
use qm_core::safety::fmt_kg;
use qm_core::*;
use serde::Deserialize;
use time::{Date, OffsetDateTime};
use utoipa::IntoParams;

/// Most readings one conditions request returns (and charts).
pub const READINGS_MAX: usize = 100_000;
/// Default window of the lots page: expiring within this many days.
pub const EXPIRING_DAYS: i64 = 90;
/// Default range of the conditions page, in days back from today.
pub const CONDITIONS_DAYS: i64 = 7;

// ---- scope ------------------------------------------------------------------------------

/// A read's result: `Err(what)` names something outside the principal's subtree.
type Scoped<T> = Result<Result<T, String>, ApiError>;

/// Records and refuses a read outside the subtree; passes anything else through.
async fn scoped<T>(st: &AppState, p: &Principal, r: Scoped<T>) -> Result<T, ApiError> {
    match r? {
        Ok(v) => Ok(v),
        Err(what) => Err(deny_read(st, p, &what).await),
    }
}

/// The unit a read covers: the one asked for (inside the principal's subtree) or the principal's own.
fn unit_in_scope(s: &qm_core::State, p: &Principal, unit: &Option<String>) -> Scoped<UnitId> {
    let Some(u) = opt(unit, UnitId::parse)? else { return Ok(Ok(p.unit.clone())) };
    if !s.units.contains_key(&u) {
        return Err(ApiError::not_found("unit", u.as_str()));
    }
    Ok(if s.unit_within(&u, &p.unit) { Ok(u) } else { Err(format!("unit {u}")) })
}

/// A location the principal may see (any kind, or a magazine or depot when `magazine`).
fn location_in_scope(s: &qm_core::State, p: &Principal, l: &LocationId, magazine: bool) -> Scoped<()> {
    let loc = s.locations.get(l).ok_or_else(|| ApiError::not_found("location", l.as_str()))?;
    if !s.unit_within(&loc.unit, &p.unit) {
        return Ok(Err(format!("location {l}")));
    }
    if magazine && !matches!(loc.kind, LocationKind::Magazine | LocationKind::Depot) {
        return Err(ApiError::usage(format!("{l} is a {}; the daily summary is kept per magazine or depot", loc.kind)));
    }
    Ok(Ok(()))
}

/// Magazines and depots in the principal's subtree (or a unit of it).
fn magazines_for(s: &qm_core::State, p: &Principal, unit: &Option<String>) -> Scoped<Vec<MagazineView>> {
    Ok(unit_in_scope(s, p, unit)?.map(|u| magazines::magazines(s, Some(&u))))
}

fn lot_filter(filter: &Option<String>, days: Option<i64>) -> Result<LotFilter, ApiError> {
    match filter.as_deref().map(str::trim).filter(|f| !f.is_empty()).unwrap_or("expiring") {
        "expiring" => match days.unwrap_or(EXPIRING_DAYS) {
            d @ 0..=36_500 => Ok(LotFilter::Expiring(d)),
            d => Err(ApiError::usage(format!("days {d}: give 0 to 36500"))),
        },
        "expired" => Ok(LotFilter::Expired),
        "suspended" => Ok(LotFilter::Suspended),
        "all" => Ok(LotFilter::All),
        other => Err(ApiError::usage(format!("filter {other:?}: use expiring, expired, suspended or all"))),
    }
}

/// Lots held in the principal's subtree (or a unit of it), by life or status.
fn lots_for(s: &qm_core::State, p: &Principal, q: &LotsQuery) -> Scoped<Vec<LotView>> {
    let f = lot_filter(&q.filter, q.days)?;
    Ok(unit_in_scope(s, p, &q.unit)?.map(|u| {
        let mut v = magazines::lots(s, f, magazines::today(), Some(&u));
        // "all" lists every lot; below HQ only those held in the subtree.
        if !p.at_root {
            v.retain(|l| !l.held.is_empty());
        }
        v
    }))
}

fn day(s: &str) -> Result<Date, ApiError> {
    qm_app::import::parse_date(s).map_err(ApiError::usage)
}

fn day_or(v: &Option<String>, default: Date) -> Result<Date, ApiError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => day(s),
        None => Ok(default),
    }
}

/// The range of a conditions read: from the start of `since` to the end of `until` (UTC days).
fn range(q: &RangeQuery) -> Result<(Date, Date, OffsetDateTime, OffsetDateTime), ApiError> {
    let today = magazines::today();
    let until = day_or(&q.until, today)?;
    let since = day_or(&q.since, until - time::Duration::days(CONDITIONS_DAYS))?;
    if since > until {
        return Err(ApiError::usage(format!("since {since} is after until {until}")));
    }
    Ok((since, until, since.midnight().assume_utc(), until.midnight().assume_utc() + time::Duration::days(1)))
}

/// A place's readings and excursions in a range, and the excursion spans for the chart.
type ConditionsRead = (ConditionsView, Vec<(OffsetDateTime, Option<OffsetDateTime>)>);

async fn conditions_for(st: &AppState, p: &Principal, loc: &str, q: &RangeQuery) -> Result<ConditionsRead, ApiError> {
    let l = id(LocationId::parse(loc))?;
    let (_, _, since, until) = range(q)?;
    let pp = p.clone();
    let r = st
        .site
        .call(move |site| -> Scoped<ConditionsRead> {
            if let Err(what) = location_in_scope(site.state(), &pp, &l, false)? {
                return Ok(Err(what));
            }
            let view = conditions::conditions(site, &l, since, until, READINGS_MAX)?;
            let spans = site.state().excursions.values().filter(|x| x.location == l).map(|x| (x.started_at, x.ended_at)).collect();
            Ok(Ok((view, spans)))
        })
        .await?;
    scoped(st, p, r).await
}

async fn dsmt_for(st: &AppState, p: &Principal, mag: &str, date: &Option<String>) -> Result<Dsmt, ApiError> {
    let m = id(LocationId::parse(mag))?;
    let d = day_or(date, magazines::today())?;
    let pp = p.clone();
    let r = st
        .site
        .call(move |site| -> Scoped<Dsmt> {
            if let Err(what) = location_in_scope(site.state(), &pp, &m, true)? {
                return Ok(Err(what));
            }
            Ok(Ok(magazines::dsmt(site, &m, d)?))
        })
        .await?;
    scoped(st, p, r).await
}

/// The locations (or only the magazines and depots) in the principal's subtree: id and name.
async fn places(st: &AppState, p: &Principal, magazines_only: bool) -> Result<Vec<(String, String)>, ApiError> {
    let unit = p.unit.clone();
    Ok(st
        .site
        .call(move |site| {
            let s = site.state();
            s.locations
                .iter()
                .filter(|(_, l)| s.unit_within(&l.unit, &unit))
                .filter(|(_, l)| !magazines_only || matches!(l.kind, LocationKind::Magazine | LocationKind::Depot))
                .map(|(k, l)| (k.to_string(), l.name.clone()))
                .collect()
        })
        .await?)
}

/// How many magazines and depots in `unit`'s subtree hold 90 % or more of a limit (the dashboard's column).
pub fn near_limit(s: &qm_core::State, unit: &UnitId) -> usize {
    magazines::magazines(s, Some(unit)).iter().filter(|m| m.warning.is_some()).count()
}

// ---- the API ----------------------------------------------------------------------------

#[derive(Deserialize, IntoParams, Debug, Default)]
pub struct UnitQuery {
    /// A unit inside your subtree (default: your own unit).
    pub unit: Option<String>,
}

#[derive(Deserialize, IntoParams, Debug, Default)]
pub struct LotsQuery {
    /// `expiring` (default), `expired`, `suspended` or `all`.
    pub filter: Option<String>,
    /// For `expiring`: within this many days (default 90), or already past.
    pub days: Option<i64>,
    /// A unit inside your subtree (default: your own unit).
    pub unit: Option<String>,
}

#[derive(Deserialize, IntoParams, Debug, Default)]
pub struct RangeQuery {
    /// First day, `YYYY-MM-DD` (UTC; default: seven days before `until`).
    pub since: Option<String>,
    /// Last day, `YYYY-MM-DD`, included (UTC; default: today).
    pub until: Option<String>,
}

#[derive(Deserialize, IntoParams, Debug, Default)]
pub struct DateQuery {
    /// The day, `YYYY-MM-DD` (UTC; default: today).
    pub date: Option<String>,
}

#[derive(Deserialize, IntoParams, Debug)]
pub struct QdQuery {
    /// Hazard division, e.g. `1.1`.
    pub hd: String,
    /// Required distances for this NEQ (kg) to every kind of exposed site.
    pub neq_kg: Option<f64>,
    /// Or: the largest NEQ these distances allow, `KIND=METRES` separated by commas
    /// (e.g. `inhabited_building=180,public_traffic_route=100`).
    pub distances: Option<String>,
}

/// Magazines and depots in your subtree: NEQ by hazard division against the licence and every
/// quantity-distance limit, headroom, compatibility groups, and a warning within 10 % of a limit.
#[utoipa::path(get, path = "/api/magazines", tag = "safety", params(UnitQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_magazines(State(st): State<AppState>, ApiUser(p): ApiUser, Query(q): Query<UnitQuery>) -> Result<Response, ApiError> {
    let pp = p.clone();
    let r = st.site.call(move |site| magazines_for(site.state(), &pp, &q.unit)).await?;
    Ok(Json(scoped(&st, &p, r).await?).into_response())
}

/// Lots expiring (default: within 90 days, or past), expired, suspended (or all), with where the
/// stock is held inside your subtree.
#[utoipa::path(get, path = "/api/lots", tag = "safety", params(LotsQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_lots(State(st): State<AppState>, ApiUser(p): ApiUser, Query(q): Query<LotsQuery>) -> Result<Response, ApiError> {
    let pp = p.clone();
    let r = st.site.call(move |site| lots_for(site.state(), &pp, &q)).await?;
    Ok(Json(scoped(&st, &p, r).await?).into_response())
}

/// Storage conditions at a place: its readings in a range, its allowed band and the excursions
/// (start, end, peak, lots exposed) that touch the range.
#[utoipa::path(get, path = "/api/locations/{id}/conditions", tag = "safety", params(("id" = String, Path), RangeQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_conditions(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(loc): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let (view, _) = conditions_for(&st, &p, &loc, &q).await?;
    Ok(Json(view).into_response())
}

/// The temperature chart of a place (SVG): the allowed band shaded, excursions marked. 422 when
/// there is no temperature reading in the range.
#[utoipa::path(get, path = "/api/locations/{id}/conditions.svg", tag = "safety", params(("id" = String, Path), RangeQuery),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = "4XX", body = ErrorBody)))]
pub async fn api_conditions_svg(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(loc): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let (view, spans) = conditions_for(&st, &p, &loc, &q).await?;
    let svg = conditions::chart_svg(&view, &spans)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg).into_response())
}

/// The daily summary of magazine transactions (27 CFR 555.127) of a magazine or depot for one day:
/// per item type and lot, opening, received, removed (with who) and closing.
#[utoipa::path(get, path = "/api/magazines/{id}/dsmt", tag = "safety", params(("id" = String, Path), DateQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_dsmt(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(mag): Path<String>,
    Query(q): Query<DateQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(dsmt_for(&st, &p, &mag, &q.date).await?).into_response())
}

/// The daily summary as CSV (one row per item type and lot, with a header line).
#[utoipa::path(get, path = "/api/magazines/{id}/dsmt.csv", tag = "safety", params(("id" = String, Path), DateQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = "4XX", body = ErrorBody)))]
pub async fn api_dsmt_csv(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(mag): Path<String>,
    Query(q): Query<DateQuery>,
) -> Result<Response, ApiError> {
    let d = dsmt_for(&st, &p, &mag, &q.date).await?;
    let name = format!("attachment; filename=\"dsmt-{}-{}.csv\"", d.magazine, d.date);
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, name)], magazines::dsmt_csv(&d))
        .into_response())
}

/// Quantity-distance: the distances a hazard division and NEQ require to every kind of exposed
/// site (`neq_kg`), or the largest NEQ the given distances allow (`distances`). Site tables only.
#[utoipa::path(get, path = "/api/qd", tag = "safety", params(QdQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_qd(State(st): State<AppState>, ApiUser(_p): ApiUser, Query(q): Query<QdQuery>) -> Result<Response, ApiError> {
    let distances = match &q.distances {
        Some(list) => Some(
            list.split(',')
                .filter(|x| !x.trim().is_empty())
                .map(|x| {
                    let (k, m) = x.split_once('=').ok_or_else(|| ApiError::usage(format!("distance {x:?}: write KIND=METRES")))?;
                    let m: f64 = m.trim().parse().map_err(|_| ApiError::usage(format!("distance {x:?}: {m:?} is not a number")))?;
                    Ok((k.trim().to_string(), m))
                })
                .collect::<Result<Vec<_>, ApiError>>()?,
        ),
        None => None,
    };
    let (hd, neq) = (q.hd.trim().to_string(), q.neq_kg);
    let lines = st
        .site
        .call(move |site| -> Result<Vec<QdLine>, ApiError> {
            let tables = &site.state().safety.0;
            match (neq, distances) {
                (Some(n), None) => Ok(magazines::qd_distances(tables, &hd, n)?),
                (None, Some(d)) => Ok(magazines::qd_max_neq(tables, &hd, &d)?),
                _ => Err(ApiError::usage("give either neq_kg or distances")),
            }
        })
        .await??;
    Ok(Json(lines).into_response())
}

// ---- the pages --------------------------------------------------------------------------

type WebResult = Result<Response, WebError>;

fn pct(v: f64, of: f64) -> String {
    if of > 0.0 {
        format!("{:.0} %", 100.0 * v / of)
    } else {
        "—".into()
    }
}

fn magazine_row(m: &MagazineView) -> Markup {
    html! {
        tr.(if m.warning.is_some() { "near" } else { "" }) {
            td { strong { (m.location) } br; span.hint { (m.kind) " · unit " (m.unit) } }
            td {
                @if m.neq_kg_by_division.is_empty() { span.hint { "empty" } }
                @for (hd, kg) in &m.neq_kg_by_division { div { "HD " (hd) ": " (fmt_kg(*kg)) " kg" } }
                @if let Some(g) = &m.governing_division { div.hint { "governing HD " (g) ", NEQ " (fmt_kg(m.neq_kg)) " kg" } }
            }
            td { @if m.compatibility_groups.is_empty() { "—" } @else { (m.compatibility_groups.join(", ")) } }
            td.limits {
                @if m.limits.is_empty() { span.hint { "no limit recorded" } }
                @for l in &m.limits {
                    div.limit {
                        div.what { (l.what) }
                        meter min="0" max=(l.neq_kg) low=(0.75 * l.neq_kg) high=(0.9 * l.neq_kg) optimum="0" value=(m.neq_kg.min(l.neq_kg)) {
                            (fmt_kg(m.neq_kg)) " of " (fmt_kg(l.neq_kg)) " kg"
                        }
                        span.fig { (fmt_kg(m.neq_kg)) " / " (fmt_kg(l.neq_kg)) " kg (" (pct(m.neq_kg, l.neq_kg)) ")" }
                    }
                }
            }
            td.n { @match m.headroom_kg { Some(h) => { (fmt_kg(h)) " kg" }, None => "—" } }
            td { @if let Some(w) = &m.warning { div.msg.warn.tight role="alert" { "⚠ " (w) } } @else { span.good { "ok" } } }
        }
    }
}

#[derive(Deserialize, Default)]
struct MagazinesPageQ {
    unit: Option<String>,
}

async fn magazines_page(State(st): State<AppState>, WebUser(p): WebUser, Query(q): Query<MagazinesPageQ>) -> WebResult {
    let (pp, unit) = (p.clone(), q.unit.clone());
    let r = st.site.call(move |site| magazines_for(site.state(), &pp, &unit)).await?;
    let list = scoped(&st, &p, r).await?;
    let near = list.iter().filter(|m| m.warning.is_some()).count();
    let body = html! {
        form.filters method="get" action="/magazines" {
            label { "Unit (with its subtree)" input name="unit" value=(q.unit.as_deref().unwrap_or("")) placeholder=(p.unit); }
            button type="submit" { "Show" }
        }
        @if near > 0 {
            div.msg.warn #near-limit role="alert" { strong { (near) } " magazine(s) within 10 % of a limit: "
                @for (i, m) in list.iter().filter(|m| m.warning.is_some()).enumerate() { @if i > 0 { ", " } (m.location) } }
        }
        @if list.is_empty() { p.hint { "No magazine or depot in this subtree." } } @else {
            table #magazines {
                thead { tr { th { "Magazine" } th { "NEQ by hazard division" } th { "Groups" } th { "Against each limit" } th.n { "Headroom" } th { "Warning" } } }
                tbody { @for m in &list { (magazine_row(m)) } }
            }
        }
        p.hint { "NEQ is aggregated with the mixed-division rule of the site's tables; each quantity-distance limit is the largest NEQ the \
                  governing division's law allows at the recorded distance. Headroom is the smallest limit minus what is held. \
                  See also " a href="/lots" { "lots" } ", " a href="/conditions" { "storage conditions" } " and the " a href="/dsmt" { "daily summary" } "." }
    };
    Ok(page("Magazines", Some(&p), "Magazines", body).into_response())
}

async fn lots_page(State(st): State<AppState>, WebUser(p): WebUser, Query(q): Query<LotsQuery>) -> WebResult {
    let pp = p.clone();
    let qq = LotsQuery { filter: q.filter.clone(), days: q.days, unit: q.unit.clone() };
    let r = st.site.call(move |site| lots_for(site.state(), &pp, &qq)).await?;
    let list = scoped(&st, &p, r).await?;
    let filter = q.filter.as_deref().filter(|f| !f.is_empty()).unwrap_or("expiring");
    let days = q.days.unwrap_or(EXPIRING_DAYS);
    let body = html! {
        form.filters method="get" action="/lots" {
            label { "Show" select #lot-filter name="filter" {
                @for (v, l) in [("expiring", "expiring (or past)"), ("expired", "expired"), ("suspended", "suspended"), ("all", "all lots")] {
                    option value=(v) selected[v == filter] { (l) }
                } } }
            label { "Within (days)" input type="number" name="days" min="0" max="36500" value=(days); }
            label { "Unit (with its subtree)" input name="unit" value=(q.unit.as_deref().unwrap_or("")) placeholder=(p.unit); }
            button type="submit" { "Show" }
        }
        @if list.is_empty() { p.hint #no-lots { "No lot matches." } } @else {
            table #lots {
                thead { tr { th { "Lot" } th { "Item type" } th { "Expires" } th.n { "Days left" } th { "Status" } th { "Held (account · unit · quantity · status there)" } } }
                tbody {
                    @for l in &list {
                        tr {
                            td { strong { a href=(format!("/items/{}", l.lot)) { (l.lot) } } }
                            td { (l.item_type) }
                            td { @match l.expires { Some(e) => (e), None => "—" } }
                            td.n.(match l.days_left { Some(d) if d < 0 => "bad", Some(d) if d <= 30 => "soon", _ => "" }) {
                                @match l.days_left { Some(d) if d < 0 => { "expired " (-d) " d ago" }, Some(d) => (d), None => "—" }
                            }
                            td { (l.status) @for d in &l.decisions { div.hint { (d) } } }
                            td { ul.plain { @for h in &l.held {
                                li { (h.account) " · " (h.unit.as_deref().unwrap_or("—")) " · " strong { (h.quantity) } " · "
                                    span.(if h.status.starts_with("serviceable") { "good" } else { "warn" }) { (h.status) } }
                            } } }
                        }
                    }
                }
            }
        }
        p.hint { "A lot past its expiry (or next-inspection) date cannot be issued; suspended stock is neither issued nor dispatched." }
    };
    Ok(page("Lots", Some(&p), "Lots", body).into_response())
}

#[derive(Deserialize, Default)]
struct ConditionsPageQ {
    location: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn conditions_page(State(st): State<AppState>, WebUser(p): WebUser, Query(q): Query<ConditionsPageQ>) -> WebResult {
    let locs = places(&st, &p, false).await?;
    let rq = RangeQuery { since: q.since.clone(), until: q.until.clone() };
    let (since, until, _, _) = range(&rq)?;
    let chosen = q.location.as_deref().map(str::trim).filter(|l| !l.is_empty()).map(String::from);
    let read = match &chosen {
        Some(l) => Some(conditions_for(&st, &p, l, &rq).await?),
        None => None,
    };
    let body = html! {
        form.filters method="get" action="/conditions" {
            label { "Location" select #cond-location name="location" {
                option value="" { "— choose —" }
                @for (l, name) in &locs { option value=(l) selected[chosen.as_deref() == Some(l.as_str())] { (l) " · " (name) } }
            } }
            label { "From" input type="date" name="since" value=(since); }
            label { "To (included)" input type="date" name="until" value=(until); }
            button #cond-show type="submit" { "Show" }
        }
        @if let Some((view, _)) = &read {
            @let b = &view.band;
            p.lead { "Allowed at " strong { (view.location) } ": " (b.temperature_c.min) "–" (b.temperature_c.max) " °C, "
                (b.humidity_pct.min) "–" (b.humidity_pct.max) " % RH; an excursion is " (b.excursion_minutes) " minutes out of band. "
                (view.readings.len()) " readings from " (since) " to " (until) " (UTC)." }
            @if view.readings.iter().any(|r| r.temperature_c.is_some()) {
                @let src = format!("/api/locations/{}/conditions.svg?since={since}&until={until}", urlencode(&view.location));
                figure.chart { img #cond-chart src=(src) width="900" height="420" alt=(format!("Temperature at {} from {since} to {until}, with the allowed band and excursions", view.location)); }
            } @else {
                p.hint #no-readings { "No temperature reading in this range." }
            }
            h2 { "Excursions" }
            @if view.excursions.is_empty() { p.good #no-excursions { "No excursion in this range." } } @else {
                table #excursions {
                    thead { tr { th { "Excursion" } th { "Measure" } th { "Start" } th { "End" } th.n { "Limit" } th.n { "Peak" } th { "Lots exposed" } } }
                    tbody { @for x in &view.excursions {
                        tr {
                            td { (x.id) }
                            td { (x.measure) " " (x.direction) }
                            td { (x.started_at) }
                            td { @match &x.ended_at { Some(e) => (e), None => span.warn { "still open" } } }
                            @let u = if x.measure == "temperature" { " °C" } else { " % RH" };
                            td.n { (x.limit) (u) }
                            td.n.bad { (x.peak) (u) }
                            td { @if x.lots_exposed.is_empty() { "—" } @else { (x.lots_exposed.join(", ")) } }
                        }
                    } }
                }
            }
        } @else {
            p.hint { "Choose a location: its temperature chart with the allowed band, and the excursions recorded there, appear here." }
        }
    };
    Ok(page("Storage conditions", Some(&p), "Conditions", body).into_response())
}

#[derive(Deserialize, Default)]
struct DsmtPageQ {
    magazine: Option<String>,
    date: Option<String>,
}

fn movements(v: &[magazines::DsmtMovement]) -> Markup {
    html! { @for m in v { div.hint { (m.at) " · " (m.quantity) " · " (m.kind) " · " (m.counterpart) " · by " (m.by)
    @if let Some(w) = &m.witness { " (witness " (w) ")" } @if let Some(d) = &m.document { " · " (d) } } } }
}

async fn dsmt_page(State(st): State<AppState>, WebUser(p): WebUser, Query(q): Query<DsmtPageQ>) -> WebResult {
    let mags = places(&st, &p, true).await?;
    let date = day_or(&q.date, magazines::today())?;
    let chosen = q.magazine.as_deref().map(str::trim).filter(|l| !l.is_empty()).map(String::from);
    let d = match &chosen {
        Some(m) => Some(dsmt_for(&st, &p, m, &Some(date.to_string())).await?),
        None => None,
    };
    let body = html! {
        form.filters method="get" action="/dsmt" {
            label { "Magazine" select #dsmt-magazine name="magazine" {
                option value="" { "— choose —" }
                @for (l, name) in &mags { option value=(l) selected[chosen.as_deref() == Some(l.as_str())] { (l) " · " (name) } }
            } }
            label { "Day (UTC)" input type="date" name="date" value=(date); }
            button type="submit" { "Show" }
        }
        @if let Some(d) = &d {
            @let base = format!("/api/magazines/{}/dsmt", urlencode(&d.magazine));
            p.lead { "Daily summary of magazine transactions for " strong { (d.magazine) } " on " strong { (d.date) } ". "
                a #dsmt-csv href=(format!("{base}.csv?date={}", d.date)) download { "CSV" } " · "
                a #dsmt-json href=(format!("{base}?date={}", d.date)) { "JSON" } }
            @if d.no_movement { p.hint { "No receipt or removal that day." } }
            @if d.lines.is_empty() { p.hint { "Nothing held and nothing moved." } } @else {
                table #dsmt {
                    thead { tr { th { "Item type" } th { "Lot" } th { "Unit" } th.n { "Opening" } th.n { "Received" } th.n { "Removed" } th.n { "Closing" } th { "Movements" } } }
                    tbody { @for l in &d.lines {
                        tr {
                            td { strong { (l.item_type) } br; span.hint { (l.item_name) } }
                            td { (l.lot.as_deref().unwrap_or("—")) }
                            td { (l.unit_of_measure) }
                            td.n { (l.opening) } td.n { (l.received) } td.n { (l.removed) } td.n { strong { (l.closing) } }
                            td { (movements(&l.receipts)) (movements(&l.removals)) }
                        }
                    } }
                }
            }
            p.hint #book-check { (d.book_check) }
        } @else {
            p.hint { "Choose a magazine or depot and a day: opening balance, receipts, removals (with who) and closing balance per item type and lot (27 CFR 555.127)." }
        }
    };
    Ok(page("Daily magazine summary", Some(&p), "Daily summary", body).into_response())
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/magazines", get(api_magazines))
        .route("/api/lots", get(api_lots))
        .route("/api/locations/{id}/conditions", get(api_conditions))
        .route("/api/locations/{id}/conditions.svg", get(api_conditions_svg))
        .route("/api/magazines/{id}/dsmt", get(api_dsmt))
        .route("/api/magazines/{id}/dsmt.csv", get(api_dsmt_csv))
        .route("/api/qd", get(api_qd))
        .route("/magazines", get(magazines_page))
        .route("/lots", get(lots_page))
        .route("/conditions", get(conditions_page))
        .route("/dsmt", get(dsmt_page))
}
