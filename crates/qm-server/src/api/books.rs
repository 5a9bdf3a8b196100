//! API: reading the books — stock, where a serial is, history, custody, transfers, the log, units, locations, item types, people.

use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use crate::reads::*;
use crate::scope::sees;
use axum::extract::{Path, Query};
use axum::Json;
use qm_app::query::{self, StockFilter};
use qm_app::AppError;
use qm_core::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, utoipa::IntoParams, Debug)]
pub struct StockQuery {
    pub unit: Option<String>,
    pub location: Option<String>,
    pub item_type: Option<String>,
}

/// Stock by unit, account and item type, inside the caller's subtree.
#[utoipa::path(get, path = "/api/stock", tag = "reads", params(StockQuery), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn stock(Caller { st, p, .. }: Caller, Query(q): Query<StockQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let f = StockFilter {
        unit: opt(&q.unit, UnitId::parse)?,
        location: opt(&q.location, LocationId::parse)?,
        item_type: opt(&q.item_type, ItemTypeId::parse)?,
    };
    let pp = p.clone();
    let r = read(&st, move |site| Ok(stock_for(site.state(), &pp, f))).await?;
    match r {
        Ok(v) => Ok(Json(crate::error::to_json(v)?)),
        Err(what) => Err(deny_read(&st, &p, &what).await),
    }
}

#[utoipa::path(get, path = "/api/where/{serial}", tag = "reads", params(("serial" = String, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn where_is(Caller { st, p, .. }: Caller, Path(serial): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let serial = id(Serial::parse(&serial))?;
    let pp = p.clone();
    let (w, visible) = read(&st, move |site| {
        let s = site.state();
        let w = query::where_is(s, &serial)?;
        let unit = s.serials.get(&serial).and_then(|x| s.account_unit(&x.account));
        Ok((w, sees(s, &pp, unit.as_ref())))
    })
    .await?;
    if !visible {
        return Err(deny_read(&st, &p, &format!("serial {}", w.serial)).await);
    }
    Ok(Json(crate::error::to_json(w)?))
}

#[utoipa::path(get, path = "/api/history/{item}", tag = "reads", params(("item" = String, Path, description = "a serial or a lot number")), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn history(Caller { st, p, .. }: Caller, Path(what): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let (pp, w) = (p.clone(), what.clone());
    let r = read(&st, move |site| {
        let lines = query::history_seen_from(site, &w, (!pp.at_root).then_some(&pp.unit))?;
        Ok((lines, item_visible(site.state(), &pp, &w)))
    })
    .await?;
    if !r.1 {
        return Err(deny_read(&st, &p, &format!("item {what}")).await);
    }
    Ok(Json(crate::error::to_json(r.0)?))
}

#[utoipa::path(get, path = "/api/custody/{badge}", tag = "reads", params(("badge" = String, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn custody(Caller { st, p, .. }: Caller, Path(badge): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let b = id(Badge::parse(&badge))?;
    let pp = p.clone();
    let (c, visible) = read(&st, move |site| {
        let s = site.state();
        let c = query::custody(s, &b, crate::auth::now().date())?;
        let unit = s.people.get(&b).map(|x| x.unit.clone());
        Ok((c, sees(s, &pp, unit.as_ref()) || pp.badge == b))
    })
    .await?;
    if !visible {
        return Err(deny_read(&st, &p, &format!("the custody of badge {badge}")).await);
    }
    Ok(Json(crate::error::to_json(c)?))
}

#[derive(Deserialize, utoipa::IntoParams, Debug)]
pub struct AllQuery {
    #[serde(default)]
    pub all: bool,
}

/// Transfers from or to the caller's subtree: in transit, or all with `all=true`.
#[utoipa::path(get, path = "/api/transfers", tag = "reads", params(AllQuery), responses((status = 200, body = serde_json::Value)))]
pub(crate) async fn transfers(Caller { st, p, .. }: Caller, Query(q): Query<AllQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let v = read(&st, move |site| Ok(transfers_for(site.state(), &p, q.all))).await?;
    Ok(Json(crate::error::to_json(v)?))
}

