//! Armory access control (docs/access.md): who may enter which armory, depot or magazine and when
//! (its roster, with weekly hours in the site's zone and dated exceptions), what its door reported
//! (entries, exits, denials, forced and held-open doors, tamper, duress), who is inside now, and the
//! alerts the site's clock raises (one person alone inside under a two-person rule, a stay past the
//! longest allowed).
//!
//! Door events are high volume and live outside the ledger like storage readings: the ledger records
//! a digest of each batch and, in the same entry, the passages that matter for accountability.

use crate::books::State;
use crate::ids::*;
use crate::model::*;
use crate::policy::PolicyRules;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Date, Duration, OffsetDateTime, Weekday};

/// Minutes within which a second roster member must follow the first in under a two-person rule,
/// unless the policy says otherwise.
pub const PARTNER_WITHIN_MIN_DEFAULT: u16 = 5;

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// One weekly window: on these days (bit 0 Monday … bit 6 Sunday), from one local minute of the day
/// until another (`until_min` may be 1440, the end of the day).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub days: u8,
    pub from_min: u16,
    pub until_min: u16,
}

/// When a roster member may enter: weekly windows, and dated exceptions that replace a day's windows
/// (an empty list: closed that day).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    pub weekly: Vec<Window>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exceptions: BTreeMap<Date, Vec<(u16, u16)>>,
}

fn clock(text: &str) -> Result<u16, String> {
    let (h, m) = text.trim().split_once(':').ok_or_else(|| format!("{text:?} is not a time like 07:30"))?;
    let (h, m): (u16, u16) =
        (h.parse().map_err(|_| format!("{text:?}: bad hour"))?, m.parse().map_err(|_| format!("{text:?}: bad minute"))?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("{text:?} is not a time of day from 00:00 to 24:00"));
    }
    Ok(h * 60 + m)
}

fn span(text: &str) -> Result<(u16, u16), String> {
    let (f, u) = text.split_once('-').ok_or_else(|| format!("{text:?} is not FROM-UNTIL like 07:00-19:00"))?;
    let (f, u) = (clock(f)?, clock(u)?);
    if f >= u {
        return Err(format!("{text}: a window starts before it ends, within one day (split one that crosses midnight in two)"));
    }
    Ok((f, u))
}

fn show_span(f: u16, u: u16) -> String {
    format!("{:02}:{:02}-{:02}:{:02}", f / 60, f % 60, u / 60, u % 60)
}

fn day_bit(name: &str) -> Result<u8, String> {
    DAYS.iter().position(|(n, _)| *n == name).map(|i| 1 << i).ok_or_else(|| format!("{name:?} is not a day (mon … sun)"))
}

fn days(text: &str) -> Result<u8, String> {
    let mut bits = 0u8;
    for part in text.split(',') {
        let part = part.trim().to_ascii_lowercase();
        bits |= match part.as_str() {
            "daily" => 0x7f,
            "weekdays" => 0x1f,
            "weekends" => 0x60,
            p => match p.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day_bit(a)?.trailing_zeros(), day_bit(b)?.trailing_zeros());
                    if a > b {
                        return Err(format!("{p:?}: a day range runs forward (mon-fri)"));
                    }
                    (a..=b).fold(0, |acc, i| acc | (1 << i))
                }
                None => day_bit(p)?,
            },
        };
    }
    Ok(bits)
}

fn show_days(bits: u8) -> String {
    match bits {
        0x7f => return "daily".into(),
        0x1f => return "mon-fri".into(),
        _ => {}
    }
    DAYS.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, (n, _))| *n).collect::<Vec<_>>().join(",")
}

impl Hours {
    pub const GRAMMAR: &'static str = "always, or windows separated by ';' like 'mon-fri 07:00-19:00; sat 08:00-12:00' \
        (days: mon … sun, ranges, lists with ',', daily, weekdays, weekends)";

    /// Every day, all day.
    pub fn always() -> Hours {
        Hours { weekly: vec![Window { days: 0x7f, from_min: 0, until_min: 1440 }], exceptions: BTreeMap::new() }
    }

