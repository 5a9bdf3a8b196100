//! Incident pages: the list of a principal's subtree with clocks and filters, one incident with its
//! history and the forms for its next steps, printable as the report an authority asks for.

use crate::api::incidents::{open_command, step_action, IncidentIn, StepIn};
use crate::auth::now;
use crate::edge::*;
use crate::error::ApiError;
use crate::scope::{self, sees};
use crate::views::{self, page};
use crate::web::*;
use axum::extract::{Path, Query};
use axum::response::IntoResponse;
use axum::Form;
use maud::{html, Markup};
use qm_app::incidents::{self, ClockView, IncidentFilter, IncidentView};
use qm_app::query;
use qm_core::*;
use serde::Deserialize;

/// Most incidents one page lists.
pub const ROWS_MAX: usize = 500;

#[derive(Deserialize, Default)]
pub(crate) struct IncidentsQ {
    pub(crate) state: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) unit: Option<String>,
}

/// A clock in words, with its class: `ok` met, `warn` running, `bad` missed.
fn clock_cell(c: &ClockView) -> Markup {
    let left = c.left_s.unsigned_abs();
    let span = format!("{} h {:02} min", left / 3600, left % 3600 / 60);
    let (class, text) = match c.status {
        "met" => ("good", "met".to_string()),
        "open" => ("warn", format!("{span} left")),
        _ => ("bad", if c.left_s < 0 { format!("missed — {span} overdue") } else { "missed".to_string() }),
    };
    html! { span.(class) title=(c.source) { (c.what) " → " (c.to) ": " (text) } }
}

