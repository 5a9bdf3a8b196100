//! Events: the facts the ledger records. Every projection is a fold over these.

use crate::conditions::{Direction, Measure, Range};
use crate::ids::*;
use crate::model::*;
use crate::policy::PolicyRules;
use crate::quantity::Quantity;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

/// One ledger entry: who did what, when, under which idempotency key.
/// Its canonical JSON encoding is the exact byte string that is hashed into the tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub site: String,
    /// Position in the ledger, from 0.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: Badge,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<Badge>,
    /// The API token the actor acted through, when one was used: a token an administrator issued
    /// for this badge acts without the badge's own credentials, and the entry says so. Absent on
    /// entries made otherwise, and on those written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub idempotency_key: String,
    /// On the first entry of a command's entries: the SHA-256 (hex) of the request the idempotency
    /// key was first given with (who asked, through which token, and the command's fingerprint), so
    /// that the same key from another caller or with another request is refused, never answered with
    /// these entries. Absent on entries written before it existed, and on the others of a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Set when this entry corrects an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<Correction>,
    pub event: Event,
    /// Incidents this entry's event opened by itself under the incident rules (only
    /// `Event::IncidentOpened`, applied after `event`): recorded in the entry that gave rise to
    /// them, not in entries of their own. Absent on most entries, and on those written before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opens: Vec<Event>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    pub seq: u64,
    pub reason: String,
}

/// One line of a movement: a serial item, or a quantity of a lot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    Serial { serial: Serial, item_type: ItemTypeId },
    Lot { lot: LotNo, item_type: ItemTypeId, quantity: Quantity },
}

impl Line {
    pub fn item_type(&self) -> &ItemTypeId {
        match self {
            Line::Serial { item_type, .. } | Line::Lot { item_type, .. } => item_type,
        }
    }
    pub fn quantity(&self) -> Quantity {
        match self {
            Line::Serial { .. } => Quantity::ONE,
            Line::Lot { quantity, .. } => *quantity,
        }
    }
    pub fn label(&self) -> String {
        match self {
            Line::Serial { serial, .. } => format!("serial {serial}"),
            Line::Lot { lot, quantity, .. } => format!("{quantity} of lot {lot}"),
        }
    }
}

/// A place's own storage-condition settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub humidity_pct: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excursion_minutes: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    Pin,
    Password,
    /// A PIN that opens a door terminal as the real one does and silently raises the alarm.
    Duress,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Pin => "pin",
            CredentialKind::Password => "password",
            CredentialKind::Duress => "duress",
        }
    }
}

/// Which of the organization's rule files an adoption replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulesKind {
    IncidentRules,
    SafetyTables,
}

impl RulesKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RulesKind::IncidentRules => "incident_rules",
            RulesKind::SafetyTables => "safety_tables",
        }
    }
    /// As people write it: `incident-rules` (or `incidents`), `safety-tables` (or `tables`).
    pub fn parse(s: &str) -> Result<RulesKind, String> {
        match s.replace('_', "-").as_str() {
            "incident-rules" | "incidents" => Ok(RulesKind::IncidentRules),
            "safety-tables" | "tables" => Ok(RulesKind::SafetyTables),
            other => Err(format!("{other:?} is not a rules file (incident-rules, safety-tables)")),
        }
    }
    pub fn words(self) -> &'static str {
        match self {
            RulesKind::IncidentRules => "incident rules",
            RulesKind::SafetyTables => "safety tables",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    MissingSerial,
    UnexpectedSerial,
    QuantityShort,
    QuantityOver,
    WrongPlace,
}

impl DiscrepancyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyKind::MissingSerial => "missing serial",
            DiscrepancyKind::UnexpectedSerial => "unexpected serial",
            DiscrepancyKind::QuantityShort => "quantity short",
            DiscrepancyKind::QuantityOver => "quantity over",
            DiscrepancyKind::WrongPlace => "found in the wrong place",
        }
    }
}

/// Where a discrepancy was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancySource {
    Count(CountId),
    Transfer(TransferId),
}

/// What a discrepancy is, and the book change that approving it would make.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscrepancyFacts {
    pub kind: DiscrepancyKind,
    pub source: DiscrepancySource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<Serial>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<LotNo>,
    /// None when the count found something the catalog does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_type: Option<ItemTypeId>,
    pub book_account: Option<Account>,
    pub found_account: Option<Account>,
    pub book_quantity: Quantity,
    pub counted_quantity: Quantity,
    /// The books move `from` → `to` by `quantity` if the discrepancy is approved.
    pub adjust_from: Account,
    pub adjust_to: Account,
    pub adjust_quantity: Quantity,
}

