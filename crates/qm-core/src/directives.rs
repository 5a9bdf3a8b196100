//! Directives (docs/directives.md): an order from a unit to its subtree for a period, at a named
//! posture level, with measures that either tighten the effective policy while it is in force or
//! are tasks with deadlines that each unit concerned must complete, checked from the books.
//! Also the posture levels as data (`data/postures.toml`, replaceable by an organization's own
//! file), the one text grammar of a measure (`two-person`, `rounds-cap=60`, `count=24h/7d` …) for
//! the CLI, the API and the web forms, and the pure functions over the books and a time: which
//! directives are in force over a unit, the policy they add, where each task stands, and what is
//! overdue and not yet recorded — never stored as rows a replay could not reproduce.

use crate::books::{Directive, State};
use crate::ids::*;
use crate::model::*;
use crate::policy::{IssueHours, PolicyRules};
use crate::quantity::Quantity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// The posture levels shipped with Quartermaster.
pub const DEFAULT_POSTURES_TOML: &str = include_str!("../data/postures.toml");

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostureLevel {
    pub name: String,
    pub acknowledge_within_h: u32,
    #[serde(default)]
    pub description: String,
}

/// An organization's named posture levels, lowest first.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Postures {
    pub level: Vec<PostureLevel>,
}

impl Postures {
    /// Parses and checks a levels file; a wrong one is refused with the file, the key and the reason.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Postures, String> {
        let p: Postures = toml::from_str(text).map_err(|e| format!("{file}: {}", e.to_string().trim()))?;
        if p.level.is_empty() {
            return Err(format!("{file}: key level: name at least one posture level"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, l) in p.level.iter().enumerate() {
            if l.name.trim().is_empty() || !l.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(format!("{file}: key level[{i}].name: {:?} is not a name (letters, digits, _ and -)", l.name));
            }
            if !seen.insert(l.name.as_str()) {
                return Err(format!("{file}: key level[{i}].name: {:?} is named twice", l.name));
            }
            if !(1..=8784).contains(&l.acknowledge_within_h) {
                return Err(format!("{file}: key level[{i}].acknowledge_within_h: from 1 hour to a year (8784)"));
            }
        }
        Ok(p)
    }

    pub fn default_levels() -> Postures {
        static P: std::sync::OnceLock<Option<Postures>> = std::sync::OnceLock::new();
        P.get_or_init(|| Postures::from_toml_str(DEFAULT_POSTURES_TOML, "qm-core/data/postures.toml").ok()).clone().unwrap_or_else(|| {
            Postures { level: vec![PostureLevel { name: "normal".into(), acknowledge_within_h: 24, description: String::new() }] }
        })
    }

