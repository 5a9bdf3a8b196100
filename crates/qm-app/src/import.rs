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

/// A group of rows that becomes one command, remembering their lines (and, for a receipt, the
/// serial or lot of each) for error messages.
struct Pending {
    lines: Vec<(u64, Option<String>)>,
    command: Command,
}

impl Pending {
    fn one(line: u64, command: Command) -> Pending {
        Pending { lines: vec![(line, None)], command }
    }

    /// The CSV lines a refusal of this group's command is about: the row its "line k:" names (a
    /// receipt's k-th line), else the rows whose serial or lot it names (a refusal of the whole
    /// receipt, such as storage safety or a sum too large), else the group's first row.
    fn lines_of(&self, msg: &str) -> (Vec<u64>, String) {
        if let Some((head, k, rest)) = msg.split_once(": line ").and_then(|(head, tail)| tail.split_once(':').map(|(k, r)| (head, k, r))) {
            if let Some((l, _)) = k.trim().parse::<usize>().ok().and_then(|k| self.lines.get(k.saturating_sub(1))) {
                return (vec![*l], format!("{head}:{rest}"));
            }
        }
        let words: std::collections::BTreeSet<&str> =
            msg.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '(' | ')')).filter(|w| !w.is_empty()).collect();
        let named: Vec<u64> =
            self.lines.iter().filter(|(_, item)| item.as_deref().is_some_and(|i| words.contains(i))).map(|(l, _)| *l).collect();
        match named.is_empty() {
            true => (self.lines.first().map(|(l, _)| *l).into_iter().collect(), msg.to_string()),
            false => (named, msg.to_string()),
        }
    }
}

/// "line 7" or "lines 7, 9 and 12" (at most five named).
fn line_words(lines: &[u64]) -> String {
    let shown: Vec<String> = lines.iter().take(5).map(u64::to_string).collect();
    match (lines.len(), shown.split_last()) {
        (0, _) | (_, None) => "line 0".into(),
        (1, _) => format!("line {}", shown[0]),
        (n, Some((last, init))) if n <= 5 => format!("lines {} and {last}", init.join(", ")),
        (n, _) => format!("lines {} and {} more", shown.join(", "), n - 5),
    }
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
    let file = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| AppError::Import { file: file.clone(), message: e.to_string() })?;
    if meta.len() > IMPORT_FILE_BYTES_MAX {
        return Err(AppError::Import { file, message: format!("{} bytes; the limit is {IMPORT_FILE_BYTES_MAX}", meta.len()) });
    }
    let reader = std::fs::File::open(path).map_err(|e| AppError::Import { file: file.clone(), message: e.to_string() })?;
    import_from(site, kind, &file, reader, actor, at, progress)
}

/// Imports CSV read from `input`, named `file` in messages and the report (the API names the request
/// body so, never a path on the server).
pub fn import_from(
    site: &mut Site,
    kind: ImportKind,
    file: &str,
    input: impl std::io::Read,
    actor: impl Into<crate::Actor>,
    at: OffsetDateTime,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportReport> {
    let actor: crate::Actor = actor.into();
    let (pending, rows) = read_rows(kind, file, input)?;
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
            let (lines, rest) = p.lines_of(&e.to_string());
            let message = format!("{}: {rest}; nothing from this file was recorded", line_words(&lines));
            match &e {
                AppError::Rejected(r) => AppError::ImportRefused { file: file.to_string(), message, code: r.code() },
                _ => AppError::Import { file: file.to_string(), message },
            }
        })?;
    Ok(ImportReport {
        file: file.to_string(),
        rows,
        entries: outcomes.iter().map(|o| o.entries.len() as u64).sum(),
        first_seq: outcomes.first().map(|o| o.first_seq),
        last_seq: outcomes.last().map(|o| o.last_seq),
    })
}

