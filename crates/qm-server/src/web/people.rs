//! The people page: the staff of the person's subtree with their roles, qualifications and when each
//! expires, whether they are suspended, what they hold and the keys among it; an administrator adds
//! people, suspends and restores them and changes their roles, each recorded in the ledger.

use crate::auth::Principal;
use crate::edge::*;
use crate::views::{self, page};
use crate::web::*;
use axum::extract::{Path, Query};
use axum::response::IntoResponse;
use axum::Form;
use maud::{html, Markup};
use qm_app::people::{self, PersonView};
use qm_core::event::PersonChange;
use qm_core::permissions::Op;
use qm_core::*;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(crate) struct UnitQ {
    pub(crate) unit: Option<String>,
}

pub(crate) async fn people_page(Visitor { st, p, .. }: Visitor, Query(q): Query<UnitQ>) -> WebResult {
    if let Some(refused) = super::books::staff_only(&st, &p, "the staff list").await {
        return Ok(refused);
    }
    let pp = p.clone();
    let wanted = opt(&q.unit, UnitId::parse)?;
    let (list, units) = st
        .site
        .call(move |site| {
            let s = site.state();
            // A unit outside the person's subtree shows nothing more than their own subtree.
            let within = wanted.filter(|u| s.unit_within(u, &pp.unit)).unwrap_or(pp.unit.clone());
            let units: Vec<String> = s.units.keys().filter(|u| s.unit_within(u, &pp.unit)).map(|u| u.to_string()).collect();
            (people::list(s, Some(&within), crate::auth::now().date()), units)
        })
        .await?;
    let body = html! {
        (flash(&st, &p))
        form.inline.noprint method="get" action="/people" {
            label { "Unit and below " select name="unit" { @for u in &units { option value=(u) selected[q.unit.as_deref() == Some(u.as_str())] { (u) } } } }
            button type="submit" { "Show" }
        }
        (people_table(&list))
        @if may(&p, Op::Setup) { (add_form(&p, &units)) }
    };
    Ok(page("People", Some(&p), "People", body).into_response())
}

fn people_table(list: &[PersonView]) -> Markup {
    html! {
        table #people {
            thead { tr { th { "Badge" } th { "Name" } th { "Unit" } th { "Roles" } th { "Qualifications" } th { "Status" } th.n { "Holds" } th { "Keys" } } }
            tbody { @for v in list { tr.suspended[v.suspended.is_some()] {
                td { a href=(format!("/people/{}", urlencode(&v.badge))) { (v.badge) } }
                td { (v.name) } td { (v.unit) } td { (v.roles.join(", ")) }
                td { @for q in &v.qualifications { div.warn[q.expired] { (q.qualification) " until " (q.expires) @if q.expired { " (expired)" } } } }
                td { @if let Some(s) = &v.suspended { span.warn { "suspended " (s) } } @else { "active" } }
                td.n { (v.holds) }
                td { (v.keys.join(", ")) }
            } } }
        }
    }
}

fn role_boxes(current: &[String]) -> Markup {
    html! {
        fieldset.roles { legend { "Roles" }
            @for r in Role::ALL { label.inline { input type="checkbox" name="role" value=(r.as_str()) checked[current.iter().any(|c| c == r.as_str())]; " " (r.as_str()) } }
        }
    }
}

fn add_form(p: &Principal, units: &[String]) -> Markup {
    html! {
        form #person-add.card method="post" action="/people/add" {
            h2 { "Add a person" }
            (views::csrf(p))
            label { "Badge" input name="badge" required autocomplete="off"; }
            label { "Name" input name="name" required autocomplete="off"; }
            label { "Unit" select name="unit" { @for u in units { option value=(u) selected[*u == p.unit.as_str()] { (u) } } } }
            (role_boxes(&[]))
            label { "PIN (the person changes it at the counter)" input type="password" name="pin" required autocomplete="new-password"; }
            button type="submit" { "Add" }
        }
    }
}

