//! API: the ledger's proofs — checkpoints, inclusion and consistency proofs, the verifier key, a full verify (HQ only).

use crate::auth::{ApiUser, Principal};
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use crate::scope::{self};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use qm_app::AppError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct CheckpointOut {
    pub size: u64,
    pub note: String,
}

#[utoipa::path(get, path = "/api/checkpoints", tag = "ledger", responses((status = 200, body = Vec<CheckpointOut>)))]
pub(crate) async fn checkpoints(Caller { st, .. }: Caller) -> Result<Json<Vec<CheckpointOut>>, ApiError> {
    read(&st, |site| {
        Ok(Json(
            site.store().checkpoints().map_err(AppError::from)?.into_iter().map(|c| CheckpointOut { size: c.size, note: c.note }).collect(),
        ))
    })
    .await
}

/// Signs a checkpoint of the whole ledger now.
#[utoipa::path(post, path = "/api/checkpoint", tag = "ledger", responses((status = 200, body = CheckpointOut)))]
pub(crate) async fn checkpoint(Caller { st, .. }: Caller) -> Result<Json<CheckpointOut>, ApiError> {
    let r = st.site.call(|site| site.checkpoint().map(|note| CheckpointOut { size: site.size(), note })).await??;
    Ok(Json(r))
}

pub(crate) fn root_only(p: &Principal, what: &str) -> Result<(), ApiError> {
    if p.at_root {
        Ok(())
    } else {
        Err(ApiError::forbidden("permission.subtree", format!("refused: {} (rule permission.subtree)", scope::outside(p, what))))
    }
}

/// Inclusion proof of one entry against the latest checkpoint (HQ only: it shows the entry itself).
#[utoipa::path(get, path = "/api/proofs/inclusion/{seq}", tag = "ledger", params(("seq" = u64, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn prove(Caller { st, p, .. }: Caller, Path(seq): Path<u64>) -> Result<Json<serde_json::Value>, ApiError> {
    root_only(&p, "entry proofs")?;
    read(&st, move |site| Ok(Json(crate::error::to_json(site.prove(seq)?)?))).await
}

#[derive(Deserialize, utoipa::IntoParams, Debug)]
pub struct ConsistencyQuery {
    pub old: u64,
    pub new: u64,
}

#[utoipa::path(get, path = "/api/proofs/consistency", tag = "ledger", params(ConsistencyQuery), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn consistency(
    State(st): State<AppState>,
    ApiUser(_p): ApiUser,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, move |site| Ok(Json(crate::error::to_json(site.prove_consistency(q.old, q.new)?)?))).await
}

#[utoipa::path(get, path = "/api/verifier-key", tag = "ledger", responses((status = 200, body = serde_json::Value)))]
pub(crate) async fn verifier_key(Caller { st, .. }: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, |site| Ok(Json(serde_json::json!({ "verifier_key": site.state().site.as_ref().map(|s| s.verifier_key.clone()) })))).await
}

/// Runs the auditor over the whole ledger (HQ only: it reads everything).
#[utoipa::path(get, path = "/api/verify", tag = "ledger", responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn verify(Caller { st, p, .. }: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    root_only(&p, "the whole ledger")?;
    read(&st, |site| {
        let r = qm_app::verify::verify(site.store(), &qm_app::verify::VerifyOptions::default());
        Ok(Json(serde_json::json!({ "ok": r.ok(), "report": crate::error::to_json(&r)? })))
    })
    .await
}
