//! Headquarters' read model spanning its children (docs/sites.md, "What headquarters sees"): each
//! child's books as its mirrored ledger replays them — the same replay that verified the entries
//! before the mirror cosigned them — read with the same queries as a site's own books. Everything
//! shown is as of the size the mirror cosigned, and every row names its site.

use crate::directives::DirectiveFilter;
use crate::incidents::{IncidentFilter, IncidentView};
use crate::query::{StockFilter, StockLine, TransferView};
use crate::sites::Children;
use crate::{AppError, Result, Site};
use qm_core::{Account, Quantity, State};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// One child site's books in brief, as its mirror holds them.
#[derive(Clone, Debug, Serialize)]
pub struct ChildRow {
    pub origin: String,
    /// The unit of this site that the child serves (children file).
    pub unit: String,
    /// Entries mirrored and replayed, and when the mirror cosigned them (ms since the epoch).
    pub mirrored: u64,
    pub mirrored_at_ms: i64,
    /// The same, shown in the child's time zone.
    pub mirrored_at: String,
    /// The child's own root unit and its number of units.
    pub root_unit: Option<String>,
    pub units: usize,
    pub incidents_open: usize,
    pub incidents_critical: usize,
    pub in_transit: usize,
    /// Serialized items held by people (issued).
    pub issued: usize,
    pub directives_in_force: usize,
}

/// One item type's stock over every mirrored child: per site and in all.
#[derive(Clone, Debug, Serialize)]
pub struct SpanTotal {
    pub item_type: String,
    pub unit_of_measure: String,
    pub per_site: BTreeMap<String, String>,
    pub total: String,
}

/// What headquarters sees of the sites below it.
#[derive(Clone, Debug, Serialize)]
pub struct Span {
    pub sites: Vec<ChildRow>,
    pub totals: Vec<SpanTotal>,
}

/// One child's books in full: stock, open incidents, transfers in transit, directives in force.
#[derive(Clone, Debug, Serialize)]
pub struct ChildBooks {
    pub row: ChildRow,
    pub stock: Vec<StockLine>,
    pub incidents: Vec<IncidentView>,
    pub transfers: Vec<TransferView>,
    pub directives: Vec<crate::directives::DirectiveView>,
}

fn row(origin: &str, unit: &str, mirrored: &qm_store::Mirrored, s: &State, now: OffsetDateTime) -> ChildRow {
    let open = crate::incidents::list(s, &IncidentFilter { open_only: true, ..Default::default() }, now, &|_| true);
    let in_force = crate::directives::list(s, &DirectiveFilter { in_force: true, unit: None }, now, &|_| true);
    ChildRow {
        origin: origin.to_string(),
        unit: unit.to_string(),
        mirrored: mirrored.size,
        mirrored_at_ms: mirrored.at_ms,
        mirrored_at: crate::zone::SiteZone::of(s).show(crate::conditions::from_ms(mirrored.at_ms)),
        root_unit: s.units.iter().find(|(_, u)| u.parent.is_none()).map(|(id, _)| id.to_string()),
        units: s.units.len(),
        incidents_critical: open.iter().filter(|i| i.severity == "critical").count(),
        incidents_open: open.len(),
        in_transit: crate::query::transfers(s, false).len(),
        issued: s.serials.values().filter(|x| matches!(x.account, Account::Person(_))).count(),
        directives_in_force: in_force.len(),
    }
}

/// Adds a stock line's quantity to `sum`; `None` once a figure cannot be read or overflows.
fn add(sum: Option<Quantity>, line: &StockLine) -> Option<Quantity> {
    Quantity::checked_sum([sum?, Quantity::parse(&line.quantity).ok()?])
}

impl Site {
    /// A child's books, replayed from the entries its mirror holds up to the size it cosigned
    /// (kept between calls, and brought forward by the next upload); `None` if nothing of it is
    /// mirrored here.
    pub fn child_state(&mut self, origin: &str) -> Result<Option<(qm_store::Mirrored, &State)>> {
        let Some(m) = self.store.mirrored(origin)? else { return Ok(None) };
        if !self.mirror_replays.get(origin).is_some_and(|r| r.ok() && r.size() == m.size) {
            let problems = self.replay_mirror(origin, m.size)?;
            if !problems.is_empty() {
                return Err(AppError::Internal(format!(
                    "the mirror of site {origin} cosigned {} entries that no longer replay: {}",
                    m.size,
                    problems.join("; ")
                )));
            }
        }
        let state = self.mirror_replays.get(origin).map(|r| r.state());
        Ok(state.map(|s| (m, s)))
    }
}

/// A child's books in brief and its stock lines, at the size its mirror cosigned: what the span
/// reads, kept per child so that a page over thousands of sites replays none of them.
#[derive(Clone, Debug)]
pub struct ChildSummary {
    pub(crate) row: ChildRow,
    stock: Vec<StockLine>,
    /// Every directive in its books (its own and those received), as of then.
    directives: Vec<crate::directives::DirectiveView>,
    /// Its transfers in transit, and its receipts from other sites' transfers (`across`).
    pub(crate) transfers: Vec<crate::across::SentTransfer>,
    pub(crate) receipts: Vec<crate::across::SiteReceipt>,
}

