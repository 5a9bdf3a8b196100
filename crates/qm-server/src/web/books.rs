//! Pages that read the books: stock, items and their history, custody, transfers, the log and checkpoints, labels.

use crate::auth::{self};
use crate::edge::*;
use crate::error::ApiError;
use crate::reads::*;
use crate::scope::{self, sees};
use crate::views::{self, page};
use crate::web::*;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use qm_app::query::{self, StockFilter};
use qm_core::*;
use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct StockQ {
    pub(crate) unit: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) item_type: Option<String>,
}

pub(crate) async fn stock(Visitor { st, p, .. }: Visitor, Query(q): Query<StockQ>) -> WebResult {
    let f = StockFilter {
        unit: opt(&q.unit, UnitId::parse)?,
        location: opt(&q.location, LocationId::parse)?,
        item_type: opt(&q.item_type, ItemTypeId::parse)?,
    };
    let pp = p.clone();
    let read = st.site.call(move |site| stock_for(site.state(), &pp, f).map(|l| (holder_names(site.state(), &l), l))).await?;
    let (names, lines) = match read {
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
                        td { (l.unit) } td { (l.account) @if let Some(n) = names.get(&l.account) { " " span.hint { (n) } } } td { (l.item_type) }
                        td { @if let Some(lot) = &l.lot { a href=(format!("/items/{lot}")) { (lot) } } }
                        td { (l.status.as_deref().unwrap_or("")) }
                        td.n { (l.quantity) " " (l.unit_of_measure) }
                        td { @if let Some(loc) = l.account.strip_prefix("location:") { a href=(format!("/labels?location={loc}")) { "labels" } } }
                    }
                }
            }
        }
        @if lines.is_empty() { p.hint { "Nothing held here." } }
        @else {
            h2 { "Totals per item type" }
            table #stock-totals {
                thead { tr { th { "Item type" } th.n { "Quantity" } th.n { "Lines" } } }
                tbody { @for (t, (q, uom, n)) in totals(&lines) { tr { td { (t) } td.n { (q) " " (uom) } td.n { (n) } } } }
            }
        }
    };
    Ok(page("Stock", Some(&p), "Stock", body).into_response())
}

/// Who or what each account of the lines is, by name: `person:1210` → the officer's name,
/// `location:D11-RACK-A` → the place's name.
fn holder_names(s: &qm_core::State, lines: &[query::StockLine]) -> std::collections::BTreeMap<String, String> {
    let name = |account: &str| -> Option<String> {
        if let Some(b) = account.strip_prefix("person:") {
            return s.people.get(&Badge::parse(b).ok()?).map(|p| p.name.clone());
        }
        let l = account.strip_prefix("location:")?;
        s.locations.get(&LocationId::parse(l).ok()?).map(|x| x.name.clone())
    };
    lines.iter().filter_map(|l| Some((l.account.clone(), name(&l.account)?))).collect()
}

/// The lines summed per item type: quantity, unit of measure, how many lines.
fn totals(lines: &[query::StockLine]) -> std::collections::BTreeMap<String, (String, String, usize)> {
    let mut sums: std::collections::BTreeMap<String, (Option<Quantity>, String, usize)> = Default::default();
    for l in lines {
        let e = sums.entry(l.item_type.clone()).or_insert((Some(Quantity::default()), l.unit_of_measure.clone(), 0));
        e.0 = e.0.zip(Quantity::parse(&l.quantity).ok()).and_then(|(a, b)| a.checked_add(b));
        e.2 += 1;
    }
    sums.into_iter().map(|(t, (q, u, n))| (t, (q.map_or("—".to_string(), |q| q.to_string()), u, n))).collect()
}

#[derive(Deserialize)]
pub(crate) struct ItemQ {
    pub(crate) q: Option<String>,
}