/// What changed about a person (`Event::PersonChanged`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PersonChange {
    /// May not sign in, act, witness or be issued anything until restored; what they hold stays theirs.
    Suspended {
        reason: String,
    },
    Restored {
        reason: String,
    },
    /// The roles they hold from now on (all of them).
    Roles {
        roles: Vec<Role>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    SiteInitialized {
        site: String,
        verifier_key: String,
        root_unit: UnitId,
        root_unit_name: String,
    },
    UnitCreated {
        unit: UnitId,
        name: String,
        parent: UnitId,
    },
    /// The site's time zone: times are shown to people in it, and rules about hours and days read it.
    SiteTimeZoneSet {
        zone: String,
    },
    LocationCreated {
        location: LocationId,
        name: String,
        unit: UnitId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<LocationId>,
        kind: LocationKind,
        /// The armorer or keeper who keeps the stock here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keeper: Option<Badge>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        magazine: Option<MagazineLicence>,
    },
    /// Safety settings of a place: condition flags the mixing chart's footnotes may require, and
    /// its own storage-condition band.
    LocationSafetySet {
        location: LocationId,
        flags: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conditions: Option<LocationConditions>,
    },
    /// The storage range an item type needs.
    /// What the mixing chart's footnotes may ask of an item type (its attributes, from the tables').
    ItemTypeAttributesSet {
        item_type: ItemTypeId,
        attributes: Vec<String>,
    },
    ItemTypeStorageSet {
        item_type: ItemTypeId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        temperature_c: Option<Range>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        humidity_pct: Option<Range>,
    },
    /// A digest of a batch of condition readings (kept outside the ledger), so the series is tamper-evident.
    ReadingsRecorded {
        location: LocationId,
        count: u64,
        #[serde(with = "time::serde::rfc3339")]
        first_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        last_at: OffsetDateTime,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        temperature_c: Option<Range>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        humidity_pct: Option<Range>,
        /// SHA-256 (hex) of the batch's readings in their canonical line form (docs/safety.md, "Storage conditions").
        sha256: String,
    },
    /// Conditions at a place stayed out of band longer than allowed: an incident.
    ExcursionStarted {
        excursion: String,
        location: LocationId,
        measure: Measure,
        direction: Direction,
        #[serde(with = "time::serde::rfc3339")]
        started_at: OffsetDateTime,
        limit: f64,
        peak: f64,
        lots_exposed: Vec<LotNo>,
        serials_exposed: u64,
    },
    ExcursionEnded {
        excursion: String,
        #[serde(with = "time::serde::rfc3339")]
        ended_at: OffsetDateTime,
        peak: f64,
    },
    ItemTypeDefined {
        item_type: ItemTypeId,
        name: String,
        kind: ItemKind,
        tracking: Tracking,
        unit_of_measure: String,
        neq_kg_per_unit: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        un_code: Option<String>,
        /// When set, a person must hold this qualification (unexpired) to be issued this type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qualification: Option<String>,
    },
    PersonRegistered {
        badge: Badge,
        name: String,
        unit: UnitId,
        roles: Vec<Role>,
        /// Ledgers written before credentials moved out of the ledger carry the PIN's Argon2id PHC
        /// string here; new entries never do (a `CredentialSet` follows, and the hash is kept in the
        /// store's credentials table). See docs/ledger.md, "Credentials".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin_hash: Option<String>,
    },
    /// A new PIN (counter, witness) or password (web sign-in) was set for a person: by the entry's
    /// actor, at its time. The hash is in the credentials table; old ledgers carry it here.
    CredentialSet {
        badge: Badge,
        kind: CredentialKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hash: Option<String>,
    },
    /// An API token for a device or script, scoped to a unit subtree and a set of operations.
    TokenIssued {
        token: String,
        label: String,
        unit: UnitId,
        operations: Vec<String>,
        /// Whom the token acts as, when not its issuer (the entry's actor).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        acts_as: Option<Badge>,
        /// Old ledgers only: the Argon2id hash of the token's secret (now in the credentials table).
        /// The secret itself is shown once and never stored.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_hash: Option<String>,
    },
    TokenRevoked {
        token: String,
        reason: String,
    },
    /// A sign-in or request that was denied: recorded so that attempts leave a trace.
    AccessDenied {
        who: String,
        operation: String,
        reason: String,
    },
    QualificationGranted {
        badge: Badge,
        qualification: String,
        expires: Date,
    },
    /// A registered person suspended, restored or given other roles, by the entry's actor (an
    /// administrator of their unit). Flows down like `PersonRegistered`.
    PersonChanged {
        badge: Badge,
        change: PersonChange,
    },
    PolicySet {
        unit: UnitId,
        rules: PolicyRules,
    },
    SerialRegistered {
        serial: Serial,
        item_type: ItemTypeId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lot: Option<LotNo>,
    },
    LotRegistered {
        lot: LotNo,
        item_type: ItemTypeId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manufactured: Option<Date>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires: Option<Date>,
    },
    Movement {
        kind: MovementKind,
        from: Account,
        to: Account,
        lines: Vec<Line>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document: Option<String>,
    },
    LotStatusChanged {
        lot: LotNo,
        status: LotStatus,
        reason: String,
        /// The unit whose subtree the decision covers; None: the whole site.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<UnitId>,
    },
    TransferDispatched {
        transfer: TransferId,
        from_unit: UnitId,
        to_unit: UnitId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document: Option<String>,
    },
    TransferReceived {
        transfer: TransferId,
        location: LocationId,
        discrepancies: Vec<DiscrepancyId>,
    },
    CountStarted {
        count: CountId,
        root: LocationId,
        kind: CountKind,
        blind: bool,
        counter: Badge,
    },
    CountRecorded {
        count: CountId,
        location: LocationId,
        serials: Vec<Serial>,
        lots: Vec<(LotNo, Quantity)>,
    },
    DiscrepancyOpened {
        discrepancy: DiscrepancyId,
        facts: DiscrepancyFacts,
    },
    CountClosed {
        count: CountId,
        discrepancies: Vec<DiscrepancyId>,
    },
    DiscrepancyResolved {
        discrepancy: DiscrepancyId,
        /// true: the books were adjusted as the discrepancy proposed; false: explained, no change.
        adjusted: bool,
        note: String,
    },
    /// Something went wrong (docs/incidents.md): opened by hand, or by the events that mean one
    /// (`rule` names the incident rule that opened it). Discovered by the entry's actor.
    IncidentOpened {
        incident: IncidentId,
        kind: crate::model::IncidentKind,
        severity: crate::model::Severity,
        unit: UnitId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<LocationId>,
        objects: IncidentObjects,
        summary: String,
        #[serde(with = "time::serde::rfc3339")]
        discovered_at: OffsetDateTime,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
    },
    /// A step in an incident's life, by the entry's actor: nothing about an incident is edited.
    IncidentUpdated {
        incident: IncidentId,
        action: IncidentAction,
    },
    /// An order from `unit` to its subtree (or the chosen part of it, `applies_to`) for a period,
    /// at a posture level, with measures (docs/directives.md).
    DirectiveIssued {
        directive: DirectiveId,
        unit: UnitId,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        applies_to: Vec<UnitId>,
        title: String,
        text: String,
        posture: String,
        #[serde(with = "time::serde::rfc3339")]
        starts_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        ends_at: OffsetDateTime,
        measures: Vec<crate::directives::Measure>,
    },
    /// A step under a directive, by the entry's actor (or the site): nothing is edited.
    DirectiveUpdated {
        directive: DirectiveId,
        action: DirectiveAction,
    },
    /// A person put on the roster of an armory, depot or magazine (or their role or hours changed),
    /// by someone with the authority to, for a reason (docs/access.md).
    RosterGranted {
        location: LocationId,
        badge: Badge,
        role: Role,
        hours: crate::access::Hours,
        reason: String,
    },
    RosterRevoked {
        location: LocationId,
        badge: Badge,
        reason: String,
    },
    /// A batch of door events from one source (a door terminal, an access-control system): the
    /// digest of all of them as stored outside the ledger, and the passages that matter for
    /// accountability (every kind but a door closing), as the rules judged them.
    DoorEvents {
        source: String,
        count: u64,
        #[serde(with = "time::serde::rfc3339")]
        first_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        last_at: OffsetDateTime,
        /// SHA-256 (hex) of the batch's events in their canonical line form (docs/access.md).
        sha256: String,
        passages: Vec<crate::access::Passage>,
    },
    /// What a higher unit's site decided, received from this site's parent (docs/sites.md, "Down
    /// the tree"): the parent's entry exactly as its ledger holds it (canonical JSON), its place in
    /// that ledger, and its inclusion proof (hex hashes) in the parent's signed checkpoint — so that
    /// this site can prove what it was told and when. The books take a directive issued, extended
    /// or cancelled from it.
    FromParent {
        origin: String,
        seq: u64,
        entry: String,
        proof: Vec<String>,
        checkpoint: String,
    },
    /// The organization's incident rules or safety tables, adopted from a TOML file's text: from this
    /// entry on, the rules read them instead of the built-in ones or a configured file, and the
    /// sites below take them too (docs/sites.md, "Down the tree").
    RulesAdopted {
        rules: RulesKind,
        text: String,
    },
    /// The site's clock found one person alone inside under a two-person rule, or a stay too long
    /// (`alert`: `lone:<badge>` or `overstay:<badge>`).
    AccessAlert {
        location: LocationId,
        alert: String,
        badge: Badge,
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        message: String,
    },
}

