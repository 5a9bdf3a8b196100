//! Every entry fits the ledger's limit: C2SP tlog-tiles (and so tlog-mirror, which parents use to
//! keep a child's ledger) carries an entry after a two-byte length, so no entry may encode to more
//! than [`ENTRY_BYTES_MAX`] bytes. A movement or a count record of many lines becomes several
//! events of the same kind, each its own entry, committed together (a decision's entries are one
//! commit): the books end the same as after one. Any other event too large for an entry is refused
//! with its size, before anything is written.

use super::*;

/// The most bytes one entry may encode to (a two-byte length in tlog-tiles' entry bundles).
pub const ENTRY_BYTES_MAX: usize = 65_535;

/// The most an event and the incidents it opens may take of an entry; the rest is the envelope's
/// (site, time, badges, an idempotency key of at most 128 characters, the request's digest, a
/// correction's reason): at most about 3.5 KiB.
pub const EVENT_BYTES_MAX: usize = 60_000;

/// Below this many lines (serials, lots, passages) an event cannot come near the limit, whatever
/// its ids (each at most 64 characters): it is not measured.
const LINES_UNMEASURED: usize = 100;

fn size<T: serde::Serialize>(value: &T) -> usize {
    // serde_json writes the same strings and integers as the canonical encoding, in another key
    // order; floats may differ by a few bytes, which the envelope's share leaves room for.
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

/// How many lines an event holds that could make it large.
fn lines_in(event: &Event) -> usize {
    match event {
        Event::Movement { lines, .. } => lines.len(),
        Event::CountRecorded { serials, lots, .. } => serials.len() + lots.len(),
        Event::DoorEvents { passages, .. } => passages.len(),
        Event::TransferReceived { discrepancies, .. } | Event::CountClosed { discrepancies, .. } => discrepancies.len(),
        Event::DirectiveIssued { applies_to, measures, .. } => applies_to.len() + measures.len() + 8,
        Event::IncidentUpdated { .. } | Event::DirectiveUpdated { .. } | Event::PolicySet { .. } => LINES_UNMEASURED,
        _ => 0,
    }
}

/// Splits `items` into runs whose sizes add up to at most `room` each (every item alone fits).
fn runs<T: serde::Serialize + Clone>(items: &[T], room: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![vec![]];
    let mut used = 0;
    for item in items {
        // The item and the comma before it.
        let n = size(item) + 1;
        if used + n > room && out.last().is_some_and(|r| !r.is_empty()) {
            out.push(vec![]);
            used = 0;
        }
        used += n;
        if let Some(last) = out.last_mut() {
            last.push(item.clone());
        }
    }
    out
}

/// The event as several of the same kind, each within `room` bytes of lines, or `None` if it is
/// not one that may be split.
fn split(event: &Event, room: usize) -> Option<Vec<Event>> {
    match event {
        Event::Movement { kind, from, to, lines, document } => Some(
            runs(lines, room)
                .into_iter()
                .map(|lines| Event::Movement { kind: *kind, from: from.clone(), to: to.clone(), lines, document: document.clone() })
                .collect(),
        ),
        Event::CountRecorded { count, location, serials, lots } => {
            let mut parts: Vec<Event> = runs(serials, room)
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|serials| Event::CountRecorded { count: count.clone(), location: location.clone(), serials, lots: vec![] })
                .collect();
            parts.extend(runs(lots, room).into_iter().filter(|l| !l.is_empty()).map(|lots| Event::CountRecorded {
                count: count.clone(),
                location: location.clone(),
                serials: vec![],
                lots,
            }));
            Some(parts)
        }
        _ => None,
    }
}

