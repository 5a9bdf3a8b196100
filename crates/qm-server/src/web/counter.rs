//! The counter page: issue and return by keyboard or scanner, a preview, a witness step, then the commit.

use crate::auth::Principal;
use crate::counter::*;
use crate::edge::*;
use crate::error::ApiError;
use crate::views::{self, page};
use crate::web::*;
use crate::AppState;
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::Form;
use maud::{html, Markup};
use qm_app::query::{self};
use qm_core::*;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(crate) struct CounterQuery {
    pub(crate) mode: Option<String>,
    pub(crate) badge: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) items: Option<String>,
}

pub(crate) fn counter_form(p: &Principal, q: &CounterQuery, places: &Places, message: Option<Markup>) -> Markup {
    let mode = q.mode.as_deref().unwrap_or("issue");
    let locations = &places.locations;
    html! {
        @if let Some(m) = message { (m) }
        form #counter.card method="post" action="/counter/preview" data-by=(p.badge) {
            (views::csrf(p))
            fieldset.modes {
                legend { "Operation" }
                label { input type="radio" name="mode" value="issue" checked[mode == "issue"]; " Issue" }
                label { input type="radio" name="mode" value="return" checked[mode == "return"]; " Return" }
            }
            label { "Badge (scan or type, then Enter)"
                input #badge name="badge" value=(q.badge.as_deref().unwrap_or("")) autofocus autocomplete="off" required; }
            // Who the badge is, or why it will not do, as soon as it is scanned (app.js asks /api/custody).
            div #badge-check aria-live="polite" {}
            label { "Location (lots are drawn from it on issue; on return each item goes back to its own rack or store, and here only if it has none)"
                input #location name="location" list="locations" value=(q.location.as_deref().unwrap_or("")) autocomplete="off"; }
            datalist #locations { @for (l, name) in locations { option value=(l) { (name) } } }
            // The lots held in this subtree: a lot label scanned without a quantity asks for one.
            datalist #lot-numbers { @for l in &places.lots { option value=(l) {} } }
            label { "Scan an item (serial, or LOT:QTY), then Enter; Enter on an empty field shows the preview"
                input #scan autocomplete="off"; }
            div #qty-row hidden {
                label { "Quantity of lot " strong #qty-lot {} " (type it, then Enter)"
                    input #qty inputmode="numeric" autocomplete="off"; }
            }
            div #scan-notice.hint aria-live="polite" {}
            label { "Items, one per line (on return, R-1042 > D11-RACK-B sends a line elsewhere than its home)"
                textarea #items name="items" rows="6" { (q.items.as_deref().unwrap_or("")) } }
            button #preview type="submit" { "Preview" }
        }
    }
}

/// The places and lots the counter offers: locations in the principal's subtree, and the lots held there.
pub(crate) struct Places {
    pub(crate) locations: Vec<(String, String)>,
    pub(crate) lots: Vec<String>,
}

pub(crate) async fn locations_in_scope(st: &AppState, p: &Principal) -> Result<Places, WebError> {
    let unit = p.unit.clone();
    Ok(st
        .site
        .call(move |site| {
            let s = site.state();
            let mine = |l: &LocationId| s.locations.get(l).is_some_and(|x| s.unit_within(&x.unit, &unit));
            let locations = s.locations.iter().filter(|(k, _)| mine(k)).map(|(k, l)| (k.to_string(), l.name.clone())).collect();
            let lots: std::collections::BTreeSet<String> = s
                .balances
                .iter()
                .filter(|((a, _), b)| b.quantity.is_positive() && matches!(a, Account::Location(l) if mine(l)))
                .map(|((_, lot), _)| lot.to_string())
                .collect();
            Places { locations, lots: lots.into_iter().collect() }
        })
        .await?)
}

pub(crate) async fn counter(Visitor { st, p, .. }: Visitor, Query(q): Query<CounterQuery>) -> WebResult {
    let locs = locations_in_scope(&st, &p).await?;
    // A directive in force over the counter's unit asks each person once for the shift briefing.
    let briefings = super::directives::counter_briefings(&st, &p).await?;
    let body = html! { (flash(&st, &p)) (briefings) (counter_form(&p, &q, &locs, None)) };
    Ok(page("Counter", Some(&p), "Counter", body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct CounterForm {
    pub(crate) csrf: String,
    pub(crate) mode: String,
    pub(crate) badge: String,
    pub(crate) location: Option<String>,
    pub(crate) items: String,
    pub(crate) key: Option<String>,
    pub(crate) witness_badge: Option<String>,
    pub(crate) witness_pin: Option<String>,
}

pub(crate) async fn counter_preview(Visitor { st, p, .. }: Visitor, Form(f): Form<CounterForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let list = lines(&f.items);
    let q = CounterQuery {
        mode: Some(f.mode.clone()),
        badge: Some(f.badge.clone()),
        location: f.location.clone(),
        items: Some(f.items.clone()),
    };
    let plan = match counter_commands(&st, &f.mode, &f.badge, &f.location, &list).await {
        Ok(c) => c,
        Err(e) => {
            let locs = locations_in_scope(&st, &p).await?;
            return Ok(
                (e.status, page("Counter", Some(&p), "Counter", counter_form(&p, &q, &locs, Some(views::err(&e.message))))).into_response()
            );
        }
    };
    // What the person holds, shown only to someone who may work the counter for them: a role that
    // issues or returns, and the person inside the principal's subtree.
    let b = Badge::parse(&f.badge).ok();
    let op = if f.mode == "return" { qm_core::permissions::Op::Return } else { qm_core::permissions::Op::Issue };
    let may_serve = may(&p, op);
    let pp = p.clone();
    let commands = plan.commands;
    let planned = commands.clone();
    // What is confirmed is what was previewed: on a return, each line with the place it goes to, so
    // the confirmation (and a retry of it) records exactly this, whatever the books say by then.
    let confirmed = resolved_lines(&planned).unwrap_or_else(|| f.items.clone());
    let (person, lines) = st
        .site
        .call(move |site| {
            let s = site.state();
            let unit = b.as_ref().and_then(|b| s.people.get(b)).map(|x| x.unit.clone());
            let visible = may_serve && unit.is_some() && crate::scope::sees(s, &pp, unit.as_ref());
            (b.filter(|_| visible).and_then(|b| query::custody(s, &b, crate::auth::now().date()).ok()), witness_lines(s, &planned))
        })
        .await?;
    let pv = preview_all(&st, &p, None, commands).await?;
    let key = uuid::Uuid::now_v7().to_string();
    let verb = if f.mode == "return" { "Return from" } else { "Issue to" };
    let body = html! {
        div.card #preview-card {
            @for n in &plan.notices { div.msg.note.scan-notice role="status" { (n) } }
            h2 { (verb) " " @if let Some(c) = &person { (c.name) " · badge " (c.badge) " · unit " (c.unit) } @else { "badge " (f.badge) } }
            @if pv.ok || pv.needs_witness {
                @if pv.ok {
                    p { "This will be recorded:" }
                    ul #will { @for s in &pv.summaries { li { (s) } } }
                    @if f.mode == "return" { ul #where-to { @for l in &lines { li { (l) } } } }
                } @else {
                    // A request for a second person, not a refusal: what they confirm, in full.
                    div #witness-step {
                        p { "A second person confirms this with their own badge and PIN:" }
                        ul #will { @for l in &lines { li { (l) } } }
                        @if let Some(e) = &pv.error {
                            p.hint #witness-why { "Why: " (e.message.strip_prefix("refused: ").unwrap_or(&e.message)) }
                        }
                    }
                }
                form #confirm method="post" action="/counter/confirm" data-by=(p.badge) {
                    (views::csrf(&p))
                    input type="hidden" name="mode" value=(f.mode);
                    input type="hidden" name="badge" value=(f.badge);
                    input type="hidden" name="location" value=(f.location.as_deref().unwrap_or(""));
                    input type="hidden" name="items" value=(confirmed);
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

pub(crate) fn back_link(q: &CounterQuery) -> String {
    let enc = |s: &Option<String>| urlencode(s.as_deref().unwrap_or(""));
    format!("/counter?mode={}&badge={}&location={}&items={}", enc(&q.mode), enc(&q.badge), enc(&q.location), enc(&q.items))
}

pub(crate) fn custody_table(c: &query::Custody) -> Markup {
    html! {
        @if c.holds.is_empty() { p.hint { "Nothing in custody." } } @else {
            table.custody { thead { tr { th { "Item" } th { "Type" } th.n { "Quantity" } th { "Since" } } }
                tbody { @for h in &c.holds { tr { td { (h.item) } td { (h.item_type) } td.n { (h.quantity) } td { (h.since) } } } } }
        }
    }
}

pub(crate) async fn counter_confirm(Visitor { st, p, ip }: Visitor, Form(f): Form<CounterForm>) -> WebResult {
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
        for (i, c) in counter_commands(&st, &f.mode, &f.badge, &f.location, &list).await?.commands.into_iter().enumerate() {
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

/// What the commands move, line by line, as the witness reads them: each serial with its type and
/// where it is now, each lot quantity with its type and the place it comes from; on a return, the
/// place each goes back to.
fn witness_lines(s: &qm_core::State, commands: &[Command]) -> Vec<String> {
    let item = |i: &ItemRef| match i {
        ItemRef::Serial(serial) => match s.serials.get(serial) {
            Some(si) => format!("serial {serial} ({}), now at {}", si.item_type, si.account),
            None => format!("serial {serial}"),
        },
        ItemRef::Lot { lot, quantity } => {
            let t = s.lots.get(lot).map(|l| format!(" ({})", l.item_type)).unwrap_or_default();
            format!("{quantity} of lot {lot}{t}")
        }
    };
    let place = |l: &LocationId| match s.locations.get(l) {
        Some(x) => format!("{l} {}", x.name),
        None => l.to_string(),
    };
    let mut out = vec![];
    for c in commands {
        match c {
            Command::Issue { from, items, .. } => {
                let at = from.as_ref().map(|f| format!(" from {}", place(f))).unwrap_or_default();
                out.extend(items.iter().map(|i| format!("{}{}", item(i), if matches!(i, ItemRef::Lot { .. }) { at.as_str() } else { "" })));
            }
            Command::Return { .. } => {
                for (to, items) in c.return_groups() {
                    out.extend(items.iter().map(|i| format!("{} → back to {}", item(i), place(to))));
                }
            }
            _ => {}
        }
    }
    out
}

/// A return's lines with the place each goes back to (`R-1042 > D11-RACK-A`), as the confirm form
/// carries them; `None` for an issue.
fn resolved_lines(commands: &[Command]) -> Option<String> {
    let c = commands.iter().find(|c| matches!(c, Command::Return { .. }))?;
    Some(
        c.return_groups()
            .into_iter()
            .flat_map(|(to, items)| items.iter().map(move |i| format!("{i} > {to}")))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}
