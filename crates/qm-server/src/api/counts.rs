//! API: counts and discrepancies — start, record, close, resolve, and what is open.

use super::books::AllQuery;
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use crate::reads::*;
use crate::scope::sees;
use axum::extract::{Path, Query};
use axum::Json;
use qm_app::query::{self};
use qm_core::*;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CountStartIn {
    pub location: String,
    #[serde(default)]
    pub cycle: bool,
    #[serde(default)]
    pub blind: bool,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CountRecordIn {
    pub location: String,
    pub items: Vec<String>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ResolveIn {
    pub approve: bool,
    pub note: String,
    pub item_type: Option<String>,
    pub witness: Option<WitnessIn>,
}

#[utoipa::path(post, path = "/api/counts", tag = "counts", request_body = CountStartIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn count_start(
    Caller { st, p, ip, key }: Caller,
    JsonBody(b): JsonBody<CountStartIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let kind = if b.cycle { CountKind::Cycle } else { CountKind::Full };
    done(&st, &p, &ip, key, None, Command::StartCount { root: id(LocationId::parse(&b.location))?, kind, blind: b.blind }).await
}

#[utoipa::path(post, path = "/api/counts/{id}/record", tag = "counts", request_body = CountRecordIn, params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn count_record(
    Caller { st, p, ip, key }: Caller,
    Path(c): Path<String>,
    JsonBody(b): JsonBody<CountRecordIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let (serials, lots) = split_items(items(&b.items)?);
    let c = Command::RecordCount { count: id(CountId::parse(&c))?, location: id(LocationId::parse(&b.location))?, serials, lots };
    done(&st, &p, &ip, key, None, c).await
}

#[utoipa::path(post, path = "/api/counts/{id}/close", tag = "counts", params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn count_close(Caller { st, p, ip, key }: Caller, Path(c): Path<String>) -> Result<Json<WriteOut>, ApiError> {
    done(&st, &p, &ip, key, None, Command::CloseCount { count: id(CountId::parse(&c))? }).await
}

#[utoipa::path(post, path = "/api/discrepancies/{id}/resolve", tag = "counts", request_body = ResolveIn, params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn resolve(
    Caller { st, p, ip, key }: Caller,
    Path(d): Path<String>,
    JsonBody(b): JsonBody<ResolveIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::ResolveDiscrepancy {
        discrepancy: id(DiscrepancyId::parse(&d))?,
        approve: b.approve,
        note: b.note,
        item_type: opt(&b.item_type, ItemTypeId::parse)?,
    };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(get, path = "/api/counts", tag = "counts", responses((status = 200, body = serde_json::Value)))]
pub(crate) async fn counts(Caller { st, p, .. }: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    let v = read(&st, move |site| Ok(counts_for(site.state(), &p))).await?;
    Ok(Json(crate::error::to_json(v)?))
}

#[utoipa::path(get, path = "/api/counts/{id}", tag = "counts", params(("id" = String, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn count_show(Caller { st, p, .. }: Caller, Path(c): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let cid = id(CountId::parse(&c))?;
    let pp = p.clone();
    let (v, visible) = read(&st, move |site| {
        let s = site.state();
        let v = query::count_view(s, &cid)?;
        let unit = s.counts.get(&cid).and_then(|x| s.locations.get(&x.root)).map(|l| l.unit.clone());
        Ok((v, sees(s, &pp, unit.as_ref())))
    })
    .await?;
    if !visible {
        return Err(deny_read(&st, &p, &format!("count {c}")).await);
    }
    Ok(Json(crate::error::to_json(v)?))
}

/// Open discrepancies in the caller's subtree (or all of them with `all=true`).
#[utoipa::path(get, path = "/api/discrepancies", tag = "counts", params(AllQuery), responses((status = 200, body = serde_json::Value)))]
pub(crate) async fn discrepancies(Caller { st, p, .. }: Caller, Query(q): Query<AllQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let v = read(&st, move |site| Ok(discrepancies_for(site.state(), &p, q.all))).await?;
    Ok(Json(crate::error::to_json(v)?))
}