pub(crate) async fn person_page(Visitor { st, p, .. }: Visitor, Path(badge): Path<String>) -> WebResult {
    if let Some(refused) = super::books::staff_only(&st, &p, "the staff list").await {
        return Ok(refused);
    }
    let b = id(Badge::parse(&badge))?;
    let pp = p.clone();
    let found = st
        .site
        .call(move |site| {
            let s = site.state();
            let today = crate::auth::now().date();
            s.people
                .get(&b)
                .map(|x| (s.unit_within(&x.unit, &pp.unit), people::view(s, &b, x, today), qm_app::query::custody(s, &b, today).ok()))
        })
        .await?;
    let Some((visible, v, custody)) = found else { return Err(crate::error::ApiError::not_found("badge", &badge).into()) };
    if !visible {
        return Err(deny_read(&st, &p, &format!("badge {badge}")).await.into());
    }
    let admin = may(&p, Op::Setup) && v.badge != p.badge.as_str();
    let action = |step: &str| format!("/people/{}/{step}", urlencode(&v.badge));
    let body = html! {
        (flash(&st, &p))
        (people_table(std::slice::from_ref(&v)))
        h2 { "Holds now" }
        @if let Some(c) = &custody { (super::counter::custody_table(c)) }
        @if admin {
            @if v.suspended.is_some() {
                form #person-restore.card method="post" action=(action("restore")) {
                    h2 { "Restore" } (views::csrf(&p))
                    label { "Why" input name="reason" required autocomplete="off"; }
                    button type="submit" { "Restore" }
                }
            } @else {
                form #person-suspend.card method="post" action=(action("suspend")) {
                    h2 { "Suspend" } (views::csrf(&p))
                    p.hint { "They may not sign in, act, witness or be issued anything until restored; what they hold stays on their name." }
                    label { "Why" input name="reason" required autocomplete="off"; }
                    button type="submit" { "Suspend" }
                }
            }
            form #person-roles.card method="post" action=(action("roles")) {
                h2 { "Roles" } (views::csrf(&p))
                (role_boxes(&v.roles))
                button type="submit" { "Change the roles" }
            }
        }
    };
    Ok(page(&format!("{} · badge {}", v.name, v.badge), Some(&p), "People", body).into_response())
}

/// A form's fields, some repeated (the role checkboxes).
type Fields = Vec<(String, String)>;

fn field<'a>(f: &'a Fields, name: &str) -> &'a str {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn roles(f: &Fields) -> Result<Vec<Role>, WebError> {
    Ok(f.iter()
        .filter(|(k, _)| k == "role")
        .map(|(_, v)| Role::parse(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(crate::error::ApiError::usage)?)
}

pub(crate) async fn person_add(Visitor { st, p, ip }: Visitor, Form(f): Form<Fields>) -> WebResult {
    check_csrf(&p, field(&f, "csrf"))?;
    let badge = id(Badge::parse(field(&f, "badge")))?;
    let c = Command::RegisterPerson {
        badge: badge.clone(),
        name: field(&f, "name").trim().to_string(),
        unit: id(UnitId::parse(field(&f, "unit")))?,
        roles: roles(&f)?,
        pin_hash: crate::api::setup::hash(field(&f, "pin").to_string()).await?,
    };
    let outcome = perform(&st, &p, &ip, None, None, c).await.map(|_| format!("Badge {badge} registered."));
    let to = if outcome.is_ok() { format!("/people/{}", urlencode(badge.as_str())) } else { "/people".into() };
    Ok(redirect_with(&st, &p, &to, outcome))
}

pub(crate) async fn person_step(
    Visitor { st, p, ip }: Visitor,
    Path((badge, step)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> WebResult {
    check_csrf(&p, field(&f, "csrf"))?;
    let b = id(Badge::parse(&badge))?;
    let reason = field(&f, "reason").trim().to_string();
    let (change, done) = match step.as_str() {
        "suspend" => (PersonChange::Suspended { reason }, "suspended"),
        "restore" => (PersonChange::Restored { reason }, "restored"),
        "roles" => (PersonChange::Roles { roles: roles(&f)? }, "given the roles chosen"),
        _ => return Err(crate::error::ApiError::not_found("step", &step).into()),
    };
    let outcome =
        perform(&st, &p, &ip, None, None, Command::ChangePerson { badge: b, change }).await.map(|_| format!("Badge {badge} {done}."));
    Ok(redirect_with(&st, &p, &format!("/people/{}", urlencode(&badge)), outcome))
}