/// One step under a directive (`Event::DirectiveUpdated`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum DirectiveAction {
    /// The unit has received and acknowledged it (its officer, badge and PIN).
    Acknowledge { unit: UnitId },
    /// An intermediate unit passes it on to its subtree, with its own instructions and measures
    /// (tightening only).
    Relay {
        unit: UnitId,
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        measures: Vec<crate::directives::Measure>,
    },
    /// The shift briefing: the entry's actor, on duty at `unit`, has read it and answers for the
    /// stock in their care.
    Brief { unit: UnitId },
    /// A review task signed off by the unit's officer, with what the books showed to review.
    SignOff {
        unit: UnitId,
        task: String,
        reviewed: Vec<String>,
        note: String,
        /// Transfers the review raised as discrepancies (`T-3: why`), each an incident in the same decision.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        raised: Vec<String>,
    },
    /// The period is longer (by the issuer or above).
    Extend {
        #[serde(with = "time::serde::rfc3339")]
        ends_at: OffsetDateTime,
        reason: String,
    },
    /// Ended early (by the issuer or above).
    Cancel { reason: String },
    /// A deadline passed unmet, recorded by the site: the acknowledgment or a task (`count#2` …).
    Missed { unit: UnitId, what: String },
}

impl DirectiveAction {
    /// The unit the step is taken for (none for an extension or a cancellation: the issuer's).
    pub fn unit(&self) -> Option<&UnitId> {
        match self {
            DirectiveAction::Acknowledge { unit }
            | DirectiveAction::Relay { unit, .. }
            | DirectiveAction::Brief { unit }
            | DirectiveAction::SignOff { unit, .. }
            | DirectiveAction::Missed { unit, .. } => Some(unit),
            DirectiveAction::Extend { .. } | DirectiveAction::Cancel { .. } => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            DirectiveAction::Acknowledge { .. } => "acknowledge",
            DirectiveAction::Relay { .. } => "relay",
            DirectiveAction::Brief { .. } => "brief",
            DirectiveAction::SignOff { .. } => "sign_off",
            DirectiveAction::Extend { .. } => "extend",
            DirectiveAction::Cancel { .. } => "cancel",
            DirectiveAction::Missed { .. } => "missed",
        }
    }
}