    /// Parses weekly hours (`Hours::GRAMMAR`).
    pub fn parse(text: &str) -> Result<Hours, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("always") || t == "24/7" {
            return Ok(Hours::always());
        }
        let mut weekly = vec![];
        for part in t.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (d, s) = part.rsplit_once(' ').ok_or_else(|| format!("{part:?}: give days and hours, like 'mon-fri 07:00-19:00'"))?;
            let (from_min, until_min) = span(s)?;
            weekly.push(Window { days: days(d)?, from_min, until_min });
        }
        if weekly.is_empty() {
            return Err(format!("no hours given; {}", Hours::GRAMMAR));
        }
        Ok(Hours { weekly, exceptions: BTreeMap::new() })
    }

    /// Weekly hours and their dated exceptions, as the CLI, the API and the page take them.
    pub fn parse_with_exceptions(text: &str, exceptions: &[String]) -> Result<Hours, String> {
        let mut h = Hours::parse(text)?;
        for e in exceptions.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            h.add_exception(e)?;
        }
        Ok(h)
    }

    /// Adds an exception: `2026-12-25=closed` or `2026-12-24=08:00-12:00[,14:00-16:00]`.
    pub fn add_exception(&mut self, text: &str) -> Result<(), String> {
        let (d, what) = text.split_once('=').ok_or_else(|| format!("{text:?}: an exception is DATE=closed or DATE=HH:MM-HH:MM"))?;
        let date = crate::command::parse_date(d.trim()).map_err(|e| format!("exception {text:?}: {e}"))?;
        let spans = match what.trim() {
            "closed" => vec![],
            w => w.split(',').map(span).collect::<Result<Vec<_>, _>>()?,
        };
        self.exceptions.insert(date, spans);
        Ok(())
    }

    /// Whether a local date and minute of the day lies within these hours.
    pub fn contains(&self, date: Date, minute: u16) -> bool {
        match self.exceptions.get(&date) {
            Some(spans) => spans.iter().any(|(f, u)| (*f..*u).contains(&minute)),
            None => {
                let bit = 1u8 << date.weekday().number_days_from_monday();
                self.weekly.iter().any(|w| w.days & bit != 0 && (w.from_min..w.until_min).contains(&minute))
            }
        }
    }

    /// Whether a moment, seen in the site's zone, lies within these hours.
    pub fn contains_at(&self, at: OffsetDateTime, zone: &crate::zone::LocalZone) -> bool {
        let l = at.to_offset(zone.offset);
        self.contains(l.date(), u16::from(l.hour()) * 60 + u16::from(l.minute()))
    }
}

impl std::fmt::Display for Hours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.weekly == Hours::always().weekly {
            f.write_str("always")?;
        } else {
            let w: Vec<String> =
                self.weekly.iter().map(|w| format!("{} {}", show_days(w.days), show_span(w.from_min, w.until_min))).collect();
            f.write_str(&w.join("; "))?;
        }
        for (d, spans) in &self.exceptions {
            let s =
                if spans.is_empty() { "closed".into() } else { spans.iter().map(|(a, b)| show_span(*a, *b)).collect::<Vec<_>>().join(",") };
            write!(f, " (except {d}={s})")?;
        }
        Ok(())
    }
}

/// One person on a place's roster: the role they enter in and when they may.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterEntry {
    pub role: Role,
    pub hours: Hours,
    pub granted_by: Badge,
    #[serde(with = "time::serde::rfc3339")]
    pub granted_at: OffsetDateTime,
    pub reason: String,
}

/// A place's roster, as the books keep it (one row per place, changed only by grants and revocations).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPlace {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roster: BTreeMap<Badge, RosterEntry>,
}

