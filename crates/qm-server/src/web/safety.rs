//! Storage-safety pages: magazines, lots, storage conditions, the DSMT.

use crate::reads::safety::*;
use crate::views::page;
use crate::web::*;
use crate::AppState;
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use qm_app::magazines::{self, MagazineView};
use qm_core::safety::fmt_kg;
use serde::Deserialize;

pub(crate) fn pct(v: f64, of: f64) -> String {
    if of > 0.0 {
        format!("{:.0} %", 100.0 * v / of)
    } else {
        "—".into()
    }
}

pub(crate) fn magazine_row(m: &MagazineView) -> Markup {
    html! {
        tr.(if m.warning.is_some() { "near" } else { "" }) {
            td { strong { (m.location) } br; span.hint { (m.kind) " · unit " (m.unit) } }
            td {
                @if m.neq_kg_by_division.is_empty() { span.hint { "empty" } }
                @for (hd, kg) in &m.neq_kg_by_division { div { "HD " (hd) ": " (fmt_kg(*kg)) " kg" } }
                @if let Some(g) = &m.governing_division { div.hint { "governing HD " (g) ", NEQ " (fmt_kg(m.neq_kg)) " kg" } }
            }
            td { @if m.compatibility_groups.is_empty() { "—" } @else { (m.compatibility_groups.join(", ")) }
                @for f in &m.footnotes { div.hint.footnote { (f) } } }
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
pub(crate) struct MagazinesPageQ {
    pub(crate) unit: Option<String>,
}

pub(crate) async fn magazines_page(Visitor { st, p, .. }: Visitor, Query(q): Query<MagazinesPageQ>) -> WebResult {
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

pub(crate) async fn lots_page(Visitor { st, p, .. }: Visitor, Query(q): Query<LotsQuery>) -> WebResult {
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
pub(crate) struct ConditionsPageQ {
    pub(crate) location: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
}

pub(crate) async fn conditions_page(Visitor { st, p, .. }: Visitor, Query(q): Query<ConditionsPageQ>) -> WebResult {
    let locs = places(&st, &p, false).await?;
    let rq = RangeQuery { since: q.since.clone(), until: q.until.clone() };
    let (since, until, _, _) = range(&rq)?;
    let chosen = q.location.as_deref().map(str::trim).filter(|l| !l.is_empty()).map(String::from);
    let read = match &chosen {
        Some(l) => Some(conditions_for(&st, &p, l, &rq).await?),
        None => None,
    };
    let body = html! {
        (flash(&st, &p))
        form.filters method="get" action="/conditions" {
            label { "Location" select #cond-location name="location" {
                option value="" { "— choose —" }
                @for (l, name) in &locs { option value=(l) selected[chosen.as_deref() == Some(l.as_str())] { (l) " · " (name) } }
            } }
            label { "From" input type="date" name="since" value=(since); }
            label { "To (included)" input type="date" name="until" value=(until); }
            button #cond-show type="submit" { "Show" }
        }
        @if let (Some(l), true) = (&chosen, may(&p, qm_core::permissions::Op::Conditions)) {
            // For sites without sensors: the keeper reads the thermometer and hygrometer now.
            form #reading.card method="post" action="/conditions/readings" {
                (views::csrf(&p))
                input type="hidden" name="location" value=(l);
                label { "Temperature now (°C)" input #reading-temp name="temperature_c" inputmode="decimal" autocomplete="off"; }
                label { "Humidity now (% RH)" input #reading-hum name="humidity_pct" inputmode="decimal" autocomplete="off"; }
                button #reading-record type="submit" { "Record the reading" }
            }
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
pub(crate) struct DsmtPageQ {
    pub(crate) magazine: Option<String>,
    pub(crate) date: Option<String>,
}

pub(crate) fn movements(v: &[magazines::DsmtMovement]) -> Markup {
    html! { @for m in v { div.hint { (m.at) " · " (m.quantity) " · " (m.kind) " · " (m.counterpart) " · by " (m.by)
    @if let Some(w) = &m.witness { " (witness " (w) ")" } @if let Some(d) = &m.document { " · " (d) } } } }
}

pub(crate) async fn dsmt_page(Visitor { st, p, .. }: Visitor, Query(q): Query<DsmtPageQ>) -> WebResult {
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
        .route("/magazines", get(magazines_page))
        .route("/lots", get(lots_page))
        .route("/conditions", get(conditions_page))
        .route("/dsmt", get(dsmt_page))
        .route("/qd", get(qd_page))
        .route("/conditions/readings", axum::routing::post(reading_record))
}

#[derive(Deserialize)]
pub(crate) struct QdQ {
    hd: Option<String>,
    neq_kg: Option<String>,
}

/// The quantity-distance calculator: the distances a hazard division and NEQ require to every kind
/// of exposed site, from the site's safety tables (the same figures as `qm qd` and `/api/qd`).
pub(crate) async fn qd_page(Visitor { st, p, .. }: Visitor, Query(q): Query<QdQ>) -> WebResult {
    let hd = q.hd.clone().unwrap_or_else(|| "1.1".into());
    let neq = q.neq_kg.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse::<f64>());
    let (hd2, answer) = (hd.clone(), neq.clone());
    let lines = st
        .site
        .call(move |site| match answer {
            Some(Ok(n)) if n > 0.0 && n.is_finite() => magazines::qd_distances(&site.state().safety.0, hd2.trim(), n).map(Some),
            Some(_) => Err(qm_app::AppError::Usage("NEQ: give a positive number of kilograms".into())),
            None => Ok(None),
        })
        .await?;
    let body = html! {
        form #qd.card method="get" action="/qd" {
            label { "Hazard division" select #qd-hd name="hd" {
                @for d in ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6"] { option value=(d) selected[d == hd.as_str()] { (d) } }
            } }
            label { "Net explosive quantity (kg)" input #qd-neq name="neq_kg" inputmode="decimal" value=(q.neq_kg.clone().unwrap_or_default()) required; }
            button #qd-go type="submit" { "Distances" }
        }
        @match &lines {
            Err(e) => { (views::err(&e.to_string())) }
            Ok(None) => { p.hint { "The distances the site's safety tables require from a magazine holding this NEQ of this division." } }
            Ok(Some(lines)) => {
                table #qd-distances {
                    thead { tr { th { "Exposed site" } th.n { "Distance (m)" } th { "Formula" } th { "Source" } } }
                    tbody { @for l in lines { tr { td { (l.exposed_site) } td.n { (format!("{:.0}", l.value)) } td { (l.formula) } td.hint { (l.source) } } } }
                }
            }
        }
    };
    Ok(page("Quantity-distance", Some(&p), "QD calculator", body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ReadingForm {
    csrf: String,
    location: String,
    temperature_c: Option<String>,
    humidity_pct: Option<String>,
}

/// A reading entered by hand (a keeper's thermometer, a site without sensors): recorded, digested
/// into the ledger and checked for excursions like a sensor's, at the time it is entered.
pub(crate) async fn reading_record(Visitor { st, p, .. }: Visitor, axum::Form(f): axum::Form<ReadingForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let number = |v: &Option<String>, what: &str| -> Result<Option<f64>, crate::error::ApiError> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .replace(',', ".")
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| crate::error::ApiError::usage(format!("{what} {s:?} is not a number"))),
        }
    };
    let back = format!("/conditions?location={}", urlencode(&f.location));
    let (t, h) = match (number(&f.temperature_c, "temperature"), number(&f.humidity_pct, "humidity")) {
        (Ok(None), Ok(None)) => {
            return Ok(redirect_with(&st, &p, &back, Err(crate::error::ApiError::usage("give a temperature, a humidity or both"))))
        }
        (Ok(t), Ok(h)) => (t, h),
        (Err(e), _) | (_, Err(e)) => return Ok(redirect_with(&st, &p, &back, Err(e))),
    };
    let location = qm_core::LocationId::parse(&f.location).map_err(crate::error::ApiError::usage)?;
    let (actor, at) = (p.actor(), crate::auth::now());
    let reading = qm_core::conditions::Reading { at, temperature_c: t, humidity_pct: h };
    let key = uuid::Uuid::now_v7().to_string();
    let r = st.site.call(move |site| site.record_readings(actor, &location, vec![reading], &key, at)).await?;
    let done = r.map(|_| "Reading recorded.".to_string()).map_err(crate::error::ApiError::from);
    Ok(redirect_with(&st, &p, &back, done))
}