/// Makes every event of a decision fit an entry, splitting those that may be split; the incidents
/// an event opens stay with its first part. Refuses (`invalid`) an event that is too large and may
/// not be split, naming it and its size.
pub(super) fn fit(decision: Decision) -> R<Decision> {
    if decision.events.iter().all(|e| lines_in(e) < LINES_UNMEASURED) {
        return Ok(decision);
    }
    let Decision { events, corrects, mut opens } = decision;
    let mut out = Vec::with_capacity(events.len());
    // Where each event's first part lands, for the incidents it opens.
    let mut first_part = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
        first_part.push(out.len());
        if lines_in(&event) < LINES_UNMEASURED {
            out.push(event);
            continue;
        }
        let opened: usize = opens.iter().filter(|(at, _)| *at == i).map(|(_, e)| size(e)).sum();
        let bytes = size(&event) + opened;
        if bytes <= EVENT_BYTES_MAX {
            out.push(event);
            continue;
        }
        // Room for lines: what the event's other fields and its incidents leave.
        let room = EVENT_BYTES_MAX.saturating_sub(opened + 1_000);
        match split(&event, room) {
            Some(parts) if room > 0 => out.extend(parts),
            _ => {
                return invalid(format!(
                    "the {} this asks for takes {bytes} bytes (with the incidents it opens), more than one ledger entry \
                     may hold ({EVENT_BYTES_MAX} of {ENTRY_BYTES_MAX}); ask for less at once",
                    event.type_name().replace('_', " ")
                ))
            }
        }
    }
    for (at, _) in &mut opens {
        *at = first_part.get(*at).copied().unwrap_or(*at);
    }
    Ok(Decision { events: out, corrects, opens })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial(n: usize) -> Line {
        Line::Serial { serial: Serial::parse(&format!("{n:0>64}")).unwrap(), item_type: ItemTypeId::parse(&"T".repeat(64)).unwrap() }
    }

    #[test]
    fn a_movement_of_ten_thousand_longest_serials_becomes_entries_that_each_fit() {
        let lines: Vec<Line> = (0..10_000).map(serial).collect();
        let event = Event::Movement {
            kind: MovementKind::Receive,
            from: Account::Supplier("supplier".into()),
            to: Account::Location(LocationId::parse("L-1").unwrap()),
            lines: lines.clone(),
            document: Some("d".repeat(TEXT_LEN_MAX)),
        };
        assert!(size(&event) > 10 * ENTRY_BYTES_MAX, "the test must start from an oversized event");
        let fitted = fit(Decision::of(vec![event])).unwrap();
        assert!(fitted.events.len() >= 25, "{} parts", fitted.events.len());
        let mut again = vec![];
        for e in &fitted.events {
            assert!(size(e) <= EVENT_BYTES_MAX, "a part of {} bytes", size(e));
            let Event::Movement { lines, document, .. } = e else { panic!("not a movement: {e:?}") };
            assert_eq!(document.as_deref().map(str::len), Some(TEXT_LEN_MAX));
            again.extend(lines.iter().cloned());
        }
        assert_eq!(again, lines, "every line once, in order");
    }

    #[test]
    fn a_small_decision_is_left_as_it_is_and_incidents_follow_their_event() {
        let movement = |n: usize| Event::Movement {
            kind: MovementKind::Receive,
            from: Account::Supplier("supplier".into()),
            to: Account::Location(LocationId::parse("L-1").unwrap()),
            lines: (0..n).map(serial).collect(),
            document: None,
        };
        let (small, big) = (movement(3), movement(2_000));
        let opened = Event::DirectiveUpdated {
            directive: DirectiveId::parse("DIR-1").unwrap(),
            action: DirectiveAction::Acknowledge { unit: UnitId::parse("U-1").unwrap() },
        };
        let d = Decision { events: vec![big, small.clone()], corrects: None, opens: vec![(1, opened.clone())] };
        let fitted = fit(d).unwrap();
        let n = fitted.events.len();
        assert!(n >= 3, "the large movement was split: {n} events");
        assert_eq!(fitted.events[n - 1], small);
        assert_eq!(fitted.opens, vec![(n - 1, opened)]);
        let untouched = Decision::of(vec![small.clone()]);
        assert_eq!(fit(untouched).unwrap().events, vec![small]);
    }

    #[test]
    fn an_event_too_large_that_may_not_be_split_is_refused_with_its_size() {
        let ids: Vec<DiscrepancyId> = (0..6_000).map(|n| DiscrepancyId::parse(&format!("DISC-{n:0>20}")).unwrap()).collect();
        let event = Event::CountClosed { count: CountId::parse("C-1").unwrap(), discrepancies: ids };
        let err = fit(Decision::of(vec![event])).unwrap_err();
        let Rejection::Invalid(m) = err else { panic!("{err:?}") };
        assert!(m.contains("count closed") && m.contains("bytes") && m.contains("65535"), "{m}");
    }
}