/// Who is inside a place and since when, what its clock has raised, and a count its key calls for:
/// a row of its own, small, that door events change (the roster's row stays as it is).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "times")]
    pub inside: BTreeMap<Badge, OffsetDateTime>,
    /// Alerts raised while the people concerned are inside (`lone:<badge>`, `overstay:<badge>`), and
    /// about its key (`key_overdue:<serial>@<since>`, `key_count:<since>`), so each is raised once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerted: Vec<String>,
    /// Since when exactly one person has been inside (their entry, or the exit that left them alone).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub alone_since: Option<OffsetDateTime>,
    /// A full count of the place is due: its key changed hands (or was kept past its return) and no
    /// full count rooted at or above it has started since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_due: Option<KeyCount>,
    /// The last door event recorded here (any kind), for the pages.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub last_event_at: Option<OffsetDateTime>,
}

mod times {
    use super::*;
    const RFC: time::format_description::well_known::Rfc3339 = time::format_description::well_known::Rfc3339;
    pub fn serialize<S: serde::Serializer>(m: &BTreeMap<Badge, OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        let text: BTreeMap<&Badge, String> = m.iter().map(|(b, t)| (b, t.format(&RFC).unwrap_or_default())).collect();
        text.serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<Badge, OffsetDateTime>, D::Error> {
        let text = BTreeMap::<Badge, String>::deserialize(d)?;
        text.into_iter().map(|(b, t)| OffsetDateTime::parse(&t, &RFC).map(|t| (b, t)).map_err(serde::de::Error::custom)).collect()
    }
}

/// Why a count of a place is due, since when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCount {
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub serial: Serial,
    pub badge: Badge,
    /// `custody` (the key changed hands) or `overdue` (kept past its return).
    pub why: String,
}

/// What a door reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorKind {
    /// Someone went in (a granted badge).
    Entry,
    /// Someone went out.
    Exit,
    /// A badge was refused.
    Denied,
    /// The door opened without a granted badge.
    Forced,
    /// The door stayed open past the system's limit.
    HeldOpen,
    /// The door closed (kept outside the ledger only).
    Closed,
    /// A reader or the door's contact was tampered with.
    Tamper,
    /// A duress code was entered (the system signals it; the terminal records it as an entry).
    Duress,
}

impl DoorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DoorKind::Entry => "entry",
            DoorKind::Exit => "exit",
            DoorKind::Denied => "denied",
            DoorKind::Forced => "forced",
            DoorKind::HeldOpen => "held_open",
            DoorKind::Closed => "closed",
            DoorKind::Tamper => "tamper",
            DoorKind::Duress => "duress",
        }
    }

    /// Whether the ledger records it as a passage (everything but a door closing).
    pub fn accountable(self) -> bool {
        self != DoorKind::Closed
    }
}

/// What was wrong with a passage the door let through (the rules' findings), each an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// The badge is not on the place's roster, or the card is unknown.
    NotOnRoster,
    /// Outside the roster's hours, or the entry hours a policy or directive sets.
    AfterHours,
    /// A duress code: access looked granted.
    Duress,
}

impl Finding {
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::NotOnRoster => "not on the roster",
            Finding::AfterHours => "outside the hours",
            Finding::Duress => "duress",
        }
    }
}

/// One door event as the ledger records it: where (the door as the system names it, and the place it
/// maps to, if any), who (the card, and the badge it maps to, if any), what, when, why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passage {
    /// The event's id in its source (unique there).
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub door: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge: Option<Badge>,
    pub kind: DoorKind,
    /// Why a denial was refused, as the door or the terminal said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

/// How a person at a door terminal proved who they are (the edge checks the PIN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proof {
    Pin,
    /// The duress PIN: the door opens as for the real one, and the site raises the alarm silently.
    Duress,
    WrongPin,
    /// A badge the site does not know, or one with no PIN set.
    Unknown,
}

/// One door event as a source reports it, before the rules judge it: the passage as reported (no
/// findings yet), and for a terminal's request (`kind` entry or exit) how the person proved who they
/// are (`proof` None: an access-control system, which decided by itself). Reads as its passage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorInput {
    pub event: Passage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
}

impl std::ops::Deref for DoorInput {
    type Target = Passage;
    fn deref(&self) -> &Passage {
        &self.event
    }
}