    pub fn get(&self, name: &str) -> Option<&PostureLevel> {
        self.level.iter().find(|l| l.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.level.iter().map(|l| l.name.as_str()).collect()
    }
}

/// One measure of a directive: a tightening of the effective policy while it is in force, or a
/// task each unit concerned must complete by its deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "measure", rename_all = "snake_case", deny_unknown_fields)]
pub enum Measure {
    /// Every movement (and entry to armories) needs a second person.
    TwoPerson,
    /// At most this much ammunition in one issue.
    RoundsCap { per_issue: Quantity },
    /// Transfers out need the approval of a person with this role (as witness).
    TransferFreeze { approver: Role },
    /// No issue outside these local hours.
    IssueHours { from: String, until: String },
    /// The counter is not the keeper of what is counted.
    CounterNotKeeper,
    /// Counts are blind.
    BlindCountsOnly,
    /// A full blind count of every armory, depot and magazine within `within_h` of the start, then
    /// every `every_days`.
    Count {
        within_h: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every_days: Option<u32>,
    },
    /// Every transfer in transit and of the last `days` days reviewed and signed off by the unit's officer.
    TransferReview { within_h: u32, days: u32 },
    /// Every magazine has readings within the last `readings_within_h` hours and no excursion unreviewed; signed off.
    StorageReview { within_h: u32, readings_within_h: u32 },
    /// Who holds keys and who may issue, reviewed and signed off.
    AccessReview { within_h: u32 },
    /// Nobody alone in an armory, depot or magazine: a second person follows within `within_min`.
    TwoPersonEntry {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within_min: Option<u16>,
    },
    /// No entry to armories, depots and magazines outside these local hours.
    EntryHours { from: String, until: String },
    /// Nobody stays inside longer than this.
    MaxInside { minutes: u32 },
}

/// The tasks, by name: what a sign-off or a missed deadline names.
pub const TASKS: [&str; 4] = ["count", "transfer_review", "storage_review", "access_review"];

fn hours(text: &str, what: &str) -> Result<u32, String> {
    let t = text.trim();
    let n = t.strip_suffix('h').unwrap_or(t);
    match n.parse::<u32>() {
        Ok(h) if (1..=24 * 366).contains(&h) => Ok(h),
        _ => Err(format!("{what}: {text:?} is not a number of hours from 1 to 8784 (e.g. 24h)")),
    }
}

fn minutes(text: &str, what: &str) -> Result<u32, String> {
    let t = text.trim();
    let n = t.strip_suffix("min").or_else(|| t.strip_suffix('m')).unwrap_or(t);
    match n.parse::<u32>() {
        Ok(m) if (1..=24 * 60).contains(&m) => Ok(m),
        _ => Err(format!("{what}: {text:?} is not a number of minutes from 1 to 1440 (e.g. 5m)")),
    }
}

fn days(text: &str, what: &str) -> Result<u32, String> {
    let t = text.trim();
    let n = t.strip_suffix('d').unwrap_or(t);
    match n.parse::<u32>() {
        Ok(d) if (1..=366).contains(&d) => Ok(d),
        _ => Err(format!("{what}: {text:?} is not a number of days from 1 to 366 (e.g. 7d)")),
    }
}

/// `HH:MM` as minutes after midnight.
pub fn clock_minutes(text: &str) -> Result<u16, String> {
    let (h, m) = text.trim().split_once(':').ok_or_else(|| format!("{text:?} is not a time of day HH:MM"))?;
    match (h.parse::<u16>(), m.parse::<u16>()) {
        (Ok(h), Ok(m)) if h <= 24 && m < 60 && h * 60 + m <= 24 * 60 && m.to_string().len() <= 2 && h.to_string().len() <= 2 => {
            Ok(h * 60 + m)
        }
        _ => Err(format!("{text:?} is not a time of day HH:MM")),
    }
}

impl Measure {
    /// Parses one measure as people write it: `two-person`, `rounds-cap=60`,
    /// `transfer-freeze=duty_officer`, `issue-hours=06:00-22:00`, `counter-not-keeper`,
    /// `blind-counts`, `count=24h` or `count=24h/7d`, `transfer-review=24h/30d`,
    /// `storage-review=24h/24h`, `access-review=48h`.
    pub fn parse(text: &str) -> Result<Measure, String> {
        let text = text.trim();
        let (name, arg) = match text.split_once('=') {
            Some((n, a)) => (n.trim().to_ascii_lowercase().replace('_', "-"), Some(a.trim())),
            None => (text.to_ascii_lowercase().replace('_', "-"), None),
        };
        fn need<'a>(name: &str, a: Option<&'a str>) -> Result<&'a str, String> {
            a.filter(|a| !a.is_empty()).ok_or_else(|| format!("measure {name}: give its value ({})", Measure::GRAMMAR))
        }
        let two = |a: &str| -> (String, Option<String>) {
            match a.split_once('/') {
                Some((x, y)) => (x.to_string(), Some(y.to_string())),
                None => (a.to_string(), None),
            }
        };
        let m = match name.as_str() {
            "two-person" => Measure::TwoPerson,
            "counter-not-keeper" => Measure::CounterNotKeeper,
            "blind-counts" | "blind-counts-only" => Measure::BlindCountsOnly,
            "rounds-cap" => {
                let q = Quantity::parse(need(&name, arg)?).map_err(|e| format!("measure rounds-cap: {e}"))?;
                if !q.is_positive() {
                    return Err("measure rounds-cap: the cap must be more than 0".into());
                }
                Measure::RoundsCap { per_issue: q }
            }
            "transfer-freeze" => {
                Measure::TransferFreeze { approver: Role::parse(need(&name, arg)?).map_err(|e| format!("measure transfer-freeze: {e}"))? }
            }
            "issue-hours" => {
                let a = need(&name, arg)?;
                let (f, u) = a.split_once('-').ok_or_else(|| format!("measure issue-hours: {a:?} is not FROM-UNTIL, e.g. 06:00-22:00"))?;
                let m = Measure::IssueHours { from: f.trim().to_string(), until: u.trim().to_string() };
                m.issue_hours().map_err(|e| format!("measure issue-hours: {e}"))?;
                m
            }
            "count" => {
                let (w, e) = two(need(&name, arg)?);
                Measure::Count { within_h: hours(&w, "measure count")?, every_days: e.map(|e| days(&e, "measure count")).transpose()? }
            }
            "transfer-review" => {
                let (w, d) = two(need(&name, arg)?);
                let d = d.ok_or("measure transfer-review: say within how long and over how many days, e.g. 24h/30d")?;
                Measure::TransferReview { within_h: hours(&w, "measure transfer-review")?, days: days(&d, "measure transfer-review")? }
            }
            "storage-review" => {
                let (w, r) = two(need(&name, arg)?);
                let r = r.unwrap_or_else(|| "24h".into());
                Measure::StorageReview {
                    within_h: hours(&w, "measure storage-review")?,
                    readings_within_h: hours(&r, "measure storage-review")?,
                }
            }
            "access-review" => Measure::AccessReview { within_h: hours(need(&name, arg)?, "measure access-review")? },
            "two-person-entry" | "entry-hours" | "max-inside" => Measure::parse_access(&name, arg)?,
            other => return Err(format!("{other:?} is not a measure; expected one of: {}", Measure::GRAMMAR)),
        };
        if arg.is_some() && matches!(m, Measure::TwoPerson | Measure::CounterNotKeeper | Measure::BlindCountsOnly) {
            return Err(format!("measure {name} takes no value"));
        }
        Ok(m)
    }

    /// The measures about entry to armories, depots and magazines (docs/access.md).
    fn parse_access(name: &str, arg: Option<&str>) -> Result<Measure, String> {
        let need = || arg.filter(|a| !a.is_empty()).ok_or_else(|| format!("measure {name}: give its value ({})", Measure::GRAMMAR));
        Ok(match name {
            "two-person-entry" => {
                Measure::TwoPersonEntry { within_min: arg.map(|a| minutes(a, "measure two-person-entry")).transpose()?.map(|m| m as u16) }
            }
            "entry-hours" => {
                let a = need()?;
                let (f, u) = a.split_once('-').ok_or_else(|| format!("measure entry-hours: {a:?} is not FROM-UNTIL, e.g. 06:00-20:00"))?;
                let m = Measure::EntryHours { from: f.trim().to_string(), until: u.trim().to_string() };
                m.issue_hours().map_err(|e| format!("measure entry-hours: {e}"))?;
                m
            }
            _ => Measure::MaxInside { minutes: minutes(need()?, "measure max-inside")? },
        })
    }

    pub const GRAMMAR: &'static str = "two-person, rounds-cap=N, transfer-freeze=ROLE, issue-hours=HH:MM-HH:MM, counter-not-keeper, \
        blind-counts, count=Nh[/Md], transfer-review=Nh/Md, storage-review=Nh/Mh, access-review=Nh, two-person-entry[=Nm], \
        entry-hours=HH:MM-HH:MM, max-inside=Nm";

    /// The measure's kind, as a word (`rounds_cap`, `count` …): a task's name for tasks.
    pub fn kind(&self) -> &'static str {
        match self {
            Measure::TwoPerson => "two_person",
            Measure::RoundsCap { .. } => "rounds_cap",
            Measure::TransferFreeze { .. } => "transfer_freeze",
            Measure::IssueHours { .. } => "issue_hours",
            Measure::CounterNotKeeper => "counter_not_keeper",
            Measure::BlindCountsOnly => "blind_counts_only",
            Measure::Count { .. } => "count",
            Measure::TransferReview { .. } => "transfer_review",
            Measure::StorageReview { .. } => "storage_review",
            Measure::AccessReview { .. } => "access_review",
            Measure::TwoPersonEntry { .. } => "two_person_entry",
            Measure::EntryHours { .. } => "entry_hours",
            Measure::MaxInside { .. } => "max_inside",
        }
    }

    pub fn is_task(&self) -> bool {
        TASKS.contains(&self.kind())
    }

    /// Hours from the start within which the task is due (tasks only).
    pub fn within_h(&self) -> Option<u32> {
        match self {
            Measure::Count { within_h, .. }
            | Measure::TransferReview { within_h, .. }
            | Measure::StorageReview { within_h, .. }
            | Measure::AccessReview { within_h } => Some(*within_h),
            _ => None,
        }
    }

    fn issue_hours(&self) -> Result<Option<IssueHours>, String> {
        let (Measure::IssueHours { from, until } | Measure::EntryHours { from, until }) = self else { return Ok(None) };
        let (f, u) = (clock_minutes(from)?, clock_minutes(until)?);
        if f >= u {
            return Err(format!("{from}-{until}: the window must start before it ends, within one day"));
        }
        Ok(Some(IssueHours { from_min: f, until_min: u }))
    }

    /// What a tightening adds to the policy (nothing for a task).
    pub fn as_policy(&self) -> PolicyRules {
        let mut p = PolicyRules::default();
        match self {
            Measure::TwoPerson => p.two_person_all_movements = true,
            Measure::RoundsCap { per_issue } => p.max_issue_quantity = Some(*per_issue),
            Measure::TransferFreeze { approver } => p.transfer_approver = Some(*approver),
            Measure::IssueHours { .. } => p.issue_hours = self.issue_hours().ok().flatten(),
            Measure::CounterNotKeeper => p.counter_not_keeper = true,
            Measure::BlindCountsOnly => p.blind_counts_only = true,
            Measure::TwoPersonEntry { within_min } => {
                p.two_person_entry = true;
                p.partner_within_min = *within_min;
            }
            Measure::EntryHours { .. } => p.entry_hours = self.issue_hours().ok().flatten(),
            Measure::MaxInside { minutes } => p.max_inside_min = Some(*minutes),
            _ => {}
        }
        p
    }

    /// Why this measure, added below `above` (of the same kind, in force from a higher unit),
    /// would relax or shorten it; `None` when it only tightens.
    pub fn loosens(&self, above: &Measure) -> Option<String> {
        let worse = |what: &str| Some(format!("{} is looser than {} ordered above ({what})", self, above));
        match (self, above) {
            (Measure::RoundsCap { per_issue: a }, Measure::RoundsCap { per_issue: b }) if a > b => worse("a higher cap"),
            (Measure::TransferFreeze { approver: a }, Measure::TransferFreeze { approver: b }) if a != b => {
                worse("another approver: the freeze above names who approves")
            }
            (Measure::IssueHours { .. }, Measure::IssueHours { .. }) | (Measure::EntryHours { .. }, Measure::EntryHours { .. }) => {
                let (Ok(Some(a)), Ok(Some(b))) = (self.issue_hours(), above.issue_hours()) else { return None };
                (a.from_min < b.from_min || a.until_min > b.until_min)
                    .then(|| format!("{self} is looser than {above} ordered above (longer hours)"))
            }
            (Measure::Count { within_h: a, every_days: ae }, Measure::Count { within_h: b, every_days: be }) => {
                if a > b {
                    return worse("a later deadline");
                }
                match (ae, be) {
                    (None, Some(_)) => worse("no repeat"),
                    (Some(x), Some(y)) if x > y => worse("a longer interval"),
                    _ => None,
                }
            }
            (Measure::TransferReview { within_h: a, days: ad }, Measure::TransferReview { within_h: b, days: bd }) => {
                if a > b {
                    worse("a later deadline")
                } else if ad < bd {
                    worse("fewer days reviewed")
                } else {
                    None
                }
            }
            (
                Measure::StorageReview { within_h: a, readings_within_h: ar },
                Measure::StorageReview { within_h: b, readings_within_h: br },
            ) => {
                if a > b {
                    worse("a later deadline")
                } else if ar > br {
                    worse("older readings accepted")
                } else {
                    None
                }
            }
            (Measure::AccessReview { within_h: a }, Measure::AccessReview { within_h: b }) if a > b => worse("a later deadline"),
            (Measure::MaxInside { minutes: a }, Measure::MaxInside { minutes: b }) if a > b => worse("a longer stay"),
            (Measure::TwoPersonEntry { within_min: a }, Measure::TwoPersonEntry { within_min: b })
                if a.unwrap_or(crate::access::PARTNER_WITHIN_MIN_DEFAULT) > b.unwrap_or(crate::access::PARTNER_WITHIN_MIN_DEFAULT) =>
            {
                worse("a longer wait for the second person")
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Measure {
    /// The text grammar `Measure::parse` reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Measure::TwoPerson => write!(f, "two-person"),
            Measure::RoundsCap { per_issue } => write!(f, "rounds-cap={per_issue}"),
            Measure::TransferFreeze { approver } => write!(f, "transfer-freeze={approver}"),
            Measure::IssueHours { from, until } => write!(f, "issue-hours={from}-{until}"),
            Measure::CounterNotKeeper => write!(f, "counter-not-keeper"),
            Measure::BlindCountsOnly => write!(f, "blind-counts"),
            Measure::Count { within_h, every_days: None } => write!(f, "count={within_h}h"),
            Measure::Count { within_h, every_days: Some(d) } => write!(f, "count={within_h}h/{d}d"),
            Measure::TransferReview { within_h, days } => write!(f, "transfer-review={within_h}h/{days}d"),
            Measure::StorageReview { within_h, readings_within_h } => write!(f, "storage-review={within_h}h/{readings_within_h}h"),
            Measure::AccessReview { within_h } => write!(f, "access-review={within_h}h"),
            Measure::TwoPersonEntry { within_min: None } => write!(f, "two-person-entry"),
            Measure::TwoPersonEntry { within_min: Some(m) } => write!(f, "two-person-entry={m}m"),
            Measure::EntryHours { from, until } => write!(f, "entry-hours={from}-{until}"),
            Measure::MaxInside { minutes } => write!(f, "max-inside={minutes}m"),
        }
    }
}

impl Directive {
    /// In force at `at`: started, not ended, not cancelled.
    pub fn in_force(&self, at: OffsetDateTime) -> bool {
        self.starts_at <= at && at < self.ends_at && self.cancelled.as_ref().is_none_or(|c| at < c.at)
    }

    /// When it stops applying: its end, or its cancellation if earlier.
    pub fn stops_at(&self) -> OffsetDateTime {
        self.cancelled.as_ref().map_or(self.ends_at, |c| c.at.min(self.ends_at))
    }
}

/// Whether `unit` is one the directive concerns: below its issuing unit, within the chosen part.
pub fn concerns(state: &State, d: &Directive, unit: &UnitId) -> bool {
    // One received from the parent site was issued above this site's root: the root is concerned.
    (unit != &d.unit || !d.received.is_empty())
        && state.unit_within(unit, &d.unit)
        && (d.applies_to.is_empty() || d.applies_to.iter().any(|a| state.unit_within(unit, a)))
}

/// The units a directive concerns, in tree order (parents before children).
pub fn units_concerned(state: &State, d: &Directive) -> Vec<UnitId> {
    // Each unit's children, found in one pass over the units.
    let mut children: BTreeMap<&UnitId, Vec<&UnitId>> = BTreeMap::new();
    for (k, x) in &state.units {
        if let Some(p) = &x.parent {
            children.entry(p).or_default().push(k);
        }
    }
    let mut out = vec![];
    let mut stack = vec![&d.unit];
    while let Some(u) = stack.pop() {
        if concerns(state, d, u) {
            out.push(u.clone());
        }
        if let Some(c) = children.get(u) {
            stack.extend(c.iter().rev());
        }
    }
    out
}

/// The measures in force at `unit` from one directive: its own, and those added by relays at the
/// units on the path down to `unit` (a relay applies to the relaying unit's subtree).
pub fn measures_at<'a>(state: &State, d: &'a Directive, unit: &UnitId) -> Vec<&'a Measure> {
    let mut out: Vec<&Measure> = d.measures.iter().collect();
    for u in state.unit_path(unit) {
        if let Some(r) = d.units.get(&u).and_then(|c| c.relayed.as_ref()) {
            out.extend(r.measures.iter());
        }
    }
    out
}

