//! `qm` custody commands: receipts, issues, returns, moves, transfers, expenditure, losses, lot status, counts, corrections.

use super::*;

pub(crate) fn run(cli: &Cli, out: &Out) -> R<u8> {
    let who = &cli.who;
    let open = || open_site(cli);
    match &cli.command {
        Cmd::Receive { to, from, document, item_type, manufactured, expires, items: list } => {
            let item_type = p(ItemTypeId::parse(item_type))?;
            let manufactured = manufactured.as_deref().map(parse_date).transpose().map_err(usage)?;
            let expires = expires.as_deref().map(parse_date).transpose().map_err(usage)?;
            let lines = p(parse_receipt(list, &item_type, manufactured, expires))?;
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::Receive { to: p(LocationId::parse(to))?, from: from.clone(), document: document.clone(), lines },
                out,
            )
        }
        Cmd::Issue { to, from, items: list } => {
            let mut s = open()?;
            let from = from.as_deref().map(LocationId::parse).transpose().map_err(usage)?;
            write(&mut s, who, Command::Issue { to: p(Badge::parse(to))?, from, items: items(list)? }, out)
        }
        Cmd::Return { from, to, items: list } => return_items(&mut open()?, who, from, to.as_deref(), list, out),
        Cmd::Move { from, to, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::Move { from: p(LocationId::parse(from))?, to: p(LocationId::parse(to))?, items: items(list)? }, out)
        }
        Cmd::Transfer(TransferCmd::Dispatch { from, to_unit, document, items: list }) => {
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::Dispatch {
                    from: p(LocationId::parse(from))?,
                    to_unit: p(UnitId::parse(to_unit))?,
                    items: items(list)?,
                    document: document.clone(),
                },
                out,
            )
        }
        Cmd::Transfer(TransferCmd::Receive { transfer, to, items: list }) => {
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::ReceiveTransfer {
                    transfer: p(TransferId::parse(transfer))?,
                    to: p(LocationId::parse(to))?,
                    received: items(list)?,
                },
                out,
            )
        }
        Cmd::Transfers { all } => {
            let s = open()?;
            out.transfers(&query::transfers(s.state(), *all));
            Ok(0)
        }
        Cmd::Expend { from, document, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::Expend { from: account(from)?, items: items(list)?, document: document.clone() }, out)
        }
        Cmd::Destroy { from, document, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::Destroy { from: p(LocationId::parse(from))?, items: items(list)?, document: document.clone() }, out)
        }
        Cmd::ReportLoss { from, document, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::ReportLost { from: account(from)?, items: items(list)?, document: document.clone() }, out)
        }
        Cmd::Recover { to, document, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::Recover { to: p(LocationId::parse(to))?, items: items(list)?, document: document.clone() }, out)
        }
        Cmd::Lot(LotCmd::Status { lot, status, reason, unit }) => {
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::SetLotStatus {
                    lot: p(LotNo::parse(lot))?,
                    status: p(LotStatus::parse(status))?,
                    reason: reason.clone(),
                    unit: unit.as_deref().map(UnitId::parse).transpose().map_err(usage)?,
                },
                out,
            )
        }
        Cmd::Count(c) => count(cli, c, out),
        Cmd::Correct { seq, reason } => {
            let mut s = open()?;
            let original = Box::new(s.envelope(*seq)?);
            write(&mut s, who, Command::Correct { original, reason: reason.clone() }, out)
        }
        other => Err(AppError::Internal(format!("{other:?} is not a custody command"))),
    }
}

/// `qm counts [--schedule]` (docs/counts.md).
pub(crate) fn counts(site: &Site, schedule: bool, out: &Out) -> R<u8> {
    let s = site.state();
    if schedule {
        let due = qm_app::counts::schedule(s, now());
        out.json_or(&due, || {
            let rows = due.iter().map(|d| {
                let last =
                    d.last_full.as_ref().map_or("never".to_string(), |c| format!("{c} {}", d.last_full_at.clone().unwrap_or_default()));
                let every = d.every_days.map_or("-".to_string(), |n| format!("{n} days"));
                let next = d.next_due.clone().map_or("no schedule".to_string(), |t| if d.overdue { format!("{t} OVERDUE") } else { t });
                vec![d.place.clone(), d.kind.clone(), d.unit.clone(), last, every, next]
            });
            crate::output::table(&["place", "kind", "unit", "last full count", "every", "next due"], rows.collect())
        });
        return Ok(0);
    }
    let list = qm_app::counts::list(s);
    out.json_or(&list, || {
        let rows = list.iter().map(|c| {
            let kind = if c.blind { format!("{} (blind)", c.kind) } else { c.kind.clone() };
            let closed = c.closed.clone().unwrap_or_else(|| "-".into());
            vec![c.count.clone(), c.unit.clone(), c.place.clone(), kind, c.counter.clone(), c.opened.clone(), closed, c.result.clone()]
        });
        crate::output::table(&["count", "unit", "place", "kind", "counter", "opened", "closed", "result"], rows.collect())
    });
    Ok(0)
}

/// A return to `to`, or without it each item back to its home (docs/operations.md, "Returns").
fn return_items(s: &mut Site, who: &Who, from: &str, to: Option<&str>, list: &[String], out: &Out) -> R<u8> {
    let from = p(Badge::parse(from))?;
    let command = match to {
        Some(to) => Command::return_to(from, p(LocationId::parse(to))?, items(list)?),
        None => qm_app::returns::plan_return(s, &from, &parse_return_lines(list).map_err(usage)?, None)?,
    };
    write(s, who, command, out)
}
