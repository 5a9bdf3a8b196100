//! Directive views (docs/directives.md): the list, one directive, and its compliance — per unit
//! concerned, received, acknowledged, relayed, each task, the shift briefings and the incidents
//! raised under it, rolled up at every level with the slowest unit first — computed from the books
//! and the time now; the CSV export; and the site's clock recording the deadlines missed.

use qm_core::books::Directive;
use qm_core::directives::{self as dir, TaskStatus};
use qm_core::*;
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A directive as people read it.
#[derive(Clone, Debug, Serialize)]
pub struct DirectiveView {
    pub id: String,
    pub unit: String,
    pub applies_to: Vec<String>,
    pub title: String,
    pub text: String,
    pub posture: String,
    pub starts_at: String,
    pub ends_at: String,
    /// `scheduled`, `in_force`, `ended`, `cancelled`.
    pub status: &'static str,
    pub measures: Vec<String>,
    pub issued_by: String,
    pub issued_at: String,
    pub cancelled: Option<String>,
    /// Relays: unit, by whom, when, instructions, measures added.
    pub relays: Vec<RelayView>,
    pub units_concerned: usize,
    pub units_acknowledged: usize,
    pub briefed: usize,
    pub entries: Vec<u64>,
    /// Received from the parent site: `site hq.example, its entry 57, issued at unit NHQ`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_from: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RelayView {
    pub unit: String,
    pub by: String,
    pub at: String,
    pub text: String,
    pub measures: Vec<String>,
}

fn status(d: &Directive, now: OffsetDateTime) -> &'static str {
    if d.cancelled.as_ref().is_some_and(|c| c.at <= now) {
        "cancelled"
    } else if now < d.starts_at {
        "scheduled"
    } else if now < d.ends_at {
        "in_force"
    } else {
        "ended"
    }
}

pub fn view(state: &State, id: &DirectiveId, d: &Directive, now: OffsetDateTime) -> DirectiveView {
    let zone = crate::zone::SiteZone::of(state);
    let concerned = dir::units_concerned(state, d);
    DirectiveView {
        id: id.to_string(),
        unit: d.unit.to_string(),
        applies_to: d.applies_to.iter().map(|u| u.to_string()).collect(),
        title: d.title.clone(),
        text: d.text.clone(),
        posture: d.posture.clone(),
        starts_at: zone.show(d.starts_at),
        ends_at: zone.show(d.ends_at),
        status: status(d, now),
        measures: d.measures.iter().map(|m| m.to_string()).collect(),
        issued_by: d.issued_by.to_string(),
        issued_at: zone.show(d.issued_at),
        cancelled: d.cancelled.as_ref().map(|c| format!("{} by badge {}: {}", zone.show(c.at), c.by, c.note)),
        relays: d
            .units
            .iter()
            .filter_map(|(u, c)| {
                c.relayed.as_ref().map(|r| RelayView {
                    unit: u.to_string(),
                    by: r.by.to_string(),
                    at: zone.show(r.at),
                    text: r.text.clone(),
                    measures: r.measures.iter().map(|m| m.to_string()).collect(),
                })
            })
            .collect(),
        units_concerned: concerned.len(),
        units_acknowledged: concerned.iter().filter(|u| d.units.get(*u).is_some_and(|c| c.acknowledged.is_some())).count(),
        briefed: d.briefed.len(),
        entries: d.entries.clone(),
        received_from: d.received.first().map(|r| format!("site {}, its entry {}, issued at unit {}", r.origin, r.seq, r.unit)),
    }
}

/// Which directives to list.
#[derive(Clone, Debug, Default)]
pub struct DirectiveFilter {
    pub in_force: bool,
    /// Those issued at this unit or concerning it.
    pub unit: Option<UnitId>,
}

/// Directives by the filter, newest first; `visible` says which units the reader sees (a
/// directive is seen by its issuing unit's subtree and by the units it concerns, with their ancestors).
pub fn list(state: &State, f: &DirectiveFilter, now: OffsetDateTime, visible: &dyn Fn(&UnitId) -> bool) -> Vec<DirectiveView> {
    let mut out: Vec<(&DirectiveId, &Directive)> = state
        .directives
        .iter()
        .filter(|(_, d)| !f.in_force || d.in_force(now))
        .filter(|(_, d)| f.unit.as_ref().is_none_or(|u| &d.unit == u || dir::concerns(state, d, u)))
        .filter(|(_, d)| visible(&d.unit) || dir::units_concerned(state, d).iter().any(visible))
        .collect();
    out.sort_by(|a, b| b.1.issued_at.cmp(&a.1.issued_at).then(b.0.cmp(a.0)));
    out.into_iter().map(|(id, d)| view(state, id, d, now)).collect()
}