/// A stretch of time over which the same directives are in force at a unit, and the policy they add.
#[derive(Clone, Debug, PartialEq)]
pub struct Period {
    pub from: OffsetDateTime,
    pub until: OffsetDateTime,
    pub rules: PolicyRules,
    pub directives: Vec<DirectiveId>,
    /// The people briefed on every one of them (kept as briefings are recorded).
    pub briefed: std::collections::BTreeSet<Badge>,
}

/// The directives in force over `unit` at `at` (issued above it and concerning it).
pub fn in_force_over<'a>(state: &'a State, unit: &UnitId, at: OffsetDateTime) -> Vec<(&'a DirectiveId, &'a Directive)> {
    period_at(state, unit, at)
        .map(|p| p.directives.iter().filter_map(|id| state.directives.get_key_value(id)).collect())
        .unwrap_or_default()
}

/// What the directives in force over `unit` at `at` add to its policy.
pub fn policy_over(state: &State, unit: &UnitId, at: OffsetDateTime) -> Option<PolicyRules> {
    period_at(state, unit, at).map(|p| p.rules.clone())
}

fn period_at<'a>(state: &'a State, unit: &UnitId, at: OffsetDateTime) -> Option<&'a Period> {
    let periods = state.directive_periods.get(unit)?;
    let i = periods.partition_point(|p| p.until <= at);
    periods.get(i).filter(|p| p.from <= at)
}