/// Places whose access the books control: armories, depots and magazines.
pub fn controlled(kind: LocationKind) -> bool {
    matches!(kind, LocationKind::Armory | LocationKind::Depot | LocationKind::Magazine)
}

/// Why `badge` may not enter `location` at `at` under its roster and `policy`, or `None`.
pub fn entry_refusal(
    state: &State,
    location: &LocationId,
    badge: &Badge,
    at: OffsetDateTime,
    zone: &crate::zone::LocalZone,
    policy: &PolicyRules,
) -> Option<(Finding, String)> {
    // A suspended person is on no roster until restored (docs/permissions.md, "People").
    if let Some(s) = state.people.get(badge).and_then(|p| p.suspended.as_ref()) {
        return Some((Finding::NotOnRoster, format!("badge {badge} is suspended since {} and may not enter {location}", s.since.date())));
    }
    let Some(entry) = state.access.get(location).and_then(|p| p.roster.get(badge)) else {
        return Some((Finding::NotOnRoster, format!("badge {badge} is not on the roster of {location}")));
    };
    if !entry.hours.contains_at(at, zone) {
        return Some((Finding::AfterHours, format!("badge {badge} may enter {location} {}; it is {}", entry.hours, zone.show(at))));
    }
    if let Some(h) = policy.entry_hours {
        let l = at.to_offset(zone.offset);
        if !h.contains(u16::from(l.hour()) * 60 + u16::from(l.minute())) {
            let unit = state.locations.get(location).map(|l| l.unit.clone());
            let by = unit.map(|u| crate::directives::ordered_by(state, &u, at, "entry_hours", zone)).unwrap_or_default();
            return Some((Finding::AfterHours, format!("no entry to {location} outside {h}{by}; it is {}", zone.show(at))));
        }
    }
    None
}

/// Whether a two-person rule governs entry to a place at `at`.
pub fn two_person(policy: &PolicyRules) -> bool {
    policy.two_person_entry || policy.two_person_all_movements
}

/// The alerts due at `now` at one place: one person alone inside past the partner window under a
/// two-person rule, a stay past the longest allowed. Each `(key, badge, since, message)`; keys
/// already in `alerted` are left out.
pub fn alerts_due(state: &State, location: &LocationId, now: OffsetDateTime) -> Vec<(String, Badge, OffsetDateTime, String)> {
    let (Some(place), Some(loc)) = (state.presence.get(location), state.locations.get(location)) else { return vec![] };
    let policy = state.effective_policy(&loc.unit, now).0;
    let mut out = vec![];
    if let (true, Some(badge), Some(since)) =
        (two_person(&policy) && place.inside.len() == 1, place.inside.keys().next(), place.alone_since)
    {
        // Alone since their entry (nobody followed) or since the exit that left them (the last two
        // did not leave together): either way, a partner window to put it right.
        let window = Duration::minutes(i64::from(policy.partner_within_min.unwrap_or(PARTNER_WITHIN_MIN_DEFAULT)));
        if now - since >= window {
            let msg = format!(
                "badge {badge} has been alone inside {location} since {} under a two-person rule (nobody with them within {} min)",
                crate::decide::when(since),
                window.whole_minutes()
            );
            out.push((format!("lone:{badge}"), badge.clone(), since, msg));
        }
    }
    if let Some(max) = policy.max_inside_min {
        for (badge, since) in &place.inside {
            if now - *since >= Duration::minutes(i64::from(max)) {
                let msg = format!("badge {badge} has been inside {location} since {}, longer than {max} min", crate::decide::when(*since));
                out.push((format!("overstay:{badge}"), badge.clone(), *since, msg));
            }
        }
    }
    out.retain(|(k, ..)| !place.alerted.contains(k));
    out
}