pub(crate) async fn incidents_page(Visitor { st, p, .. }: Visitor, Query(q): Query<IncidentsQ>) -> WebResult {
    let f = IncidentFilter {
        open_only: q.state.as_deref() != Some("all"),
        unit: opt(&q.unit, UnitId::parse)?,
        kind: opt(&q.kind, IncidentKind::parse)?,
    };
    let pp = p.clone();
    let (list, total) =
        st.site.call(move |site| incidents::list_at_most(site.state(), &f, now(), &|u| sees(site.state(), &pp, Some(u)), ROWS_MAX)).await?;
    let all = q.state.as_deref() == Some("all");
    // Gravest and newest first: beyond ROWS_MAX the page says how many more a filter would show.
    let body = html! {
        (flash(&st, &p))
        form.filters method="get" action="/incidents" {
            label { "Show" select name="state" { option value="open" selected[!all] { "not closed" } option value="all" selected[all] { "all" } } }
            label { "Kind" select name="kind" { option value="" { "any" } @for k in IncidentKind::ALL {
                option value=(k.as_str()) selected[q.kind.as_deref() == Some(k.as_str())] { (k.as_str().replace('_', " ")) } } } }
            label { "Unit and below" input name="unit" value=(q.unit.as_deref().unwrap_or("")) autocomplete="off"; }
            button type="submit" { "Filter" }
        }
        @if list.is_empty() { p.hint #no-incidents { "No incidents." } } @else {
            table #incidents {
                thead { tr { th { "Incident" } th { "Severity" } th { "Kind" } th { "State" } th { "Unit" } th { "Opened" } th { "Clocks" } th { "Summary" } } }
                tbody { @for v in &list { tr.(format!("sev-{}", v.severity)) {
                    td { a href=(format!("/incidents/{}", v.id)) { (v.id) } } td { (v.severity) } td { (v.kind.replace('_', " ")) } td { (v.state) }
                    td { (v.unit) @if v.responsible != v.unit { " → " (v.responsible) } } td { (v.opened_at) }
                    td.clocks { @for c in &v.clocks { div { (clock_cell(c)) } } } td { (v.summary) }
                } } }
            }
        }
        @if total > list.len() { p.hint #incidents-more { "Showing the " (list.len()) " gravest and newest of " (total) "; filter by kind or unit to see the others." } }
        details.card #open-incident {
            summary { "Open an incident by hand" }
            form method="post" action="/incidents" {
                (views::csrf(&p))
                label { "Kind" select name="kind" { @for k in IncidentKind::ALL { option value=(k.as_str()) { (k.as_str().replace('_', " ")) } } } }
                label { "Severity" select name="severity" { @for s in Severity::ALL { option value=(s.as_str()) { (s.as_str()) } } } }
                label { "Unit" input name="unit" value=(p.unit.as_str()) required autocomplete="off"; }
                label { "Location (optional)" input name="location" autocomplete="off"; }
                label { "Serials, one per line (optional)" textarea name="serials" rows="2" {} }
                label { "What happened" textarea #incident-summary name="summary" rows="3" required {} }
                button #open-incident-button type="submit" { "Open incident" }
            }
        }
    };
    Ok(page("Incidents", Some(&p), "Incidents", body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct OpenForm {
    pub(crate) csrf: String,
    pub(crate) kind: String,
    pub(crate) severity: String,
    pub(crate) unit: String,
    pub(crate) location: Option<String>,
    pub(crate) serials: Option<String>,
    pub(crate) summary: String,
}

pub(crate) async fn incident_open(Visitor { st, p, ip }: Visitor, Form(f): Form<OpenForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let b = IncidentIn {
        kind: f.kind,
        severity: f.severity,
        unit: f.unit,
        location: f.location.filter(|l| !l.trim().is_empty()),
        serials: lines(f.serials.as_deref().unwrap_or("")),
        lots: vec![],
        badges: vec![],
        summary: f.summary,
        discovered_at: None,
    };
    let r = perform(&st, &p, &ip, None, None, open_command(&b)?).await;
    let opened = r.as_ref().ok().and_then(|o| {
        o.entries.iter().find_map(|e| if let Event::IncidentOpened { incident, .. } = &e.event { Some(incident.to_string()) } else { None })
    });
    let to = opened.as_ref().map(|i| format!("/incidents/{i}")).unwrap_or_else(|| "/incidents".into());
    Ok(redirect_with(&st, &p, &to, r.map(|_| format!("Incident {} opened.", opened.unwrap_or_default()))))
}

fn details(v: &IncidentView, history: &[query::LogLine]) -> Markup {
    html! {
        h2 #incident-title { "Incident " (v.id) ": " (v.severity) " " (v.kind.replace('_', " ")) " — " span #incident-state { (v.state) } }
        dl.facts {
            dt { "Unit" } dd { (v.unit) @if v.responsible != v.unit { " (escalated to " (v.responsible) ")" } }
            @if let Some(l) = &v.location { dt { "Location" } dd { (l) } }
            dt { "What happened" } dd { (v.summary) }
            dt { "Discovered" } dd { (v.discovered_at) " by badge " (v.discovered_by) }
            dt { "Opened" } dd { (v.opened_at) @if let Some(r) = &v.rule { " by itself (" (r) ")" } @else { " by hand" } }
            @if !v.objects.serials.is_empty() { dt { "Serials" } dd { (v.objects.serials.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")) } }
            @if !v.objects.lots.is_empty() { dt { "Lots" } dd { (v.objects.lots.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")) } }
            @if !v.objects.discrepancies.is_empty() { dt { "Discrepancies" } dd { (v.objects.discrepancies.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")) } }
            @if let Some(r) = &v.resolution { dt { "Resolution" } dd { (r) } }
        }
        h3 { "Clocks" }
        ul #incident-clocks { @for c in &v.clocks { li { (clock_cell(c)) " (due " (c.due) "; " (c.source) ")" } } }
        @if v.escalations_due > 0 { p.msg.warn role="alert" { "Not acknowledged for " (v.escalations_due) " period(s): escalation is due." } }
        @if !v.reports.is_empty() {
            h3 { "Reports made" }
            ul { @for r in &v.reports { li { (r.obligation) " to " (r.authority) ", reference " (r.reference) " (" (r.at) ", badge " (r.by) ")" } } }
        }
        h3 { "History" }
        (log_table(history))
    }
}

fn step_forms(p: &crate::auth::Principal, v: &IncidentView) -> Markup {
    let action = |step: &str| format!("/incidents/{}/{step}", v.id);
    let closed = v.state == "closed";
    html! {
        div.noprint #incident-steps {
            @if !closed && v.acknowledged_at.is_none() {
                form method="post" action=(action("acknowledge")) { (views::csrf(p)) button #acknowledge type="submit" { "Acknowledge" } }
            }
            form method="post" action=(action("note")) { (views::csrf(p))
                label { "Note" input #note-text name="text" required autocomplete="off"; } button type="submit" { "Add note" } }
            @for c in v.clocks.iter().filter(|c| c.what != "acknowledge" && c.status != "met") {
                form method="post" action=(action("report")) { (views::csrf(p))
                    input type="hidden" name="obligation" value=(c.what);
                    input type="hidden" name="authority" value=(c.to);
                    label { "Report to " (c.to) " made — reference" input name="reference" required autocomplete="off"; }
                    button type="submit" { "Record the report" } }
            }
            @if closed {
                form method="post" action=(action("reopen")) { (views::csrf(p))
                    label { "Reason to reopen" input name="reason" required autocomplete="off"; } button type="submit" { "Reopen" } }
            } @else {
                form method="post" action=(action("close")) { (views::csrf(p))
                    label { "Resolution" input #resolution name="resolution" required autocomplete="off"; }
                    label { "Witness badge (critical incidents)" input name="witness_badge" autocomplete="off"; }
                    label { "Witness PIN" input type="password" name="witness_pin" autocomplete="off"; }
                    button #close type="submit" { "Close" } }
            }
            p { button.print type="button" { "Print the report" } " " span.hint { "(the print layout leaves out the navigation and these forms)" } }
        }
    }
}

pub(crate) async fn incident_page(Visitor { st, p, .. }: Visitor, Path(id_text): Path<String>) -> WebResult {
    let i = id(IncidentId::parse(&id_text))?;
    let pp = p.clone();
    let (v, history, visible) = st
        .site
        .call(move |site| -> Result<_, ApiError> {
            let s = site.state();
            let v = incidents::show(s, &i, now())?;
            let unit = s.incidents.get(&i).map(|x| x.unit.clone());
            let zone = qm_app::zone::SiteZone::of(s);
            let entries = s.incidents.get(&i).map(|x| x.entries.clone()).unwrap_or_default();
            let mut history = vec![];
            for seq in entries {
                history.extend(site.read_envelopes(seq, seq)?.iter().map(|e| query::log_line_in(e, &zone)));
            }
            Ok((v, history, sees(s, &pp, unit.as_ref())))
        })
        .await??;
    if !visible {
        let why = scope::outside(&p, &format!("incident {id_text}"));
        crate::auth::record_denial(&st, p.badge.as_str(), "read", &why).await;
        return Err(WebError(ApiError::forbidden("permission.subtree", format!("refused: {why} (rule permission.subtree)"))));
    }
    let body = html! { (flash(&st, &p)) (details(&v, &history)) (step_forms(&p, &v)) };
    Ok(page(&format!("Incident {}", v.id), Some(&p), "Incidents", body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct StepForm {
    pub(crate) csrf: String,
    pub(crate) text: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) obligation: Option<String>,
    pub(crate) authority: Option<String>,
    pub(crate) reference: Option<String>,
    pub(crate) resolution: Option<String>,
    pub(crate) witness_badge: Option<String>,
    pub(crate) witness_pin: Option<String>,
}

pub(crate) async fn incident_step(
    Visitor { st, p, ip }: Visitor,
    Path((id_text, step)): Path<(String, String)>,
    Form(f): Form<StepForm>,
) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let b = StepIn {
        text: f.text,
        to: None,
        reason: f.reason,
        obligation: f.obligation,
        authority: f.authority,
        reference: f.reference,
        at: None,
        resolution: f.resolution,
        witness: None,
    };
    let witness = f.witness_badge.filter(|w| !w.trim().is_empty()).map(|badge| WitnessIn { badge, pin: f.witness_pin.unwrap_or_default() });
    let r = async {
        let c = Command::UpdateIncident { incident: id(IncidentId::parse(&id_text))?, action: step_action(&step, &b)? };
        perform(&st, &p, &ip, witness, None, c).await
    }
    .await;
    let done = r.map(|o| o.entries.first().map(query::summarize).unwrap_or_default());
    Ok(redirect_with(&st, &p, &format!("/incidents/{}", urlencode(&id_text)), done.map(|s| format!("Recorded: {s}."))))
}