/// The periods of one unit, from the directives that concern it: each boundary (a start, an end)
/// begins a new period; a period without any directive is left out.
fn periods_of(state: &State, unit: &UnitId) -> Vec<Period> {
    let mut windows: Vec<(OffsetDateTime, OffsetDateTime, PolicyRules, &DirectiveId)> = vec![];
    for u in state.unit_path(unit) {
        for id in state.directive_index.get(&u).into_iter().flatten() {
            let Some(d) = state.directives.get(id).filter(|d| d.unit == u && concerns(state, d, unit)) else { continue };
            let rules =
                measures_at(state, d, unit).iter().filter(|m| !m.is_task()).fold(PolicyRules::default(), |p, m| p.tighten(&m.as_policy()));
            if d.starts_at < d.stops_at() {
                windows.push((d.starts_at, d.stops_at(), rules, id));
            }
        }
    }
    let mut bounds: Vec<OffsetDateTime> = windows.iter().flat_map(|w| [w.0, w.1]).collect();
    bounds.sort();
    bounds.dedup();
    let mut out = vec![];
    for pair in bounds.windows(2) {
        let (from, until) = (pair[0], pair[1]);
        let here: Vec<_> = windows.iter().filter(|w| w.0 <= from && from < w.1).collect();
        if here.is_empty() {
            continue;
        }
        let rules = here.iter().fold(PolicyRules::default(), |p, w| p.tighten(&w.2));
        let directives: Vec<DirectiveId> = here.iter().map(|w| w.3.clone()).collect();
        let briefed = briefed_on_all(state, &directives);
        out.push(Period { from, until, rules, directives, briefed });
    }
    out
}

