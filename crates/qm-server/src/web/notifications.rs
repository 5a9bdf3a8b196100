//! The notifications page: what the signed-in person has been told (the web channel), and, for an
//! administrator of the site's root unit, the outbox of e-mails and webhooks with every failed
//! delivery and its last error, and a button to try one again at once.

use crate::api::notifications::{mine, outbox, require_site_admin, retry};
use crate::views::{self, page};
use crate::web::*;
use axum::extract::{Path, Query};
use axum::response::IntoResponse;
use axum::Form;
use maud::{html, Markup};
use qm_app::notify::OutboxView;
use qm_core::Role;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(crate) struct NotificationsQ {
    pub(crate) pending: Option<String>,
}

fn incident_link(v: &OutboxView) -> Markup {
    html! { @if let Some(i) = &v.incident { a href=(format!("/incidents/{i}")) { (i) } } @else { "—" } }
}

fn outbox_table(p: &crate::auth::Principal, list: &[OutboxView]) -> Markup {
    html! {
        @if list.is_empty() { p.hint #outbox-empty { "The outbox is empty." } } @else {
            table #outbox {
                thead { tr { th { "Created" } th { "Channel" } th { "To" } th { "Incident" } th { "Subject" } th { "State" } th { "Attempts" } th { "Next attempt" } th { "Last error" } th {} } }
                tbody { @for v in list { tr.(format!("out-{}", v.status)) {
                    td { (v.created) } td { (v.channel) } td { (v.target) } td { (incident_link(v)) } td { (v.subject) }
                    td.status { @match v.status { "delivered" => span.good { "delivered " (v.delivered.as_deref().unwrap_or("")) }, "failing" => span.bad { "failing" }, _ => span.warn { "waiting" } } }
                    td { (v.attempts) } td { (v.next_attempt.as_deref().unwrap_or("—")) } td.error { (v.last_error.as_deref().unwrap_or("")) }
                    td { @if v.status != "delivered" {
                        form method="post" action=(format!("/notifications/outbox/{}/retry", v.id)) { (views::csrf(p)) button type="submit" { "Try again now" } }
                    } }
                } } }
            }
        }
    }
}

pub(crate) async fn notifications_page(Visitor { st, p, .. }: Visitor, Query(q): Query<NotificationsQ>) -> WebResult {
    let list = mine(&st, &p).await?;
    let admin = p.at_root && p.roles.contains(&Role::Admin);
    let pending = q.pending.as_deref() == Some("1");
    let out = if admin { Some(outbox(&st, pending).await?) } else { None };
    let failing = out.as_ref().map_or(0, |o| o.iter().filter(|v| v.status == "failing").count());
    let body = html! {
        (flash(&st, &p))
        h2 { "Told to you" }
        div #my-notifications-live data-newest=(list.first().map(|v| v.id.as_str()).unwrap_or("")) {
            @if list.is_empty() { p.hint #no-notifications { "Nothing yet. The incidents you are told of appear here, newest first, as they come." } } @else {
                table #my-notifications {
                    thead { tr { th { "When" } th { "Incident" } th { "What" } } }
                    tbody { @for v in &list { tr { td { (v.created) } td { (incident_link(v)) } td { (v.subject) } } } }
                }
            }
        }
        @if let Some(out) = &out {
            h2 { "Outbox: e-mail and webhooks" }
            @if failing > 0 { p.msg.err #outbox-failing role="alert" { (failing) " message(s) could not be delivered yet; each is tried again with a growing wait, and never dropped." } }
            form.filters method="get" action="/notifications" {
                label { input type="checkbox" name="pending" value="1" checked[pending]; " only those not delivered" } button type="submit" { "Show" }
            }
            (outbox_table(&p, out))
        }
    };
    Ok(page("Notifications", Some(&p), "Notifications", body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct RetryForm {
    pub(crate) csrf: String,
}

pub(crate) async fn notification_retry(Visitor { st, p, .. }: Visitor, Path(id): Path<String>, Form(f): Form<RetryForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    require_site_admin(&st, &p, "the outbox").await?;
    let r = retry(&st, &p, id).await.map(|v| format!("{} to {} will be tried again within seconds.", v.channel, v.target));
    Ok(redirect_with(&st, &p, "/notifications", r))
}
