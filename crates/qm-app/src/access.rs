//! Armory access control at the edge (docs/access.md): door events from a terminal or the site's
//! access-control system stored outside the ledger under a digest entry (as readings are), the
//! door terminal's PIN check (with the duress PIN), and the views: the roster, who is inside, a
//! place's log of the day.

use crate::conditions::{from_ms, ms};
use crate::{AppError, Outcome, Request, Result, Site, IDEMPOTENCY_KEY_LEN_MAX};
use qm_core::access::{DoorInput, DoorKind, Passage, Proof};
use qm_core::event::CredentialKind;
use qm_core::{Badge, Command, Event, LocationId, Rejection};
use qm_store::{DoorQuery, EntrySource, StoredDoorEvent};
use serde::Serialize;
use sha2::Digest;
use std::collections::{BTreeMap, HashMap, HashSet};
use time::OffsetDateTime;

fn proof_str(p: Option<Proof>) -> Option<String> {
    p.map(|p| match p {
        Proof::Pin => "pin",
        Proof::Duress => "duress",
        Proof::WrongPin => "wrong_pin",
        Proof::Unknown => "unknown",
    })
    .map(String::from)
}

/// SHA-256 (hex) over the canonical lines of door events, in order. A line is an event's fields
/// separated by tabs and ended by a newline (no field may hold a control character), absent ones
/// empty: source, event id, time (ms), door, card, kind, location, badge, proof.
pub fn door_digest(events: &[StoredDoorEvent]) -> String {
    let mut h = sha2::Sha256::new();
    let mut at = String::new();
    for d in events {
        use std::fmt::Write;
        at.clear();
        let _ = write!(at, "{}", d.at_ms);
        fn o(v: &Option<String>) -> &str {
            v.as_deref().unwrap_or_default()
        }
        let fields = [d.source.as_str(), &d.event_id, &at, &d.door, o(&d.card), &d.kind, o(&d.location), o(&d.badge), o(&d.proof)];
        for (i, f) in fields.iter().enumerate() {
            h.update(f.as_bytes());
            h.update(if i + 1 == fields.len() { b"\n" } else { b"\t" });
        }
    }
    crate::hex(&h.finalize())
}

/// The auditor's check of one batch: the stored events of entry `seq` still hash to its digest.
pub(crate) fn check_digest(store: &dyn EntrySource, seq: u64, source: &str, count: u64, sha: &str) -> Option<String> {
    match store.door_events_of_digest(seq) {
        Err(e) => Some(format!("entry {seq}: cannot read its door events: {e}")),
        Ok(rows) if rows.len() as u64 != count || door_digest(&rows) != sha || rows.iter().any(|r| r.source != source) => Some(format!(
            "entry {seq}: the {} stored door events of {source} no longer match the digest recorded for {count} events: they were altered",
            rows.len()
        )),
        Ok(_) => None,
    }
}

/// What recording a batch of door events did.
#[derive(Clone, Debug, Serialize)]
pub struct DoorOutcome {
    /// Events new to the site, recorded now.
    pub recorded: usize,
    /// Events whose ids the source had sent before: stored once, skipped now.
    pub duplicates: usize,
    /// How the rules judged the accountable ones.
    pub passages: Vec<Passage>,
    /// Incidents opened.
    pub incidents: Vec<String>,
    pub seq: Option<u64>,
}