/// The key-count alerts due at `now` (for the site's clock): per place, a key overdue in a person's
/// hands that sets a count due (`key_overdue:<serial>`), and a count due and not started within the
/// rules' hours (`key_count:<since>`). Each `(place, alert, badge, since, message)`.
pub fn key_alerts_due(state: &State, now: OffsetDateTime) -> Vec<(LocationId, String, Badge, OffsetDateTime, String)> {
    let rules = &state.incident_rules.0;
    let Some(within) = rules.key_count_within_h() else { return vec![] };
    let mut out = vec![];
    // The clock runs this often: only the serials of key types that open a place are looked at.
    let keys: BTreeMap<&ItemTypeId, LocationId> = state.item_types.keys().filter_map(|t| key_opens(state, t).map(|l| (t, l))).collect();
    if keys.is_empty() && state.presence.values().all(|p| p.count_due.is_none()) {
        return out;
    }
    for (serial, si) in state.serials.iter().filter(|(_, si)| keys.contains_key(&si.item_type)) {
        let (Account::Person(holder), Some(place)) = (&si.account, keys.get(&si.item_type).cloned()) else { continue };
        let overdue_at = si.since + Duration::hours(i64::from(rules.overdue_after_h()));
        let due = state.presence.get(&place).and_then(|p| p.count_due.as_ref());
        if now >= overdue_at && due.is_none_or(|d| d.since < si.since) {
            let msg = format!("key {serial} of {place} is still held by badge {holder} past its return: a count of {place} is due");
            out.push((place.clone(), format!("key_overdue:{serial}"), holder.clone(), overdue_at, msg));
        }
    }
    for (place, p) in &state.presence {
        let Some(d) = &p.count_due else { continue };
        let key = format!("key_count:{}", d.since.unix_timestamp());
        if now >= d.since + Duration::hours(i64::from(within)) && !p.alerted.contains(&key) {
            let cause = if d.why == "overdue" { "was kept past its return" } else { "changed hands" };
            let msg = format!(
                "no full count of {place} within {within} h after its key {} {cause} (badge {}, {})",
                d.serial,
                d.badge,
                crate::decide::when(d.since)
            );
            out.push((place.clone(), key, d.badge.clone(), d.since, msg));
        }
    }
    out
}

/// The place a key opens: the key's item type names it with the attribute `opens:<location>`.
pub fn key_opens(state: &State, item_type: &ItemTypeId) -> Option<LocationId> {
    let t = state.item_types.get(item_type)?;
    if t.kind != ItemKind::Key {
        return None;
    }
    t.attributes.iter().find_map(|a| a.strip_prefix("opens:")).and_then(|l| LocationId::parse(l).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn hours_read_back_and_decide() {
        let mut h = Hours::parse("mon-fri 07:00-19:00; sat 08:00-12:00").unwrap();
        assert_eq!(h.to_string(), "mon-fri 07:00-19:00; sat 08:00-12:00");
        // 2026-12-07 is a Monday.
        assert!(h.contains(date!(2026 - 12 - 07), 7 * 60));
        assert!(!h.contains(date!(2026 - 12 - 07), 19 * 60));
        assert!(h.contains(date!(2026 - 12 - 12), 9 * 60) && !h.contains(date!(2026 - 12 - 13), 9 * 60));
        h.add_exception("2026-12-08=closed").unwrap();
        h.add_exception("2026-12-13=10:00-11:00").unwrap();
        assert!(!h.contains(date!(2026 - 12 - 08), 9 * 60));
        assert!(h.contains(date!(2026 - 12 - 13), 10 * 60 + 30));
        assert_eq!(Hours::parse(&Hours::always().to_string()).unwrap(), Hours::always());
        assert!(Hours::always().contains(date!(2026 - 12 - 13), 1439));
        assert_eq!(Hours::parse("mon,wed 22:00-24:00").unwrap().weekly[0], Window { days: 0b101, from_min: 1320, until_min: 1440 });
        for bad in ["", "mon 19:00-07:00", "funday 07:00-08:00", "mon 7-8", "fri-mon 07:00-08:00", "mon 24:30-25:00", "mon 07:00-07:60"] {
            assert!(Hours::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(h.clone().add_exception("2026-13-01=closed").is_err());
    }
}
