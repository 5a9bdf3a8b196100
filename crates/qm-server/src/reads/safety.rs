//! Storage-safety read views under the principal's scope: magazines, lots, conditions, the DSMT
//! and quantity-distance, shared by the API (`api::safety`) and the pages (`web::safety`).

use crate::auth::Principal;
use crate::edge::*;
use crate::error::ApiError;
use crate::AppState;
use qm_app::conditions::{self, ConditionsView};
use qm_app::magazines::{self, Dsmt, LotFilter, LotView, MagazineView};
use qm_core::*;
use serde::Deserialize;
use time::{Date, OffsetDateTime};
use utoipa::IntoParams;

/// Most readings one conditions request returns (and charts).
pub const READINGS_MAX: usize = 100_000;

/// Default window of the lots page: expiring within this many days.
pub const EXPIRING_DAYS: i64 = 90;

/// Default range of the conditions page, in days back from today.
pub const CONDITIONS_DAYS: i64 = 7;

/// A read's result: `Err(what)` names something outside the principal's subtree.
pub(crate) type Scoped<T> = Result<Result<T, String>, ApiError>;

/// Records and refuses a read outside the subtree; passes anything else through.
pub(crate) async fn scoped<T>(st: &AppState, p: &Principal, r: Scoped<T>) -> Result<T, ApiError> {
    match r? {
        Ok(v) => Ok(v),
        Err(what) => Err(deny_read(st, p, &what).await),
    }
}

/// The unit a read covers: the one asked for (inside the principal's subtree) or the principal's own.
pub(crate) fn unit_in_scope(s: &qm_core::State, p: &Principal, unit: &Option<String>) -> Scoped<UnitId> {
    let Some(u) = opt(unit, UnitId::parse)? else { return Ok(Ok(p.unit.clone())) };
    if !s.units.contains_key(&u) {
        return Err(ApiError::not_found("unit", u.as_str()));
    }
    Ok(if s.unit_within(&u, &p.unit) { Ok(u) } else { Err(format!("unit {u}")) })
}

/// A location the principal may see (any kind, or a magazine or depot when `magazine`).
pub(crate) fn location_in_scope(s: &qm_core::State, p: &Principal, l: &LocationId, magazine: bool) -> Scoped<()> {
    let loc = s.locations.get(l).ok_or_else(|| ApiError::not_found("location", l.as_str()))?;
    if !s.unit_within(&loc.unit, &p.unit) {
        return Ok(Err(format!("location {l}")));
    }
    if magazine && !matches!(loc.kind, LocationKind::Magazine | LocationKind::Depot) {
        return Err(ApiError::usage(format!("{l} is a {}; the daily summary is kept per magazine or depot", loc.kind)));
    }
    Ok(Ok(()))
}

/// Magazines and depots in the principal's subtree (or a unit of it).
pub(crate) fn magazines_for(s: &qm_core::State, p: &Principal, unit: &Option<String>) -> Scoped<Vec<MagazineView>> {
    Ok(unit_in_scope(s, p, unit)?.map(|u| magazines::magazines(s, Some(&u))))
}

pub(crate) fn lot_filter(filter: &Option<String>, days: Option<i64>) -> Result<LotFilter, ApiError> {
    match filter.as_deref().map(str::trim).filter(|f| !f.is_empty()).unwrap_or("expiring") {
        "expiring" => match days.unwrap_or(EXPIRING_DAYS) {
            d @ 0..=36_500 => Ok(LotFilter::Expiring(d)),
            d => Err(ApiError::usage(format!("days {d}: give 0 to 36500"))),
        },
        "expired" => Ok(LotFilter::Expired),
        "suspended" => Ok(LotFilter::Suspended),
        "all" => Ok(LotFilter::All),
        other => Err(ApiError::usage(format!("filter {other:?}: use expiring, expired, suspended or all"))),
    }
}

/// Lots held in the principal's subtree (or a unit of it), by life or status.
pub(crate) fn lots_for(s: &qm_core::State, p: &Principal, q: &LotsQuery) -> Scoped<Vec<LotView>> {
    let f = lot_filter(&q.filter, q.days)?;
    Ok(unit_in_scope(s, p, &q.unit)?.map(|u| {
        let mut v = magazines::lots(s, f, magazines::today(), Some(&u));
        // "all" lists every lot; below HQ only those held in the subtree.
        if !p.at_root {
            v.retain(|l| !l.held.is_empty());
        }
        v
    }))
}

pub(crate) fn day(s: &str) -> Result<Date, ApiError> {
    crate::edge::id(qm_core::command::parse_date(s))
}

