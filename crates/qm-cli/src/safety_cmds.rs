//! Explosives and ammunition commands: quantity-distance, magazines, lot life, storage conditions, the daily magazine summary.

use crate::args::{Cli, Cmd, ConditionsCmd, ReportCmd};
use crate::output::Out;
use qm_app::magazines::{self, LotFilter};
use qm_app::AppError;
use qm_core::conditions::{Range, Reading};
use qm_core::safety::fmt_kg;
use qm_core::*;
use time::OffsetDateTime;

type R<T> = Result<T, AppError>;

fn usage(m: impl std::fmt::Display) -> AppError {
    AppError::Usage(m.to_string())
}

/// "MIN:MAX" → a range.
pub fn range(s: &str) -> R<Range> {
    qm_core::command::parse_range(s).map_err(usage)
}

/// YYYY-MM-DD (midnight UTC) or RFC 3339.
fn time_arg(s: &str) -> R<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    parse_date(s).map(|d| d.midnight().assume_utc()).map_err(usage)
}

pub fn run(cli: &Cli, out: &Out) -> R<u8> {
    match &cli.command {
        Cmd::Qd { hd, neq_kg, distance } => {
            let tables = crate::tables(cli)?;
            let lines = match neq_kg {
                Some(q) if !(q.is_finite() && *q >= 0.0) => return Err(usage("--neq-kg must be a number ≥ 0")),
                Some(q) => magazines::qd_distances(&tables, hd, *q)?,
                None => {
                    let ds = distance
                        .iter()
                        .map(|d| {
                            let (k, m) = d.split_once('=').ok_or_else(|| usage(format!("--distance {d:?}: write KIND=METRES")))?;
                            Ok((k.to_string(), m.parse::<f64>().map_err(|_| usage(format!("--distance {d:?}: {m:?} is not a number")))?))
                        })
                        .collect::<R<Vec<_>>>()?;
                    magazines::qd_max_neq(&tables, hd, &ds)?
                }
            };
            out.json_or(&lines, || {
                let mut s = String::new();
                for l in &lines {
                    let v = if neq_kg.is_some() {
                        format!("{} m", fmt_kg(l.value))
                    } else if l.value.is_finite() {
                        format!("{} kg", fmt_kg(l.value))
                    } else {
                        "no limit".into()
                    };
                    s.push_str(&format!("{:<28} {:>10}   {}   [{}]\n", l.exposed_site, v, l.formula, l.source));
                }
                if neq_kg.is_none() {
                    let min = lines.iter().map(|l| l.value).fold(f64::INFINITY, f64::min);
                    if min.is_finite() {
                        s.push_str(&format!("largest permissible NEQ for HD {hd}: {} kg\n", fmt_kg(min)));
                    }
                }
                s.trim_end().to_string()
            });
            Ok(0)
        }
        Cmd::Magazines { unit } => {
            let site = crate::open_site(cli)?;
            let unit = unit.as_deref().map(UnitId::parse).transpose().map_err(usage)?;
            let views = magazines::magazines(site.state(), unit.as_ref());
            out.json_or(&views, || magazines_text(&views));
            Ok(0)
        }
        Cmd::Lots { expiring, expired, suspended, unit } => {
            let site = crate::open_site(cli)?;
            let filter = match (expiring, expired, suspended) {
                (Some(d), false, false) => {
                    let n = d
                        .trim_end_matches('d')
                        .parse::<i64>()
                        .map_err(|_| usage(format!("--expiring {d:?}: write a number of days such as 90d")))?;
                    LotFilter::Expiring(n)
                }
                (None, true, false) => LotFilter::Expired,
                (None, false, true) => LotFilter::Suspended,
                (None, false, false) => LotFilter::All,
                _ => return Err(usage("give one of --expiring, --expired, --suspended")),
            };
            let unit = unit.as_deref().map(UnitId::parse).transpose().map_err(usage)?;
            let lots = magazines::lots(site.state(), filter, magazines::today(), unit.as_ref());
            out.json_or(&lots, || {
                let mut s = String::new();
                for l in &lots {
                    let life = match (l.expires, l.days_left) {
                        (Some(e), Some(d)) if d < 0 => format!("EXPIRED {e} ({} days ago)", -d),
                        (Some(e), Some(d)) => format!("expires {e} (in {d} days)"),
                        _ => "no expiry date".into(),
                    };
                    s.push_str(&format!("lot {} ({}) — {life}; {}\n", l.lot, l.item_type, l.status));
                    for d in &l.decisions {
                        s.push_str(&format!("    decision: {d}\n"));
                    }
                    for h in &l.held {
                        s.push_str(&format!("    {} {} at {} [{}]\n", h.quantity, l.item_type, h.account, h.status));
                    }
                }
                if s.is_empty() {
                    "no lots match".into()
                } else {
                    s.trim_end().to_string()
                }
            });
            Ok(0)
        }
        Cmd::Conditions(c) => conditions(cli, c, out),
        Cmd::Report(ReportCmd::Dsmt { magazine, date, format }) => {
            let site = crate::open_site(cli)?;
            let d = magazines::dsmt(&site, &LocationId::parse(magazine).map_err(usage)?, parse_date(date).map_err(usage)?)?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default()),
                "csv" => print!("{}", magazines::dsmt_csv(&d)),
                "text" if out.json => println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default()),
                "text" => println!("{}", dsmt_text(&d)),
                other => return Err(usage(format!("--format {other:?}: text, csv or json"))),
            }
            Ok(0)
        }
        _ => Err(AppError::Internal("not a safety command".into())),
    }
}