impl Site {
    /// Records a batch of door events from one source: the new ones stored outside the ledger, and
    /// one entry with their digest and the passages as the rules judged them, in one durable
    /// transaction. Events whose ids the source sent before are skipped (idempotent by event id);
    /// `key` (default: one made from the batch's digest) is the entry's idempotency key.
    pub fn record_door_events(
        &mut self,
        source: &str,
        events: Vec<DoorInput>,
        key: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<DoorOutcome> {
        let (ticket, counts) = self.submit_door_events(source, events, key, at)?;
        let Some(ticket) = ticket else { return Ok(counts.outcome(None)) };
        let o = self.finish(ticket).pop().unwrap_or_else(|| Err(AppError::Internal("a batch of door events had no result".into())))?;
        Ok(counts.outcome(Some(&o)))
    }

    /// [`Site::record_door_events`] pipelined: the batch is checked, judged and handed to the writer,
    /// and the site is free for the next while it is made durable; `Site::finish` the ticket (in
    /// order) and give its outcome to `DoorCounts::outcome`. No ticket: every event was a duplicate.
    pub fn submit_door_events(
        &mut self,
        source: &str,
        events: Vec<DoorInput>,
        key: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<(Option<crate::Ticket>, DoorCounts)> {
        let site = Badge::parse(qm_core::incidents::SITE_ACTOR).map_err(|e| AppError::Internal(e.to_string()))?;
        let mut events: Vec<DoorInput> =
            events.into_iter().map(|e| DoorInput { event: Passage { at: from_ms(ms(e.at)), ..e.event }, proof: e.proof }).collect();
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let known = self.store().door_event_ids(source, &ids)?;
        let before = events.len();
        let in_flight = self.door_in_flight.get(source);
        events.retain(|e| !known.contains(&e.id) && !in_flight.is_some_and(|ids| ids.contains(&e.id)));
        let counts = DoorCounts { recorded: events.len(), duplicates: before - events.len() };
        if events.is_empty() {
            return Ok((None, counts));
        }
        if events.len() > qm_core::decide::DOOR_EVENTS_MAX {
            return Err(invalid(format!("from 1 to {} door events per batch", qm_core::decide::DOOR_EVENTS_MAX)));
        }
        let stored: Vec<StoredDoorEvent> = events
            .iter()
            .map(|e| StoredDoorEvent {
                source: source.to_string(),
                event_id: e.id.clone(),
                at_ms: ms(e.at),
                door: e.door.clone(),
                card: e.card.clone(),
                kind: e.kind.as_str().to_string(),
                location: e.location.as_ref().map(|l| l.to_string()),
                badge: e.badge.as_ref().map(|b| b.to_string()),
                proof: proof_str(e.proof),
                digest_seq: 0,
            })
            .collect();
        let ids: Vec<String> = stored.iter().map(|d| d.event_id.clone()).collect();
        let (reqs, mut rows) = door_requests(&site, source, key, at, events, stored)?;
        let mut ticket = self.submit_parts(&reqs, |i, o, commit| {
            let part = rows.get_mut(i).map(std::mem::take).unwrap_or_default();
            commit.door_events.extend(part.into_iter().map(|d| StoredDoorEvent { digest_seq: o.first_seq, ..d }));
        });
        if !ticket.accepted.is_empty() && ticket.done.is_some() {
            self.door_in_flight.entry(source.to_string()).or_default().extend(ids.iter().cloned());
            ticket.door_ids = Some((source.to_string(), ids));
        }
        Ok((Some(ticket), counts))
    }

    /// A batch's door events are durable (or failed): no longer in flight.
    pub(crate) fn doors_landed(&mut self, ids: Option<(String, Vec<String>)>) {
        let Some((source, ids)) = ids else { return };
        if let Some(held) = self.door_in_flight.get_mut(&source) {
            for id in &ids {
                held.remove(id);
            }
            if held.is_empty() {
                self.door_in_flight.remove(&source);
            }
        }
    }

    /// One person at a place's door terminal (the server's page, its API, `qm access door`): the
    /// badge (or what was typed, when it is no badge), entering or leaving, how they proved who they
    /// are; recorded as a batch of one, and the screen's answer.
    pub fn record_terminal(
        &mut self,
        location: &LocationId,
        typed: &str,
        exit: bool,
        proof: Proof,
        at: OffsetDateTime,
    ) -> Result<TerminalAnswer> {
        let badge = Badge::parse(typed.trim()).ok();
        let event = Passage {
            id: uuid::Uuid::now_v7().to_string(),
            at,
            door: format!("terminal:{location}"),
            location: Some(location.clone()),
            card: badge.is_none().then(|| typed.trim().chars().take(64).collect()),
            badge,
            kind: if exit { DoorKind::Exit } else { DoorKind::Entry },
            reason: String::new(),
            findings: vec![],
        };
        let o = self.record_door_events(&format!("terminal-{location}"), vec![DoorInput { event, proof: Some(proof) }], None, at)?;
        let p = o.passages.first().ok_or_else(|| AppError::Internal("the terminal's event was not judged".into()))?;
        Ok(terminal_answer(self.state(), p))
    }

    /// How a person at a door terminal proved who they are: the PIN, the duress PIN, a wrong one,
    /// or an unknown badge; compared here (Argon2id, slow: the server compares on its own pool),
    /// counted in the badge's lockout (a duress PIN counts as a success: nothing may tell it apart).
    pub fn door_proof(&self, badge: &Badge, pin: &str) -> Result<Proof> {
        if !self.state().people.contains_key(badge) {
            return Ok(Proof::Unknown);
        }
        let real = match self.attempt(badge, CredentialKind::Pin) {
            Ok(a) => a,
            Err(AppError::Locked { .. }) => return Ok(Proof::WrongPin),
            Err(e) => return Err(e),
        };
        if real.hash().is_none() {
            return Ok(Proof::Unknown);
        }
        let duress = self.attempt(badge, CredentialKind::Duress)?;
        Ok(terminal_proof(&real, &duress, pin))
    }
}

/// The terminal's comparison: the real PIN, else the duress PIN, settled in the lockout as one attempt.
pub fn terminal_proof(real: &crate::act::Attempt, duress: &crate::act::Attempt, pin: &str) -> Proof {
    let proof = if real.matches(pin) {
        Proof::Pin
    } else if duress.hash().is_some() && duress.matches(pin) {
        Proof::Duress
    } else {
        Proof::WrongPin
    };
    let _ = real.settle(proof != Proof::WrongPin);
    proof
}

fn invalid(message: String) -> AppError {
    AppError::Rejected(Rejection::Invalid(message))
}

/// How much of the ledger's entry budget a door event's passage may take, judged and with the
/// incident it may open: its texts, and a fixed share for its time, kind, findings and reason.
fn door_event_bytes(e: &DoorInput) -> usize {
    let texts = [Some(e.id.as_str()), Some(e.door.as_str()), e.card.as_deref(), Some(e.reason.as_str())];
    let ids = e.location.as_ref().map_or(0, |l| l.as_str().len()) + e.badge.as_ref().map_or(0, |b| b.as_str().len());
    texts.iter().flatten().map(|t| t.len()).sum::<usize>() + ids + 200
}

/// The most one part of a batch of door events may take by [`door_event_bytes`]: with an incident of
/// at most 600 bytes opened for every event in it, a part stays within an entry (`EVENT_BYTES_MAX`).
const DOOR_PART_BYTES: usize = 24_000;
/// The most events one part holds (a part of short events, every one opening an incident).
const DOOR_PART_EVENTS: usize = 60;

/// How many events each part of a batch holds, in order: each within the entry's budget.
pub(crate) fn door_parts(events: &[DoorInput]) -> Vec<usize> {
    let mut parts = vec![];
    let (mut n, mut bytes) = (0, 0);
    for e in events {
        let b = door_event_bytes(e);
        if n > 0 && (n == DOOR_PART_EVENTS || bytes + b > DOOR_PART_BYTES) {
            parts.push(n);
            (n, bytes) = (0, 0);
        }
        n += 1;
        bytes += b;
    }
    if n > 0 {
        parts.push(n);
    }
    parts
}

/// A batch of door events as the requests that record it, one per part (the ledger's entries are at
/// most 64 KiB), committed together; each part's rows are digested in its own entry, and the first
/// part keeps the batch's idempotency key.
fn door_requests(
    site: &Badge,
    source: &str,
    key: Option<&str>,
    at: OffsetDateTime,
    mut events: Vec<DoorInput>,
    mut stored: Vec<StoredDoorEvent>,
) -> Result<(Vec<Request>, Vec<Vec<StoredDoorEvent>>)> {
    let bounds = door_parts(&events);
    if bounds.len() > 1 {
        // Each part is checked on its own by the rules: an id twice in the message is found here.
        let mut seen = HashSet::with_capacity(stored.len());
        if let Some((n, d)) = stored.iter().enumerate().find(|(_, d)| !seen.insert(d.event_id.as_str())) {
            return Err(invalid(format!("door event {}: id {:?} appears twice in the batch", n + 1, d.event_id)));
        }
    }
    let (mut reqs, mut rows) = (vec![], vec![]);
    for (i, n) in bounds.into_iter().enumerate() {
        let part_events: Vec<DoorInput> = events.drain(..n).collect();
        let part_rows: Vec<StoredDoorEvent> = stored.drain(..n).collect();
        let sha256 = door_digest(&part_rows);
        let part_key = match (key, i) {
            (Some(k), 0) => k.to_string(),
            (Some(k), i) => format!("{}#{}", k.chars().take(IDEMPOTENCY_KEY_LEN_MAX - 8).collect::<String>(), i + 1),
            (None, _) => format!("door-{source}-{sha256}").chars().take(IDEMPOTENCY_KEY_LEN_MAX).collect(),
        };
        let command = Command::RecordDoorEvents { source: source.to_string(), events: part_events, sha256 };
        reqs.push(Request::new(site.clone(), command, part_key, at));
        rows.push(part_rows);
    }
    Ok((reqs, rows))
}

/// How many events of a batch were new and how many the source had sent before.
#[derive(Clone, Copy, Debug)]
pub struct DoorCounts {
    pub recorded: usize,
    pub duplicates: usize,
}

impl DoorCounts {
    /// What recording the batch did, from its outcome (none: nothing was new).
    pub fn outcome(self, o: Option<&Outcome>) -> DoorOutcome {
        let Some(o) = o else {
            return DoorOutcome { recorded: 0, duplicates: self.duplicates, passages: vec![], incidents: vec![], seq: None };
        };
        let mut passages = vec![];
        let mut incidents = vec![];
        for e in o.entries.iter() {
            if let Event::DoorEvents { passages: p, .. } = &e.event {
                passages.extend(p.iter().cloned());
            }
            for opened in e.opens.iter().chain(std::iter::once(&e.event)) {
                if let Event::IncidentOpened { incident, .. } = opened {
                    incidents.push(incident.to_string());
                }
            }
        }
        DoorOutcome { recorded: self.recorded, duplicates: self.duplicates, passages, incidents, seq: Some(o.first_seq) }
    }
}

/// What the door terminal's screen says: granted or refused, and why; the same for a duress PIN as
/// for the real one (nothing on the screen may show the alarm was raised).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TerminalAnswer {
    pub granted: bool,
    pub message: String,
}

/// The screen's answer to the terminal's one passage.
pub fn terminal_answer(state: &qm_core::State, p: &Passage) -> TerminalAnswer {
    let who = p.badge.as_ref().map(|b| state.people.get(b).map_or_else(|| format!("badge {b}"), |x| format!("{} (badge {b})", x.name)));
    let who = who.unwrap_or_else(|| "unknown badge".into());
    let place = p.location.as_ref().map_or_else(|| p.door.clone(), |l| l.to_string());
    match p.kind {
        DoorKind::Denied => TerminalAnswer { granted: false, message: format!("refused: {}", p.reason) },
        DoorKind::Exit => TerminalAnswer { granted: true, message: format!("exit recorded: {who} left {place}") },
        _ => TerminalAnswer { granted: true, message: format!("granted: {who} may enter {place}") },
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct InsidePerson {
    pub badge: String,
    pub name: String,
    pub since: String,
    /// Outside their roster's hours now (or not on it).
    pub after_hours: bool,
}

/// One place under access control: who is inside now, and what the rules in force say.
#[derive(Clone, Debug, Serialize)]
pub struct PlaceView {
    pub location: String,
    pub name: String,
    pub unit: String,
    pub kind: String,
    pub inside: Vec<InsidePerson>,
    pub two_person: bool,
    /// One person inside under a two-person rule.
    pub alone: bool,
    pub roster: usize,
    pub last_event_at: Option<String>,
    /// A full count due because the place's key changed hands or was kept past its return.
    pub count_due: Option<String>,
}

/// Every armory, depot and magazine in the given units (all: `None`), with who is inside now.
pub fn places(site: &Site, units: Option<&dyn Fn(&qm_core::UnitId) -> bool>, now: OffsetDateTime) -> Vec<PlaceView> {
    let state = site.state();
    let zone = crate::zone::SiteZone::of(state);
    let local = zone.at(now);
    let mut out = vec![];
    for (id, loc) in &state.locations {
        if !qm_core::access::controlled(loc.kind) || units.is_some_and(|f| !f(&loc.unit)) {
            continue;
        }
        let (none, nobody) = (Default::default(), Default::default());
        let place: &qm_core::access::AccessPlace = state.access.get(id).unwrap_or(&none);
        let presence: &qm_core::access::Presence = state.presence.get(id).unwrap_or(&nobody);
        let two_person = qm_core::access::two_person(&state.effective_policy(&loc.unit, now).0);
        let inside = presence
            .inside
            .iter()
            .map(|(b, since)| InsidePerson {
                badge: b.to_string(),
                name: state.people.get(b).map(|p| p.name.clone()).unwrap_or_default(),
                since: zone.show(*since),
                after_hours: place.roster.get(b).is_none_or(|r| !r.hours.contains_at(now, &local)),
            })
            .collect::<Vec<_>>();
        out.push(PlaceView {
            location: id.to_string(),
            name: loc.name.clone(),
            unit: loc.unit.to_string(),
            kind: loc.kind.to_string(),
            alone: two_person && inside.len() == 1,
            inside,
            two_person,
            roster: place.roster.len(),
            last_event_at: presence.last_event_at.map(|t| zone.show(t)),
            count_due: presence.count_due.as_ref().map(|d| {
                let by = state
                    .incident_rules
                    .0
                    .key_count_within_h()
                    .map(|h| format!(" by {}", zone.show(d.since + time::Duration::hours(i64::from(h)))));
                let cause = if d.why == "overdue" { "kept past its return by" } else { "to" };
                format!("a full count{}: key {} {cause} badge {} at {}", by.unwrap_or_default(), d.serial, d.badge, zone.show(d.since))
            }),
        });
    }
    out
}

#[derive(Clone, Debug, Serialize)]
pub struct RosterRow {
    pub badge: String,
    pub name: String,
    pub role: String,
    pub hours: String,
    pub granted_by: String,
    pub granted_at: String,
    pub reason: String,
    pub inside_since: Option<String>,
}

/// A place's roster.
pub fn roster(site: &Site, location: &LocationId) -> Result<Vec<RosterRow>> {
    let state = site.state();
    let loc = state.locations.get(location).ok_or_else(|| Rejection::NotFound { what: "location", id: location.to_string() })?;
    if !qm_core::access::controlled(loc.kind) {
        return Err(AppError::Rejected(Rejection::Refused {
            rule: "access.place",
            message: format!("{location} is a {}; rosters are kept for armories, depots and magazines", loc.kind),
        }));
    }
    let zone = crate::zone::SiteZone::of(state);
    let place = state.access.get(location).cloned().unwrap_or_default();
    let presence = state.presence.get(location).cloned().unwrap_or_default();
    Ok(place
        .roster
        .iter()
        .map(|(b, e)| RosterRow {
            badge: b.to_string(),
            name: state.people.get(b).map(|p| p.name.clone()).unwrap_or_default(),
            role: e.role.to_string(),
            hours: e.hours.to_string(),
            granted_by: e.granted_by.to_string(),
            granted_at: zone.show(e.granted_at),
            reason: e.reason.clone(),
            inside_since: presence.inside.get(b).map(|t| zone.show(*t)),
        })
        .collect())
}

/// The bounds of a local day in the site's zone (`date`, default the day of `now`), to the millisecond.
pub fn day_bounds(site: &Site, date: Option<time::Date>, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let offset = crate::zone::SiteZone::of(site.state()).at(now).offset;
    let day = date.unwrap_or_else(|| now.to_offset(offset).date());
    let from = day.midnight().assume_offset(offset);
    (from, from + time::Duration::days(1) - time::Duration::milliseconds(1))
}

/// One line of a place's door log: what the source reported and how the rules judged it.
#[derive(Clone, Debug, Serialize)]
pub struct LogRow {
    pub at: String,
    pub source: String,
    pub event_id: String,
    pub door: String,
    /// As judged (a terminal's refused request is `denied`), or as reported for a door closing.
    pub kind: String,
    pub badge: Option<String>,
    pub name: Option<String>,
    pub card: Option<String>,
    pub reason: String,
    pub findings: Vec<String>,
    pub seq: u64,
}

/// The door events of a place (or of doors mapped to no place: `None`) in a time range, newest
/// first, each with the rules' judgment read from the entry that covers it.
pub fn log(site: &Site, location: Option<&LocationId>, since: OffsetDateTime, until: OffsetDateTime, limit: usize) -> Result<Vec<LogRow>> {
    let state = site.state();
    if let Some(l) = location {
        if !state.locations.contains_key(l) {
            return Err(Rejection::NotFound { what: "location", id: l.to_string() }.into());
        }
    }
    let q = DoorQuery { location: location.map(|l| l.to_string()), from_ms: ms(since), to_ms: ms(until), limit };
    let rows = site.store().door_events(&q)?;
    let mut judged: HashMap<u64, BTreeMap<String, Passage>> = HashMap::new();
    for seq in rows.iter().map(|r| r.digest_seq).collect::<std::collections::BTreeSet<_>>() {
        let entries = site.store().read_entries(seq, 1)?;
        let passages = entries.first().map(|e| crate::decode(&e.bytes)).transpose().map_err(AppError::Internal)?;
        let map = match passages.map(|e| e.event) {
            Some(Event::DoorEvents { passages, .. }) => passages.into_iter().map(|p| (p.id.clone(), p)).collect(),
            _ => BTreeMap::new(),
        };
        judged.insert(seq, map);
    }
    let zone = crate::zone::SiteZone::of(state);
    Ok(rows
        .into_iter()
        .map(|r| {
            let p = judged.get(&r.digest_seq).and_then(|m| m.get(&r.event_id));
            let badge = r.badge.clone();
            LogRow {
                at: zone.show(from_ms(r.at_ms)),
                source: r.source,
                event_id: r.event_id,
                door: r.door,
                kind: p.map_or(r.kind, |p| p.kind.as_str().to_string()),
                name: badge.as_ref().and_then(|b| Badge::parse(b).ok()).and_then(|b| state.people.get(&b)).map(|x| x.name.clone()),
                badge,
                card: r.card,
                reason: p.map(|p| p.reason.clone()).unwrap_or_default(),
                findings: p.map(|p| p.findings.iter().map(|f| f.as_str().to_string()).collect()).unwrap_or_default(),
                seq: r.digest_seq,
            }
        })
        .collect())
}

impl Site {
    /// The access alerts the site's clock raises now (`Site::escalate_due`): one request per place
    /// where someone is alone too long under a two-person rule or has stayed too long.
    pub(crate) fn access_alerts(&self, now: OffsetDateTime) -> Result<Vec<Request>> {
        let site = Badge::parse(qm_core::incidents::SITE_ACTOR).map_err(|e| AppError::Internal(e.to_string()))?;
        let state = self.state();
        let mut due: BTreeMap<LocationId, Vec<String>> = BTreeMap::new();
        for l in state.presence.iter().filter(|(_, p)| !p.inside.is_empty()).map(|(l, _)| l) {
            for (k, _, since, _) in qm_core::access::alerts_due(state, l, now) {
                due.entry(l.clone()).or_default().push(format!("{k}@{}", since.unix_timestamp()));
            }
        }
        for (l, k, _, since, _) in qm_core::access::key_alerts_due(state, now) {
            due.entry(l).or_default().push(format!("{k}@{}", since.unix_timestamp()));
        }
        Ok(due
            .into_iter()
            .map(|(l, keys)| {
                let key = format!("alert-{l}-{}", keys.join(","));
                Request::new(site.clone(), Command::RecordAccessAlerts { location: l }, key, now)
            })
            .collect())
    }
}

/// The site's access-control systems that post door events (a TOML file, docs/access.md): per
/// system its Standard Webhooks secret, the timestamp tolerance, and which of its door ids is which
/// place and which of its card ids is which badge. Doors and cards it does not map are kept and shown.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSystems {
    #[serde(default)]
    pub systems: BTreeMap<String, AccessSystem>,
}

#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSystem {
    /// `whsec_` and base64; or `secret_file`.
    pub secret: Option<String>,
    pub secret_file: Option<std::path::PathBuf>,
    /// How far a message's `webhook-timestamp` may be from now, in seconds (default 300).
    #[serde(default = "tolerance_default")]
    pub tolerance_s: i64,
    #[serde(default)]
    pub doors: BTreeMap<String, String>,
    #[serde(default)]
    pub cards: BTreeMap<String, String>,
    /// The key bytes, read once when the file is loaded.
    #[serde(skip)]
    pub key: Vec<u8>,
}

impl std::fmt::Debug for AccessSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessSystem").field("doors", &self.doors).field("cards", &self.cards).field("key", &"<redacted>").finish()
    }
}

