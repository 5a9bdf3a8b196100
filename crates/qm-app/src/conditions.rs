//! Storage-condition readings: ingest (CLI, CSV, later the API), digests that make the series
//! tamper-evident, the view of a place's series, and its SVG chart.

use crate::{AppError, Outcome, Request, Result, Site};
use qm_core::conditions::{Band, Reading};
use qm_core::{Badge, Command, LocationId, Rejection};
use qm_store::StoredReading;
use serde::Serialize;
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::Path;
use time::OffsetDateTime;

/// Most readings read back as the window before new ones (for excursions that span batches).
const WINDOW_MAX: usize = 50_000;

pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_ms(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// The canonical line of one reading, as hashed into a digest: `location,at_ms,temperature_c,humidity_pct\n`
/// (numbers in Rust's shortest round-trip form; an absent value is empty).
pub fn digest_line(location: &str, at_ms: i64, temperature_c: Option<f64>, humidity_pct: Option<f64>) -> String {
    format!("{location},{at_ms},{},{}\n", opt(temperature_c), opt(humidity_pct))
}

/// SHA-256 (hex) over the canonical lines of readings, in order.
pub fn digest<'a>(lines: impl Iterator<Item = String> + 'a) -> String {
    let mut h = sha2::Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
    }
    crate::hex(&h.finalize())
}

/// Readings are stored to the millisecond; normalize before hashing so the stored series hashes the same.
fn normalize(r: &Reading) -> Reading {
    Reading { at: from_ms(ms(r.at)), ..r.clone() }
}

