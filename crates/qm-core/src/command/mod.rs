//! Commands: what a user asks for, already parsed into checked types at the edge. The grammars
//! people type or scan (`SERIAL`, `LOT:QTY`, `SERIAL@LOT`, dates, `MIN:MAX`) are parsed once, in
//! `parse.rs`, for the CLI, the API, the web counter and the imports alike.

mod parse;
pub use parse::{parse_date, parse_items, parse_range, parse_receipt, parse_return_line, parse_return_lines, parse_time, ITEMS_MAX};

use crate::event::Envelope;
use crate::ids::*;
use crate::model::*;
use crate::policy::PolicyRules;
use crate::quantity::Quantity;
use time::Date;

/// An item named in a command: a serial, or a quantity of a lot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ItemRef {
    Serial(Serial),
    Lot { lot: LotNo, quantity: Quantity },
}

/// Items of a return that go back to a place of their own.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReturnTo {
    pub to: LocationId,
    pub items: Vec<ItemRef>,
}

impl Command {
    /// A return of every item to one place.
    pub fn return_to(from: Badge, to: LocationId, items: Vec<ItemRef>) -> Command {
        Command::Return { from, to, items, elsewhere: vec![] }
    }

    /// A return's groups, each place with the items going back to it; none for another command.
    pub fn return_groups(&self) -> Vec<(&LocationId, &[ItemRef])> {
        match self {
            Command::Return { to, items, elsewhere, .. } => return_groups(to, items, elsewhere).collect(),
            _ => vec![],
        }
    }
}

/// The groups of a return: `to` with `items` first, then each of `elsewhere`.
pub fn return_groups<'a>(
    to: &'a LocationId,
    items: &'a [ItemRef],
    elsewhere: &'a [ReturnTo],
) -> impl Iterator<Item = (&'a LocationId, &'a [ItemRef])> {
    std::iter::once((to, items)).chain(elsewhere.iter().map(|e| (&e.to, e.items.as_slice())))
}

/// An item as typed: `SERIAL` or `LOT:QUANTITY` (what [`ItemRef::parse`] reads).
impl std::fmt::Display for ItemRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemRef::Serial(s) => write!(f, "{s}"),
            ItemRef::Lot { lot, quantity } => write!(f, "{lot}:{quantity}"),
        }
    }
}

/// One line of a receipt, which may bring a new serial or lot onto the books.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReceiptLine {
    pub item_type: ItemTypeId,
    pub serial: Option<Serial>,
    pub lot: Option<LotNo>,
    pub quantity: Quantity,
    pub manufactured: Option<Date>,
    pub expires: Option<Date>,
}

