//! `qm incidents` and `qm incident …`: open one by hand, list and show them with their clocks, and
//! each step of their life (docs/incidents.md).

use super::*;
use crate::args::IncidentCmd;
use qm_app::incidents::{self, IncidentFilter, IncidentView};
use qm_core::event::{IncidentAction, IncidentObjects};

fn time_arg(s: &str) -> R<time::OffsetDateTime> {
    parse_time(s).map_err(usage)
}

fn ids<T>(v: &[String], f: impl Fn(&str) -> Result<T, IdError>) -> R<Vec<T>> {
    v.iter().map(|s| p(f(s))).collect()
}

/// An incident's clocks in words: `acknowledge due 2026-12-03 07:00 UTC (open, 2 h 10 min left)`.
fn clock_words(v: &IncidentView) -> Vec<String> {
    v.clocks
        .iter()
        .map(|c| {
            let left = c.left_s.unsigned_abs();
            let span = format!("{} h {} min", left / 3600, left % 3600 / 60);
            let when = match c.status {
                "met" => "met".to_string(),
                _ if c.left_s >= 0 => format!("{}, {span} left", c.status),
                _ => format!("{}, {span} overdue", c.status),
            };
            format!("{} → {} due {} ({when}); {}", c.what, c.to, c.due, c.source)
        })
        .collect()
}

