//! The counter's commands and preview, shared by the API (`POST /api/preview`) and the counter
//! page: an issue or return typed or scanned as lines (`SERIAL`, `LOT:QTY`) becomes commands,
//! decided against the books without recording anything.

use crate::auth::{now, Principal};
use crate::edge::*;
use crate::error::ApiError;
use crate::AppState;
use qm_app::query::{self};
use qm_app::{AppError, Request};
use qm_core::*;
use serde::Serialize;
use utoipa::ToSchema;

/// What a command would do, without doing it: the entries it would append, or the refusal.
#[derive(Serialize, ToSchema, Debug)]
pub struct PreviewOut {
    pub ok: bool,
    pub summaries: Vec<String>,
    pub error: Option<crate::error::ErrorDetail>,
    /// True when the refusal asks for a witness (rule two_person).
    pub needs_witness: bool,
}

/// Decides a command against the books without recording anything (the counter's preview).
pub async fn preview(st: &AppState, p: &Principal, witness: Option<Badge>, command: Command) -> Result<PreviewOut, ApiError> {
    let req = Request::by(&p.actor(), witness, command, String::new(), now());
    st.site
        .call(move |site| match site.preview(&req) {
            Ok(entries) => {
                PreviewOut { ok: true, summaries: entries.iter().map(query::summarize).collect(), error: None, needs_witness: false }
            }
            Err(r) => {
                let needs_witness = r.code() == "two_person";
                let e = AppError::Rejected(r);
                PreviewOut {
                    ok: false,
                    summaries: vec![],
                    error: Some(crate::error::ErrorDetail { code: e.code().into(), message: e.to_string() }),
                    needs_witness,
                }
            }
        })
        .await
        .map_err(ApiError::from)
}

/// The counter's commands, with what the armorer should know about the list (a serial scanned
/// twice, kept once).
pub struct CounterPlan {
    pub commands: Vec<Command>,
    pub notices: Vec<String>,
}

/// Builds the counter's commands: an issue to a badge (serials from wherever they are racked, lots
/// from `location`: two commands when both are scanned), or a return from a badge with each item
/// going back to the place typed for it (`R-1042 > D11-RACK-B`), else its home, else `location`.
///
/// Every line that does not read is named, not only the first; a lot label without a quantity asks
/// for one.
pub async fn counter_commands(
    st: &AppState,
    mode: &str,
    badge: &str,
    location: &Option<String>,
    list: &[String],
) -> Result<CounterPlan, ApiError> {
    let badge = id(Badge::parse(badge))?;
    let place = opt(location, LocationId::parse)?;
    if !matches!(mode, "issue" | "return") {
        return Err(ApiError::usage(format!("mode {mode:?}: expected issue or return")));
    }
    let (mode, list) = (mode.to_string(), list.to_vec());
    st.site.call(move |site| plan(site, &mode, badge, place, &list)).await?
}

fn plan(site: &qm_app::Site, mode: &str, badge: Badge, place: Option<LocationId>, list: &[String]) -> Result<CounterPlan, ApiError> {
    let (lines, notices) = read_lines(site.state(), mode, list)?;
    if mode == "return" {
        let command = qm_app::returns::plan_return(site, &badge, &lines, place.as_ref())?;
        return Ok(CounterPlan { commands: vec![command], notices });
    }
    let (serials, lots): (Vec<ItemRef>, Vec<ItemRef>) = lines.into_iter().map(|(i, _)| i).partition(|i| matches!(i, ItemRef::Serial(_)));
    let mut commands = vec![];
    if !serials.is_empty() {
        commands.push(Command::Issue { to: badge.clone(), from: None, items: serials });
    }
    if !lots.is_empty() {
        let from = place.ok_or_else(|| ApiError::usage("lots are drawn from a location: give the location"))?;
        commands.push(Command::Issue { to: badge, from: Some(from), items: lots });
    }
    Ok(CounterPlan { commands, notices })
}

type Lines = Vec<(ItemRef, Option<LocationId>)>;

/// The scanned lines read one by one: all the errors together, duplicates of a serial dropped with
/// a notice.
fn read_lines(s: &State, mode: &str, list: &[String]) -> Result<(Lines, Vec<String>), ApiError> {
    if list.len() > ITEMS_MAX {
        return Err(ApiError::usage(format!("{} items in one request; the limit is {ITEMS_MAX}", list.len())));
    }
    let (mut lines, mut errors, mut notices) = (Lines::new(), vec![], vec![]);
    for (n, text) in list.iter().enumerate().filter(|(_, t)| !t.trim().is_empty()) {
        match read_line(s, mode, text) {
            Ok((ItemRef::Serial(serial), _)) if lines.iter().any(|(i, _)| *i == ItemRef::Serial(serial.clone())) => {
                notices.push(format!("serial {serial} was scanned more than once; it is kept once"));
            }
            Ok(line) => lines.push(line),
            Err(e) => errors.push(format!("line {} {:?}: {e}", n + 1, text.trim())),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::usage(errors.join("; ")));
    }
    if lines.is_empty() {
        return Err(ApiError::usage("scan or type at least one item"));
    }
    Ok((lines, notices))
}

fn read_line(s: &State, mode: &str, text: &str) -> Result<(ItemRef, Option<LocationId>), String> {
    let (item, place) = parse_return_line(text)?;
    if place.is_some() && mode != "return" {
        return Err("a place after '>' is where a returned item goes back to; an issue takes none".into());
    }
    if let ItemRef::Serial(serial) = &item {
        if !s.serials.contains_key(serial) {
            let as_lot = LotNo::parse(serial.as_str()).ok().filter(|l| s.lots.contains_key(l));
            return Err(match as_lot {
                Some(lot) => format!("lot {lot} needs a quantity: scan or type {lot}:QUANTITY"),
                None => format!("no serial {serial} in the books"),
            });
        }
    }
    Ok((item, place))
}

/// Previews several commands as one: every summary, or the first refusal.
pub async fn preview_all(st: &AppState, p: &Principal, witness: Option<Badge>, commands: Vec<Command>) -> Result<PreviewOut, ApiError> {
    let mut all = PreviewOut { ok: true, summaries: vec![], error: None, needs_witness: false };
    for c in commands {
        let one = preview(st, p, witness.clone(), c).await?;
        all.summaries.extend(one.summaries);
        if !one.ok {
            return Ok(PreviewOut { summaries: vec![], ..one });
        }
    }
    Ok(all)
}