pub(crate) async fn items_search(WebUser(p): WebUser, Query(q): Query<ItemQ>) -> Response {
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

pub(crate) async fn item_page(Visitor { st, p, .. }: Visitor, Path(what): Path<String>) -> WebResult {
    let (pp, w) = (p.clone(), what.clone());
    let (history, whereis, visible) = st
        .site
        .call(move |site| -> Result<_, ApiError> {
            let s = site.state();
            let h = query::history_seen_from(site, &w, (!pp.at_root).then_some(&pp.unit))?;
            let wi = Serial::parse(&w).ok().and_then(|x| query::where_is(s, &x).ok());
            Ok((h, wi, item_visible(s, &pp, &w)))
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

pub(crate) fn log_table(lines: &[query::LogLine]) -> Markup {
    html! {
        table.log {
            thead { tr { th.n { "Entry" } th { "When" } th { "Who" } th { "Witness" } th { "What" } } }
            tbody {
                @for l in lines {
                    tr.(if l.r#type == "access_denied" { "denied" } else { "" }) {
                        td.n { (l.seq) } td { (l.at) } td { (l.actor) @if let Some(t) = &l.token { span.hint { " via token " (t) } } } td { (l.witness.as_deref().unwrap_or("")) } td { (l.summary) }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct BadgeQ {
    pub(crate) badge: Option<String>,
}

pub(crate) async fn custody(Visitor { st, p, .. }: Visitor, Query(q): Query<BadgeQ>) -> WebResult {
    let pp = p.clone();
    let badge = q.badge.clone().filter(|b| !b.trim().is_empty());
    let b = badge.as_deref().map(Badge::parse).transpose().map_err(ApiError::usage)?;
    let (holders, one) = st
        .site
        .call(move |site| -> Result<_, ApiError> {
            let s = site.state();
            let one = match &b {
                Some(b) => {
                    let c = query::custody(s, b, crate::auth::now().date())?;
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

pub(crate) async fn transfers(Visitor { st, p, .. }: Visitor) -> WebResult {
    let pp = p.clone();
    let list = st.site.call(move |site| transfers_for(site.state(), &pp, false)).await?;
    let body = html! {
        table #transfers {
            thead { tr { th { "Transfer" } th { "From" } th { "To" } th { "Dispatched" } th { "Document" } th { "Lines" } } }
            tbody { @for t in &list { tr { td { (t.transfer) } td { (t.from_unit) } td { (t.to_unit) } td { (t.dispatched_at) } td { (t.document.as_deref().unwrap_or("")) } td { (t.lines.join(", ")) } } } }
        }
        @if list.is_empty() { p.hint { "Nothing in transit." } }
    };
    Ok(page("Transfers in transit", Some(&p), "Transfers", body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct LogQ {
    pub(crate) limit: Option<usize>,
}

pub(crate) async fn log(Visitor { st, p, .. }: Visitor, Query(q): Query<LogQ>) -> WebResult {
    if let Some(refused) = staff_only(&st, &p, "the unit's log").await {
        return Ok(refused);
    }
    let limit = q.limit.unwrap_or(200).min(LOG_LIMIT_MAX);
    let pp = p.clone();
    let (mut lines, ls) =
        st.site.call(move |site| -> Result<_, ApiError> { Ok((log_for(site, &pp, limit)?, ledger_status(site, auth::now()))) }).await??;
    lines.reverse();
    let body = html! {
        (flash(&st, &p))
        div.card #checkpoint-status {
            p { "Ledger size " strong { (ls.size) } "; latest signed checkpoint covers " strong { (ls.checkpoint_size) } " entries"
                @if let Some(a) = &ls.checkpoint_age { " (its last entry " (a) " ago)" } "." }
            @if ls.checkpoint_size < ls.size { p.warn { (ls.size - ls.checkpoint_size) " newer entries are durable but not yet covered by a signed checkpoint." } }
            @else { p.good { "Every entry is covered by a signed checkpoint." } }
            @if views::staff(&p) { form method="post" action="/log/checkpoint" { (views::csrf(&p)) button type="submit" { "Sign a checkpoint now" } } }
        }
        p.hint { "Newest first. Denied attempts are highlighted. " @if !p.at_root { "Entries by staff of your subtree only." } }
        (log_table(&lines))
    };
    Ok(page("Event log", Some(&p), "Log", body).into_response())
}

pub(crate) async fn log_checkpoint(Visitor { st, p, .. }: Visitor, Form(f): Form<CsrfForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    if let Some(refused) = staff_only(&st, &p, "signing a checkpoint").await {
        return Ok(refused);
    }
    let size = st.site.call(|site| site.checkpoint().map(|_| site.size())).await??;
    Ok(redirect_with(&st, &p, "/log", Ok(format!("Checkpoint signed at size {size}."))))
}

#[derive(Deserialize)]
pub(crate) struct LabelQ {
    pub(crate) location: Option<String>,
}

pub(crate) struct Label {
    pub(crate) code: String,
    pub(crate) title: String,
    pub(crate) detail: String,
}

pub(crate) async fn labels(Visitor { st, p, .. }: Visitor, Query(q): Query<LabelQ>) -> WebResult {
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

pub(crate) fn label_card(l: &Label) -> Markup {
    html! {
        div.label {
            @match crate::labels::qr_svg(&l.code) { Ok(svg) => (views::svg(&svg)), Err(e) => (views::err(&e)) }
            div.code { (l.code) }
            div { (l.title) }
            div.hint { (l.detail) }
        }
    }
}

pub(crate) async fn label_item(Visitor { st, p, .. }: Visitor, Path(what): Path<String>) -> WebResult {
    let (pp, w) = (p.clone(), what.clone());
    let label = st
        .site
        .call(move |site| {
            let s = site.state();
            if !item_visible(s, &pp, &w) {
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

/// Refuses what only the armory's staff use to an officer who only draws weapons (403, on a page
/// that keeps their menu and a way back); the attempt is recorded. None: they may.
pub(crate) async fn staff_only(st: &AppState, p: &Principal, what: &str) -> Option<Response> {
    let e = crate::edge::staff_only(st, p, what).await.err()?;
    let body = html! { (views::err(&e.message)) p { a href="/" { "Back to the dashboard" } } };
    Some((StatusCode::FORBIDDEN, page("Refused", Some(p), "", body)).into_response())
}
