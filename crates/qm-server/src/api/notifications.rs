//! API: notifications — the signed-in person's list (the web channel), and the outbox of e-mails
//! and webhooks with each delivery's state, for the site's administrators (docs/notifications.md).

use crate::auth::{now, record_denial, Principal};
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;
use axum::extract::{Path, Query};
use axum::Json;
use qm_app::notify::{self, OutboxView};
use qm_core::*;
use qm_store::OutboxQuery;
use serde::Deserialize;
use utoipa::IntoParams;

/// Most messages one list shows.
pub const LIST_MAX: usize = 200;

#[derive(Deserialize, IntoParams, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct OutboxQ {
    /// Only messages not delivered yet.
    pub pending: Option<bool>,
}

/// The outbox holds every unit's incidents and staff's addresses: only an administrator of the
/// site's root unit sees it. Anyone else is refused, and the attempt recorded.
pub(crate) async fn require_site_admin(st: &AppState, p: &Principal, what: &str) -> Result<(), ApiError> {
    if p.at_root && p.roles.contains(&Role::Admin) {
        return Ok(());
    }
    let why = format!("badge {} (unit {}) may not see {what}: only an administrator of the site's root unit may", p.badge, p.unit);
    record_denial(st, p.badge.as_str(), "read", &why).await;
    Err(ApiError::forbidden("permission.role", format!("refused: {why} (rule permission.role)")))
}

/// The principal's own notifications, newest first.
pub(crate) async fn mine(st: &AppState, p: &Principal) -> Result<Vec<OutboxView>, ApiError> {
    let badge = p.badge.to_string();
    read(st, move |site| {
        let q = OutboxQuery { channel: Some("web".into()), target: Some(badge), limit: LIST_MAX, ..Default::default() };
        Ok(notify::views(site.state(), site.outbox(&q)?))
    })
    .await
}

/// The outbox of e-mails and webhooks, newest first.
pub(crate) async fn outbox(st: &AppState, pending: bool) -> Result<Vec<OutboxView>, ApiError> {
    read(st, move |site| {
        let q = OutboxQuery { pending_only: pending, limit: LIST_MAX * 5, ..Default::default() };
        let all = site.outbox(&q)?.into_iter().filter(|m| m.channel != "web").take(LIST_MAX).collect();
        Ok(notify::views(site.state(), all))
    })
    .await
}

#[utoipa::path(get, path = "/api/notifications", tag = "notifications",
    responses((status = 200, body = serde_json::Value, description = "the signed-in person's notifications, newest first"), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn notifications_mine(Caller { st, p, .. }: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(crate::error::to_json(mine(&st, &p).await?)?))
}

#[utoipa::path(get, path = "/api/notifications/outbox", tag = "notifications", params(OutboxQ),
    responses((status = 200, body = serde_json::Value, description = "e-mails and webhooks with their delivery state"), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn notifications_outbox(
    Caller { st, p, .. }: Caller,
    Query(q): Query<OutboxQ>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_site_admin(&st, &p, "the outbox").await?;
    Ok(Json(crate::error::to_json(outbox(&st, q.pending.unwrap_or(false)).await?)?))
}

/// Asks for a message to be tried at once (the delivery task's next round).
pub(crate) async fn retry(st: &AppState, p: &Principal, id: String) -> Result<OutboxView, ApiError> {
    require_site_admin(st, p, "the outbox").await?;
    let v = st
        .site
        .call(move |site| -> Result<OutboxView, ApiError> {
            let m = site.outbox_retry(&id, now())?;
            Ok(notify::views(site.state(), vec![m]).remove(0))
        })
        .await??;
    tracing::info!(id = %v.id, by = %p.badge, "notification to be tried again at once");
    Ok(v)
}

#[utoipa::path(post, path = "/api/notifications/outbox/{id}/retry", tag = "notifications", params(("id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn notifications_retry(Caller { st, p, .. }: Caller, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(crate::error::to_json(retry(&st, &p, id).await?)?))
}