impl Site {
    /// Records a batch of readings for one place: the readings themselves (outside the ledger), a
    /// digest entry, and any excursion the rules find, in one durable transaction.
    pub fn record_readings(
        &mut self,
        actor: impl Into<crate::Actor>,
        location: &LocationId,
        readings: Vec<Reading>,
        idempotency_key: &str,
        at: OffsetDateTime,
    ) -> Result<Outcome> {
        let mut readings: Vec<Reading> = readings.iter().map(normalize).collect();
        readings.sort_by_key(|r| r.at);
        let (Some(first), Some(last)) = (readings.first().map(|r| r.at), readings.last().map(|r| r.at)) else {
            return Err(AppError::Rejected(Rejection::Invalid("no readings given".into())));
        };
        if !self.state().locations.contains_key(location) {
            return Err(AppError::Rejected(Rejection::NotFound { what: "location", id: location.to_string() }));
        }
        // The window reaches back to the start of an open excursion and one excursion time before the batch.
        let band = self.state().band_at(location);
        let open_start =
            self.state().excursions.values().filter(|x| x.location == *location && x.ended_at.is_none()).map(|x| x.started_at).min();
        let back = first - time::Duration::minutes(band.excursion_minutes + 1);
        let from = open_start.map_or(back, |s| s.min(back));
        let window: Vec<Reading> = self
            .store()
            .readings(location.as_str(), ms(from), ms(last), WINDOW_MAX)?
            .into_iter()
            .map(|r| Reading { at: from_ms(r.at_ms), temperature_c: r.temperature_c, humidity_pct: r.humidity_pct })
            .collect();
        let sha256 = digest(readings.iter().map(|r| digest_line(location.as_str(), ms(r.at), r.temperature_c, r.humidity_pct)));
        let command = Command::RecordReadings { location: location.clone(), readings: readings.clone(), window, sha256 };
        let req = Request::by(&actor.into(), None, command, idempotency_key.to_string(), at);
        self.record_with_data(&req, |o, commit| {
            commit.readings = readings
                .iter()
                .map(|r| StoredReading {
                    location: location.to_string(),
                    at_ms: ms(r.at),
                    temperature_c: r.temperature_c,
                    humidity_pct: r.humidity_pct,
                    digest_seq: o.first_seq,
                })
                .collect();
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ImportedReadings {
    pub file: String,
    pub readings: usize,
    pub locations: usize,
    pub excursions_started: usize,
}

/// Imports readings from CSV (`location,at,temperature_c,humidity_pct`; `at` in RFC 3339). Every row is
/// parsed and every place checked before anything is written.
pub fn import_readings(
    site: &mut Site,
    path: &Path,
    actor: &Badge,
    at: OffsetDateTime,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportedReadings> {
    let file = path.display().to_string();
    let err = |m: String| AppError::Import { file: file.clone(), message: m };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > crate::import::IMPORT_FILE_BYTES_MAX {
        return Err(err(format!("{} bytes; the limit is {}", meta.len(), crate::import::IMPORT_FILE_BYTES_MAX)));
    }
    let mut reader = csv::ReaderBuilder::new().from_path(path).map_err(|e| err(e.to_string()))?;
    let headers = reader.headers().map_err(|e| err(format!("line 1: {e}")))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let (Some(c_loc), Some(c_at)) = (col("location"), col("at")) else {
        return Err(err("line 1: columns location and at are required, with temperature_c and/or humidity_pct".into()));
    };
    let (c_t, c_h) = (col("temperature_c"), col("humidity_pct"));
    let mut by_location: BTreeMap<LocationId, Vec<Reading>> = BTreeMap::new();
    let mut n = 0usize;
    for rec in reader.records() {
        let rec = rec.map_err(|e| err(format!("line {}: {e}", e.position().map(|p| p.line()).unwrap_or(0))))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: Option<usize>| i.and_then(|i| rec.get(i)).map(str::trim).filter(|v| !v.is_empty());
        let location =
            LocationId::parse(field(Some(c_loc)).unwrap_or("")).map_err(|e| err(format!("line {line}, column location: {e}")))?;
        let at_text = field(Some(c_at)).unwrap_or("");
        let when = OffsetDateTime::parse(at_text, &time::format_description::well_known::Rfc3339)
            .map_err(|_| err(format!("line {line}, column at: {at_text:?} is not an RFC 3339 time like 2026-11-23T06:00:00Z")))?;
        let num = |c: Option<usize>, name: &str| -> Result<Option<f64>> {
            field(c).map(|v| v.parse::<f64>().map_err(|_| err(format!("line {line}, column {name}: {v:?} is not a number")))).transpose()
        };
        let reading = Reading { at: when, temperature_c: num(c_t, "temperature_c")?, humidity_pct: num(c_h, "humidity_pct")? };
        if reading.temperature_c.is_none() && reading.humidity_pct.is_none() {
            return Err(err(format!("line {line}: neither temperature_c nor humidity_pct")));
        }
        by_location.entry(location).or_default().push(reading);
        n += 1;
    }
    for loc in by_location.keys() {
        if !site.state().locations.contains_key(loc) {
            return Err(err(format!("location {loc} does not exist; nothing from this file was recorded")));
        }
    }
    let run = uuid::Uuid::new_v4();
    let mut done = 0u64;
    let mut started = 0;
    let locations = by_location.len();
    for (loc, readings) in by_location {
        for (i, chunk) in readings.chunks(qm_core::rules::READINGS_MAX).enumerate() {
            let o = site.record_readings(actor, &loc, chunk.to_vec(), &format!("readings-{run}-{loc}-{i}"), at)?;
            started += o.entries.iter().filter(|e| matches!(e.event, qm_core::Event::ExcursionStarted { .. })).count();
            done += chunk.len() as u64;
            progress(done, n as u64);
        }
    }
    Ok(ImportedReadings { file, readings: n, locations, excursions_started: started })
}

#[derive(Clone, Debug, Serialize)]
pub struct ExcursionView {
    pub id: String,
    pub measure: String,
    pub direction: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub limit: f64,
    pub peak: f64,
    pub lots_exposed: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConditionsView {
    pub location: String,
    pub band: Band,
    pub readings: Vec<Reading>,
    pub excursions: Vec<ExcursionView>,
}

/// A place's readings in a time range, its allowed band and the excursions that touch the range.
pub fn conditions(
    site: &Site,
    location: &LocationId,
    since: OffsetDateTime,
    until: OffsetDateTime,
    limit: usize,
) -> Result<ConditionsView> {
    if !site.state().locations.contains_key(location) {
        return Err(AppError::Rejected(Rejection::NotFound { what: "location", id: location.to_string() }));
    }
    let readings: Vec<Reading> = site
        .store()
        .readings(location.as_str(), ms(since), ms(until), limit)?
        .into_iter()
        .map(|r| Reading { at: from_ms(r.at_ms), temperature_c: r.temperature_c, humidity_pct: r.humidity_pct })
        .collect();
    let zone = crate::zone::SiteZone::of(site.state());
    let excursions = site
        .state()
        .excursions
        .iter()
        .filter(|(_, x)| x.location == *location && x.started_at <= until && x.ended_at.is_none_or(|e| e >= since))
        .map(|(id, x)| ExcursionView {
            id: id.clone(),
            measure: x.measure.as_str().into(),
            direction: format!("{:?}", x.direction).to_lowercase(),
            started_at: zone.show(x.started_at),
            ended_at: x.ended_at.map(|t| zone.show(t)),
            limit: x.limit,
            peak: x.peak,
            lots_exposed: x.lots_exposed.iter().map(|l| l.to_string()).collect(),
        })
        .collect();
    Ok(ConditionsView { location: location.to_string(), band: site.state().band_at(location), readings, excursions })
}

/// An SVG chart of temperature over time, with the allowed band shaded and excursions marked.
pub fn chart_svg(view: &ConditionsView, excursion_spans: &[(OffsetDateTime, Option<OffsetDateTime>)]) -> Result<String> {
    use plotters::prelude::*;
    let pts: Vec<(i64, f64)> = view.readings.iter().filter_map(|r| r.temperature_c.map(|t| (ms(r.at), t))).collect();
    let (Some(x0), Some(x1)) = (pts.first().map(|p| p.0), pts.last().map(|p| p.0)) else {
        return Err(AppError::Usage(format!("no temperature readings at {} in that range", view.location)));
    };
    let x1 = x1.max(x0 + 1);
    let lo = pts.iter().map(|p| p.1).fold(view.band.temperature_c.min, f64::min) - 2.0;
    let hi = pts.iter().map(|p| p.1).fold(view.band.temperature_c.max, f64::max) + 2.0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        let e = |x: String| AppError::Internal(format!("drawing the chart: {x}"));
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{} — temperature (°C); allowed band shaded, excursions in red", view.location), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(x0..x1, lo..hi)
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&|v| {
                let t = from_ms(*v);
                format!("{:02}-{:02} {:02}:{:02}", u8::from(t.month()), t.day(), t.hour(), t.minute())
            })
            .y_desc("°C")
            .draw()
            .map_err(|x| e(x.to_string()))?;
        let band = view.band.temperature_c;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, band.min.max(lo)), (x1, band.max.min(hi))],
                RGBColor(46, 160, 67).mix(0.15).filled(),
            )))
            .map_err(|x| e(x.to_string()))?;
        for (s, end) in excursion_spans {
            let (a, b) = (ms(*s).max(x0), end.map(ms).unwrap_or(x1).min(x1));
            if b > a {
                chart
                    .draw_series(std::iter::once(Rectangle::new([(a, lo), (b, hi)], RED.mix(0.12).filled())))
                    .map_err(|x| e(x.to_string()))?;
            }
        }
        chart.draw_series(LineSeries::new(pts.iter().copied(), BLUE.stroke_width(2))).map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(svg)
}