/// The people briefed on every one of `directives`.
fn briefed_on_all(state: &State, directives: &[DirectiveId]) -> std::collections::BTreeSet<Badge> {
    let mut maps = directives.iter().filter_map(|id| state.directives.get(id)).map(|d| &d.briefed);
    let Some(first) = maps.next() else { return Default::default() };
    let rest: Vec<_> = maps.collect();
    first.keys().filter(|b| rest.iter().all(|m| m.contains_key(*b))).cloned().collect()
}

/// A briefing recorded: the periods of directive `id` in which `badge` is now briefed on all.
pub fn briefing_recorded(state: &mut State, id: &DirectiveId, badge: &Badge) {
    let directives = &state.directives;
    for periods in state.directive_periods.values_mut() {
        for p in periods.iter_mut().filter(|p| p.directives.contains(id)) {
            if p.directives.iter().all(|d| directives.get(d).is_some_and(|d| d.briefed.contains_key(badge))) {
                p.briefed.insert(badge.clone());
            }
        }
    }
}

/// Rebuilds every unit's periods (`State::directive_periods`) from the directives in the books (on load).
pub fn rebuild_periods(state: &mut State) {
    let units: Vec<UnitId> = state.units.keys().cloned().collect();
    state.directive_periods.clear();
    refresh_periods(state, &units);
}

