//! Storage conditions: the allowed band for a place and the detection of excursions in a series of readings.
//!
//! Readings themselves are high-volume and live outside the ledger; the ledger records a digest of
//! each batch and every excursion (start, end, peak, lots exposed). Detection is pure and is run by
//! the rules over the recent window of readings that the edge passes in.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// One reading of a location's storage conditions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub humidity_pct: Option<f64>,
}

/// An inclusive range of allowed values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    /// The tighter of two ranges (their intersection); an empty intersection keeps the stricter maximum
    /// and minimum anyway, so every reading is out of band and the conflict shows.
    pub fn tighten(self, other: Range) -> Range {
        Range { min: self.min.max(other.min), max: self.max.min(other.max) }
    }
    pub fn contains(self, v: f64) -> bool {
        v >= self.min && v <= self.max
    }
}

/// The allowed band for a place: temperature and relative humidity, and how long a reading may stay
/// outside it before it counts as an excursion.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub temperature_c: Range,
    pub humidity_pct: Range,
    pub excursion_minutes: i64,
}

/// Defaults when neither the item types nor the location say otherwise. Temperature: the US Army
/// practice of acting when a magazine stays above 37.8 °C (records.md, explosives.toml
/// `environment.limits.army_magazine_hot`), and freezing as the lower bound; humidity: the 70 % warning
/// level of `environment.suggested_system_thresholds`. Organizations override per location.
pub const DEFAULT_BAND: Band =
    Band { temperature_c: Range { min: 0.0, max: 37.8 }, humidity_pct: Range { min: 0.0, max: 70.0 }, excursion_minutes: 60 };

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    Temperature,
    Humidity,
}

impl Measure {
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Temperature => "temperature",
            Measure::Humidity => "humidity",
        }
    }
    pub fn unit(self) -> &'static str {
        match self {
            Measure::Temperature => "°C",
            Measure::Humidity => "% RH",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    High,
    Low,
}

/// A stretch of readings outside the band for at least the band's excursion time.
#[derive(Clone, Debug, PartialEq)]
pub struct Detected {
    pub measure: Measure,
    pub direction: Direction,
    pub start: OffsetDateTime,
    /// None while the last reading is still out of band.
    pub end: Option<OffsetDateTime>,
    /// The most extreme value seen.
    pub peak: f64,
    /// The limit that was crossed.
    pub limit: f64,
}

fn value(r: &Reading, m: Measure) -> Option<f64> {
    match m {
        Measure::Temperature => r.temperature_c,
        Measure::Humidity => r.humidity_pct,
    }
}

/// Finds excursions in readings sorted by time. A run of out-of-band readings starts at its first
/// reading and ends at the first reading back in band; it is an excursion if it lasted at least the
/// band's excursion time (an open run counts up to the last reading).
pub fn detect(readings: &[Reading], band: &Band) -> Vec<Detected> {
    let min = Duration::minutes(band.excursion_minutes.max(0));
    let mut out = vec![];
    for m in [Measure::Temperature, Measure::Humidity] {
        let range = match m {
            Measure::Temperature => band.temperature_c,
            Measure::Humidity => band.humidity_pct,
        };
        let mut run: Option<Detected> = None;
        let mut last_at = None;
        for r in readings {
            let Some(v) = value(r, m) else { continue };
            last_at = Some(r.at);
            let dir = if v > range.max {
                Some(Direction::High)
            } else if v < range.min {
                Some(Direction::Low)
            } else {
                None
            };
            match (&mut run, dir) {
                (Some(x), Some(d)) if x.direction == d => {
                    let worse = match d {
                        Direction::High => v > x.peak,
                        Direction::Low => v < x.peak,
                    };
                    if worse {
                        x.peak = v;
                    }
                }
                (current, d) => {
                    // Back in band, or over the other side: the current run ends here.
                    if let Some(mut x) = current.take() {
                        x.end = Some(r.at);
                        if r.at - x.start >= min {
                            out.push(x);
                        }
                    }
                    if let Some(d) = d {
                        let limit = if d == Direction::High { range.max } else { range.min };
                        run = Some(Detected { measure: m, direction: d, start: r.at, end: None, peak: v, limit });
                    }
                }
            }
        }
        if let (Some(x), Some(last)) = (run, last_at) {
            if last - x.start >= min {
                out.push(x);
            }
        }
    }
    out.sort_by_key(|d| (d.start, d.measure));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(min: i64, t: f64) -> Reading {
        Reading { at: OffsetDateTime::UNIX_EPOCH + Duration::minutes(min), temperature_c: Some(t), humidity_pct: None }
    }

    #[test]
    fn short_spikes_are_not_excursions_and_long_runs_are() {
        let band = Band { excursion_minutes: 60, ..DEFAULT_BAND };
        let series = vec![r(0, 20.0), r(30, 40.0), r(60, 20.0), r(90, 39.0), r(120, 45.5), r(150, 41.0), r(180, 30.0), r(210, 38.5)];
        let found = detect(&series, &band);
        assert_eq!(found.len(), 1, "{found:?}");
        let x = &found[0];
        assert_eq!((x.direction, x.peak, x.limit), (Direction::High, 45.5, 37.8));
        assert_eq!(x.start, OffsetDateTime::UNIX_EPOCH + Duration::minutes(90));
        assert_eq!(x.end, Some(OffsetDateTime::UNIX_EPOCH + Duration::minutes(180)));
        // A run still out of band at the last reading is open.
        let open = detect(&[r(0, 50.0), r(61, 51.0)], &band);
        assert_eq!(open[0].end, None);
        assert_eq!(open[0].peak, 51.0);
        // Cold side too.
        let cold = detect(&[r(0, -5.0), r(70, -7.0), r(80, 5.0)], &band);
        assert_eq!((cold[0].direction, cold[0].peak), (Direction::Low, -7.0));
    }
}