impl Site {
    /// A child's books in brief at the size its mirror holds, made when the mirror cosigns (the
    /// replay is then at hand) or, after a restart, on first reading; `None` if nothing is mirrored.
    pub(crate) fn child_summary(&mut self, origin: &str, unit: &str, now: OffsetDateTime) -> Result<Option<&ChildSummary>> {
        let Some(m) = self.store.mirrored(origin)? else { return Ok(None) };
        if self.child_summaries.get(origin).is_none_or(|c| c.row.mirrored != m.size) {
            let Some((m, s)) = self.child_state(origin)? else { return Ok(None) };
            let summary = ChildSummary {
                row: row(origin, unit, &m, s, now),
                stock: crate::query::stock(s, &StockFilter::default()),
                directives: crate::directives::list(s, &DirectiveFilter::default(), now, &|_| true),
                transfers: crate::across::in_transit(s),
                receipts: vec![],
            };
            let receipts = self.site_receipts.get(origin).cloned().unwrap_or_default();
            self.child_summaries.insert(origin.to_string(), ChildSummary { receipts, ..summary });
        }
        Ok(self.child_summaries.get(origin))
    }
}

/// Every child's books in brief, and the stock of each item type per site and in all. Children
/// nothing of which is mirrored yet are left out (the sites page lists them).
pub fn span(site: &mut Site, children: &Children, now: OffsetDateTime) -> Result<Span> {
    type PerSite = BTreeMap<String, Option<Quantity>>;
    let mut sites = vec![];
    let mut totals: BTreeMap<(String, String), (PerSite, Option<Quantity>)> = BTreeMap::new();
    for (origin, child) in &children.children {
        let Some(c) = site.child_summary(origin, &child.unit, now)? else { continue };
        sites.push(c.row.clone());
        for line in &c.stock {
            let t = totals
                .entry((line.item_type.clone(), line.unit_of_measure.clone()))
                .or_insert_with(|| (BTreeMap::new(), Some(Quantity::ZERO)));
            let here = t.0.entry(origin.clone()).or_insert(Some(Quantity::ZERO));
            *here = add(*here, line);
            t.1 = add(t.1, line);
        }
    }
    let show = |q: Option<Quantity>| q.map_or_else(|| "overflow".to_string(), |q| q.to_string());
    let totals = totals
        .into_iter()
        .map(|((item_type, unit_of_measure), (per, total))| SpanTotal {
            item_type,
            unit_of_measure,
            per_site: per.into_iter().map(|(o, q)| (o, show(q))).collect(),
            total: show(total),
        })
        .collect();
    Ok(Span { sites, totals })
}

/// One child's books in full, as its mirror holds them; not found: a site not witnessed here or
/// not mirrored yet.
pub fn child_books(site: &mut Site, children: &Children, origin: &str, now: OffsetDateTime) -> Result<ChildBooks> {
    let Some(child) = children.children.get(origin) else {
        return Err(AppError::Rejected(qm_core::Rejection::NotFound { what: "child site", id: origin.to_string() }));
    };
    let Some((m, s)) = site.child_state(origin)? else {
        let id = format!("{origin} (nothing of it is mirrored here yet: its sync with the parent's mirror key sends the entries)");
        return Err(AppError::Rejected(qm_core::Rejection::NotFound { what: "mirrored ledger of site", id }));
    };
    Ok(ChildBooks {
        row: row(origin, &child.unit, &m, s, now),
        stock: crate::query::stock(s, &StockFilter::default()),
        incidents: crate::incidents::list(s, &IncidentFilter { open_only: true, ..Default::default() }, now, &|_| true),
        transfers: crate::query::transfers(s, false),
        directives: crate::directives::list(s, &DirectiveFilter { in_force: true, unit: None }, now, &|_| true),
    })
}

/// One directive as one child site's books hold it (docs/sites.md, "Down the tree").
#[derive(Clone, Debug, Serialize)]
pub struct SiteCompliance {
    pub origin: String,
    pub unit: String,
    /// Entries of the child mirrored here, and when the mirror cosigned them.
    pub mirrored: u64,
    pub mirrored_at: String,
    /// Whether the directive is in the child's books (received from above) as of then.
    pub recorded: bool,
    pub status: Option<&'static str>,
    pub units_concerned: usize,
    pub units_acknowledged: usize,
    pub briefed: usize,
}

/// A directive's compliance at every child site mirrored here: whether each has it, and how many
/// of its units acknowledged it and people were briefed, as its mirrored ledger says.
pub fn directive_across(site: &mut Site, children: &Children, id: &str, now: OffsetDateTime) -> Result<Vec<SiteCompliance>> {
    let mut out = vec![];
    for (origin, child) in &children.children {
        let Some(c) = site.child_summary(origin, &child.unit, now)? else { continue };
        let d = c.directives.iter().find(|d| d.id == id);
        out.push(SiteCompliance {
            origin: origin.clone(),
            unit: child.unit.clone(),
            mirrored: c.row.mirrored,
            mirrored_at: c.row.mirrored_at.clone(),
            recorded: d.is_some(),
            status: d.map(|d| d.status),
            units_concerned: d.map_or(0, |d| d.units_concerned),
            units_acknowledged: d.map_or(0, |d| d.units_acknowledged),
            briefed: d.map_or(0, |d| d.briefed),
        });
    }
    Ok(out)
}
