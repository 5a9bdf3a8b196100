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

/// Builds the counter's commands: an issue to a badge (serials from wherever they are racked, lots
/// from `location`: two commands when both are scanned), or a return from a badge to `location`.
pub fn counter_commands(mode: &str, badge: &str, location: &Option<String>, list: &[String]) -> Result<Vec<Command>, ApiError> {
    let badge = id(Badge::parse(badge))?;
    let list = items(list)?;
    if list.is_empty() {
        return Err(ApiError::usage("scan or type at least one item"));
    }
    match mode {
        "issue" => {
            let from = opt(location, LocationId::parse)?;
            let (serials, lots): (Vec<ItemRef>, Vec<ItemRef>) = list.into_iter().partition(|i| matches!(i, ItemRef::Serial(_)));
            let mut out = vec![];
            if !serials.is_empty() {
                out.push(Command::Issue { to: badge.clone(), from: None, items: serials });
            }
            if !lots.is_empty() {
                let from = from.ok_or_else(|| ApiError::usage("lots are drawn from a location: give the location"))?;
                out.push(Command::Issue { to: badge, from: Some(from), items: lots });
            }
            Ok(out)
        }
        "return" => {
            let to =
                opt(location, LocationId::parse)?.ok_or_else(|| ApiError::usage("a return needs the location the items go back to"))?;
            Ok(vec![Command::Return { from: badge, to, items: list }])
        }
        other => Err(ApiError::usage(format!("mode {other:?}: expected issue or return"))),
    }
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