/// What an incident concerns: items, people, discrepancies, and the ledger entries it arose from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentObjects {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serials: Vec<Serial>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lots: Vec<LotNo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub badges: Vec<Badge>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discrepancies: Vec<DiscrepancyId>,
    /// Sequence numbers of the entries that gave rise to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<u64>,
}

/// One step of an incident (`Event::IncidentUpdated`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum IncidentAction {
    /// Someone responsible has seen it: the acknowledgment clock stops.
    Acknowledge,
    /// It is being investigated.
    Investigate,
    Note {
        text: String,
    },
    /// Passed to a unit above (by hand, or because nobody acknowledged it in time).
    Escalate {
        to: UnitId,
        reason: String,
    },
    /// A report an obligation requires was made to the authority: that obligation's clock stops.
    Report {
        obligation: String,
        authority: String,
        reference: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    Close {
        resolution: String,
    },
    Reopen {
        reason: String,
    },
    /// A report an obligation requires was not recorded by its deadline (recorded by the site).
    DeadlineMissed {
        obligation: String,
    },
}

impl IncidentAction {
    pub fn name(&self) -> &'static str {
        match self {
            IncidentAction::Acknowledge => "acknowledge",
            IncidentAction::Investigate => "investigate",
            IncidentAction::Note { .. } => "note",
            IncidentAction::Escalate { .. } => "escalate",
            IncidentAction::Report { .. } => "report",
            IncidentAction::Close { .. } => "close",
            IncidentAction::Reopen { .. } => "reopen",
            IncidentAction::DeadlineMissed { .. } => "deadline_missed",
        }
    }
}