fn tolerance_default() -> i64 {
    300
}

impl AccessSystems {
    /// Parses and checks a file against the books: doors map to armories, depots or magazines,
    /// cards to badges, each system has one secret. A wrong file is refused with file, key and reason.
    pub fn from_toml_str(text: &str, file: &str, state: &qm_core::State) -> std::result::Result<AccessSystems, String> {
        let mut c: AccessSystems = toml::from_str(text).map_err(|e| format!("{file}: {}", e.to_string().trim()))?;
        for (name, s) in c.systems.iter_mut() {
            if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                return Err(format!("{file}: key systems.{name}: a system's name has letters, digits, '-' or '_'"));
            }
            let secret = match (&s.secret, &s.secret_file) {
                (Some(x), None) => x.clone(),
                (None, Some(p)) => crate::notify::read_secret_file(p, &format!("systems.{name}.secret_file"), file)?,
                _ => return Err(format!("{file}: key systems.{name}: give exactly one of secret and secret_file")),
            };
            s.key = crate::notify::webhook_key(&secret).map_err(|e| format!("{file}: key systems.{name}.secret: {e}"))?;
            if !(1..=3600).contains(&s.tolerance_s) {
                return Err(format!("{file}: key systems.{name}.tolerance_s: {} is not from 1 to 3600 seconds", s.tolerance_s));
            }
            for (door, loc) in &s.doors {
                let ok = LocationId::parse(loc).ok().and_then(|l| state.locations.get(&l).map(|x| qm_core::access::controlled(x.kind)));
                if ok != Some(true) {
                    return Err(format!(
                        "{file}: key systems.{name}.doors.{door}: {loc:?} is not an armory, depot or magazine of these books"
                    ));
                }
            }
            for (card, badge) in &s.cards {
                if Badge::parse(badge).ok().is_none_or(|b| !state.people.contains_key(&b)) {
                    return Err(format!("{file}: key systems.{name}.cards.{card}: no person has badge {badge:?}"));
                }
            }
        }
        Ok(c)
    }

    pub fn load(path: &std::path::Path, state: &qm_core::State) -> Result<AccessSystems> {
        let text = std::fs::read_to_string(path).map_err(|e| AppError::Usage(format!("{}: {e}", path.display())))?;
        let shown = path.display().to_string();
        let c = AccessSystems::from_toml_str(&text, &shown, state).map_err(AppError::Usage)?;
        if c.systems.values().any(|s| s.secret.is_some()) {
            crate::notify::read_secret_file(path, "systems.*.secret", &shown).map_err(AppError::Usage)?;
        }
        Ok(c)
    }
}

