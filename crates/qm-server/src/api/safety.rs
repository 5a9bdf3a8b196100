//! API: storage safety — condition readings in, magazines, lots, conditions (JSON and SVG), the DSMT (JSON and CSV), quantity-distance.

use crate::auth::now;
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use crate::reads::safety::*;
use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use qm_app::conditions::{self};
use qm_app::magazines::{self, QdLine};
use qm_core::*;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReadingIn {
    /// RFC 3339 time of the reading.
    pub at: String,
    pub temperature_c: Option<f64>,
    pub humidity_pct: Option<f64>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReadingsIn {
    pub readings: Vec<ReadingIn>,
}

/// Most readings in one request.
pub const READINGS_MAX: usize = 10_000;

/// Storage-condition readings for one place (a sensor or a keeper's thermometer): stored, digested
/// into the ledger, and checked for excursions.
#[utoipa::path(post, path = "/api/locations/{id}/readings", tag = "safety", request_body = ReadingsIn, params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn readings(
    Caller { st, p, key, .. }: Caller,
    Path(loc): Path<String>,
    JsonBody(b): JsonBody<ReadingsIn>,
) -> Result<Json<WriteOut>, ApiError> {
    if b.readings.len() > READINGS_MAX {
        return Err(ApiError::usage(format!("{} readings in one request; the limit is {READINGS_MAX}", b.readings.len())));
    }
    let location = id(LocationId::parse(&loc))?;
    let mut list = vec![];
    for r in &b.readings {
        let at = time::OffsetDateTime::parse(&r.at, &time::format_description::well_known::Rfc3339)
            .map_err(|e| ApiError::usage(format!("reading time {:?}: {e}", r.at)))?;
        list.push(qm_core::conditions::Reading { at, temperature_c: r.temperature_c, humidity_pct: r.humidity_pct });
    }
    let key = key.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let actor = p.actor();
    let o = st.site.call(move |site| site.record_readings(actor, &location, list, &key, now())).await??;
    Ok(Json(WriteOut::from(&o)))
}

/// Magazines and depots in your subtree: NEQ by hazard division against the licence and every
/// quantity-distance limit, headroom, compatibility groups, and a warning within 10 % of a limit.
#[utoipa::path(get, path = "/api/magazines", tag = "safety", params(UnitQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_magazines(Caller { st, p, .. }: Caller, Query(q): Query<UnitQuery>) -> Result<Response, ApiError> {
    let pp = p.clone();
    let r = st.site.call(move |site| magazines_for(site.state(), &pp, &q.unit)).await?;
    Ok(Json(scoped(&st, &p, r).await?).into_response())
}

/// Lots expiring (default: within 90 days, or past), expired, suspended (or all), with where the
/// stock is held inside your subtree.
#[utoipa::path(get, path = "/api/lots", tag = "safety", params(LotsQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_lots(Caller { st, p, .. }: Caller, Query(q): Query<LotsQuery>) -> Result<Response, ApiError> {
    let pp = p.clone();
    let r = st.site.call(move |site| lots_for(site.state(), &pp, &q)).await?;
    Ok(Json(scoped(&st, &p, r).await?).into_response())
}

/// Storage conditions at a place: its readings in a range, its allowed band and the excursions
/// (start, end, peak, lots exposed) that touch the range.
#[utoipa::path(get, path = "/api/locations/{id}/conditions", tag = "safety", params(("id" = String, Path), RangeQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_conditions(
    Caller { st, p, .. }: Caller,
    Path(loc): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let (view, _) = conditions_for(&st, &p, &loc, &q).await?;
    Ok(Json(view).into_response())
}

/// The temperature chart of a place (SVG): the allowed band shaded, excursions marked. 422 when
/// there is no temperature reading in the range.
#[utoipa::path(get, path = "/api/locations/{id}/conditions.svg", tag = "safety", params(("id" = String, Path), RangeQuery),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = "4XX", body = ErrorBody)))]
pub async fn api_conditions_svg(
    Caller { st, p, .. }: Caller,
    Path(loc): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let (view, spans) = conditions_for(&st, &p, &loc, &q).await?;
    let svg = conditions::chart_svg(&view, &spans)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg).into_response())
}

/// The daily summary of magazine transactions (27 CFR 555.127) of a magazine or depot for one day:
/// per item type and lot, opening, received, removed (with who) and closing.
#[utoipa::path(get, path = "/api/magazines/{id}/dsmt", tag = "safety", params(("id" = String, Path), DateQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_dsmt(Caller { st, p, .. }: Caller, Path(mag): Path<String>, Query(q): Query<DateQuery>) -> Result<Response, ApiError> {
    Ok(Json(dsmt_for(&st, &p, &mag, &q.date).await?).into_response())
}

/// The daily summary as CSV (one row per item type and lot, with a header line).
#[utoipa::path(get, path = "/api/magazines/{id}/dsmt.csv", tag = "safety", params(("id" = String, Path), DateQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = "4XX", body = ErrorBody)))]
pub async fn api_dsmt_csv(Caller { st, p, .. }: Caller, Path(mag): Path<String>, Query(q): Query<DateQuery>) -> Result<Response, ApiError> {
    let d = dsmt_for(&st, &p, &mag, &q.date).await?;
    let name = format!("attachment; filename=\"dsmt-{}-{}.csv\"", d.magazine, d.date);
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, name)], magazines::dsmt_csv(&d))
        .into_response())
}

/// Quantity-distance: the distances a hazard division and NEQ require to every kind of exposed
/// site (`neq_kg`), or the largest NEQ the given distances allow (`distances`). Site tables only.
#[utoipa::path(get, path = "/api/qd", tag = "safety", params(QdQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub async fn api_qd(Caller { st, .. }: Caller, Query(q): Query<QdQuery>) -> Result<Response, ApiError> {
    let distances = match &q.distances {
        Some(list) => Some(
            list.split(',')
                .filter(|x| !x.trim().is_empty())
                .map(|x| {
                    let (k, m) = x.split_once('=').ok_or_else(|| ApiError::usage(format!("distance {x:?}: write KIND=METRES")))?;
                    let m: f64 = m.trim().parse().map_err(|_| ApiError::usage(format!("distance {x:?}: {m:?} is not a number")))?;
                    Ok((k.trim().to_string(), m))
                })
                .collect::<Result<Vec<_>, ApiError>>()?,
        ),
        None => None,
    };
    let (hd, neq) = (q.hd.trim().to_string(), q.neq_kg);
    let lines = st
        .site
        .call(move |site| -> Result<Vec<QdLine>, ApiError> {
            let tables = &site.state().safety.0;
            match (neq, distances) {
                (Some(n), None) => Ok(magazines::qd_distances(tables, &hd, n)?),
                (None, Some(d)) => Ok(magazines::qd_max_neq(tables, &hd, &d)?),
                _ => Err(ApiError::usage("give either neq_kg or distances")),
            }
        })
        .await??;
    Ok(Json(lines).into_response())
}