/// Serialized only to fingerprint a request (`Command::fingerprint`), never stored as such.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Command {
    CreateUnit {
        unit: UnitId,
        name: String,
        parent: UnitId,
    },
    CreateLocation {
        location: LocationId,
        name: String,
        unit: UnitId,
        parent: Option<LocationId>,
        kind: LocationKind,
        keeper: Option<Badge>,
        magazine: Option<MagazineLicence>,
    },
    DefineItemType {
        item_type: ItemTypeId,
        name: String,
        kind: ItemKind,
        tracking: Tracking,
        unit_of_measure: String,
        neq_kg_per_unit: f64,
        un_code: Option<String>,
        qualification: Option<String>,
    },
    /// `pin_hash` is an Argon2id PHC string made at the edge; the core never sees a PIN.
    RegisterPerson {
        badge: Badge,
        name: String,
        unit: UnitId,
        roles: Vec<Role>,
        pin_hash: String,
    },
    SetLocationSafety {
        location: LocationId,
        flags: Vec<String>,
        conditions: Option<crate::event::LocationConditions>,
    },
    /// The site's time zone (a tz database name such as `Europe/Paris`), by an administrator at the root.
    SetTimeZone {
        zone: String,
    },
    /// An incident opened by hand (docs/incidents.md); `discovered_at` defaults to now.
    OpenIncident {
        kind: IncidentKind,
        severity: Severity,
        unit: UnitId,
        location: Option<LocationId>,
        objects: crate::event::IncidentObjects,
        summary: String,
        discovered_at: Option<time::OffsetDateTime>,
    },
    /// The site itself escalates an incident nobody acknowledged in time one unit up (actor
    /// [`crate::incidents::SITE_ACTOR`] only; the server's clock asks for it, `Site::escalate_due`).
    EscalateOverdue {
        incident: IncidentId,
    },
    /// The site records that a report an obligation requires was not made by its deadline (actor
    /// [`crate::incidents::SITE_ACTOR`] only).
    RecordMissedDeadline {
        incident: IncidentId,
        obligation: String,
    },
    /// A directive issued at `unit` for its subtree (or the parts named in `applies_to`);
    /// `starts_at` defaults to now (docs/directives.md).
    IssueDirective {
        unit: UnitId,
        applies_to: Vec<UnitId>,
        title: String,
        text: String,
        posture: String,
        starts_at: Option<time::OffsetDateTime>,
        ends_at: time::OffsetDateTime,
        measures: Vec<crate::directives::Measure>,
    },
    /// A step under a directive: acknowledge, relay, brief, sign off (the reviewed list is taken
    /// from the books when deciding), extend, cancel.
    UpdateDirective {
        directive: DirectiveId,
        action: crate::event::DirectiveAction,
    },
    /// The site records an entry of its parent's ledger that concerns it (actor
    /// [`crate::incidents::SITE_ACTOR`] only; the application checks the parent's signature and the
    /// inclusion proof before): `Event::FromParent`.
    ReceiveFromParent {
        origin: String,
        seq: u64,
        entry: String,
        proof: Vec<String>,
        checkpoint: String,
    },
    /// The site records a directive's deadline passed unmet for a unit (actor
    /// [`crate::incidents::SITE_ACTOR`] only; `Site::escalate_due`).
    RecordDirectiveMissed {
        directive: DirectiveId,
        unit: UnitId,
        what: String,
    },
    /// The site opens an incident about what `badge` has held past the rules' `after_h` and not yet
    /// raised (actor [`crate::incidents::SITE_ACTOR`] only; `Site::escalate_due`).
    RecordOverdueReturn {
        badge: Badge,
    },
    /// A step in an incident's life: acknowledge, investigate, note, escalate, report, close, reopen.
    UpdateIncident {
        incident: IncidentId,
        action: crate::event::IncidentAction,
    },
    /// The attributes the mixing chart's footnotes are about (detonator, firework, substance,
    /// special_handling in the shipped tables): replaces those the item type had.
    SetItemTypeAttributes {
        item_type: ItemTypeId,
        attributes: Vec<String>,
    },
    SetItemTypeStorage {
        item_type: ItemTypeId,
        temperature_c: Option<crate::conditions::Range>,
        humidity_pct: Option<crate::conditions::Range>,
    },
    /// New readings for one place, with the recent window of stored readings before them (read by the
    /// edge) so that excursions spanning batches are found; `sha256` is the digest of the new readings.
    RecordReadings {
        location: LocationId,
        readings: Vec<crate::conditions::Reading>,
        window: Vec<crate::conditions::Reading>,
        sha256: String,
    },
    /// A new PIN or password (hashed at the edge). A person may change their own; an administrator anyone's in their subtree.
    SetCredential {
        badge: Badge,
        kind: crate::event::CredentialKind,
        hash: String,
    },
    /// `secret_hash` is made at the edge; the secret is shown once to the administrator.
    /// An API token acting as `acts_as` (a person, or a device registered as staff with the roles
    /// it needs), else as its issuer; narrowed to `unit` and `operations`.
    IssueToken {
        token: String,
        label: String,
        unit: UnitId,
        operations: Vec<String>,
        secret_hash: String,
        /// Left out of the fingerprint when empty, so a plain token's fingerprint is what it was.
        #[serde(skip_serializing_if = "Option::is_none")]
        acts_as: Option<Badge>,
    },
    RevokeToken {
        token: String,
        reason: String,
    },
    GrantQualification {
        badge: Badge,
        qualification: String,
        expires: Date,
    },
    /// Suspend, restore or change the roles of a registered person.
    ChangePerson {
        badge: Badge,
        change: crate::event::PersonChange,
    },
    SetPolicy {
        unit: UnitId,
        rules: PolicyRules,
    },
    /// The organization's incident rules or safety tables, from a TOML file's text (at the root).
    AdoptRules {
        rules: crate::event::RulesKind,
        text: String,
    },
    Receive {
        to: LocationId,
        from: String,
        document: String,
        lines: Vec<ReceiptLine>,
    },
    /// `from` is needed for lots; serials are taken from wherever they are racked.
    Issue {
        to: Badge,
        from: Option<LocationId>,
        items: Vec<ItemRef>,
    },
    /// Items a person gives back: `items` to `to`, and each group in `elsewhere` to its own place
    /// (the counter sends each serial back to its rack and each lot to its store, in one entry).
    Return {
        from: Badge,
        to: LocationId,
        items: Vec<ItemRef>,
        /// Left out of the fingerprint when empty, so a plain return's fingerprint is what it was.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        elsewhere: Vec<ReturnTo>,
    },
    Move {
        from: LocationId,
        to: LocationId,
        items: Vec<ItemRef>,
    },
    Dispatch {
        from: LocationId,
        to_unit: UnitId,
        items: Vec<ItemRef>,
        document: Option<String>,
    },
    ReceiveTransfer {
        transfer: TransferId,
        to: LocationId,
        received: Vec<ItemRef>,
    },
    Expend {
        from: Account,
        items: Vec<ItemRef>,
        document: String,
    },
    Destroy {
        from: LocationId,
        items: Vec<ItemRef>,
        document: String,
    },
    ReportLost {
        from: Account,
        items: Vec<ItemRef>,
        document: Option<String>,
    },
    Recover {
        to: LocationId,
        items: Vec<ItemRef>,
        document: Option<String>,
    },
    /// Decided at `unit` (default: the actor's unit), it applies to the lot wherever it is held in that subtree.
    SetLotStatus {
        lot: LotNo,
        status: LotStatus,
        reason: String,
        unit: Option<UnitId>,
    },
    StartCount {
        root: LocationId,
        kind: CountKind,
        blind: bool,
    },
    RecordCount {
        count: CountId,
        location: LocationId,
        serials: Vec<Serial>,
        lots: Vec<(LotNo, Quantity)>,
    },
    CloseCount {
        count: CountId,
    },
    /// `item_type` is needed only to approve a find the catalog did not know.
    ResolveDiscrepancy {
        discrepancy: DiscrepancyId,
        approve: bool,
        note: String,
        item_type: Option<ItemTypeId>,
    },
    /// Puts a person on the roster of an armory, depot or magazine, or changes their role or hours.
    GrantAccess {
        location: LocationId,
        badge: Badge,
        role: Role,
        hours: crate::access::Hours,
        reason: String,
    },
    RevokeAccess {
        location: LocationId,
        badge: Badge,
        reason: String,
    },
    /// A batch of door events from one source, already mapped to places and badges at the edge
    /// (actor [`crate::incidents::SITE_ACTOR`] only: the edge authenticated the source); `sha256`
    /// is the digest of the whole batch as stored outside the ledger.
    RecordDoorEvents {
        source: String,
        events: Vec<crate::access::DoorInput>,
        sha256: String,
    },
    /// The site raises the alerts its clock finds at a place (actor [`crate::incidents::SITE_ACTOR`] only).
    RecordAccessAlerts {
        location: LocationId,
    },
    /// The app looks up the entry to correct and passes it in, so the core stays free of I/O.
    Correct {
        original: Box<Envelope>,
        reason: String,
    },
}