impl Event {
    /// The stable name of the event's type, as in its JSON "type" field.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::SiteInitialized { .. } => "site_initialized",
            Event::UnitCreated { .. } => "unit_created",
            Event::SiteTimeZoneSet { .. } => "site_time_zone_set",
            Event::LocationCreated { .. } => "location_created",
            Event::ItemTypeDefined { .. } => "item_type_defined",
            Event::LocationSafetySet { .. } => "location_safety_set",
            Event::ItemTypeStorageSet { .. } => "item_type_storage_set",
            Event::ItemTypeAttributesSet { .. } => "item_type_attributes_set",
            Event::ReadingsRecorded { .. } => "readings_recorded",
            Event::ExcursionStarted { .. } => "excursion_started",
            Event::ExcursionEnded { .. } => "excursion_ended",
            Event::PersonRegistered { .. } => "person_registered",
            Event::QualificationGranted { .. } => "qualification_granted",
            Event::PersonChanged { .. } => "person_changed",
            Event::CredentialSet { .. } => "credential_set",
            Event::TokenIssued { .. } => "token_issued",
            Event::TokenRevoked { .. } => "token_revoked",
            Event::AccessDenied { .. } => "access_denied",
            Event::PolicySet { .. } => "policy_set",
            Event::SerialRegistered { .. } => "serial_registered",
            Event::LotRegistered { .. } => "lot_registered",
            Event::Movement { .. } => "movement",
            Event::LotStatusChanged { .. } => "lot_status_changed",
            Event::TransferDispatched { .. } => "transfer_dispatched",
            Event::TransferReceived { .. } => "transfer_received",
            Event::CountStarted { .. } => "count_started",
            Event::CountRecorded { .. } => "count_recorded",
            Event::DiscrepancyOpened { .. } => "discrepancy_opened",
            Event::CountClosed { .. } => "count_closed",
            Event::DiscrepancyResolved { .. } => "discrepancy_resolved",
            Event::IncidentOpened { .. } => "incident_opened",
            Event::IncidentUpdated { .. } => "incident_updated",
            Event::DirectiveIssued { .. } => "directive_issued",
            Event::DirectiveUpdated { .. } => "directive_updated",
            Event::RosterGranted { .. } => "roster_granted",
            Event::RosterRevoked { .. } => "roster_revoked",
            Event::DoorEvents { .. } => "door_events",
            Event::AccessAlert { .. } => "access_alert",
            Event::FromParent { .. } => "from_parent",
            Event::RulesAdopted { .. } => "rules_adopted",
        }
    }

    /// Does this event concern the given serial? (for `qm history`)
    pub fn mentions_serial(&self, s: &Serial) -> bool {
        match self {
            Event::SerialRegistered { serial, .. } => serial == s,
            Event::Movement { lines, .. } => lines.iter().any(|l| matches!(l, Line::Serial { serial, .. } if serial == s)),
            Event::CountRecorded { serials, .. } => serials.contains(s),
            Event::DiscrepancyOpened { facts, .. } => facts.serial.as_ref() == Some(s),
            Event::IncidentOpened { objects, .. } => objects.serials.contains(s),
            _ => false,
        }
    }

    /// Does this event concern the given lot? (for `qm history`)
    pub fn mentions_lot(&self, l: &LotNo) -> bool {
        match self {
            Event::LotRegistered { lot, .. } | Event::LotStatusChanged { lot, .. } => lot == l,
            Event::Movement { lines, .. } => lines.iter().any(|x| matches!(x, Line::Lot { lot, .. } if lot == l)),
            Event::CountRecorded { lots, .. } => lots.iter().any(|(x, _)| x == l),
            Event::DiscrepancyOpened { facts, .. } => facts.lot.as_ref() == Some(l),
            Event::IncidentOpened { objects, .. } => objects.lots.contains(l),
            _ => false,
        }
    }
}