/// Reads and checks every row (header, columns, values) into the commands they become.
fn read_rows(kind: ImportKind, file: &str, input: impl std::io::Read) -> Result<(Vec<Pending>, usize)> {
    let import_err = |message: String| AppError::Import { file: file.to_string(), message };
    // Lines are counted by `LineStarts` (CR LF, LF and a lone CR each end one), not by the CSV
    // reader, which miscounts Windows line endings.
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(LineStarts::new(input));
    let headers = reader.headers().map_err(|e| import_err(format!("line 1: {e}")))?.clone();
    let index: BTreeMap<String, usize> = headers.iter().enumerate().map(|(i, h)| (h.trim().to_ascii_lowercase(), i)).collect();
    for c in kind.columns() {
        if !index.contains_key(*c) && !kind.optional(c) {
            return Err(import_err(format!("line 1: column {c} is missing; expected columns: {}", kind.columns().join(","))));
        }
    }
    for h in index.keys() {
        if !kind.columns().contains(&h.as_str()) {
            return Err(import_err(format!("line 1, column {h}: unknown column; expected: {}", kind.columns().join(","))));
        }
    }
    let mut pending: Vec<Pending> = vec![];
    // Receipts group rows that share a destination, a supplier and a document.
    let mut receipts: BTreeMap<(String, String, String), Vec<(u64, ReceiptLine)>> = BTreeMap::new();
    let mut rows = 0usize;
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let line = e.position().map(|p| reader.get_ref().line_of(p.byte())).unwrap_or(0);
            import_err(format!("line {line}: {e}"))
        })?;
        if !more {
            break;
        }
        rows += 1;
        let line = record.position().map(|p| reader.get_ref().line_of(p.byte())).unwrap_or(rows as u64 + 1);
        let row = Row { file, line, record: &record, index: &index };
        match kind {
            ImportKind::ItemTypes => pending.push(Pending::one(line, item_type_row(&row)?)),
            ImportKind::People => pending.extend(person_rows(&row)?),
            ImportKind::Serials | ImportKind::Lots => {
                let (key, rl) = receipt_row(&row, kind)?;
                receipts.entry(key).or_default().push((line, rl));
            }
        }
    }
    for ((location, supplier, document), lines) in receipts {
        let to = LocationId::parse(&location).map_err(|e| AppError::Internal(e.to_string()))?;
        for chunk in lines.chunks(RECEIPT_LINES) {
            let item = |r: &ReceiptLine| r.serial.as_ref().map(|s| s.to_string()).or_else(|| r.lot.as_ref().map(|l| l.to_string()));
            pending.push(Pending {
                lines: chunk.iter().map(|(l, r)| (*l, item(r))).collect(),
                command: Command::Receive {
                    to: to.clone(),
                    from: supplier.clone(),
                    document: document.clone(),
                    lines: chunk.iter().map(|(_, r)| r.clone()).collect(),
                },
            });
        }
    }
    Ok((pending, rows))
}

/// A reader that notes where each line starts as the bytes go through, so that a record's byte
/// offset gives its line whatever the line endings.
struct LineStarts<R> {
    inner: R,
    read: u64,
    starts: Vec<u64>,
    after_cr: bool,
}

impl<R: std::io::Read> LineStarts<R> {
    fn new(inner: R) -> LineStarts<R> {
        LineStarts { inner, read: 0, starts: vec![0], after_cr: false }
    }

    /// The line (from 1) that the byte at `offset` is on.
    fn line_of(&self, offset: u64) -> u64 {
        self.starts.partition_point(|s| *s <= offset) as u64
    }
}

impl<R: std::io::Read> std::io::Read for LineStarts<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, b) in buf[..n].iter().enumerate() {
            let at = self.read + i as u64;
            // A CR LF ends one line; the CSV reader starts the next record at the LF.
            match b {
                b'\n' if self.after_cr => {}
                b'\n' | b'\r' => self.starts.push(at + 1),
                _ => {}
            }
            self.after_cr = *b == b'\r';
        }
        self.read += n as u64;
        Ok(n)
    }
}

