//! `qm access …`: rosters (grant, revoke, show), who is inside, a place's door log, and the door
//! terminal from the command line (docs/access.md).

use super::*;
use crate::args::AccessCmd;
use qm_app::access as acc;
use qm_core::access::Hours;

fn print_places(out: &Out, places: &[acc::PlaceView]) {
    out.json_or(&places, || {
        let mut lines = vec![];
        for p in places {
            let rule = if p.two_person { "; two-person entry" } else { "" };
            let alone = if p.alone { " — ONE PERSON ALONE" } else { "" };
            let who = if p.inside.is_empty() {
                "nobody inside".to_string()
            } else {
                let names: Vec<String> = p
                    .inside
                    .iter()
                    .map(|i| format!("{} {} since {}{}", i.badge, i.name, i.since, if i.after_hours { " (after hours)" } else { "" }))
                    .collect();
                format!("inside: {}", names.join(", "))
            };
            lines.push(format!("{:<10} {:<9} unit {:<8} roster {:>3}{rule}: {who}{alone}", p.location, p.kind, p.unit, p.roster));
            if let Some(c) = &p.count_due {
                lines.push(format!("{:<10} DUE: {c}", ""));
            }
        }
        if lines.is_empty() {
            "no armories, depots or magazines".to_string()
        } else {
            lines.join("\n")
        }
    });
}

pub(crate) fn run(cli: &Cli, c: &AccessCmd, out: &Out) -> R<u8> {
    let now = now();
    let loc = |l: &str| p(LocationId::parse(l));
    match c {
        AccessCmd::Inside { location } => {
            let s = open_site(cli)?;
            let mut places = acc::places(&s, None, now);
            if let Some(l) = location {
                let l = loc(l)?;
                places.retain(|x| x.location == l.as_str());
                if places.is_empty() {
                    return Err(usage(format!("{l} is not an armory, depot or magazine of these books")));
                }
            }
            print_places(out, &places);
            Ok(0)
        }
        AccessCmd::Roster { location } => {
            let s = open_site(cli)?;
            let rows = acc::roster(&s, &loc(location)?)?;
            out.json_or(&rows, || {
                if rows.is_empty() {
                    return format!("nobody is on the roster of {location}");
                }
                rows.iter()
                    .map(|r| {
                        let inside = r.inside_since.as_ref().map(|t| format!("; inside since {t}")).unwrap_or_default();
                        format!(
                            "{:<6} {:<20} {:<15} {}  (granted by {} {}: {}){inside}",
                            r.badge, r.name, r.role, r.hours, r.granted_by, r.granted_at, r.reason
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(0)
        }
        AccessCmd::Grant { location, badge, role, hours: h, except, reason } => {
            let mut s = open_site(cli)?;
            let cmd = Command::GrantAccess {
                location: loc(location)?,
                badge: p(Badge::parse(badge))?,
                role: Role::parse(role).map_err(usage)?,
                hours: Hours::parse_with_exceptions(h, except).map_err(usage)?,
                reason: reason.clone(),
            };
            write(&mut s, &cli.who, cmd, out)
        }
        AccessCmd::Revoke { location, badge, reason } => {
            let mut s = open_site(cli)?;
            let cmd = Command::RevokeAccess { location: loc(location)?, badge: p(Badge::parse(badge))?, reason: reason.clone() };
            write(&mut s, &cli.who, cmd, out)
        }
        AccessCmd::Log { location, date, unmapped, limit } => log(cli, location.as_deref(), date.as_deref(), *unmapped, *limit, out),
        AccessCmd::Door { location, exit } => door(cli, location, *exit, out),
    }
}

/// `qm access log`: a place's door events of a day, or those of doors mapped to no place.
fn log(cli: &Cli, location: Option<&str>, date: Option<&str>, unmapped: bool, limit: usize, out: &Out) -> R<u8> {
    let now = now();
    let s = open_site(cli)?;
    let place = match (location, unmapped) {
        (Some(l), false) => Some(p(LocationId::parse(l))?),
        (None, true) => None,
        _ => return Err(usage("give a place, or --unmapped for doors mapped to no place")),
    };
    let date = date.map(qm_core::command::parse_date).transpose().map_err(usage)?;
    let (from, until) = acc::day_bounds(&s, date, now);
    let rows = acc::log(&s, place.as_ref(), from, until, limit)?;
    out.json_or(&rows, || {
        if rows.is_empty() {
            return "no door events that day".to_string();
        }
        rows.iter()
            .map(|r| {
                let who = match (&r.badge, &r.name, &r.card) {
                    (Some(b), Some(n), _) => format!("{b} {n}"),
                    (Some(b), None, _) => b.clone(),
                    (None, _, Some(c)) => format!("card {c} (unknown)"),
                    _ => "-".into(),
                };
                let why = if r.reason.is_empty() { String::new() } else { format!(": {}", r.reason) };
                let found = if r.findings.is_empty() { String::new() } else { format!(" [{}]", r.findings.join(", ")) };
                format!("{}  {:<9} {:<24} door {} via {}{found}{why}", r.at, r.kind, who, r.door, r.source)
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(0)
}

/// `qm access door`: the door terminal from the command line.
fn door(cli: &Cli, location: &str, exit: bool, out: &Out) -> R<u8> {
    let now = now();
    let mut s = open_site(cli)?;
    let l = p(LocationId::parse(location))?;
    let who = &cli.who;
    let badge = p(Badge::parse(who.actor.as_deref().ok_or_else(|| usage("give --actor BADGE and the PIN in QM_PIN"))?))?;
    let proof = s.door_proof(&badge, who.pin.as_deref().ok_or_else(|| usage("give the PIN in QM_PIN (or --pin)"))?)?;
    let answer = s.record_terminal(&l, badge.as_str(), exit, proof, now)?;
    s.checkpoint_if_grown()?;
    out.json_or(&answer, || answer.message.clone());
    Ok(if answer.granted { 0 } else { 1 })
}