#[derive(Deserialize, utoipa::IntoParams, Debug)]
pub struct LogQuery {
    /// How many of the newest entries (at most 10000; default 100).
    pub limit: Option<usize>,
}

/// The newest ledger entries made by people of the caller's subtree (HQ sees all).
#[utoipa::path(get, path = "/api/log", tag = "ledger", params(LogQuery), responses((status = 200, body = serde_json::Value)))]
pub(crate) async fn log(Caller { st, p, .. }: Caller, Query(q): Query<LogQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).min(LOG_LIMIT_MAX);
    let v = read(&st, move |site| log_for(site, &p, limit)).await?;
    Ok(Json(crate::error::to_json(v)?))
}

#[derive(Serialize, ToSchema)]
pub struct UnitOut {
    pub unit: String,
    pub name: String,
    pub parent: Option<String>,
}

#[utoipa::path(get, path = "/api/units", tag = "reads", responses((status = 200, body = Vec<UnitOut>)))]
pub(crate) async fn units(Caller { st, p, .. }: Caller) -> Result<Json<Vec<UnitOut>>, ApiError> {
    read(&st, move |site| {
        let s = site.state();
        Ok(Json(
            s.units
                .iter()
                .filter(|(u, _)| s.unit_within(u, &p.unit))
                .map(|(u, x)| UnitOut { unit: u.to_string(), name: x.name.clone(), parent: x.parent.as_ref().map(|p| p.to_string()) })
                .collect(),
        ))
    })
    .await
}

#[utoipa::path(get, path = "/api/locations", tag = "reads", responses((status = 200, body = serde_json::Value)))]
pub(crate) async fn locations(Caller { st, p, .. }: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, move |site| {
        let s = site.state();
        let v: serde_json::Map<String, serde_json::Value> = s
            .locations
            .iter()
            .filter(|(_, l)| s.unit_within(&l.unit, &p.unit))
            .map(|(id, l)| Ok((id.to_string(), crate::error::to_json(l)?)))
            .collect::<Result<_, AppError>>()?;
        Ok(Json(serde_json::Value::Object(v)))
    })
    .await
}

#[utoipa::path(get, path = "/api/item-types", tag = "reads", responses((status = 200, body = serde_json::Value)))]
pub(crate) async fn item_types(Caller { st, .. }: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, move |site| Ok(Json(crate::error::to_json(&site.state().item_types)?))).await
}

#[derive(Serialize, ToSchema)]
pub struct PersonOut {
    pub badge: String,
    pub name: String,
    pub unit: String,
    pub roles: Vec<String>,
    pub qualifications: Vec<String>,
    /// "since DATE by BADGE: reason", while suspended.
    pub suspended: Option<String>,
    /// How many serials and lots they hold now.
    pub holds: usize,
    /// The keys among what they hold, with the place each opens.
    pub keys: Vec<String>,
}

#[utoipa::path(get, path = "/api/people", tag = "reads", responses((status = 200, body = Vec<PersonOut>)))]
pub(crate) async fn people(Caller { st, p, .. }: Caller) -> Result<Json<Vec<PersonOut>>, ApiError> {
    // Who holds which key is for the armory's staff, as the people page is.
    crate::edge::staff_only(&st, &p, "the staff list").await?;
    read(&st, move |site| {
        let s = site.state();
        Ok(Json(
            qm_app::people::list(s, Some(&p.unit), crate::auth::now().date())
                .into_iter()
                .map(|v| PersonOut {
                    badge: v.badge,
                    name: v.name,
                    unit: v.unit,
                    roles: v.roles,
                    qualifications: v.qualifications.iter().map(|q| format!("{} until {}", q.qualification, q.expires)).collect(),
                    suspended: v.suspended,
                    holds: v.holds,
                    keys: v.keys,
                })
                .collect(),
        ))
    })
    .await
}