/// Recomputes the periods of `units` only: those a directive's order, relay, extension or
/// cancellation concerns, or a new unit.
pub fn refresh_periods(state: &mut State, units: &[UnitId]) {
    if state.directives.is_empty() {
        return;
    }
    for u in units {
        let p = periods_of(state, u);
        if p.is_empty() {
            state.directive_periods.remove(u);
        } else {
            state.directive_periods.insert(u.clone(), p);
        }
    }
}

/// The tasks a unit must do under a directive: per task name, the strictest measure ordered on
/// the path down to it. Only units that hold stores (an armory, depot or magazine) have tasks.
pub fn tasks_for(state: &State, d: &Directive, unit: &UnitId) -> BTreeMap<&'static str, Measure> {
    tasks_given(state, d, unit, !stores_of(state, unit).is_empty())
}

/// As `tasks_for`, told whether the unit holds stores.
fn tasks_given(state: &State, d: &Directive, unit: &UnitId, has_stores: bool) -> BTreeMap<&'static str, Measure> {
    let mut out: BTreeMap<&'static str, Measure> = BTreeMap::new();
    if !has_stores {
        return out;
    }
    for m in measures_at(state, d, unit) {
        if !m.is_task() {
            continue;
        }
        match out.get(m.kind()) {
            Some(have) if m.loosens(have).is_some() || m == have => {}
            _ => {
                out.insert(m.kind(), m.clone());
            }
        }
    }
    out
}

/// A unit's own armories, depots and magazines (top-level stores of its own, not of its children).
pub fn stores_of(state: &State, unit: &UnitId) -> Vec<LocationId> {
    state.locations.iter().filter(|(k, l)| &l.unit == unit && stores_of_one(state, k)).map(|(k, _)| k.clone()).collect()
}

/// Whether a location is a store of its unit's own: an armory, depot or magazine not inside
/// another store of the same unit.
pub fn stores_of_one(state: &State, location: &LocationId) -> bool {
    let is_store = |k: LocationKind| matches!(k, LocationKind::Armory | LocationKind::Depot | LocationKind::Magazine);
    let Some(l) = state.locations.get(location) else { return false };
    is_store(l.kind) && l.parent.as_ref().and_then(|p| state.locations.get(p)).is_none_or(|p| p.unit != l.unit || !is_store(p.kind))
}

