//! Count pages: start a count, record what is found, close it, resolve discrepancies.

use crate::edge::*;
use crate::error::ApiError;
use crate::reads::*;
use crate::scope::{self, sees};
use crate::views::{self, page};
use crate::web::*;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use qm_app::query::{self};
use qm_core::permissions::Op;
use qm_core::*;
use serde::Deserialize;

pub(crate) async fn counts(Visitor { st, p, .. }: Visitor) -> WebResult {
    let pp = p.clone();
    let CountList { counts: list, schedule } = st.site.call(move |site| count_list_for(site.state(), &pp, crate::auth::now())).await?;
    let locs = locations_in_scope(&st, &p).await?.locations;
    let body = html! {
        form #count-start.card method="post" action="/counts/start" {
            (views::csrf(&p))
            label { "Location to count (and everything inside it)" input #count-location name="location" list="locations" required autocomplete="off"; }
            datalist #locations { @for (l, name) in &locs { option value=(l) { (name) } } }
            label.inline { input type="checkbox" name="blind" value="1"; " Blind (book figures hidden until closed)" }
            label.inline { input type="checkbox" name="cycle" value="1"; " Cycle count (only the places recorded)" }
            button #start type="submit" { "Start count" }
        }
        h2 { "Counts, newest first" }
        table #counts {
            thead { tr { th { "Count" } th { "Unit" } th { "Place" } th { "Kind" } th { "Counter" } th { "Opened" } th { "Closed" } th { "Result" } } }
            tbody { @for c in &list { tr {
                td { a href=(format!("/counts/{}", c.count)) { (c.count) } } td { (c.unit) } td { (c.place) " " span.hint { (c.place_name) } }
                td { (c.kind) @if c.blind { " (blind)" } } td { (c.counter) } td { (c.opened) } td { (c.closed.as_deref().unwrap_or("—")) }
                td.(if c.result.contains("open") && c.result != "open" { "warn" } else { "" }) { (c.result) }
            } } }
        }
        h2 #schedule { "Full counts by place" }
        p.hint { "Each armory, depot and magazine: its last full count, and when the next is due under the unit's policy (full_count_every_days)." }
        table #count-schedule {
            thead { tr { th { "Place" } th { "Unit" } th { "Last full count" } th.n { "Every" } th { "Next due" } } }
            tbody { @for d in &schedule { tr.(if d.overdue { "near" } else { "" }) {
                td { (d.place) " " span.hint { (d.name) } } td { (d.unit) }
                td { @match (&d.last_full, &d.last_full_at) { (Some(c), Some(at)) => { a href=(format!("/counts/{c}")) { (c) } " " (at) }, _ => { "never" } } }
                td.n { @match d.every_days { Some(n) => { (n) " days" }, None => { "—" } } }
                td.(if d.overdue { "bad" } else { "" }) { @match &d.next_due { Some(t) => { (t) @if d.overdue { " — overdue" } }, None => { "no schedule" } } }
            } } }
        }
    };
    Ok(page("Counts", Some(&p), "Counts", body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct CountStartForm {
    pub(crate) csrf: String,
    pub(crate) location: String,
    pub(crate) blind: Option<String>,
    pub(crate) cycle: Option<String>,
}

pub(crate) async fn count_start(Visitor { st, p, ip }: Visitor, Form(f): Form<CountStartForm>) -> WebResult {
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

/// The place a count's page keeps selected (the one just recorded).
#[derive(Deserialize)]
pub(crate) struct AtQ {
    pub(crate) at: Option<String>,
}

pub(crate) async fn count_page(Visitor { st, p, .. }: Visitor, Path(cid): Path<String>, Query(q): Query<AtQ>) -> WebResult {
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
        (flash(&st, &p))
        p.lead { (view.kind) " count of " strong { (view.root) } @if view.blind { " (blind)" } " by badge " (view.counter) ", started " (view.started_at) " — "
            strong #count-state { (if view.closed { "closed" } else { "open" }) } }
        @if !view.closed && may(&p, Op::Count) {
            form #count-record.card method="post" action=(format!("/counts/{cid}/record")) {
                (views::csrf(&p))
                // The place stays the one just recorded, and the scan field keeps the focus.
                label { "Location counted" select #record-location name="location" {
                    @for l in &locs { option value=(l) selected[q.at.as_deref() == Some(l.as_str())] { (l) } }
                } }
                label { "Scan an item (serial, or LOT:QTY), then Enter" input #scan autocomplete="off" autofocus data-target="items"; }
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
                    @if let Some(r) = &d.resolution { p.resolved { "Resolved: " (r) } } @else if !may(&p, Op::Resolve) {
                        p.hint.unresolved { "Open: a duty officer of the unit resolves it." }
                    } @else {
                        form.resolve method="post" action=(format!("/discrepancies/{}/resolve?count={cid}", d.id)) {
                            (views::csrf(&p))
                            label { "Note" input name="note" required; }
                            // Nothing chosen for them: approving a missing weapon writes it off the books.
                            label.inline { input type="radio" name="decision" value="approve" required; " Approve (adjust the books)" }
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
pub(crate) struct RecordForm {
    pub(crate) csrf: String,
    pub(crate) location: String,
    pub(crate) items: String,
}

pub(crate) async fn count_record(Visitor { st, p, ip }: Visitor, Path(cid): Path<String>, Form(f): Form<RecordForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let list = items(&lines(&f.items))?;
    let (serials, lots) = split_items(list);
    let c = Command::RecordCount { count: id(CountId::parse(&cid))?, location: id(LocationId::parse(&f.location))?, serials, lots };
    let r = perform(&st, &p, &ip, None, None, c).await.map(|_| format!("Recorded at {}.", f.location));
    Ok(redirect_with(&st, &p, &format!("/counts/{}?at={}", urlencode(&cid), urlencode(&f.location)), r))
}

pub(crate) fn back_to_count(st: &AppState, p: &Principal, cid: &str, r: Result<String, ApiError>) -> Response {
    redirect_with(st, p, &format!("/counts/{}", urlencode(cid)), r)
}

pub(crate) async fn count_close(Visitor { st, p, ip }: Visitor, Path(cid): Path<String>, Form(f): Form<CsrfForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let c = Command::CloseCount { count: id(CountId::parse(&cid))? };
    Ok(back_to_count(&st, &p, &cid, perform(&st, &p, &ip, None, None, c).await.map(|_| "Count closed and reconciled.".to_string())))
}

#[derive(Deserialize)]
pub(crate) struct ResolveForm {
    pub(crate) csrf: String,
    pub(crate) note: String,
    pub(crate) decision: String,
    pub(crate) item_type: Option<String>,
    pub(crate) witness_badge: Option<String>,
    pub(crate) witness_pin: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct CountQ {
    pub(crate) count: Option<String>,
}

pub(crate) async fn resolve_discrepancy(
    Visitor { st, p, ip }: Visitor,
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
    Ok(back_to_count(&st, &p, q.count.as_deref().unwrap_or(""), r))
}
