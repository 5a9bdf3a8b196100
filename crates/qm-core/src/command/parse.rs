//! The edge grammars, one parser each: what an armorer types or scans and an API client sends.
//!
//! * an item moved: `SERIAL` or `LOT:QUANTITY` ([`ItemRef::parse`], lists by [`parse_items`]);
//! * an item received: `SERIAL`, `SERIAL@LOT` (a serial that belongs to a lot) or `LOT:QUANTITY`
//!   ([`ReceiptLine::parse`]);
//! * a returned item with the place it goes back to: `SERIAL > LOCATION` ([`parse_return_line`]);
//! * a date: `YYYY-MM-DD` ([`parse_date`]);
//! * a storage range: `MIN:MAX` ([`parse_range`]).
//!
//! Each error names what was typed and what was expected.

use super::{ItemRef, ReceiptLine};
use crate::conditions::Range;
use crate::ids::*;
use crate::quantity::Quantity;
use time::Date;

/// The most items one request may name (a receipt of a whole delivery fits; a runaway list does not).
pub const ITEMS_MAX: usize = 10_000;

fn text<T>(r: Result<T, IdError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl ItemRef {
    /// An item as typed or scanned at every edge (CLI, API, web counter): `SERIAL` or `LOT:QUANTITY`.
    pub fn parse(text_in: &str) -> Result<ItemRef, String> {
        let t = text_in.trim();
        match t.split_once(':') {
            Some((lot, q)) => Ok(ItemRef::Lot { lot: text(LotNo::parse(lot))?, quantity: Quantity::parse(q)? }),
            None => Ok(ItemRef::Serial(text(Serial::parse(t))?)),
        }
    }
}

/// A line of a return: an item, and after `>` the place it goes back to when not its home
/// (`R-1042 > D11-RACK-B`).
pub fn parse_return_line(text_in: &str) -> Result<(ItemRef, Option<LocationId>), String> {
    match text_in.split_once('>') {
        Some((item, place)) => Ok((ItemRef::parse(item)?, Some(text(LocationId::parse(place))?))),
        None => Ok((ItemRef::parse(text_in)?, None)),
    }
}

/// A return's list, as [`parse_items`] reads a list of items moved, each line with its own place if typed.
pub fn parse_return_lines<S: AsRef<str>>(list: &[S]) -> Result<Vec<(ItemRef, Option<LocationId>)>, String> {
    listed(list)?.map(parse_return_line).collect()
}

/// The entries of a list worth parsing: blanks skipped, more than [`ITEMS_MAX`] refused first.
fn listed<S: AsRef<str>>(list: &[S]) -> Result<impl Iterator<Item = &str>, String> {
    if list.len() > ITEMS_MAX {
        return Err(format!("{} items in one request; the limit is {ITEMS_MAX}", list.len()));
    }
    Ok(list.iter().map(AsRef::as_ref).filter(|s| !s.trim().is_empty()))
}

/// A list of items, blank entries skipped; more than [`ITEMS_MAX`] is refused before any is parsed.
pub fn parse_items<S: AsRef<str>>(list: &[S]) -> Result<Vec<ItemRef>, String> {
    listed(list)?.map(ItemRef::parse).collect()
}

/// A receipt's list of items of one type, as [`parse_items`] does for items moved.
pub fn parse_receipt<S: AsRef<str>>(
    list: &[S],
    item_type: &ItemTypeId,
    manufactured: Option<Date>,
    expires: Option<Date>,
) -> Result<Vec<ReceiptLine>, String> {
    listed(list)?.map(|s| ReceiptLine::parse(s, item_type, manufactured, expires)).collect()
}

impl ReceiptLine {
    /// One received item of `item_type`: `SERIAL`, `SERIAL@LOT` or `LOT:QUANTITY`.
    pub fn parse(text_in: &str, item_type: &ItemTypeId, manufactured: Option<Date>, expires: Option<Date>) -> Result<ReceiptLine, String> {
        let t = text_in.trim();
        let (serial, lot, quantity) = match (t.split_once('@'), t.split_once(':')) {
            (Some((serial, lot)), _) => (Some(text(Serial::parse(serial))?), Some(text(LotNo::parse(lot))?), Quantity::ONE),
            (None, Some((lot, q))) => (None, Some(text(LotNo::parse(lot))?), Quantity::parse(q)?),
            (None, None) => (Some(text(Serial::parse(t))?), None, Quantity::ONE),
        };
        Ok(ReceiptLine { item_type: item_type.clone(), serial, lot, quantity, manufactured, expires })
    }
}

/// A calendar date, `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &fmt).map_err(|_| format!("{s:?} is not a date like 2027-06-30"))
}

/// A moment as typed or sent: RFC 3339 (`2026-12-03T06:00:00Z`), for the CLI and the API alike.
pub fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("time {s:?}: {e}; write it as 2026-12-03T06:00:00Z"))
}

/// A storage range, `MIN:MAX` (finite numbers, MIN not above MAX).
pub fn parse_range(s: &str) -> Result<Range, String> {
    let (a, b) = s.split_once(':').ok_or_else(|| format!("{s:?}: write MIN:MAX"))?;
    let number = |x: &str| x.trim().parse::<f64>().map_err(|_| format!("{x:?} is not a number"));
    let (min, max) = (number(a)?, number(b)?);
    if !(min.is_finite() && max.is_finite() && min <= max) {
        return Err(format!("{s:?}: MIN must not exceed MAX"));
    }
    Ok(Range { min, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_grammar_parses_what_is_typed_and_names_what_is_not() {
        assert_eq!(ItemRef::parse(" R-1 ").unwrap(), ItemRef::Serial(Serial::parse("R-1").unwrap()));
        assert_eq!(ItemRef::parse("L-1:30").unwrap(), ItemRef::Lot { lot: LotNo::parse("L-1").unwrap(), quantity: Quantity::units(30) });
        assert!(ItemRef::parse("L-1:lots").unwrap_err().contains("lots"));
        let t = ItemTypeId::parse("RIFLE").unwrap();
        let l = ReceiptLine::parse("R-9@L-2", &t, None, None).unwrap();
        assert_eq!((l.serial.unwrap().to_string(), l.lot.unwrap().to_string(), l.quantity), ("R-9".into(), "L-2".into(), Quantity::ONE));
        let l = ReceiptLine::parse("L-2:1.5", &t, None, None).unwrap();
        assert_eq!((l.serial, l.quantity), (None, Quantity::parse("1.5").unwrap()));
        assert_eq!(parse_items(&["R-1", " ", "L-1:2"]).unwrap().len(), 2);
        let many = vec!["R-1"; ITEMS_MAX + 1];
        assert!(parse_items(&many).unwrap_err().contains("the limit is 10000"));
        assert!(parse_date("2027-02-30").unwrap_err().contains("is not a date like"));
        assert_eq!(parse_range("5:30.5").unwrap(), Range { min: 5.0, max: 30.5 });
        assert!(parse_range("30:5").unwrap_err().contains("MIN must not exceed MAX"));
        assert!(parse_range("warm").unwrap_err().contains("write MIN:MAX"));
    }
}
