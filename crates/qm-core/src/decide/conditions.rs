//! Storage conditions: a batch of readings, its digest and the excursions it starts or ends.

use super::*;

/// Most readings one command may carry; a larger file is split by the edge.
pub const READINGS_MAX: usize = 100_000;

pub(super) fn decide_readings(
    c: &Checker,
    location: &LocationId,
    readings: &[crate::conditions::Reading],
    window: &[crate::conditions::Reading],
    sha256: &str,
) -> R<Decision> {
    use crate::conditions::{detect, Range};
    let state = c.state;
    let loc = c.location(location)?;
    c.authorize(Op::Conditions, &loc.unit)?;
    if readings.is_empty() {
        return invalid("no readings given");
    }
    if readings.len() > READINGS_MAX || window.len() > READINGS_MAX {
        return invalid(format!("at most {READINGS_MAX} readings per batch"));
    }
    for (i, r) in readings.iter().enumerate() {
        if r.temperature_c.is_none() && r.humidity_pct.is_none() {
            return invalid(format!("reading {}: neither temperature nor humidity", i + 1));
        }
        if r.temperature_c.is_some_and(|t| !(t.is_finite() && (-80.0..=150.0).contains(&t))) {
            return invalid(format!("reading {}: temperature {:?} °C is not plausible (-80 to 150)", i + 1, r.temperature_c));
        }
        if r.humidity_pct.is_some_and(|h| !(h.is_finite() && (0.0..=100.0).contains(&h))) {
            return invalid(format!("reading {}: humidity {:?} % is not between 0 and 100", i + 1, r.humidity_pct));
        }
        if r.at > c.ctx.at + time::Duration::minutes(5) {
            return invalid(format!("reading {}: time {} is in the future", i + 1, c.ctx.zone.show(r.at)));
        }
    }
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return invalid("digest must be 64 hex digits of SHA-256");
    }
    let span = |f: fn(&crate::conditions::Reading) -> Option<f64>| -> Option<Range> {
        let vals: Vec<f64> = readings.iter().filter_map(f).collect();
        let first = *vals.first()?;
        Some(vals.iter().fold(Range { min: first, max: first }, |r, v| Range { min: r.min.min(*v), max: r.max.max(*v) }))
    };
    let first_at = readings.iter().map(|r| r.at).min().unwrap_or(c.ctx.at);
    let last_at = readings.iter().map(|r| r.at).max().unwrap_or(c.ctx.at);
    let mut events = vec![Event::ReadingsRecorded {
        location: location.clone(),
        count: readings.len() as u64,
        first_at,
        last_at,
        temperature_c: span(|r| r.temperature_c),
        humidity_pct: span(|r| r.humidity_pct),
        sha256: sha256.to_ascii_lowercase(),
    }];
    let mut series: Vec<crate::conditions::Reading> = window.iter().chain(readings.iter()).cloned().collect();
    series.sort_by_key(|r| r.at);
    let band = state.band_at(location);
    let (lots, serials) = state.stored_below(location);
    let serials_exposed = serials.values().sum();
    let mut next = state.excursions.len() + 1;
    for d in detect(&series, &band) {
        let known = state.excursions.iter().find(|(_, x)| x.location == *location && x.measure == d.measure && x.started_at == d.start);
        match known {
            Some((id, x)) => {
                if x.ended_at.is_none() {
                    if let Some(end) = d.end {
                        events.push(Event::ExcursionEnded { excursion: id.clone(), ended_at: end, peak: d.peak });
                    }
                }
            }
            None => {
                // Only runs that reach into the new readings are news; older ones were judged before.
                if d.end.is_some_and(|e| e < first_at) {
                    continue;
                }
                let id = format!("X-{next}");
                next += 1;
                events.push(Event::ExcursionStarted {
                    excursion: id.clone(),
                    location: location.clone(),
                    measure: d.measure,
                    direction: d.direction,
                    started_at: d.start,
                    limit: d.limit,
                    peak: d.peak,
                    lots_exposed: lots.clone(),
                    serials_exposed,
                });
                if let Some(end) = d.end {
                    events.push(Event::ExcursionEnded { excursion: id, ended_at: end, peak: d.peak });
                }
            }
        }
    }
    Ok(Decision { events, corrects: None, opens: vec![] })
}