/// Where one task of one unit stands at a time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskStatus {
    pub task: &'static str,
    /// The measure as ordered (its text form).
    pub measure: String,
    /// `done`, `open` (still time), `overdue`.
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub due: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub done_at: Option<OffsetDateTime>,
    pub done_by: Option<Badge>,
    /// The deadline's name when recorded as missed (`count#2`, `transfer_review`).
    pub key: String,
    /// What is still missing (the stores not counted in this period …).
    pub missing: Vec<String>,
}

/// The count periods: the first from the start to `within_h` after it, then one every
/// `every_days` (a period ends at its deadline, inclusive). Returns the period containing `at`:
/// its number from 1, its start and its deadline.
fn count_period(d: &Directive, within_h: u32, every_days: Option<u32>, at: OffsetDateTime) -> (u32, OffsetDateTime, OffsetDateTime) {
    let first_due = d.starts_at + Duration::hours(i64::from(within_h));
    let Some(every) = every_days.map(|e| Duration::days(i64::from(e))) else { return (1, d.starts_at, first_due) };
    if at <= first_due {
        return (1, d.starts_at, first_due);
    }
    let e = every.whole_seconds().max(1);
    let j = ((at - first_due).whole_seconds() + e - 1) / e + 1;
    let due = first_due + every * (j - 1) as i32;
    (u32::try_from(j).unwrap_or(u32::MAX), due - every, due)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Where every task of `unit` stands under directive `d` at `at` (after it stops, as it stood then).
pub fn task_statuses(state: &State, d: &Directive, unit: &UnitId, at: OffsetDateTime) -> Vec<TaskStatus> {
    task_statuses_in(state, d, unit, at, &stores_of(state, unit))
}

/// As `task_statuses`, given the unit's stores (`stores_of`: a report over many units finds them once).
pub fn task_statuses_in(state: &State, d: &Directive, unit: &UnitId, at: OffsetDateTime, stores: &[LocationId]) -> Vec<TaskStatus> {
    let at = at.min(d.stops_at());
    let compliance = d.units.get(unit);
    let mut out = vec![];
    for (task, m) in tasks_given(state, d, unit, !stores.is_empty()) {
        let (due, key, done, missing) = match &m {
            Measure::Count { within_h, every_days } => {
                let (k, from, due) = count_period(d, *within_h, *every_days, at);
                let mut missing = vec![];
                let mut last: Option<(OffsetDateTime, Badge)> = None;
                for store in stores {
                    let seen = state
                        .counts
                        .values()
                        .filter(|c| &c.root == store && c.blind && c.kind == CountKind::Full)
                        .filter_map(|c| c.closed_at.filter(|t| *t >= from && *t <= due).map(|t| (t, c.counter.clone())))
                        .max_by_key(|(t, _)| *t);
                    match seen {
                        Some(s) => {
                            if last.as_ref().is_none_or(|l| s.0 > l.0) {
                                last = Some(s);
                            }
                        }
                        None => missing.push(format!("{store} not counted (full, blind) since {}", rfc3339(from))),
                    }
                }
                let done = if missing.is_empty() { last } else { None };
                (due, if every_days.is_some() { format!("count#{k}") } else { "count".to_string() }, done, missing)
            }
            other => {
                let due = d.starts_at + Duration::hours(i64::from(other.within_h().unwrap_or(24)));
                let signed = compliance.and_then(|c| c.signoffs.get(task)).map(|s| (s.at, s.by.clone()));
                let missing = if signed.is_some() { vec![] } else { vec![format!("not signed off by the unit's officer")] };
                (due, task.to_string(), signed, missing)
            }
        };
        let status = match &done {
            Some(_) => "done",
            None if at <= due => "open",
            None => "overdue",
        };
        out.push(TaskStatus {
            task,
            measure: m.to_string(),
            status,
            due,
            done_at: done.as_ref().map(|d| d.0),
            done_by: done.map(|d| d.1),
            key,
            missing,
        });
    }
    out
}

/// When a unit must have acknowledged a directive: its start plus its level's time.
pub fn acknowledge_due(state: &State, d: &Directive) -> OffsetDateTime {
    let h = state.postures.0.get(&d.posture).map(|l| l.acknowledge_within_h).unwrap_or(24);
    d.starts_at.max(d.issued_at) + Duration::hours(i64::from(h))
}

/// The deadlines passed at `now` and not yet recorded as missed, per directive and unit: the
/// acknowledgment (`acknowledge`) and each task's (`count#2`, `transfer_review` …). Only while
/// the directive is in force, and for what was due before it stopped.
pub fn missed(state: &State, now: OffsetDateTime) -> Vec<(DirectiveId, UnitId, String)> {
    let mut out: Vec<(DirectiveId, UnitId, String)> =
        state.directives.iter().flat_map(|(id, d)| missed_of(state, d, now).into_iter().map(move |(u, w)| (id.clone(), u, w))).collect();
    out.sort();
    out.dedup();
    out
}

/// How long after a directive stops the site's clock still looks for its unrecorded misses (a
/// server down over its end records them when it comes back within this time).
pub const MISSED_LOOK_AFTER_END: Duration = Duration::days(7);

/// One directive's deadlines passed at `now` unmet and not yet recorded, per unit it concerns.
pub fn missed_of(state: &State, d: &Directive, now: OffsetDateTime) -> Vec<(UnitId, String)> {
    // Every deadline falls before the directive stops; the site's clock looks every few seconds, so
    // a week after the end nothing is left to find, and ended directives cost the clock nothing.
    if now < d.starts_at || now > d.stops_at() + MISSED_LOOK_AFTER_END {
        return vec![];
    }
    let (end, ack_due) = (d.stops_at(), acknowledge_due(state, d));
    let at = now.min(end);
    let mut out = vec![];
    for unit in units_concerned(state, d) {
        let c = d.units.get(&unit);
        let recorded = |what: &str| c.is_some_and(|c| c.missed.iter().any(|m| m == what));
        if now > ack_due && ack_due < end && c.and_then(|c| c.acknowledged.as_ref()).is_none() && !recorded("acknowledge") {
            out.push((unit.clone(), "acknowledge".to_string()));
        }
        let stores = stores_of(state, &unit);
        for t in task_statuses_in(state, d, &unit, at, &stores) {
            if t.status == "overdue" && t.due < end && !recorded(&t.key) {
                out.push((unit.clone(), t.key.clone()));
            }
        }
        // A repeating count: the period before the current one, if it ended unmet.
        if let Some(Measure::Count { within_h, every_days: Some(e) }) = tasks_given(state, d, &unit, !stores.is_empty()).remove("count") {
            let (j, _, _) = count_period(d, within_h, Some(e), at);
            if j > 1 {
                let prev_due = d.starts_at + Duration::hours(i64::from(within_h)) + Duration::days(i64::from(e)) * (j as i32 - 2);
                let earlier = task_statuses_in(state, d, &unit, prev_due, &stores).into_iter().find(|x| x.task == "count");
                if let Some(x) = earlier.filter(|x| x.status != "done" && !recorded(&x.key)) {
                    out.push((unit.clone(), x.key));
                }
            }
        }
    }
    out
}

/// Whether `badge` must still acknowledge a shift briefing before working at `unit` at `at`: the
/// first directive in force over it they have not been briefed on.
pub fn briefing_due<'a>(state: &'a State, unit: &UnitId, badge: &Badge, at: OffsetDateTime) -> Option<(&'a DirectiveId, &'a Directive)> {
    let period = period_at(state, unit, at)?;
    if period.briefed.contains(badge) {
        return None;
    }
    period.directives.iter().filter_map(|id| state.directives.get_key_value(id)).find(|(_, d)| !d.briefed.contains_key(badge))
}

