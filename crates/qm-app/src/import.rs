//! CSV import of item types, people, serial items and lots: all rows or none.
//!
//! Every row is parsed before anything is decided; a bad row is reported with file, line and column.
//! The rows then run through the same rules as typed commands, in one transaction: the first refusal
//! discards the whole file.

use crate::{hash_secret, AppError, Request, Result, Site};
use qm_core::*;
use std::collections::BTreeMap;
use std::path::Path;
use time::OffsetDateTime;

/// Largest file accepted, so a mistaken upload cannot fill memory.
pub const IMPORT_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Lines per receipt when serials or lots are imported.
const RECEIPT_LINES: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    ItemTypes,
    People,
    Serials,
    Lots,
}

impl ImportKind {
    pub fn parse(s: &str) -> std::result::Result<ImportKind, String> {
        match s {
            "item-types" | "item_types" => Ok(ImportKind::ItemTypes),
            "people" => Ok(ImportKind::People),
            "serials" => Ok(ImportKind::Serials),
            "lots" => Ok(ImportKind::Lots),
            other => Err(format!("{other:?}: import one of item-types, people, serials, lots")),
        }
    }
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            ImportKind::ItemTypes => &["id", "name", "kind", "tracking", "unit_of_measure", "neq_kg_per_unit", "un_code", "qualification"],
            ImportKind::People => &["badge", "name", "unit", "roles", "pin", "qualifications"],
            ImportKind::Serials => &["serial", "item_type", "lot", "location", "supplier", "document"],
            ImportKind::Lots => &["lot", "item_type", "quantity", "location", "manufactured", "expires", "supplier", "document"],
        }
    }
    /// Columns that may be left out of the header or empty in a row.
    fn optional(self, column: &str) -> bool {
        matches!(column, "un_code" | "qualification" | "qualifications" | "lot" | "manufactured" | "expires" | "neq_kg_per_unit")
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ImportReport {
    pub file: String,
    pub rows: usize,
    pub entries: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
}

struct Row<'a> {
    file: &'a str,
    line: u64,
    record: &'a csv::StringRecord,
    index: &'a BTreeMap<String, usize>,
}

impl Row<'_> {
    fn err(&self, column: &str, msg: impl std::fmt::Display) -> AppError {
        AppError::Import { file: self.file.to_string(), message: format!("line {}, column {column}: {msg}", self.line) }
    }
    fn get(&self, column: &str) -> &str {
        self.index.get(column).and_then(|i| self.record.get(*i)).map(str::trim).unwrap_or("")
    }
    fn req(&self, column: &str) -> Result<&str> {
        let v = self.get(column);
        if v.is_empty() {
            return Err(self.err(column, "is empty"));
        }
        Ok(v)
    }
    fn opt(&self, column: &str) -> Option<&str> {
        Some(self.get(column)).filter(|v| !v.is_empty())
    }
    fn parse<T, E: std::fmt::Display>(&self, column: &str, f: impl Fn(&str) -> std::result::Result<T, E>) -> Result<T> {
        f(self.req(column)?).map_err(|e| self.err(column, e))
    }
    fn parse_opt<T, E: std::fmt::Display>(&self, column: &str, f: impl Fn(&str) -> std::result::Result<T, E>) -> Result<Option<T>> {
        self.opt(column).map(|v| f(v).map_err(|e| self.err(column, e))).transpose()
    }
}

/// A group of rows that becomes one command, remembering their lines for error messages.
struct Pending {
    lines: Vec<u64>,
    command: Command,
}