impl Command {
    /// The command as an idempotency key's binding sees it (`qm_app`'s request digest): the salted
    /// hashes made at the edge (new on every try) and what the edge read from the books (a readings
    /// window) left out, so that a retry of the same request matches and a different request does not.
    pub fn fingerprint(&self) -> Command {
        if let Command::RecordDoorEvents { source, sha256, .. } = self {
            // Up to 500 events, stood for by their digest (every stored field of each, in order).
            return Command::RecordDoorEvents { source: source.clone(), events: vec![], sha256: sha256.clone() };
        }
        let mut c = self.clone();
        match &mut c {
            Command::RegisterPerson { pin_hash: h, .. }
            | Command::SetCredential { hash: h, .. }
            | Command::IssueToken { secret_hash: h, .. } => h.clear(),
            Command::RecordReadings { window, .. } => window.clear(),
            _ => {}
        }
        c
    }

    /// The stable name of the operation, as used in docs/permissions.md and the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateUnit { .. } => "create_unit",
            Command::CreateLocation { .. } => "create_location",
            Command::DefineItemType { .. } => "define_item_type",
            Command::RegisterPerson { .. } => "register_person",
            Command::GrantQualification { .. } => "grant_qualification",
            Command::ChangePerson { .. } => "change_person",
            Command::SetCredential { .. } => "set_credential",
            Command::SetLocationSafety { .. } => "set_location_safety",
            Command::SetItemTypeStorage { .. } => "set_item_type_storage",
            Command::SetItemTypeAttributes { .. } => "set_item_type_attributes",
            Command::SetTimeZone { .. } => "set_time_zone",
            Command::RecordReadings { .. } => "record_readings",
            Command::IssueToken { .. } => "issue_token",
            Command::RevokeToken { .. } => "revoke_token",
            Command::SetPolicy { .. } => "set_policy",
            Command::AdoptRules { .. } => "adopt_rules",
            Command::Receive { .. } => "receive",
            Command::Issue { .. } => "issue",
            Command::Return { .. } => "return",
            Command::Move { .. } => "move",
            Command::Dispatch { .. } => "dispatch",
            Command::ReceiveTransfer { .. } => "receive_transfer",
            Command::Expend { .. } => "expend",
            Command::Destroy { .. } => "destroy",
            Command::ReportLost { .. } => "report_lost",
            Command::Recover { .. } => "recover",
            Command::SetLotStatus { .. } => "set_lot_status",
            Command::StartCount { .. } => "start_count",
            Command::RecordCount { .. } => "record_count",
            Command::CloseCount { .. } => "close_count",
            Command::ResolveDiscrepancy { .. } => "resolve_discrepancy",
            Command::Correct { .. } => "correct",
            Command::GrantAccess { .. } => "grant_access",
            Command::RevokeAccess { .. } => "revoke_access",
            Command::RecordDoorEvents { .. } => "record_door_events",
            Command::RecordAccessAlerts { .. } => "record_access_alerts",
            Command::OpenIncident { .. } => "open_incident",
            Command::EscalateOverdue { .. } => "escalate_overdue_incident",
            Command::RecordMissedDeadline { .. } => "record_missed_deadline",
            Command::RecordOverdueReturn { .. } => "record_overdue_return",
            Command::IssueDirective { .. } => "issue_directive",
            Command::ReceiveFromParent { .. } => "receive_from_parent",
            Command::UpdateDirective { action, .. } => match action {
                crate::event::DirectiveAction::Brief { .. } => "brief",
                _ => "update_directive",
            },
            Command::RecordDirectiveMissed { .. } => "record_directive_missed",
            Command::UpdateIncident { action, .. } => match action {
                crate::event::IncidentAction::Acknowledge => "acknowledge_incident",
                crate::event::IncidentAction::Investigate => "investigate_incident",
                crate::event::IncidentAction::Note { .. } => "note_incident",
                crate::event::IncidentAction::Escalate { .. } => "escalate_incident",
                crate::event::IncidentAction::Report { .. } => "report_incident",
                crate::event::IncidentAction::Close { .. } => "close_incident",
                crate::event::IncidentAction::Reopen { .. } => "reopen_incident",
                crate::event::IncidentAction::DeadlineMissed { .. } => "record_missed_deadline",
            },
        }
    }
}