fn item_type_row(row: &Row) -> Result<Command> {
    let un_code = row.opt("un_code").map(str::to_string);
    if let Some(c) = &un_code {
        if !qm_core::rules::valid_un_code(c) {
            return Err(row.err("un_code", format!("{c:?} is not a class 1 code such as 1.1D or 1.4S")));
        }
    }
    let neq = row.parse_opt("neq_kg_per_unit", |s| s.parse::<f64>().map_err(|_| format!("{s:?} is not a number")))?.unwrap_or(0.0);
    Ok(Command::DefineItemType {
        item_type: row.parse("id", ItemTypeId::parse)?,
        name: row.req("name")?.to_string(),
        kind: row.parse("kind", ItemKind::parse)?,
        tracking: row.parse("tracking", Tracking::parse)?,
        unit_of_measure: row.req("unit_of_measure")?.to_string(),
        neq_kg_per_unit: neq,
        un_code,
        qualification: row.opt("qualification").map(str::to_string),
    })
}

fn person_rows(row: &Row) -> Result<Vec<Pending>> {
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
    let name = row.req("name")?.to_string();
    let unit = row.parse("unit", UnitId::parse)?;
    let mut out = vec![Pending::one(row.line, Command::RegisterPerson { badge: badge.clone(), name, unit, roles, pin_hash })];
    if let Some(qs) = row.opt("qualifications") {
        for q in qs.split(';').filter(|s| !s.trim().is_empty()) {
            let (name, date) = q.split_once(':').ok_or_else(|| row.err("qualifications", format!("{q:?}: write NAME:YYYY-MM-DD")))?;
            let expires = parse_date(date).map_err(|e| row.err("qualifications", e))?;
            let command = Command::GrantQualification { badge: badge.clone(), qualification: name.trim().to_string(), expires };
            out.push(Pending::one(row.line, command));
        }
    }
    Ok(out)
}

fn receipt_row(row: &Row, kind: ImportKind) -> Result<((String, String, String), ReceiptLine)> {
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
    Ok(((location.to_string(), supplier, document), rl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(csv: &str) -> String {
        match read_rows(ImportKind::Lots, "lots.csv", csv.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {csv:?}"),
        }
    }

    #[test]
    fn a_bad_row_is_named_by_its_line_with_any_line_ending() {
        let rows = ["lot,item_type,quantity,location,supplier,document", "L1,AMMO,10,ARM,S,D", "L2,AMMO,ten,ARM,S,D", "L3,AMMO,5,ARM,S,D"];
        for end in ["\n", "\r\n", "\r"] {
            let msg = error_of(&(rows.join(end) + end));
            assert!(msg.starts_with("lots.csv: line 3, column quantity:"), "{end:?}: {msg}");
        }
        // A quoted field over two lines moves the rows after it down one line.
        let quoted = "lot,item_type,quantity,location,supplier,document\r\nL1,AMMO,10,ARM,\"Two\r\nlines\",D\r\nL2,AMMO,x,ARM,S,D\r\n";
        assert!(error_of(quoted).starts_with("lots.csv: line 4, column quantity:"), "{}", error_of(quoted));
    }

    #[test]
    fn a_refusal_of_a_whole_receipt_names_the_rows_it_is_about() {
        let p = Pending {
            lines: vec![(2, Some("L-1".into())), (3, Some("L-10".into())), (4, Some("L-10".into())), (5, Some("L-2".into()))],
            command: Command::SetTimeZone { zone: "UTC".into() },
        };
        let (lines, _) = p.lines_of("refused: lot L-10 (1.1D) may not be stored with lot L-2 (1.4S) (rule storage.compatibility)");
        assert_eq!(lines, [3, 4, 5]);
        assert_eq!(line_words(&lines), "lines 3, 4 and 5");
        // A receipt's "line 4" is its fourth row, CSV line 5.
        let (lines, rest) = p.lines_of("refused: line 4: lot L-2 is named with two item types (rule lot.one_item_type)");
        assert_eq!((lines, rest.as_str()), (vec![5], "refused: lot L-2 is named with two item types (rule lot.one_item_type)"));
        assert_eq!(p.lines_of("refused: something else entirely").0, [2]);
        assert_eq!(line_words(&[1, 2, 3, 4, 5, 6, 7]), "lines 1, 2, 3, 4, 5 and 2 more");
    }
}