/// Imports one CSV file; nothing is committed unless every row is good and accepted.
pub fn import(
    site: &mut Site,
    kind: ImportKind,
    path: &Path,
    actor: impl Into<crate::Actor>,
    at: OffsetDateTime,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportReport> {
    let actor: crate::Actor = actor.into();
    let file = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| AppError::Import { file: file.clone(), message: e.to_string() })?;
    if meta.len() > IMPORT_FILE_BYTES_MAX {
        return Err(AppError::Import { file, message: format!("{} bytes; the limit is {IMPORT_FILE_BYTES_MAX}", meta.len()) });
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| AppError::Import { file: file.clone(), message: e.to_string() })?;
    let headers = reader.headers().map_err(|e| AppError::Import { file: file.clone(), message: format!("line 1: {e}") })?.clone();
    let index: BTreeMap<String, usize> = headers.iter().enumerate().map(|(i, h)| (h.trim().to_ascii_lowercase(), i)).collect();
    for c in kind.columns() {
        if !index.contains_key(*c) && !kind.optional(c) {
            return Err(AppError::Import {
                file,
                message: format!("line 1: column {c} is missing; expected columns: {}", kind.columns().join(",")),
            });
        }
    }
    for h in index.keys() {
        if !kind.columns().contains(&h.as_str()) {
            return Err(AppError::Import {
                file,
                message: format!("line 1, column {h}: unknown column; expected: {}", kind.columns().join(",")),
            });
        }
    }
    let mut pending: Vec<Pending> = vec![];
    // Receipts group rows that share a destination, a supplier and a document.
    let mut receipts: BTreeMap<(String, String, String), Vec<(u64, ReceiptLine)>> = BTreeMap::new();
    let mut rows = 0usize;
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            AppError::Import { file: file.clone(), message: format!("line {line}: {e}") }
        })?;
        if !more {
            break;
        }
        rows += 1;
        let line = record.position().map(|p| p.line()).unwrap_or(rows as u64 + 1);
        let row = Row { file: &file, line, record: &record, index: &index };
        match kind {
            ImportKind::ItemTypes => {
                let un_code = row.opt("un_code").map(str::to_string);
                if let Some(c) = &un_code {
                    if !qm_core::rules::valid_un_code(c) {
                        return Err(row.err("un_code", format!("{c:?} is not a class 1 code such as 1.1D or 1.4S")));
                    }
                }
                let neq =
                    row.parse_opt("neq_kg_per_unit", |s| s.parse::<f64>().map_err(|_| format!("{s:?} is not a number")))?.unwrap_or(0.0);
                pending.push(Pending {
                    lines: vec![line],
                    command: Command::DefineItemType {
                        item_type: row.parse("id", ItemTypeId::parse)?,
                        name: row.req("name")?.to_string(),
                        kind: row.parse("kind", ItemKind::parse)?,
                        tracking: row.parse("tracking", Tracking::parse)?,
                        unit_of_measure: row.req("unit_of_measure")?.to_string(),
                        neq_kg_per_unit: neq,
                        un_code,
                        qualification: row.opt("qualification").map(str::to_string),
                    },
                });
            }
            ImportKind::People => {
                let badge = row.parse("badge", Badge::parse)?;
                let roles = row
                    .req("roles")?
                    .split([';', ' ', '|'])
                    .filter(|s| !s.is_empty())
                    .map(Role::parse)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| row.err("roles", e))?;
                let pin = row.req("pin")?;
                let pin_hash = hash_secret(pin).map_err(|e| row.err("pin", e))?;
                pending.push(Pending {
                    lines: vec![line],
                    command: Command::RegisterPerson {
                        badge: badge.clone(),
                        name: row.req("name")?.to_string(),
                        unit: row.parse("unit", UnitId::parse)?,
                        roles,
                        pin_hash,
                    },
                });
                if let Some(qs) = row.opt("qualifications") {
                    for q in qs.split(';').filter(|s| !s.trim().is_empty()) {
                        let (name, date) =
                            q.split_once(':').ok_or_else(|| row.err("qualifications", format!("{q:?}: write NAME:YYYY-MM-DD")))?;
                        let expires = parse_date(date).map_err(|e| row.err("qualifications", e))?;
                        pending.push(Pending {
                            lines: vec![line],
                            command: Command::GrantQualification { badge: badge.clone(), qualification: name.trim().to_string(), expires },
                        });
                    }
                }
            }
            ImportKind::Serials | ImportKind::Lots => {
                let location = row.parse("location", LocationId::parse)?;
                let supplier = row.req("supplier")?.to_string();
                let document = row.req("document")?.to_string();
                let rl = if kind == ImportKind::Serials {
                    ReceiptLine {
                        item_type: row.parse("item_type", ItemTypeId::parse)?,
                        serial: Some(row.parse("serial", Serial::parse)?),
                        lot: row.parse_opt("lot", LotNo::parse)?,
                        quantity: Quantity::ONE,
                        manufactured: None,
                        expires: None,
                    }
                } else {
                    ReceiptLine {
                        item_type: row.parse("item_type", ItemTypeId::parse)?,
                        serial: None,
                        lot: Some(row.parse("lot", LotNo::parse)?),
                        quantity: row.parse("quantity", Quantity::parse)?,
                        manufactured: row.parse_opt("manufactured", parse_date)?,
                        expires: row.parse_opt("expires", parse_date)?,
                    }
                };
                receipts.entry((location.to_string(), supplier, document)).or_default().push((line, rl));
            }
        }
    }
    for ((location, supplier, document), lines) in receipts {
        let to = LocationId::parse(&location).map_err(|e| AppError::Internal(e.to_string()))?;
        for chunk in lines.chunks(RECEIPT_LINES) {
            pending.push(Pending {
                lines: chunk.iter().map(|(l, _)| *l).collect(),
                command: Command::Receive {
                    to: to.clone(),
                    from: supplier.clone(),
                    document: document.clone(),
                    lines: chunk.iter().map(|(_, r)| r.clone()).collect(),
                },
            });
        }
    }
    let run = uuid::Uuid::new_v4();
    let total = pending.len() as u64;
    let reqs: Vec<Request> =
        pending.iter().enumerate().map(|(i, p)| Request::by(&actor, None, p.command.clone(), format!("import-{run}-{i}"), at)).collect();
    let mut done = 0u64;
    let outcomes = site
        .execute_all_or_nothing(reqs, &mut |n| {
            done += n;
            progress(done, total);
        })
        .map_err(|(i, e)| {
            let Some(p) = pending.get(i) else { return e };
            if matches!(&e, AppError::Rejected(r) if r.is_denial()) {
                // A refusal of authority stays one (the edge answers it as such), and was recorded.
                return e;
            }
            // Point at the CSV line: a receipt's "line k:" is the k-th row of its group.
            let msg = e.to_string();
            let (line, rest) = match msg.split_once(": line ").and_then(|(head, tail)| tail.split_once(':').map(|(k, r)| (head, k, r))) {
                Some((head, k, r)) => match k.trim().parse::<usize>().ok().and_then(|k| p.lines.get(k.saturating_sub(1))) {
                    Some(l) => (*l, format!("{head}:{r}")),
                    None => (p.lines[0], msg.clone()),
                },
                None => (p.lines.first().copied().unwrap_or(0), msg.clone()),
            };
            AppError::Import { file: file.clone(), message: format!("line {line}: {rest}; nothing from this file was recorded") }
        })?;
    Ok(ImportReport {
        file,
        rows,
        entries: outcomes.iter().map(|o| o.entries.len() as u64).sum(),
        first_seq: outcomes.first().map(|o| o.first_seq),
        last_seq: outcomes.last().map(|o| o.last_seq),
    })
}