/// One event as an access-control system posts it (docs/access.md, "Webhook").
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemEvent {
    pub id: String,
    /// granted, denied, forced, held_open, closed, tamper, duress.
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339.
    pub at: String,
    pub door: String,
    #[serde(default)]
    pub card: Option<String>,
    /// `in` (default) or `out`, for a granted passage.
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl AccessSystem {
    /// A system's events as door inputs: its door and card ids mapped to places and badges (those it
    /// does not map kept as they are), its kinds to ours. The first bad event refuses the batch.
    pub fn inputs(&self, events: &[SystemEvent]) -> std::result::Result<Vec<DoorInput>, String> {
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let n = i + 1;
                let at = OffsetDateTime::parse(&e.at, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| format!("event {n}: at {:?} is not an RFC 3339 time", e.at))?;
                let kind = match (e.kind.as_str(), e.direction.as_deref()) {
                    ("granted", None | Some("in")) => DoorKind::Entry,
                    ("granted", Some("out")) => DoorKind::Exit,
                    ("granted", Some(d)) => return Err(format!("event {n}: direction {d:?} is in or out")),
                    ("denied", _) => DoorKind::Denied,
                    ("forced", _) => DoorKind::Forced,
                    ("held_open", _) => DoorKind::HeldOpen,
                    ("closed", _) => DoorKind::Closed,
                    ("tamper", _) => DoorKind::Tamper,
                    ("duress", _) => DoorKind::Duress,
                    (k, _) => {
                        return Err(format!("event {n}: type {k:?} is one of granted, denied, forced, held_open, closed, tamper, duress"))
                    }
                };
                let location = self.doors.get(&e.door).and_then(|l| LocationId::parse(l).ok());
                let badge = e.card.as_ref().and_then(|c| self.cards.get(c)).and_then(|b| Badge::parse(b).ok());
                let reason = e.reason.clone().unwrap_or_default();
                let (id, door, card) = (e.id.clone(), e.door.clone(), e.card.clone());
                let event = Passage { id, at, door, location, card, badge, kind, reason, findings: vec![] };
                Ok(DoorInput { event, proof: None })
            })
            .collect()
    }
}