fn dsmt_text(d: &magazines::Dsmt) -> String {
    let mut s = format!("Daily summary of magazine transactions — {} — {}\n", d.magazine, d.date);
    if d.no_movement {
        s.push_str("No receipts or removals on this day.\n");
    }
    if d.lines.is_empty() {
        s.push_str("Nothing on hand.\n");
    }
    for l in &d.lines {
        s.push_str(&format!(
            "{} {}{}: opening {} {u}, received {}, removed {}, closing {} {u}\n",
            l.item_type,
            l.item_name,
            l.lot.as_ref().map(|x| format!(", lot {x}")).unwrap_or_default(),
            l.opening,
            l.received,
            l.removed,
            l.closing,
            u = l.unit_of_measure
        ));
        for m in &l.receipts {
            s.push_str(&format!(
                "    + {} {} from {} by {}{}{}\n",
                m.at,
                m.quantity,
                m.counterpart,
                m.by,
                m.witness.as_ref().map(|w| format!(" (witness {w})")).unwrap_or_default(),
                m.document.as_ref().map(|x| format!(" [{x}]")).unwrap_or_default()
            ));
        }
        for m in &l.removals {
            s.push_str(&format!(
                "    - {} {} to {} by {}{}{}\n",
                m.at,
                m.quantity,
                m.counterpart,
                m.by,
                m.witness.as_ref().map(|w| format!(" (witness {w})")).unwrap_or_default(),
                m.document.as_ref().map(|x| format!(" [{x}]")).unwrap_or_default()
            ));
        }
    }
    s.push_str(&d.book_check);
    s
}