/// Which directive in force over `unit` at `at` orders a measure of `kind`, as words for a
/// refusal: ` (directive DIR-1.hq "Visit", in force until 2026-12-16 00:00 CET)`; empty when none does.
pub fn ordered_by(state: &State, unit: &UnitId, at: OffsetDateTime, kind: &str, zone: &crate::zone::LocalZone) -> String {
    for (id, d) in in_force_over(state, unit, at) {
        if measures_at(state, d, unit).iter().any(|m| m.kind() == kind) {
            return format!(" (directive {id} \"{}\", in force until {})", d.title, zone.show(d.stops_at()));
        }
    }
    String::new()
}

/// An entry of the parent site's ledger as `Event::FromParent` carries it (its canonical JSON).
pub fn parent_entry(entry: &str) -> Result<crate::Envelope, String> {
    serde_json::from_str(entry).map_err(|e| format!("the parent's entry does not read as an entry: {e}"))
}

/// The entry a parent's entry carries in the end: itself, or — when the parent received it from its
/// own parent (a region relaying headquarters' directive) — the entry it received, and so on up.
pub fn decided_entry(entry: &str) -> Result<crate::Envelope, String> {
    let mut env = parent_entry(entry)?;
    for _ in 0..16 {
        match &env.event {
            crate::Event::FromParent { entry, .. } => env = parent_entry(entry)?,
            _ => return Ok(env),
        }
    }
    Err("the parent's entry is received through more than 16 sites".into())
}
