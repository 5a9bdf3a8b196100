//! The dashboard page: per unit what is out, overdue, open counts and discrepancies, magazines near
//! their limit, and the ledger's state, as computed by `qm_app::overview`.

use crate::auth::now;
use crate::views::page;
use crate::web::*;
use axum::response::IntoResponse;
use maud::html;
pub(crate) use qm_app::overview::{ledger_status, unit_rows};

pub(crate) async fn dashboard(Visitor { st, p, .. }: Visitor) -> WebResult {
    let pp = p.clone();
    let witness = st.witness.clone().filter(|_| p.at_root);
    let has_parent = st.config.parent.is_some();
    let (rows, ls, overdue_h, access, (sites, parent, due, excursions)) = st
        .site
        .call(move |site| {
            let s = site.state();
            let access = qm_app::access::summary(site, &|u| crate::scope::sees(s, &pp, Some(u)), now());
            let sites = witness.map(|w| qm_app::sites::sites_view(site, &w.children, now()).unwrap_or_default());
            let parent = if has_parent { site.parent_status(now()).ok() } else { None };
            let due = crate::reads::schedule_for(s, &pp, now());
            // Storage conditions out of band now, at the places this person sees.
            let seen = |l: &qm_core::LocationId| crate::scope::sees(s, &pp, s.locations.get(l).map(|x| &x.unit));
            let excursions: Vec<String> =
                s.excursions.values().filter(|x| x.ended_at.is_none() && seen(&x.location)).map(|x| x.location.to_string()).collect();
            let more = (sites, parent, due, excursions);
            (unit_rows(s, &pp.unit, now()), ledger_status(site, now()), s.incident_rules.0.overdue_after_h(), access, more)
        })
        .await?;
    let count = |v: &[qm_app::sites::SiteView], state: &str| v.iter().filter(|x| x.state == state).count();
    let places = |v: &[(String, String)]| -> maud::Markup {
        html! { @for (i, (l, b)) in v.iter().enumerate() { @if i > 0 { ", " } a href=(format!("/access/{l}")) { (l) } " (" (b) ")" } }
    };
    let body = html! {
        p.lead {
            "Ledger: " strong { (ls.size) " entries" } "; latest signed checkpoint covers " strong #cp-size { (ls.checkpoint_size) }
            @if let Some(a) = &ls.checkpoint_age { " (last entry it covers: " (a) " ago)" }
            @if ls.checkpoint_size < ls.size { span.warn { " · " (ls.size - ls.checkpoint_size) " entries not yet checkpointed" } }
        }
        p #access-summary {
            "Access: "
            span.(flag(access.after_hours.len())) #inside-after-hours { (access.after_hours.len()) " inside after hours" }
            @if !access.after_hours.is_empty() { " — " (places(&access.after_hours)) }
            " · "
            span.(flag(access.alone.len())) #alone-inside { (access.alone.len()) " alone under a two-person rule" }
            @if !access.alone.is_empty() { " — " (places(&access.alone)) }
            " · "
            a.(flag(access.open_incidents)) #access-incidents href="/incidents" { (access.open_incidents) " open access incidents" }
            " · " a href="/access" { "who is inside" }
        }
        p #excursions-open {
            "Storage: "
            a.(flag(excursions.len())) href="/conditions" { (excursions.len()) " open excursions" }
            @if !excursions.is_empty() { " — " (excursions.join(", ")) }
        }
        @let overdue: Vec<&qm_app::counts::PlaceDue> = due.iter().filter(|d| d.overdue).collect();
        p #counts-due {
            "Full counts: "
            a.(flag(overdue.len())) href="/counts#schedule" { (overdue.len()) " places overdue" }
            @if !overdue.is_empty() { " — " @for (i, d) in overdue.iter().enumerate() { @if i > 0 { ", " } (d.place) } }
        }
        @if let Some(ps) = &parent {
            // Late: nothing cosigned for a day while entries wait (the line may be down; docs/sites.md).
            @let late = ps.waiting > 0 && ps.age_h.is_none_or(|h| h >= qm_app::sites::SILENT_AFTER_H);
            p #parent-status {
                "Parent: "
                @match &ps.cosigned_at {
                    Some(at) => { "cosigned " strong { (ps.cosigned_size) } " of " (ps.size) " entries on " (at) },
                    None => { "no checkpoint of this site cosigned yet" },
                }
                " · " span.(flag(usize::from(late))) #parent-waiting { (ps.waiting) " entries waiting" }
                // What came down (docs/sites.md, "Down the tree"), and what the books here could not take.
                " · " span #parent-received { (ps.received) " decisions received from above" }
                @if !ps.not_taken.is_empty() {
                    " · " span.warn #parent-not-taken title=(ps.not_taken.join("\n")) { (ps.not_taken.len()) " not taken here" }
                }
            }
        }
        @if let Some(v) = &sites {
            p #sites-summary {
                "Sites: " a href="/sites" { (v.len()) " witnessed" } " · "
                span.(flag(count(v, "rewritten"))) #sites-rewritten { (count(v, "rewritten")) " rewritten" } " · "
                span.(flag(count(v, "silent") + count(v, "never"))) #sites-silent { (count(v, "silent")) " silent for a day, " (count(v, "never")) " never synced" }
                @let backlog: u64 = v.iter().map(|x| x.backlog).sum();
                " · " span.(if backlog > 0 { "warn" } else { "" }) #sites-backlog { (backlog) " entries witnessed, not yet mirrored" }
            }
        }
        table #units {
            thead { tr { th { "Unit" } th.n { "Open discrepancies" } th.n { "Overdue returns (> " (overdue_h) " h)" } th.n { "Transfers in transit" } th.n { "Magazines near a limit" } th { "Open incidents (critical/high/medium/low)" } th.n { "Incident clocks at risk" } th.n { "Staff" } th { "" } } }
            tbody {
                @for r in &rows {
                    tr {
                        td { span class=(format!("d{}", r.depth.min(4))) { strong { (r.unit) } " " (r.name) } }
                        // Each number links to the list behind it.
                        td.n.(flag(r.discrepancies)) { a href="/counts" { (r.discrepancies) } }
                        td.n.(flag(r.overdue)) { a href="/custody" { (r.overdue) } }
                        td.n.(flag(r.in_transit)) { a href="/transfers" { (r.in_transit) } }
                        td.n.(flag(r.magazines_near)) { @if r.magazines_near > 0 { a href=(format!("/magazines?unit={}", r.unit)) { (r.magazines_near) } } @else { (r.magazines_near) } }
                        td.(flag(r.incidents[2] + r.incidents[3])) { a href=(format!("/incidents?unit={}", r.unit)) {
                            (r.incidents[3]) " / " (r.incidents[2]) " / " (r.incidents[1]) " / " (r.incidents[0]) } }
                        td.n.(flag(r.clocks_at_risk)) { a href=(format!("/incidents?unit={}", r.unit)) { (r.clocks_at_risk) } }
                        td.n { a href=(format!("/people?unit={}", urlencode(&r.unit.to_string()))) { (r.people) } }
                        td { a href=(format!("/stock?unit={}", r.unit)) { "stock" } }
                    }
                }
            }
        }
        p.hint { "Each row counts its whole subtree. Checkpoints are signed for the whole site (one ledger)." }
        (last_counts(&due))
    };
    Ok(page("Dashboard", Some(&p), "Dashboard", body).into_response())
}

/// The last full count of each armory, depot and magazine the person sees, and when the next is due.
fn last_counts(due: &[qm_app::counts::PlaceDue]) -> maud::Markup {
    html! {
        @if !due.is_empty() {
            h2 { "Last full count per place" }
            table #last-counts {
                thead { tr { th { "Place" } th { "Unit" } th { "Last full count" } th { "Next due" } } }
                tbody { @for d in due { tr {
                    td { a href="/counts#schedule" { (d.place) } " " (d.name) }
                    td { (d.unit) }
                    td { @match (&d.last_full, &d.last_full_at) { (Some(c), Some(at)) => { (c) ", " (at) }, _ => span.warn { "never" } } }
                    td.(if d.overdue { "bad" } else { "" }) { (d.next_due.as_deref().unwrap_or("no schedule")) @if d.overdue { " (overdue)" } }
                } } }
            }
        }
    }
}

pub(crate) fn flag(n: usize) -> &'static str {
    if n > 0 {
        "bad"
    } else {
        "good"
    }
}
