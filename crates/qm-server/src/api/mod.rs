//! The HTTP JSON API: sessions, the OpenAPI document and the routes; the handlers live by domain in
//! `setup`, `movements`, `counts`, `books` (reads), `ledger` (checkpoints and proofs) and `safety`.

pub mod access;
mod books;
mod counts;
pub mod directives;
pub mod incidents;
mod ledger;
mod movements;
pub mod notifications;
pub mod safety;
pub(crate) mod setup;

use access::*;
use books::*;
use counts::*;
use directives::*;
use incidents::*;
use ledger::*;
use movements::*;
use notifications::*;
use safety::*;
use setup::*;

/// The request bodies and the item-list parser, for the fuzz target (fuzz/fuzz_targets/api_bodies.rs).
pub use crate::edge::items;
pub use movements::{DispatchIn, IssueIn, MoveIn, ReceiveIn, ReturnIn};
pub use setup::{ItemTypeIn, LocationIn};

use crate::auth::{self, ApiUser, ClientIp, Via};
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use qm_app::AppError;
use qm_core::*;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInIn {
    pub badge: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignInOut {
    pub badge: String,
    /// Send as `X-CSRF-Token` on every write made with this session's cookie.
    pub csrf: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeOut {
    pub badge: String,
    pub name: String,
    pub unit: String,
    pub roles: Vec<String>,
    /// `session` or `token`
    pub via: String,
}

/// Signs in with badge and password; sets the session cookie and returns the CSRF token.
#[utoipa::path(post, path = "/api/session", tag = "sign-in", request_body = SignInIn,
    responses((status = 200, body = SignInOut), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn session_create(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(b): JsonBody<SignInIn>,
) -> Result<Response, ApiError> {
    let (sid, csrf) = auth::sign_in(&st, &ip, &b.badge, &b.password).await?;
    let cookie = st.auth.cookie(&sid);
    Ok(([(header::SET_COOKIE, cookie)], Json(SignInOut { badge: b.badge.trim().to_string(), csrf })).into_response())
}

/// Signs out (ends the session).
#[utoipa::path(delete, path = "/api/session", tag = "sign-in", responses((status = 204)))]
pub(crate) async fn session_delete(Caller { st, p, .. }: Caller) -> Response {
    if let Via::Session { id, .. } = &p.via {
        st.auth.remove(id);
    }
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, st.auth.clear_cookie())]).into_response()
}

/// Who is asking, and through what.
#[utoipa::path(get, path = "/api/me", tag = "sign-in", responses((status = 200, body = MeOut), (status = 401, body = ErrorBody)))]
pub(crate) async fn me(ApiUser(p): ApiUser) -> Json<MeOut> {
    Json(MeOut {
        badge: p.badge.to_string(),
        name: p.name.clone(),
        unit: p.unit.to_string(),
        roles: p.roles.iter().map(|r| r.to_string()).collect(),
        via: if matches!(p.via, Via::Token { .. }) { "token".into() } else { "session".into() },
    })
}

#[utoipa::path(get, path = "/api/permissions", tag = "reads", responses((status = 200, body = serde_json::Value)))]
pub(crate) async fn permissions() -> Json<serde_json::Value> {
    use qm_core::permissions::{role_allows, Op};
    let table: serde_json::Map<String, serde_json::Value> = Op::ALL
        .iter()
        .map(|op| {
            (
                op.as_str().to_string(),
                serde_json::json!(Role::ALL.iter().filter(|r| role_allows(**r, *op)).map(|r| r.as_str()).collect::<Vec<_>>()),
            )
        })
        .collect();
    Json(serde_json::json!({ "roles_allowed": table, "markdown": qm_core::permissions::markdown_table() }))
}

pub(crate) struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("ID.SECRET").build()),
        );
        c.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::SESSION_COOKIE))));
        // Any operation can answer an error (401 unsigned, 403, 404, 413, 422, 429 limited): each
        // documents `4XX` with the one error body, so a client (and schemathesis) knows them all.
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let error = ResponseBuilder::new()
            .description("An error: `{\"error\": {\"code\", \"message\"}}` (docs/server.md, \"Errors\")")
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten() {
                let r = &mut op.responses.responses;
                if !r.contains_key("4XX") {
                    r.insert("4XX".into(), RefOr::T(error.clone()));
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Quartermaster", description = "The system of record for weapons, ammunition and explosives. Errors: {\"error\": {\"code\", \"message\"}}; writes honour `Idempotency-Key`."),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    paths(
        session_create, session_delete, me,
        unit_add, location_add, item_type_add, item_type_attributes, person_add, person_qualify, person_suspend, person_restore, person_roles, person_pin, person_duress_pin, person_password, token_issue, token_revoke, policy_set, import,
        readings, receive, issue, return_, move_, dispatch, transfer_receive, expend, destroy, report_loss, recover, lot_status, correct, preview_api,
        count_start, count_record, count_close, resolve, counts, count_show, discrepancies,
        stock, where_is, history, custody, transfers, units, locations, item_types, people, permissions,
        log, checkpoints, checkpoint, prove, consistency, verifier_key, verify,
        api_magazines, api_lots, api_conditions, api_conditions_svg, api_dsmt, api_dsmt_csv, api_qd,
        incident_open, incident_step, incidents_list, incident_show, incidents_summary,
        directive_issue, directive_step, directives_list, directive_show, directive_compliance, directive_compliance_csv, directives_banner,
        notifications_mine, notifications_outbox, notifications_retry,
        access_places, access_unmapped, access_roster, access_grant, access_revoke, access_log, access_terminal, access_webhook,
        crate::sites::sites_api, crate::sites::span_api, crate::sites::child_books_api, crate::sites::directive_sites_api, crate::sites::site_transfers_api
    ),
    components(schemas(ErrorBody, crate::error::ErrorDetail, WriteOut, EntryOut, WitnessIn, GrantIn, TerminalIn))
)]
pub struct ApiDoc;