pub fn get<'a>(state: &'a State, id: &DirectiveId) -> crate::Result<&'a Directive> {
    state.directives.get(id).ok_or_else(|| crate::AppError::Rejected(Rejection::NotFound { what: "directive", id: id.to_string() }))
}

/// The directives in force over `unit` now, for the banner every page shows its staff.
pub fn banner(state: &State, unit: &UnitId, badge: &Badge, now: OffsetDateTime) -> Vec<BannerItem> {
    let zone = crate::zone::SiteZone::of(state);
    dir::in_force_over(state, unit, now)
        .into_iter()
        .map(|(id, d)| BannerItem {
            id: id.to_string(),
            title: d.title.clone(),
            posture: d.posture.clone(),
            until: zone.show(d.stops_at()),
            briefed: d.briefed.contains_key(badge),
            measures: dir::measures_at(state, d, unit).iter().map(|m| m.to_string()).collect(),
        })
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct BannerItem {
    pub id: String,
    pub title: String,
    pub posture: String,
    pub until: String,
    /// Whether the reader has acknowledged its shift briefing.
    pub briefed: bool,
    pub measures: Vec<String>,
}

/// One unit's row of the compliance report.
#[derive(Clone, Debug, Serialize)]
pub struct UnitCompliance {
    pub unit: String,
    pub name: String,
    pub depth: usize,
    pub received_at: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
    /// Acknowledged after its deadline, or not by it.
    pub acknowledge_late: bool,
    pub relayed_by: Option<String>,
    pub relayed_at: Option<String>,
    pub relay_text: Option<String>,
    pub tasks: Vec<TaskView>,
    /// Counter staff of the unit (armorers, magazine keepers) briefed, of all of them.
    pub briefed: usize,
    pub staff: usize,
    pub incidents: Vec<String>,
    pub missed: Vec<String>,
    /// This unit and all below it that the directive concerns.
    pub rollup: Rollup,
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskView {
    pub task: String,
    pub measure: String,
    pub status: String,
    pub due: String,
    pub done_at: Option<String>,
    pub done_by: Option<String>,
    pub missing: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Rollup {
    pub units: usize,
    pub acknowledged: usize,
    pub tasks: usize,
    pub tasks_done: usize,
    pub tasks_overdue: usize,
    pub staff: usize,
    pub briefed: usize,
    pub incidents: usize,
}

impl Rollup {
    fn add(&mut self, o: &Rollup) {
        self.units += o.units;
        self.acknowledged += o.acknowledged;
        self.tasks += o.tasks;
        self.tasks_done += o.tasks_done;
        self.tasks_overdue += o.tasks_overdue;
        self.staff += o.staff;
        self.briefed += o.briefed;
        self.incidents += o.incidents;
    }

    /// How far behind: the larger, the slower (unacknowledged units, then overdue and open tasks).
    fn behind(&self) -> (usize, usize, usize) {
        (self.units - self.acknowledged, self.tasks_overdue, self.tasks - self.tasks_done)
    }
}

/// A directive's compliance report.
#[derive(Clone, Debug, Serialize)]
pub struct Compliance {
    pub directive: DirectiveView,
    pub at: String,
    pub rows: Vec<UnitCompliance>,
    pub total: Rollup,
    /// From issue to the last acknowledgment, once every unit has acknowledged.
    pub all_acknowledged_after: Option<String>,
}

fn span(d: time::Duration) -> String {
    let m = d.whole_minutes().max(0);
    match (m / 1440, (m % 1440) / 60, m % 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m:02} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// The compliance of every unit the directive concerns within `scope` (the reader's unit), in
/// tree order with the slowest sibling first, each row rolled up over its subtree.
pub fn compliance(state: &State, id: &DirectiveId, now: OffsetDateTime, scope: &UnitId) -> crate::Result<Compliance> {
    let d = get(state, id)?;
    let zone = crate::zone::SiteZone::of(state);
    let concerned: Vec<UnitId> = dir::units_concerned(state, d).into_iter().filter(|u| state.unit_within(u, scope)).collect();
    // What each unit holds and who works there, found in one pass each (not once per unit).
    let mut by_unit: BTreeMap<&UnitId, Around> = BTreeMap::new();
    for store in state.locations.keys().filter(|l| dir::stores_of_one(state, l)) {
        if let Some(l) = state.locations.get(store) {
            by_unit.entry(&l.unit).or_default().stores.push(store.clone());
        }
    }
    for (b, p) in &state.people {
        if p.roles.iter().any(|r| matches!(r, Role::Armorer | Role::MagazineKeeper)) {
            by_unit.entry(&p.unit).or_default().staff.push(b.clone());
        }
    }
    let none = Around::default();
    let mut own: BTreeMap<UnitId, UnitCompliance> =
        concerned.iter().map(|u| (u.clone(), unit_row(state, d, u, now, &zone, by_unit.get(u).unwrap_or(&none)))).collect();
    // Roll up: children before parents (deepest first).
    let parent_of = |u: &UnitId| state.units.get(u).and_then(|x| x.parent.clone());
    let mut by_depth: Vec<(usize, UnitId)> = concerned.iter().map(|u| (state.unit_ancestors(u).count(), u.clone())).collect();
    by_depth.sort_by_key(|x| std::cmp::Reverse(x.0));
    for (_, u) in &by_depth {
        let Some(p) = parent_of(u).filter(|p| own.contains_key(p)) else { continue };
        let child = own.get(u).map(|r| r.rollup.clone()).unwrap_or_default();
        if let Some(parent) = own.get_mut(&p) {
            parent.rollup.add(&child);
        }
    }
    let tops: Vec<UnitId> = concerned.iter().filter(|u| parent_of(u).is_none_or(|p| !own.contains_key(&p))).cloned().collect();
    let mut total = Rollup::default();
    for r in tops.iter().filter_map(|t| own.get(t)) {
        total.add(&r.rollup);
    }
    let rows = tree_order(&concerned, tops, &mut own, &parent_of);
    let last_ack = concerned.iter().map(|u| d.units.get(u).and_then(|c| c.acknowledged.as_ref()).map(|a| a.at)).collect::<Option<Vec<_>>>();
    let all_acknowledged_after = last_ack.and_then(|v| v.into_iter().max()).map(|t| span(t - d.issued_at));
    Ok(Compliance { directive: view(state, id, d, now), at: zone.show(now), rows, total, all_acknowledged_after })
}

/// Rows in tree order, the slowest sibling first (by what its subtree has left to do).
fn tree_order(
    concerned: &[UnitId],
    tops: Vec<UnitId>,
    own: &mut BTreeMap<UnitId, UnitCompliance>,
    parent_of: &dyn Fn(&UnitId) -> Option<UnitId>,
) -> Vec<UnitCompliance> {
    let order = |v: &mut Vec<UnitId>, own: &BTreeMap<UnitId, UnitCompliance>| {
        v.sort_by(|a, b| {
            let (ra, rb) = (own.get(a).map(|r| r.rollup.behind()), own.get(b).map(|r| r.rollup.behind()));
            rb.cmp(&ra).then(a.cmp(b))
        })
    };
    let mut tops = tops;
    order(&mut tops, own);
    let mut stack: Vec<(UnitId, usize)> = tops.into_iter().rev().map(|u| (u, 0)).collect();
    let mut below: BTreeMap<UnitId, Vec<UnitId>> = BTreeMap::new();
    for c in concerned {
        if let Some(p) = parent_of(c) {
            below.entry(p).or_default().push(c.clone());
        }
    }
    let mut rows = vec![];
    while let Some((u, depth)) = stack.pop() {
        let mut children: Vec<UnitId> = below.remove(&u).unwrap_or_default();
        order(&mut children, own);
        stack.extend(children.into_iter().rev().map(|c| (c, depth + 1)));
        if let Some(mut r) = own.remove(&u) {
            r.depth = depth;
            rows.push(r);
        }
    }
    rows
}

/// One unit's own row: acknowledgment, relay, tasks, briefings, incidents raised under the directive.
/// A unit's stores and counter staff.
#[derive(Default)]
struct Around {
    stores: Vec<LocationId>,
    staff: Vec<Badge>,
}

fn unit_row(
    state: &State,
    d: &Directive,
    u: &UnitId,
    now: OffsetDateTime,
    zone: &crate::zone::SiteZone,
    around: &Around,
) -> UnitCompliance {
    let ack_due = dir::acknowledge_due(state, d);
    let c = d.units.get(u);
    let ack = c.and_then(|c| c.acknowledged.as_ref());
    let relay = c.and_then(|c| c.relayed.as_ref());
    let tasks: Vec<TaskStatus> = dir::task_statuses_in(state, d, u, now, &around.stores);
    let staff = &around.staff;
    let briefed = staff.iter().filter(|b| d.briefed.contains_key(*b)).count();
    let incidents: Vec<String> = state
        .incidents
        .iter()
        .filter(|(_, i)| &i.unit == u && i.entries.first().is_some_and(|e| d.entries.contains(e)))
        .map(|(k, i)| format!("{k} ({} {}, {})", i.severity, i.kind, i.state))
        .collect();
    let rollup = Rollup {
        units: 1,
        acknowledged: usize::from(ack.is_some()),
        tasks: tasks.len(),
        tasks_done: tasks.iter().filter(|t| t.status == "done").count(),
        tasks_overdue: tasks.iter().filter(|t| t.status == "overdue").count(),
        staff: staff.len(),
        briefed,
        incidents: incidents.len(),
    };
    UnitCompliance {
        unit: u.to_string(),
        name: state.units.get(u).map(|x| x.name.clone()).unwrap_or_default(),
        depth: 0,
        received_at: zone.show(d.issued_at),
        acknowledged_by: ack.map(|a| a.by.to_string()),
        acknowledged_at: ack.map(|a| zone.show(a.at)),
        acknowledge_late: ack.map_or(now > ack_due, |a| a.at > ack_due),
        relayed_by: relay.map(|r| r.by.to_string()),
        relayed_at: relay.map(|r| zone.show(r.at)),
        relay_text: relay.map(|r| r.text.clone()),
        tasks: tasks.into_iter().map(|t| task_view(t, zone)).collect(),
        briefed,
        staff: staff.len(),
        incidents,
        missed: c.map(|c| c.missed.clone()).unwrap_or_default(),
        rollup,
    }
}

fn task_view(t: TaskStatus, zone: &crate::zone::SiteZone) -> TaskView {
    TaskView {
        task: t.task.to_string(),
        measure: t.measure,
        status: t.status.to_string(),
        due: zone.show(t.due),
        done_at: t.done_at.map(|x| zone.show(x)),
        done_by: t.done_by.map(|b| b.to_string()),
        missing: t.missing,
    }
}

/// The compliance report as CSV: one line per unit.
pub fn compliance_csv(c: &Compliance) -> String {
    let mut w = csv::Writer::from_writer(vec![]);
    let _ = w.write_record([
        "unit",
        "name",
        "depth",
        "acknowledged_by",
        "acknowledged_at",
        "late",
        "relayed_at",
        "tasks",
        "briefed",
        "staff",
        "incidents",
        "missed",
        "subtree_units",
        "subtree_acknowledged",
        "subtree_tasks_done",
        "subtree_tasks",
        "subtree_tasks_overdue",
    ]);
    for r in &c.rows {
        let tasks: Vec<String> = r.tasks.iter().map(|t| format!("{} {}", t.task, t.status)).collect();
        let _ = w.write_record([
            r.unit.clone(),
            r.name.clone(),
            r.depth.to_string(),
            r.acknowledged_by.clone().unwrap_or_default(),
            r.acknowledged_at.clone().unwrap_or_default(),
            r.acknowledge_late.to_string(),
            r.relayed_at.clone().unwrap_or_default(),
            tasks.join("; "),
            r.briefed.to_string(),
            r.staff.to_string(),
            r.incidents.join("; "),
            r.missed.join("; "),
            r.rollup.units.to_string(),
            r.rollup.acknowledged.to_string(),
            r.rollup.tasks_done.to_string(),
            r.rollup.tasks.to_string(),
            r.rollup.tasks_overdue.to_string(),
        ]);
    }
    w.into_inner().ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default()
}

/// Reads and validates an organization's posture levels; a wrong file is refused with file, key and reason.
pub fn load_postures(path: &std::path::Path) -> crate::Result<dir::Postures> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::AppError::Usage(format!("{}: {e}", path.display())))?;
    dir::Postures::from_toml_str(&text, &path.display().to_string()).map_err(crate::AppError::Usage)
}

impl crate::Site {
    /// Replaces the posture levels (an organization's own file, `load_postures`).
    pub fn set_postures(&mut self, p: dir::Postures) {
        self.state.postures = qm_core::state::PosturesRef(std::sync::Arc::new(p));
    }

    /// The directives' deadlines passed unmet at `now`, as requests the site records (each once).
    pub(crate) fn directive_misses(&self, now: OffsetDateTime) -> crate::Result<Vec<crate::Request>> {
        let site = Badge::parse(qm_core::incidents::SITE_ACTOR).map_err(|e| crate::AppError::Internal(e.to_string()))?;
        Ok(dir::missed(self.state(), now)
            .into_iter()
            .map(|(directive, unit, what)| {
                let key = format!("directive-missed-{directive}-{unit}-{what}");
                crate::Request::new(site.clone(), Command::RecordDirectiveMissed { directive, unit, what }, key, now)
            })
            .collect())
    }
}
