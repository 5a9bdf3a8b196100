//! Directive pages (docs/directives.md): the list with a form to issue one, one directive with its
//! order, relays and the forms for the next steps (acknowledge, relay, the shift briefing with
//! badge and PIN, sign off a review, extend, cancel), and its compliance — per unit, rolled up,
//! slowest first — printable as the compliance report; and the counter's briefing cards.

use crate::api::directives::{issue_command, step_action, DirectiveIn, DirectiveStepIn};
use crate::auth::{now, Principal};
use crate::edge::*;
use crate::views::{self, page};
use crate::web::*;
use axum::extract::Path;
use axum::response::IntoResponse;
use axum::Form;
use maud::{html, Markup};
use qm_app::directives::{self as dirs, Compliance, DirectiveFilter, DirectiveView};
use qm_app::query;
use qm_core::permissions::Op;
use qm_core::*;
use serde::Deserialize;

fn link(id: &str) -> String {
    format!("/directives/{}", urlencode(id))
}

pub(crate) async fn directives_page(Visitor { st, p, .. }: Visitor) -> WebResult {
    let pp = p.clone();
    let (list, levels) = st
        .site
        .call(move |site| {
            let s = site.state();
            let list = dirs::list(s, &DirectiveFilter::default(), now(), &|u| crate::scope::sees(s, &pp, Some(u)));
            (list, s.postures.0.names().into_iter().map(String::from).collect::<Vec<_>>())
        })
        .await?;
    let body = html! {
        (flash(&st, &p))
        @if list.is_empty() { p { "No directive concerns your unit." } } @else {
            table #directives {
                thead { tr { th { "Directive" } th { "Title" } th { "Posture" } th { "Status" } th { "Issued at" } th { "Until" } th.n { "Units acknowledged" } } }
                tbody { @for d in &list {
                    tr.(d.status) {
                        td { a href=(link(&d.id)) { (d.id) } }
                        td { (d.title) }
                        td { (d.posture) }
                        td { (d.status.replace('_', " ")) }
                        td { "unit " (d.unit) }
                        td { (d.ends_at) }
                        td.n { (d.units_acknowledged) " / " (d.units_concerned) }
                    }
                } }
            }
        }
        @if may(&p, Op::Directive) {
            h2 { "Issue a directive" }
            form #issue.card method="post" action="/directives" {
                (views::csrf(&p))
                label { "Unit (its whole subtree below it)" input name="unit" value=(p.unit) required; }
                label { "Only these units below it (comma-separated; empty: all)" input name="applies_to"; }
                label { "Title" input name="title" required; }
                label { "The order, in your words: the reason and what is expected" textarea name="text" rows="4" required {} }
                label { "Posture level" select name="posture" { @for l in &levels { option value=(l) { (l) } } } }
                label { "Days it runs" input name="days" type="number" min="1" max="366" value="10" required; }
                label { "Measures, one per line (" (qm_core::directives::Measure::GRAMMAR) ")" textarea name="measures" rows="4" {} }
                button #issue-button type="submit" { "Issue" }
            }
        }
    };
    Ok(page("Directives", Some(&p), "Directives", body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct IssueForm {
    csrf: String,
    unit: String,
    #[serde(default)]
    applies_to: String,
    title: String,
    text: String,
    posture: String,
    days: Option<u32>,
    #[serde(default)]
    measures: String,
}

pub(crate) async fn directive_issue_form(Visitor { st, p, ip }: Visitor, Form(f): Form<IssueForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let b = DirectiveIn {
        unit: f.unit,
        applies_to: f.applies_to.split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect(),
        title: f.title,
        text: f.text,
        posture: f.posture,
        starts_at: None,
        ends_at: None,
        days: f.days,
        measures: lines(&f.measures),
    };
    let r = async { perform(&st, &p, &ip, None, None, issue_command(&b)?).await }.await;
    match r {
        Ok(o) => {
            let id = match o.entries.first().map(|e| &e.event) {
                Some(Event::DirectiveIssued { directive, .. }) => directive.to_string(),
                _ => String::new(),
            };
            Ok(redirect_with(&st, &p, &link(&id), Ok(format!("Issued directive {id}; every unit below has it now."))))
        }
        Err(e) => Ok(redirect_with(&st, &p, "/directives", Err(e))),
    }
}

/// What the reader's unit may still do under a directive, and the measures in force there.
#[derive(Default)]
struct Mine {
    ack: bool,
    relay: bool,
    brief: bool,
    tasks: Vec<String>,
    /// The reader's unit issued it or is above the issuer: it may extend or cancel it.
    above: bool,
    measures: Vec<String>,
}

/// One directive: the order, what each unit has done, and the forms for the reader's next steps.
pub(crate) async fn directive_page(Visitor { st, p, .. }: Visitor, Path(id_text): Path<String>) -> WebResult {
    let c = crate::api::directives::compliance_of(&st, &p, &id_text).await?;
    let pp = p.clone();
    let idc = id_text.clone();
    let mine = st
        .site
        .call(move |site| -> Option<Mine> {
            let s = site.state();
            let id = DirectiveId::parse(&idc).ok()?;
            let d = s.directives.get(&id)?;
            let concerned = qm_core::directives::concerns(s, d, &pp.unit);
            let u = d.units.get(&pp.unit);
            let acked = u.is_some_and(|u| u.acknowledged.is_some());
            let relayable =
                concerned && u.is_none_or(|u| u.relayed.is_none()) && s.units.values().any(|x| x.parent.as_ref() == Some(&pp.unit));
            let in_force_here = qm_core::directives::in_force_over(s, &pp.unit, now()).iter().any(|(k, _)| **k == id);
            let briefed = d.briefed.contains_key(&pp.badge);
            let tasks: Vec<String> = qm_core::directives::tasks_for(s, d, &pp.unit)
                .keys()
                .filter(|_| concerned)
                .filter(|t| **t != "count" && u.is_none_or(|u| !u.signoffs.contains_key(**t)))
                .map(|t| t.to_string())
                .collect();
            // Issued here or below, and not yet stopped: it may be extended or cancelled from here.
            let above = s.unit_within(&d.unit, &pp.unit) && now() < d.stops_at();
            let measures = qm_core::directives::measures_at(s, d, &pp.unit).iter().map(|m| m.to_string()).collect();
            Some(Mine { ack: concerned && !acked, relay: relayable, brief: in_force_here && !briefed, tasks, above, measures })
        })
        .await?;
    let Mine { ack, relay, brief, tasks, above, measures } = mine.unwrap_or_default();
    // Headquarters' staff see it at the sites below too, from their mirrored ledgers.
    let sites = match (p.at_root, st.witness.is_some()) {
        (true, true) => crate::sites::directive_sites(&st, &p, id_text.clone()).await?,
        _ => vec![],
    };
    let officer = may(&p, Op::Directive);
    let action = |step: &str| format!("{}/{step}", link(&id_text));
    let body = html! {
        (flash(&st, &p))
        (order(&c.directive))
        @if officer && (ack || relay || !tasks.is_empty() || above) || brief && may(&p, Op::Brief) {
            section.noprint #steps {
                h2 { "Your unit, " (p.unit) }
                @if officer && ack {
                    form.card method="post" action=(action("acknowledge")) {
                        (views::csrf(&p)) input type="hidden" name="unit" value=(p.unit);
                        label { "Your PIN (badge " (p.badge) ")" input #ack-pin type="password" name="pin" autocomplete="off" required; }
                        button #ack-button type="submit" { "Acknowledge for unit " (p.unit) }
                    }
                }
                @if officer && relay {
                    form.card method="post" action=(action("relay")) {
                        (views::csrf(&p)) input type="hidden" name="unit" value=(p.unit);
                        label { "Instructions for the units below" textarea name="text" rows="3" required {} }
                        label { "Measures you add (tightening only), one per line" textarea name="measures" rows="2" {} }
                        label { "Your PIN (badge " (p.badge) ")" input #relay-pin type="password" name="pin" autocomplete="off" required; }
                        button #relay-button type="submit" { "Relay to the units below" }
                    }
                }
                @if brief && may(&p, Op::Brief) { (briefing_form(&p, &c.directive, &measures, "")) }
                @if officer { @for t in &tasks {
                    form.card method="post" action=(action("sign_off")) {
                        (views::csrf(&p)) input type="hidden" name="unit" value=(p.unit); input type="hidden" name="task" value=(t);
                        label { "Sign off the " (t.replace('_', " ")) ": what you found" input name="note" required; }
                        @if t == "transfer_review" { label { "Transfers found wrong, raised as discrepancies (one per line: T-3: why)" textarea name="raise" rows="2" {} } }
                        button.signoff type="submit" { "Sign off " (t.replace('_', " ")) }
                    }
                } }
                @if officer && above {
                    form.card method="post" action=(action("extend")) {
                        (views::csrf(&p))
                        label { "Extend to (RFC 3339)" input name="ends_at" required placeholder="2026-12-31T00:00:00Z"; }
                        label { "Why" input name="reason" required; }
                        button type="submit" { "Extend" }
                    }
                    form.card method="post" action=(action("cancel")) {
                        (views::csrf(&p))
                        label { "End it now: why" input name="reason" required; }
                        button.danger type="submit" { "Cancel the directive" }
                    }
                }
            }
        }
        (compliance_table(&c))
        @if !sites.is_empty() { (sites_table(&sites)) }
        p.noprint {
            a href=(format!("/api/directives/{}/compliance.csv", urlencode(&id_text))) { "CSV" } " · "
            a href=(format!("/api/directives/{}/compliance", urlencode(&id_text))) { "JSON" } " · "
            button.print type="button" { "Print the compliance report" }
        }
    };
    Ok(page(&format!("Directive {id_text}"), Some(&p), "Directives", body).into_response())
}

/// A directive at each child site, as its mirrored ledger says (docs/sites.md).
fn sites_table(sites: &[qm_app::span::SiteCompliance]) -> Markup {
    html! {
        section #at-sites {
            h2 { "At the sites below" }
            table #directive-sites {
                thead { tr { th { "Site" } th { "Unit" } th { "Received" } th { "Status there" } th.n { "Units acknowledged" } th.n { "Briefed" } th { "As of" } } }
                tbody { @for s in sites { tr {
                    td { a href=(format!("/sites/{}", s.origin)) { (s.origin) } } td { (s.unit) }
                    td { @if s.recorded { "yes" } @else { span.warn { "not yet" } } }
                    td { (s.status.unwrap_or("—").replace('_', " ")) }
                    td.n { @if s.recorded && s.units_acknowledged < s.units_concerned { span.warn { (s.units_acknowledged) " of " (s.units_concerned) } } @else { (s.units_acknowledged) " of " (s.units_concerned) } }
                    td.n { (s.briefed) }
                    td { (s.mirrored) " entries, " (s.mirrored_at) }
                } } }
            }
            p.hint { "Each site's own books as its entries mirrored here replay them: an acknowledgment made there shows once its next sync has reached this site's mirror." }
        }
    }
}

fn order(d: &DirectiveView) -> Markup {
    html! {
        section.card #order {
            h2 { (d.title) }
            p.lead { span.posture { (d.posture) } " posture · " (d.status.replace('_', " ")) " · issued at unit " (d.unit) " by badge " (d.issued_by) " · " (d.starts_at) " to " (d.ends_at) }
            @if !d.applies_to.is_empty() { p { "Applies to: " (d.applies_to.join(", ")) } }
            blockquote #order-text { @for l in d.text.lines() { (l) br; } }
            p { "Measures: " @if d.measures.is_empty() { "none" } @else { code { (d.measures.join(", ")) } } }
            @for r in &d.relays {
                p.relay { "Relayed by unit " (r.unit) " (badge " (r.by) ", " (r.at) "): " (r.text)
                    @if !r.measures.is_empty() { " — added " code { (r.measures.join(", ")) } } }
            }
            @if let Some(c) = &d.cancelled { p.warn { "Cancelled " (c) } }
            @if let Some(r) = &d.received_from { p #received-from { "Received from the parent site: " (r) } }
        }
    }
}

/// The shift briefing: the order's text and the acknowledgment, with the person's PIN.
fn briefing_form(p: &Principal, d: &DirectiveView, measures: &[String], back: &str) -> Markup {
    html! {
        form.card.briefing method="post" action=(format!("{}/brief", link(&d.id))) {
            (views::csrf(p)) input type="hidden" name="unit" value=(p.unit); input type="hidden" name="back" value=(back);
            p { strong { "Shift briefing: directive " (d.id) " — " (d.title) } }
            blockquote { @for l in d.text.lines() { (l) br; } }
            @for r in &d.relays { p { "Relayed by unit " (r.unit) ": " (r.text) } }
            p { "Measures in force here: " code { (measures.join(", ")) } }
            label { "Your PIN (badge " (p.badge) ")" input.brief-pin type="password" name="pin" autocomplete="off" required; }
            button.brief-button type="submit" { "I have read it and answer for the stock in my care" }
        }
    }
}

fn compliance_table(c: &Compliance) -> Markup {
    let t = &c.total;
    html! {
        h2 { "Compliance at " (c.at) }
        p #compliance-summary {
            (t.acknowledged) " of " (t.units) " units acknowledged; tasks " (t.tasks_done) " of " (t.tasks) " done, "
            span.(if t.tasks_overdue > 0 { "bad" } else { "" }) { (t.tasks_overdue) " overdue" }
            "; shift briefings " (t.briefed) " of " (t.staff) " staff; incidents raised " (t.incidents)
            @if let Some(a) = &c.all_acknowledged_after { "; every unit acknowledged " (a) " after issue" }
        }
        table #compliance {
            thead { tr { th { "Unit" } th { "Acknowledged" } th { "Relayed" } th { "Tasks" } th.n { "Briefed" } th { "Incidents" } th { "Subtree" } } }
            tbody { @for r in &c.rows {
                tr data-unit=(r.unit) {
                    td style=(format!("padding-left:{}em", 0.5 + r.depth as f32 * 1.5)) { strong { (r.unit) } " " (r.name) }
                    td.(if r.acknowledge_late { "bad" } else { "" }) {
                        @match (&r.acknowledged_by, &r.acknowledged_at) {
                            (Some(b), Some(a)) => { (a) " by " (b) @if r.acknowledge_late { " (late)" } }
                            _ => { @if r.acknowledge_late { "not acknowledged — overdue" } @else { "not yet" } }
                        }
                    }
                    td { @if let Some(a) = &r.relayed_at { (a) " by " (r.relayed_by.clone().unwrap_or_default()) } }
                    td { @for task in &r.tasks {
                        div.(match task.status.as_str() { "done" => "ok", "overdue" => "bad", _ => "warn" }) title=(task.missing.join("; ")) {
                            (task.task.replace('_', " ")) ": " (task.status)
                            @if let (Some(a), Some(b)) = (&task.done_at, &task.done_by) { " " (a) " by " (b) } @else { " (due " (task.due) ")" }
                        }
                    } }
                    td.n { (r.briefed) " / " (r.staff) }
                    td { @for i in &r.incidents { div { (i) } } }
                    td { (r.rollup.acknowledged) "/" (r.rollup.units) " ack · " (r.rollup.tasks_done) "/" (r.rollup.tasks) " tasks"
                        @if r.rollup.tasks_overdue > 0 { span.bad { " · " (r.rollup.tasks_overdue) " overdue" } } }
                }
            } }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct StepForm {
    csrf: String,
    unit: Option<String>,
    text: Option<String>,
    #[serde(default)]
    measures: String,
    task: Option<String>,
    note: Option<String>,
    ends_at: Option<String>,
    reason: Option<String>,
    pin: Option<String>,
    /// Where to go afterwards: the counter, when the briefing was asked there.
    back: Option<String>,
    #[serde(default)]
    raise: String,
}

pub(crate) async fn directive_step_form(
    Visitor { st, p, ip }: Visitor,
    Path((id_text, step)): Path<(String, String)>,
    Form(f): Form<StepForm>,
) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let b = DirectiveStepIn {
        unit: f.unit,
        text: f.text,
        measures: lines(&f.measures),
        task: f.task,
        note: f.note,
        ends_at: f.ends_at,
        reason: f.reason,
        raise: lines(&f.raise),
    };
    let r = async {
        // A unit's acknowledgment, a relay and the shift briefing are given with the person's own
        // badge and PIN, as at the counter.
        if matches!(step.as_str(), "brief" | "acknowledge" | "relay") {
            crate::auth::check_pin(&st, &ip, &p.badge, f.pin.as_deref().unwrap_or(""), &step).await?;
        }
        let c = Command::UpdateDirective { directive: id(DirectiveId::parse(&id_text))?, action: step_action(&step, &b, &p.unit)? };
        perform(&st, &p, &ip, None, None, c).await
    }
    .await;
    let done = r.map(|o| o.entries.first().map(query::summarize).unwrap_or_default());
    let to = if f.back.as_deref() == Some("/counter") { "/counter".to_string() } else { link(&id_text) };
    Ok(redirect_with(&st, &p, &to, done.map(|s| format!("Recorded: {s}."))))
}

/// The counter's briefing cards: every directive in force over the signed-in person's unit they
/// have not acknowledged, with its text and the form (asked once per directive and person).
pub(crate) async fn counter_briefings(st: &AppState, p: &Principal) -> Result<Markup, WebError> {
    let pp = p.clone();
    let due: Vec<(DirectiveView, Vec<String>)> = st
        .site
        .call(move |site| {
            let s = site.state();
            qm_core::directives::in_force_over(s, &pp.unit, now())
                .into_iter()
                .filter(|(_, d)| !d.briefed.contains_key(&pp.badge))
                .map(|(id, d)| {
                    let measures = qm_core::directives::measures_at(s, d, &pp.unit).iter().map(|m| m.to_string()).collect();
                    (dirs::view(s, id, d, now()), measures)
                })
                .collect()
        })
        .await?;
    Ok(html! { @for (d, measures) in &due { (briefing_form(p, d, measures, "/counter")) } })
}
