//! API: movements — receive, issue, return, move, transfers, write-offs, recovery, lot status, corrections, the counter's preview.

use crate::counter::*;
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use axum::extract::Path;
use axum::Json;
use qm_core::*;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReceiveIn {
    pub to: String,
    pub from: String,
    pub document: String,
    pub item_type: String,
    pub manufactured: Option<String>,
    pub expires: Option<String>,
    /// `SERIAL`, `SERIAL@LOT` or `LOT:QUANTITY`.
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct IssueIn {
    /// Badge of the person receiving the items.
    pub to: String,
    /// Needed for lots; serials come from their rack.
    pub from: Option<String>,
    /// `SERIAL` or `LOT:QUANTITY`.
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReturnIn {
    pub from: String,
    /// Where every item goes back to. Without it each goes back to its home (a serial to the place
    /// it was issued from, a lot to the store of the person's unit holding most of it), and an item
    /// may name its own place: `R-1042 > D11-RACK-B`.
    pub to: Option<String>,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct MoveIn {
    pub from: String,
    pub to: String,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct DispatchIn {
    pub from: String,
    pub to_unit: String,
    pub document: Option<String>,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReceiveTransferIn {
    pub to: String,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

/// From a location (`from`) or from a person's custody (`from_person`).
#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct WriteOffIn {
    pub from: Option<String>,
    pub from_person: Option<String>,
    pub document: Option<String>,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RecoverIn {
    pub to: String,
    pub document: Option<String>,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct LotStatusIn {
    /// serviceable, suspended, unserviceable
    pub status: String,
    pub reason: String,
    /// The unit whose subtree the decision covers (default: the actor's unit).
    pub unit: Option<String>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CorrectIn {
    pub seq: u64,
    pub reason: String,
    pub witness: Option<WitnessIn>,
}

#[utoipa::path(post, path = "/api/receive", tag = "movements", request_body = ReceiveIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn receive(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<ReceiveIn>) -> Result<Json<WriteOut>, ApiError> {
    let item_type = id(ItemTypeId::parse(&b.item_type))?;
    let manufactured = b.manufactured.as_deref().filter(|s| !s.is_empty()).map(date).transpose()?;
    let expires = b.expires.as_deref().filter(|s| !s.is_empty()).map(date).transpose()?;
    let lines = id(parse_receipt(&b.items, &item_type, manufactured, expires))?;
    let c = Command::Receive { to: id(LocationId::parse(&b.to))?, from: b.from, document: b.document, lines };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/issue", tag = "movements", request_body = IssueIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn issue(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<IssueIn>) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::Issue { to: id(Badge::parse(&b.to))?, from: opt(&b.from, LocationId::parse)?, items: items(&b.items)? };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/return", tag = "movements", request_body = ReturnIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn return_(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<ReturnIn>) -> Result<Json<WriteOut>, ApiError> {
    let from = id(Badge::parse(&b.from))?;
    let c = match &b.to {
        Some(to) => Command::return_to(from, id(LocationId::parse(to))?, items(&b.items)?),
        None => {
            let lines = parse_return_lines(&b.items).map_err(ApiError::usage)?;
            st.site.call(move |site| qm_app::returns::plan_return(site, &from, &lines, None)).await??
        }
    };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/move", tag = "movements", request_body = MoveIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn move_(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<MoveIn>) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::Move { from: id(LocationId::parse(&b.from))?, to: id(LocationId::parse(&b.to))?, items: items(&b.items)? };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/transfers", tag = "movements", request_body = DispatchIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn dispatch(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<DispatchIn>) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::Dispatch {
        from: id(LocationId::parse(&b.from))?,
        to_unit: id(UnitId::parse(&b.to_unit))?,
        items: items(&b.items)?,
        document: b.document,
    };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/transfers/{id}/receive", tag = "movements", request_body = ReceiveTransferIn, params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn transfer_receive(
    Caller { st, p, ip, key }: Caller,
    Path(t): Path<String>,
    JsonBody(b): JsonBody<ReceiveTransferIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c =
        Command::ReceiveTransfer { transfer: id(TransferId::parse(&t))?, to: id(LocationId::parse(&b.to))?, received: items(&b.items)? };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/expend", tag = "movements", request_body = WriteOffIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn expend(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<WriteOffIn>) -> Result<Json<WriteOut>, ApiError> {
    let document =
        b.document.clone().filter(|d| !d.trim().is_empty()).ok_or_else(|| ApiError::usage("an expenditure needs a `document`"))?;
    let c = Command::Expend { from: account_of(&b.from, &b.from_person)?, items: items(&b.items)?, document };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/destroy", tag = "movements", request_body = WriteOffIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn destroy(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<WriteOffIn>) -> Result<Json<WriteOut>, ApiError> {
    let from = b.from.as_deref().ok_or_else(|| ApiError::usage("destruction needs `from` (a location)"))?;
    let document = b.document.clone().filter(|d| !d.trim().is_empty()).ok_or_else(|| ApiError::usage("destruction needs a `document`"))?;
    let c = Command::Destroy { from: id(LocationId::parse(from))?, items: items(&b.items)?, document };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/report-loss", tag = "movements", request_body = WriteOffIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn report_loss(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<WriteOffIn>) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::ReportLost { from: account_of(&b.from, &b.from_person)?, items: items(&b.items)?, document: b.document };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/recover", tag = "movements", request_body = RecoverIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn recover(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<RecoverIn>) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::Recover { to: id(LocationId::parse(&b.to))?, items: items(&b.items)?, document: b.document };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(post, path = "/api/lots/{lot}/status", tag = "movements", request_body = LotStatusIn, params(("lot" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn lot_status(
    Caller { st, p, ip, key }: Caller,
    Path(lot): Path<String>,
    JsonBody(b): JsonBody<LotStatusIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::SetLotStatus {
        lot: id(LotNo::parse(&lot))?,
        status: id(LotStatus::parse(&b.status))?,
        reason: b.reason,
        unit: opt(&b.unit, UnitId::parse)?,
    };
    done(&st, &p, &ip, key, None, c).await
}

#[utoipa::path(post, path = "/api/corrections", tag = "movements", request_body = CorrectIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn correct(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<CorrectIn>) -> Result<Json<WriteOut>, ApiError> {
    let seq = b.seq;
    let original = st.site.call(move |site| site.envelope(seq)).await??;
    done(&st, &p, &ip, key, b.witness, Command::Correct { original: Box::new(original), reason: b.reason }).await
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    /// `issue` or `return`
    pub mode: String,
    pub badge: String,
    /// For an issue: the location lots come from; for a return: where the items go back to.
    pub location: Option<String>,
    pub items: Vec<String>,
    pub witness: Option<String>,
}

/// The counter's preview of an issue or a return.
#[utoipa::path(post, path = "/api/preview", tag = "movements", request_body = PreviewIn, responses((status = 200, body = PreviewOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn preview_api(Caller { st, p, .. }: Caller, JsonBody(b): JsonBody<PreviewIn>) -> Result<Json<PreviewOut>, ApiError> {
    let c = counter_commands(&st, &b.mode, &b.badge, &b.location, &b.items).await?.commands;
    let w = opt(&b.witness, Badge::parse)?;
    Ok(Json(preview_all(&st, &p, w, c).await?))
}
