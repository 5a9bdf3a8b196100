//! `qm directives`, `qm directive …` and `qm compliance`: issue a directive, relay and acknowledge
//! it for a unit, the shift briefing, a review's sign-off, extend and cancel it, and see who has
//! done what (docs/directives.md).

use super::*;
use crate::args::DirectiveCmd;
use qm_app::directives::{self as dirs, Compliance, DirectiveFilter, DirectiveView};
use qm_core::directives::Measure;
use qm_core::event::DirectiveAction;

fn measures(v: &[String]) -> R<Vec<Measure>> {
    v.iter().map(|m| Measure::parse(m).map_err(usage)).collect()
}

fn time_arg(s: &str) -> R<OffsetDateTime> {
    parse_time(s).map_err(usage)
}

fn print_one(out: &Out, v: &DirectiveView) {
    out.json_or(v, || {
        let mut lines = vec![
            format!("directive {}: \"{}\" — {} posture, {}", v.id, v.title, v.posture, v.status.replace('_', " ")),
            format!("  issued at unit {} by badge {} ({}); {} to {}", v.unit, v.issued_by, v.issued_at, v.starts_at, v.ends_at),
        ];
        if !v.applies_to.is_empty() {
            lines.push(format!("  applies to: {}", v.applies_to.join(", ")));
        }
        lines.extend(v.text.lines().map(|l| format!("  | {l}")));
        lines.push(format!("  measures: {}", if v.measures.is_empty() { "none".into() } else { v.measures.join(", ") }));
        for r in &v.relays {
            let added = if r.measures.is_empty() { String::new() } else { format!("; added {}", r.measures.join(", ")) };
            lines.push(format!("  relayed by unit {} (badge {}, {}): {}{added}", r.unit, r.by, r.at, r.text));
        }
        if let Some(c) = &v.cancelled {
            lines.push(format!("  cancelled {c}"));
        }
        lines.push(format!("  units acknowledged: {} of {}; shift briefings: {}", v.units_acknowledged, v.units_concerned, v.briefed));
        lines.join("\n")
    });
}

fn print_compliance(out: &Out, c: &Compliance) {
    out.json_or(c, || {
        let t = &c.total;
        let mut lines = vec![
            format!("compliance with directive {} \"{}\" at {}", c.directive.id, c.directive.title, c.at),
            format!(
                "  {} of {} units acknowledged; tasks {} of {} done, {} overdue; briefings {} of {} staff; incidents {}{}",
                t.acknowledged,
                t.units,
                t.tasks_done,
                t.tasks,
                t.tasks_overdue,
                t.briefed,
                t.staff,
                t.incidents,
                c.all_acknowledged_after.as_ref().map(|a| format!("; all acknowledged {a} after issue")).unwrap_or_default()
            ),
        ];
        for r in &c.rows {
            let pad = "  ".repeat(r.depth + 1);
            let ack = match (&r.acknowledged_by, &r.acknowledged_at) {
                (Some(b), Some(a)) => format!("acknowledged by {b} {a}{}", if r.acknowledge_late { " (late)" } else { "" }),
                _ if r.acknowledge_late => "NOT acknowledged (overdue)".to_string(),
                _ => "not acknowledged yet".to_string(),
            };
            let relay = r.relayed_at.as_ref().map(|a| format!("; relayed {a}")).unwrap_or_default();
            lines.push(format!("{pad}{} {}: {ack}{relay}; briefed {}/{}", r.unit, r.name, r.briefed, r.staff));
            for task in &r.tasks {
                let done = match (&task.done_at, &task.done_by) {
                    (Some(a), Some(b)) => format!(" {a} by {b}"),
                    _ => format!(" (due {})", task.due),
                };
                lines.push(format!("{pad}  {} {}{done}", task.task, task.status));
            }
            for i in &r.incidents {
                lines.push(format!("{pad}  incident {i}"));
            }
        }
        lines.join("\n")
    });
}