pub(crate) async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(s) => ([(header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => ApiError::from(AppError::Internal(format!("openapi: {e}"))).into_response(),
    }
}

pub(crate) async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "not found: no such API endpoint; see /api/openapi.json")
}

/// People: registered, qualified, given credentials, suspended, restored, given other roles.
fn people_routes() -> Router<AppState> {
    Router::new()
        .route("/api/people", get(people).post(person_add))
        .route("/api/people/{badge}/qualifications", post(person_qualify))
        .route("/api/people/{badge}/suspend", post(person_suspend))
        .route("/api/people/{badge}/restore", post(person_restore))
        .route("/api/people/{badge}/roles", post(person_roles))
        .route("/api/people/{badge}/pin", post(person_pin))
        .route("/api/people/{badge}/duress-pin", post(person_duress_pin))
        .route("/api/people/{badge}/password", post(person_password))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/session", post(session_create).delete(session_delete))
        .route("/api/me", get(me))
        .route("/api/units", get(units).post(unit_add))
        .route("/api/locations", get(locations).post(location_add))
        .route("/api/item-types", get(item_types).post(item_type_add))
        .route("/api/item-types/{id}/attributes", post(item_type_attributes))
        .route("/api/tokens", post(token_issue))
        .route("/api/tokens/{id}/revoke", post(token_revoke))
        .route("/api/policies/{unit}", post(policy_set))
        .route("/api/import/{kind}", post(import))
        .route("/api/incidents", get(incidents_list).post(incident_open))
        .route("/api/incidents/summary", get(incidents_summary))
        .route("/api/incidents/{id}", get(incident_show))
        .route("/api/incidents/{id}/{step}", post(incident_step))
        .merge(directives::routes())
        .merge(access::routes())
        .route("/api/notifications", get(notifications_mine))
        .route("/api/notifications/outbox", get(notifications_outbox))
        .route("/api/notifications/outbox/{id}/retry", post(notifications_retry))
        .route("/api/locations/{id}/readings", post(readings))
        .route("/api/receive", post(receive))
        .route("/api/issue", post(issue))
        .route("/api/return", post(return_))
        .route("/api/move", post(move_))
        .route("/api/transfers", get(transfers).post(dispatch))
        .route("/api/transfers/{id}/receive", post(transfer_receive))
        .route("/api/expend", post(expend))
        .route("/api/destroy", post(destroy))
        .route("/api/report-loss", post(report_loss))
        .route("/api/recover", post(recover))
        .route("/api/lots/{lot}/status", post(lot_status))
        .route("/api/corrections", post(correct))
        .route("/api/preview", post(preview_api))
        .route("/api/counts", get(counts).post(count_start))
        .route("/api/counts/{id}", get(count_show))
        .route("/api/counts/{id}/record", post(count_record))
        .route("/api/counts/{id}/close", post(count_close))
        .route("/api/discrepancies", get(discrepancies))
        .route("/api/discrepancies/{id}/resolve", post(resolve))
        .route("/api/stock", get(stock))
        .route("/api/where/{serial}", get(where_is))
        .route("/api/history/{item}", get(history))
        .route("/api/custody/{badge}", get(custody))
        .route("/api/log", get(log))
        .route("/api/checkpoints", get(checkpoints))
        .route("/api/checkpoint", post(checkpoint))
        .route("/api/proofs/inclusion/{seq}", get(prove))
        .route("/api/proofs/consistency", get(consistency))
        .route("/api/verifier-key", get(verifier_key))
        .route("/api/verify", get(verify))
        .route("/api/permissions", get(permissions))
        .route("/api/magazines", get(api_magazines))
        .route("/api/lots", get(api_lots))
        .route("/api/locations/{id}/conditions", get(api_conditions))
        .route("/api/locations/{id}/conditions.svg", get(api_conditions_svg))
        .route("/api/magazines/{id}/dsmt", get(api_dsmt))
        .route("/api/magazines/{id}/dsmt.csv", get(api_dsmt_csv))
        .route("/api/qd", get(api_qd))
        .merge(people_routes())
        .route("/api/{*rest}", axum::routing::any(api_not_found))
}