fn conditions(cli: &Cli, c: &ConditionsCmd, out: &Out) -> R<u8> {
    let mut site = crate::open_site(cli)?;
    match c {
        ConditionsCmd::Record { location, temperature_c, humidity_pct, at } => {
            let who = crate::sign_in(&mut site, &cli.who, "record_readings")?;
            let now = OffsetDateTime::now_utc();
            let at = at.as_deref().map(time_arg).transpose()?.unwrap_or(now);
            let key = cli.who.idempotency_key.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            let o = site.record_readings(
                &who,
                &LocationId::parse(location).map_err(usage)?,
                vec![Reading { at, temperature_c: *temperature_c, humidity_pct: *humidity_pct }],
                &key,
                now,
            )?;
            site.checkpoint_if_grown()?;
            out.outcome(&o);
            Ok(0)
        }
        ConditionsCmd::Import { file } => {
            let who = crate::sign_in(&mut site, &cli.who, "record_readings")?;
            let r = crate::output::with_progress(out, |step| {
                qm_app::conditions::import_readings(&mut site, std::path::Path::new(file), &who, OffsetDateTime::now_utc(), step)
            })?;
            site.checkpoint_if_grown()?;
            out.json_or(&r, || {
                format!(
                    "imported {} readings for {} places from {}; {} excursions started",
                    r.readings, r.locations, r.file, r.excursions_started
                )
            });
            Ok(0)
        }
        ConditionsCmd::Show { location, since, until, svg } => {
            let loc = LocationId::parse(location).map_err(usage)?;
            let since = time_arg(since)?;
            let until = until.as_deref().map(time_arg).transpose()?.unwrap_or_else(OffsetDateTime::now_utc);
            let view = qm_app::conditions::conditions(&site, &loc, since, until, 200_000)?;
            if let Some(path) = svg {
                let spans: Vec<_> =
                    site.state().excursions.values().filter(|x| x.location == loc).map(|x| (x.started_at, x.ended_at)).collect();
                let chart = qm_app::conditions::chart_svg(&view, &spans)?;
                std::fs::write(path, chart).map_err(|e| usage(format!("{path}: {e}")))?;
            }
            out.json_or(&view, || {
                let b = view.band;
                let mut s = format!(
                    "{} — allowed {}–{} °C, {}–{} % RH; an excursion is {} minutes out of band\n",
                    view.location, b.temperature_c.min, b.temperature_c.max, b.humidity_pct.min, b.humidity_pct.max, b.excursion_minutes
                );
                for r in &view.readings {
                    s.push_str(&format!(
                        "  {}  {:>7}  {:>7}\n",
                        qm_core::rules::when(r.at),
                        r.temperature_c.map(|t| format!("{t} °C")).unwrap_or_default(),
                        r.humidity_pct.map(|h| format!("{h} %")).unwrap_or_default()
                    ));
                }
                for x in &view.excursions {
                    s.push_str(&format!(
                        "EXCURSION {}: {} {} limit {} from {} to {}, peak {}; lots exposed: {}\n",
                        x.id,
                        x.measure,
                        x.direction,
                        x.limit,
                        x.started_at,
                        x.ended_at.clone().unwrap_or_else(|| "(ongoing)".into()),
                        x.peak,
                        x.lots_exposed.join(", ")
                    ));
                }
                if let Some(p) = svg {
                    s.push_str(&format!("chart written to {p}\n"));
                }
                s.trim_end().to_string()
            });
            Ok(0)
        }
    }
}

/// `qm magazines` in words: per store, NEQ by division, footnotes in play, limits.
fn magazines_text(views: &[magazines::MagazineView]) -> String {
    let mut s = String::new();
    for v in views {
        let by: Vec<String> = v.neq_kg_by_division.iter().map(|(d, k)| format!("{d}: {} kg", fmt_kg(*k))).collect();
        s.push_str(&format!(
            "{} ({}, unit {}): {} kg NEQ{} [{}]; groups {}\n",
            v.location,
            v.kind,
            v.unit,
            fmt_kg(v.neq_kg),
            v.governing_division.as_ref().map(|d| format!(" as HD {d}")).unwrap_or_default(),
            by.join(", "),
            if v.compatibility_groups.is_empty() { "none".into() } else { v.compatibility_groups.join(",") }
        ));
        for f in &v.footnotes {
            s.push_str(&format!("    {f}\n"));
        }
        for l in &v.limits {
            s.push_str(&format!("    limit: {} — {} kg\n", l.what, if l.neq_kg.is_finite() { fmt_kg(l.neq_kg) } else { "none".into() }));
        }
        if let Some(h) = v.headroom_kg {
            s.push_str(&format!("    headroom: {} kg\n", fmt_kg(h)));
        }
        if let Some(w) = &v.warning {
            s.push_str(&format!("    WARNING: {w}\n"));
        }
    }
    if s.is_empty() {
        "no magazines or depots".into()
    } else {
        s.trim_end().to_string()
    }
}