pub(crate) fn day_or(v: &Option<String>, default: Date) -> Result<Date, ApiError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => day(s),
        None => Ok(default),
    }
}

/// The range of a conditions read: from the start of `since` to the end of `until` (UTC days).
pub(crate) fn range(q: &RangeQuery) -> Result<(Date, Date, OffsetDateTime, OffsetDateTime), ApiError> {
    let today = magazines::today();
    let until = day_or(&q.until, today)?;
    let since = day_or(&q.since, until - time::Duration::days(CONDITIONS_DAYS))?;
    if since > until {
        return Err(ApiError::usage(format!("since {since} is after until {until}")));
    }
    Ok((since, until, since.midnight().assume_utc(), until.midnight().assume_utc() + time::Duration::days(1)))
}

/// A place's readings and excursions in a range, and the excursion spans for the chart.
pub(crate) type ConditionsRead = (ConditionsView, Vec<(OffsetDateTime, Option<OffsetDateTime>)>);

pub(crate) async fn conditions_for(st: &AppState, p: &Principal, loc: &str, q: &RangeQuery) -> Result<ConditionsRead, ApiError> {
    let l = id(LocationId::parse(loc))?;
    let (_, _, since, until) = range(q)?;
    let pp = p.clone();
    let r = st
        .site
        .call(move |site| -> Scoped<ConditionsRead> {
            if let Err(what) = location_in_scope(site.state(), &pp, &l, false)? {
                return Ok(Err(what));
            }
            let view = conditions::conditions(site, &l, since, until, READINGS_MAX)?;
            let spans = site.state().excursions.values().filter(|x| x.location == l).map(|x| (x.started_at, x.ended_at)).collect();
            Ok(Ok((view, spans)))
        })
        .await?;
    scoped(st, p, r).await
}

pub(crate) async fn dsmt_for(st: &AppState, p: &Principal, mag: &str, date: &Option<String>) -> Result<Dsmt, ApiError> {
    let m = id(LocationId::parse(mag))?;
    let d = day_or(date, magazines::today())?;
    let pp = p.clone();
    let r = st
        .site
        .call(move |site| -> Scoped<Dsmt> {
            if let Err(what) = location_in_scope(site.state(), &pp, &m, true)? {
                return Ok(Err(what));
            }
            Ok(Ok(magazines::dsmt(site, &m, d)?))
        })
        .await?;
    scoped(st, p, r).await
}

/// The locations (or only the magazines and depots) in the principal's subtree: id and name.
pub(crate) async fn places(st: &AppState, p: &Principal, magazines_only: bool) -> Result<Vec<(String, String)>, ApiError> {
    let unit = p.unit.clone();
    Ok(st
        .site
        .call(move |site| {
            let s = site.state();
            s.locations
                .iter()
                .filter(|(_, l)| s.unit_within(&l.unit, &unit))
                .filter(|(_, l)| !magazines_only || matches!(l.kind, LocationKind::Magazine | LocationKind::Depot))
                .map(|(k, l)| (k.to_string(), l.name.clone()))
                .collect()
        })
        .await?)
}

#[derive(Deserialize, IntoParams, Debug, Default)]
pub struct UnitQuery {
    /// A unit inside your subtree (default: your own unit).
    pub unit: Option<String>,
}

#[derive(Deserialize, IntoParams, Debug, Default)]
pub struct LotsQuery {
    /// `expiring` (default), `expired`, `suspended` or `all`.
    pub filter: Option<String>,
    /// For `expiring`: within this many days (default 90), or already past.
    pub days: Option<i64>,
    /// A unit inside your subtree (default: your own unit).
    pub unit: Option<String>,
}

#[derive(Deserialize, IntoParams, Debug, Default)]
pub struct RangeQuery {
    /// First day, `YYYY-MM-DD` (UTC; default: seven days before `until`).
    pub since: Option<String>,
    /// Last day, `YYYY-MM-DD`, included (UTC; default: today).
    pub until: Option<String>,
}

#[derive(Deserialize, IntoParams, Debug, Default)]
pub struct DateQuery {
    /// The day, `YYYY-MM-DD` (UTC; default: today).
    pub date: Option<String>,
}

#[derive(Deserialize, IntoParams, Debug)]
pub struct QdQuery {
    /// Hazard division, e.g. `1.1`.
    pub hd: String,
    /// Required distances for this NEQ (kg) to every kind of exposed site.
    pub neq_kg: Option<f64>,
    /// Or: the largest NEQ these distances allow, `KIND=METRES` separated by commas
    /// (e.g. `inhabited_building=180,public_traffic_route=100`).
    pub distances: Option<String>,
}
