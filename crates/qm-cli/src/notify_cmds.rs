//! `qm notifications …`: the outbox of e-mails and webhooks with each delivery's state, checking a
//! notifications file against the books, and trying a message again (docs/notifications.md).

use super::*;
use crate::args::NotifyCmd;
use qm_app::notify::{self, NotifyConfig};
use qm_store::OutboxQuery;

/// Who a rule names, in words: the people its roles and badges find at `unit`, with their addresses.
fn rule_people(s: &State, cfg: &NotifyConfig, r: &notify::NotifyRule, unit: &UnitId) -> Vec<String> {
    notify::rule_people(s, r, unit)
        .iter()
        .map(|b| match cfg.people.get(b.as_str()) {
            Some(a) if cfg.smtp.is_some() => format!("{b} <{a}>"),
            _ if r.web => format!("{b} (web only: no address)"),
            _ => format!("{b} (nobody: no address, web off)"),
        })
        .collect()
}

fn check(s: &State, file: &str, out: &Out) -> R<u8> {
    let cfg = NotifyConfig::load(std::path::Path::new(file), s)?;
    let rules: Vec<serde_json::Value> = cfg
        .notify
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let units: Vec<UnitId> = match UnitId::parse(&r.unit) {
                Ok(u) => vec![u],
                Err(_) => s.units.keys().cloned().collect(),
            };
            let people: Vec<String> =
                units.iter().flat_map(|u| rule_people(s, &cfg, r, u).into_iter().map(move |p| format!("{u}: {p}"))).collect();
            serde_json::json!({
                "rule": format!("notify[{i}]"),
                "unit": r.unit,
                "subtree": r.subtree,
                "kinds": if r.kinds.is_empty() { vec!["any".to_string()] } else { r.kinds.iter().map(|k| k.to_string()).collect() },
                "min_severity": r.min_severity.to_string(),
                "on": if r.on.is_empty() { notify::NotifyOn::ALL.to_vec() } else { r.on.clone() }.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
                "people": people,
                "email": r.email,
                "webhooks": r.webhooks,
            })
        })
        .collect();
    let v = serde_json::json!({ "file": file, "ok": true, "smtp": cfg.smtp.as_ref().map(|x| format!("{}:{} ({:?})", x.host, x.port(), x.tls)), "webhooks": cfg.webhooks.keys().collect::<Vec<_>>(), "rules": rules });
    out.json_or(&v, || {
        let mut lines = vec![format!("{file}: valid")];
        for r in &rules {
            lines.push(format!(
                "  {}: incidents at {}{} of kinds {} from {} ({}): people {}; e-mail {}; webhooks {}",
                r["rule"].as_str().unwrap_or(""),
                r["unit"].as_str().unwrap_or(""),
                if r["subtree"].as_bool() == Some(true) { " and below" } else { "" },
                r["kinds"],
                r["min_severity"].as_str().unwrap_or(""),
                r["on"],
                r["people"],
                r["email"],
                r["webhooks"]
            ));
        }
        lines.join("\n")
    });
    Ok(0)
}

pub(crate) fn run(cli: &Cli, out: &Out) -> R<u8> {
    let Cmd::Notifications(c) = &cli.command else { return Err(usage("not a notifications command")) };
    match c {
        NotifyCmd::List { pending, limit } => {
            let s = open_site(cli)?;
            let q = OutboxQuery { pending_only: *pending, limit: *limit, ..Default::default() };
            let list: Vec<_> = notify::views(s.state(), s.outbox(&q)?).into_iter().filter(|v| v.channel != "web").collect();
            out.json_or(&list, || {
                if list.is_empty() {
                    return "the outbox is empty".into();
                }
                let rows = list
                    .iter()
                    .map(|v| {
                        vec![
                            v.id.clone(),
                            v.created.clone(),
                            v.channel.clone(),
                            v.target.clone(),
                            v.incident.clone().unwrap_or_else(|| "-".into()),
                            v.status.to_string(),
                            v.attempts.to_string(),
                            v.last_error.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                output::table(&["id", "created", "channel", "to", "incident", "state", "attempts", "last error"], rows)
            });
            Ok(0)
        }
        NotifyCmd::Check { file } => check(open_site(cli)?.state(), file, out),
        NotifyCmd::Retry { id } => {
            let mut s = open_site(cli)?;
            let m = s.outbox_retry(id, now())?;
            out.kv(&[("id", m.id), ("channel", m.channel), ("to", m.target), ("next attempt", "now (the server's next round)".into())]);
            Ok(0)
        }
    }
}