/// What the dashboard shows of access control in a subtree: places with someone inside after hours,
/// places with one person alone under a two-person rule, and access incidents not closed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AccessSummary {
    pub after_hours: Vec<(String, String)>,
    pub alone: Vec<(String, String)>,
    pub open_incidents: usize,
}

/// The kinds of incident that are about access.
pub const ACCESS_INCIDENTS: [qm_core::IncidentKind; 6] = {
    use qm_core::IncidentKind::*;
    [UnauthorizedAccess, DoorForced, DoorHeldOpen, Duress, LonePerson, Overstay]
};

pub fn summary(site: &Site, within: &dyn Fn(&qm_core::UnitId) -> bool, now: OffsetDateTime) -> AccessSummary {
    let state = site.state();
    let mut s = AccessSummary::default();
    for p in places(site, Some(within), now) {
        s.after_hours.extend(p.inside.iter().filter(|i| i.after_hours).map(|i| (p.location.clone(), i.badge.clone())));
        if p.alone {
            s.alone.extend(p.inside.iter().map(|i| (p.location.clone(), i.badge.clone())));
        }
    }
    s.open_incidents = state
        .incidents
        .values()
        .filter(|i| i.state != qm_core::IncidentState::Closed && ACCESS_INCIDENTS.contains(&i.kind) && within(&i.unit))
        .count();
    s
}
