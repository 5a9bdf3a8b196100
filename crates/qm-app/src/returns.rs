//! Where returned items go back to (docs/operations.md, "Returns"): each serial to the place it was
//! issued from, each lot to the store of the person's unit that holds most of it, unless the line
//! names a place (`R-1042 > D11-RACK-B`). A return of a rifle and its ammunition is one entry with a
//! movement to the rack and one to the ammunition locker.

use super::*;
use qm_core::{Account, ItemRef, LocationId, ReturnTo};

/// The place a returned item belongs, when the books say.
///
/// A serial: the place the entry that gave it to the person took it from (its `since_seq`). A lot:
/// the place of the person's own unit holding the most of the lot, ties by name (never a depot of a
/// unit above: rounds drawn at a department go back to the department's store).
pub fn home_of(site: &Site, person: &Badge, item: &ItemRef) -> Option<LocationId> {
    let s = site.state();
    match item {
        ItemRef::Serial(serial) => {
            let si = s.serials.get(serial)?;
            if si.account != Account::Person(person.clone()) {
                return None;
            }
            let entry = site.store().read_entries(si.since_seq, 1).ok()?.into_iter().next()?;
            match decode(&entry.bytes).ok()?.event {
                Event::Movement { from: Account::Location(l), to: Account::Person(b), .. }
                    if &b == person && s.locations.contains_key(&l) =>
                {
                    Some(l)
                }
                _ => None,
            }
        }
        ItemRef::Lot { lot, .. } => {
            let unit = s.people.get(person)?.unit.clone();
            s.balances
                .iter()
                .filter_map(|((a, l), b)| match a {
                    Account::Location(loc) if l == lot && b.quantity.is_positive() => Some((loc, b.quantity)),
                    _ => None,
                })
                .filter(|(loc, _)| s.locations.get(*loc).is_some_and(|x| x.unit == unit))
                .max_by(|(la, qa), (lb, qb)| qa.cmp(qb).then_with(|| lb.cmp(la)))
                .map(|(loc, _)| loc.clone())
        }
    }
}

/// The return of `lines` (each item with the place typed for it, if any) from `person`: every item
/// to the place typed for it, else its home, else `fallback`. One command, grouped by place.
pub fn plan_return(site: &Site, person: &Badge, lines: &[(ItemRef, Option<LocationId>)], fallback: Option<&LocationId>) -> Result<Command> {
    let mut groups: Vec<ReturnTo> = vec![];
    for (item, typed) in lines {
        let place = typed.clone().or_else(|| home_of(site, person, item)).or_else(|| fallback.cloned()).ok_or_else(|| {
            AppError::Usage(format!(
                "{} has no place of its own in the books (it was not issued from one here): give the location it goes back to",
                describe(item)
            ))
        })?;
        match groups.iter_mut().find(|g| g.to == place) {
            Some(g) => g.items.push(item.clone()),
            None => groups.push(ReturnTo { to: place, items: vec![item.clone()] }),
        }
    }
    let mut groups = groups.into_iter();
    let first = groups.next().ok_or_else(|| AppError::Usage("scan or type at least one item".into()))?;
    Ok(Command::Return { from: person.clone(), to: first.to, items: first.items, elsewhere: groups.collect() })
}

fn describe(item: &ItemRef) -> String {
    match item {
        ItemRef::Serial(s) => format!("serial {s}"),
        ItemRef::Lot { lot, .. } => format!("lot {lot}"),
    }
}