pub(crate) fn run(cli: &Cli, out: &Out) -> R<u8> {
    let now = now();
    match &cli.command {
        Cmd::Directives { in_force, unit } => {
            let s = open_site(cli)?;
            let f = DirectiveFilter { in_force: *in_force, unit: unit.as_deref().map(UnitId::parse).transpose().map_err(usage)? };
            let list = dirs::list(s.state(), &f, now, &|_| true);
            out.json_or(&list, || {
                if list.is_empty() {
                    return "no directives".to_string();
                }
                list.iter()
                    .map(|d| format!("{:<24} {:<10} {:<10} unit {:<8} until {}  {}", d.id, d.status, d.posture, d.unit, d.ends_at, d.title))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(0)
        }
        Cmd::Compliance { directive, csv, unit } => {
            let s = open_site(cli)?;
            let id = p(DirectiveId::parse(directive))?;
            let scope = match unit {
                Some(u) => p(UnitId::parse(u))?,
                None => s.state().site.as_ref().map(|x| x.root_unit.clone()).ok_or_else(|| usage("the site is not initialized"))?,
            };
            let c = dirs::compliance(s.state(), &id, now, &scope)?;
            if *csv {
                print!("{}", dirs::compliance_csv(&c));
            } else {
                print_compliance(out, &c);
            }
            Ok(0)
        }
        Cmd::Directive(DirectiveCmd::Show { directive }) => {
            let s = open_site(cli)?;
            let id = p(DirectiveId::parse(directive))?;
            let d = dirs::get(s.state(), &id)?;
            print_one(out, &dirs::view(s.state(), &id, d, now));
            Ok(0)
        }
        Cmd::Directive(c) => {
            let mut s = open_site(cli)?;
            let command = command_of(&s, cli, c, now)?;
            write(&mut s, &cli.who, command, out)
        }
        _ => Err(usage("not a directive command")),
    }
}

fn command_of(s: &Site, cli: &Cli, c: &DirectiveCmd, now: OffsetDateTime) -> R<Command> {
    let id = |d: &str| p(DirectiveId::parse(d));
    let unit = |u: &str| p(UnitId::parse(u));
    let step = |d: &str, action: DirectiveAction| -> R<Command> { Ok(Command::UpdateDirective { directive: id(d)?, action }) };
    match c {
        DirectiveCmd::Issue { unit: u, title, text, posture, start, end, days, applies_to, measures: m } => {
            let starts_at = start.as_deref().map(time_arg).transpose()?;
            let ends_at = match (end, days) {
                (Some(e), _) => time_arg(e)?,
                (None, Some(d)) => starts_at.unwrap_or(now) + time::Duration::days(i64::from(*d)),
                (None, None) => return Err(usage("say when it ends: --end TIME or --days N")),
            };
            Ok(Command::IssueDirective {
                unit: unit(u)?,
                applies_to: applies_to.iter().map(|a| unit(a)).collect::<R<_>>()?,
                title: title.clone(),
                text: text.clone(),
                posture: posture.clone(),
                starts_at,
                ends_at,
                measures: measures(m)?,
            })
        }
        DirectiveCmd::Relay { directive, unit: u, text, measures: m } => {
            step(directive, DirectiveAction::Relay { unit: unit(u)?, text: text.clone(), measures: measures(m)? })
        }
        DirectiveCmd::Ack { directive, unit: u } => step(directive, DirectiveAction::Acknowledge { unit: unit(u)? }),
        DirectiveCmd::Brief { directive, unit: u } => {
            let u = match u {
                Some(u) => unit(u)?,
                None => {
                    let badge = p(Badge::parse(cli.who.actor.as_deref().unwrap_or_default()))?;
                    s.state().people.get(&badge).map(|x| x.unit.clone()).ok_or_else(|| usage(format!("badge {badge} is not registered")))?
                }
            };
            step(directive, DirectiveAction::Brief { unit: u })
        }
        DirectiveCmd::SignOff { directive, unit: u, task, note, raise } => step(
            directive,
            DirectiveAction::SignOff { unit: unit(u)?, task: task.clone(), reviewed: vec![], note: note.clone(), raised: raise.clone() },
        ),
        DirectiveCmd::Extend { directive, end, reason } => {
            step(directive, DirectiveAction::Extend { ends_at: time_arg(end)?, reason: reason.clone() })
        }
        DirectiveCmd::Cancel { directive, reason } => step(directive, DirectiveAction::Cancel { reason: reason.clone() }),
        DirectiveCmd::Show { directive } => Err(usage(format!("`qm directive show {directive}` records nothing"))),
    }
}