fn print_one(out: &Out, v: &IncidentView) {
    out.json_or(v, || {
        let mut lines = vec![
            format!("incident {}: {} {} — {}", v.id, v.severity, v.kind, v.state),
            format!(
                "  unit {} (responsible now: {}){}",
                v.unit,
                v.responsible,
                v.location.as_ref().map(|l| format!(", at {l}")).unwrap_or_default()
            ),
            format!("  {}", v.summary),
            format!(
                "  discovered {} by badge {}; opened {}{}",
                v.discovered_at,
                v.discovered_by,
                v.opened_at,
                v.rule.as_ref().map(|r| format!(" by rule {r}")).unwrap_or_default()
            ),
        ];
        lines.extend(clock_words(v).into_iter().map(|c| format!("  clock: {c}")));
        if v.escalations_due > 0 {
            lines.push(format!("  not acknowledged for {} period(s): escalation due", v.escalations_due));
        }
        if let Some(r) = &v.resolution {
            lines.push(format!("  resolution: {r}"));
        }
        lines.push(format!("  entries: {}", v.entries.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")));
        lines.join("\n")
    });
}

pub(crate) fn run(cli: &Cli, out: &Out) -> R<u8> {
    let now = now();
    match &cli.command {
        Cmd::Notifications(_) => crate::notify_cmds::run(cli, out),
        Cmd::Access(c) => crate::access_cmds::run(cli, c, out),
        Cmd::Sync { .. } | Cmd::Witness(_) => crate::sites_cmds::run(cli, out),
        Cmd::Directive(_) | Cmd::Directives { .. } | Cmd::Compliance { .. } => crate::directive_cmds::run(cli, out),
        Cmd::Incidents { open, unit, kind } => {
            let s = open_site(cli)?;
            let f = IncidentFilter {
                open_only: *open,
                unit: unit.as_deref().map(UnitId::parse).transpose().map_err(usage)?,
                kind: kind.as_deref().map(IncidentKind::parse).transpose().map_err(usage)?,
            };
            print_list(out, &incidents::list(s.state(), &f, now, &|_| true));
            Ok(0)
        }
        Cmd::Incident(IncidentCmd::Show { incident }) => {
            let s = open_site(cli)?;
            print_one(out, &incidents::show(s.state(), &p(IncidentId::parse(incident))?, now)?);
            Ok(0)
        }
        Cmd::Tick => {
            let mut s = open_site(cli)?;
            let done = s.escalate_due(now)?;
            // At a parent, the transfers between its children too (docs/sites.md).
            let across = match cli.children.as_deref() {
                Some(f) => {
                    let children = qm_app::sites::Children::read(std::path::Path::new(f))?;
                    qm_app::across::transfers_across(&mut s, &children, now)?;
                    s.transfers_due(&children, now)?
                }
                None => 0,
            };
            let zone = qm_app::zone::SiteZone::of(s.state());
            let lines: Vec<String> = done
                .iter()
                .flat_map(|o| o.entries.iter())
                .map(|e| format!("{:>7}  {}", e.seq, qm_app::query::summarize_in(e, &zone)))
                .collect();
            let recorded = done.iter().map(|o| o.entries.len()).sum::<usize>();
            out.json_or(&serde_json::json!({ "recorded": recorded, "transfers_across": across }), || {
                let across = (across > 0).then(|| format!("{across} transfers between child sites overdue or received with differences"));
                match (lines.is_empty(), across) {
                    (true, None) => "nothing is due".to_string(),
                    (_, across) => lines.into_iter().chain(across).collect::<Vec<_>>().join("\n"),
                }
            });
            if !done.is_empty() || across > 0 {
                s.checkpoint()?;
            }
            Ok(0)
        }
        Cmd::Incident(c) => {
            let mut s = open_site(cli)?;
            let command = command_of(&s, c, now)?;
            write(&mut s, &cli.who, command, out)
        }
        _ => Err(usage("not an incident command")),
    }
}

fn print_list(out: &Out, list: &[IncidentView]) {
    out.json_or(&list, || {
        if list.is_empty() {
            return "no incidents".into();
        }
        let rows = list
            .iter()
            .map(|v| {
                let next = v.clocks.iter().find(|c| c.status != "met").map(|c| format!("{} {} ({})", c.what, c.status, c.due));
                vec![
                    v.id.clone(),
                    v.severity.clone(),
                    v.kind.clone(),
                    v.state.clone(),
                    v.unit.clone(),
                    next.unwrap_or_else(|| "-".into()),
                    v.summary.clone(),
                ]
            })
            .collect();
        output::table(&["incident", "severity", "kind", "state", "unit", "next clock", "summary"], rows)
    });
}

/// The command an `qm incident …` step makes.
fn command_of(s: &Site, c: &IncidentCmd, now: time::OffsetDateTime) -> R<Command> {
    let step = |incident: &str, action: IncidentAction| -> R<Command> {
        Ok(Command::UpdateIncident { incident: p(IncidentId::parse(incident))?, action })
    };
    Ok(match c {
        IncidentCmd::Show { incident } => return Err(usage(format!("`qm incident show {incident}` records nothing"))),
        IncidentCmd::Open { kind, severity, unit, location, serials, lots, badges, summary, discovered_at } => Command::OpenIncident {
            kind: IncidentKind::parse(kind).map_err(usage)?,
            severity: Severity::parse(severity).map_err(usage)?,
            unit: p(UnitId::parse(unit))?,
            location: location.as_deref().map(LocationId::parse).transpose().map_err(usage)?,
            objects: IncidentObjects {
                serials: ids(serials, Serial::parse)?,
                lots: ids(lots, LotNo::parse)?,
                badges: ids(badges, Badge::parse)?,
                ..Default::default()
            },
            summary: summary.clone(),
            discovered_at: discovered_at.as_deref().map(time_arg).transpose()?,
        },
        IncidentCmd::Ack { incident } => step(incident, IncidentAction::Acknowledge)?,
        IncidentCmd::Investigate { incident } => step(incident, IncidentAction::Investigate)?,
        IncidentCmd::Note { incident, text } => step(incident, IncidentAction::Note { text: text.clone() })?,
        IncidentCmd::Escalate { incident, to, reason } => {
            let id = p(IncidentId::parse(incident))?;
            let to = match to {
                Some(u) => p(UnitId::parse(u))?,
                None => unit_above(s, &id)?,
            };
            Command::UpdateIncident { incident: id, action: IncidentAction::Escalate { to, reason: reason.clone() } }
        }
        IncidentCmd::Report { incident, obligation, authority, reference, at } => {
            let at = at.as_deref().map(time_arg).transpose()?.unwrap_or(now);
            step(
                incident,
                IncidentAction::Report { obligation: obligation.clone(), authority: authority.clone(), reference: reference.clone(), at },
            )?
        }
        IncidentCmd::Close { incident, resolution } => step(incident, IncidentAction::Close { resolution: resolution.clone() })?,
        IncidentCmd::Reopen { incident, reason } => step(incident, IncidentAction::Reopen { reason: reason.clone() })?,
    })
}

/// The unit above the one responsible for an incident now (`qm incident escalate` without `--to`).
fn unit_above(s: &Site, id: &IncidentId) -> R<UnitId> {
    let st = s.state();
    let i = st.incidents.get(id).ok_or_else(|| qm_app::AppError::Rejected(Rejection::NotFound { what: "incident", id: id.to_string() }))?;
    st.units
        .get(&i.responsible)
        .and_then(|u| u.parent.clone())
        .ok_or_else(|| usage(format!("unit {} is the root: there is no unit above it to escalate to", i.responsible)))
}
