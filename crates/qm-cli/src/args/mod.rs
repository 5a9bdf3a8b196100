//! Command-line arguments: parsing only checks shapes; the rules live in the core.

use clap::{Args, Parser, Subcommand};

mod duty;
pub use duty::*;

#[derive(Parser, Debug)]
#[command(name = "qm", version, about = "Quartermaster: the system of record for weapons, ammunition and explosives")]
pub struct Cli {
    /// The database: a SQLite file, or a postgres:// (postgresql://) URL of an existing database.
    #[arg(long, global = true, env = "QM_DB", default_value = "quartermaster.db")]
    pub db: String,
    /// The site's signing key (default: the database path + ".key"; required when --db is a URL).
    #[arg(long, global = true, env = "QM_KEY")]
    pub key: Option<String>,
    /// Safety tables (hazard divisions, mixing chart, quantity-distance) replacing the shipped defaults.
    #[arg(long, global = true, env = "QM_SAFETY_TABLES")]
    pub safety_tables: Option<String>,
    /// Incident rules (severities, what opens an incident, reporting obligations) replacing the shipped ones.
    #[arg(long, global = true, env = "QM_INCIDENT_RULES")]
    pub incident_rules: Option<String>,
    /// Posture levels directives are issued at (docs/directives.md), replacing the shipped ones.
    #[arg(long, global = true, env = "QM_POSTURE_LEVELS")]
    pub posture_levels: Option<String>,
    /// Notification rules, channels and addresses (docs/notifications.md), for `qm serve` and `qm notifications`.
    #[arg(long, global = true, env = "QM_NOTIFICATIONS")]
    pub notifications: Option<String>,
    /// The access-control systems that post door events: secrets, door and card mappings
    /// (docs/access.md), for `qm serve`.
    #[arg(long, global = true, env = "QM_ACCESS")]
    pub access: Option<String>,
    /// The child sites this site witnesses: origins, checkpoint keys and units (docs/sites.md), for `qm serve`.
    #[arg(long, global = true, env = "QM_CHILDREN")]
    pub children: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub who: Who,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Who acts, who witnesses; PINs come from the environment so they stay out of shell history.
#[derive(Args, Debug, Clone)]
pub struct Who {
    /// Badge of the person acting.
    #[arg(long, global = true, env = "QM_ACTOR")]
    pub actor: Option<String>,
    /// PIN of the person acting (prefer the QM_PIN environment variable).
    #[arg(long, global = true, env = "QM_PIN", hide_env_values = true)]
    pub pin: Option<String>,
    /// Badge of the witness, when two-person integrity applies.
    #[arg(long, global = true)]
    pub witness: Option<String>,
    /// PIN of the witness (prefer QM_WITNESS_PIN).
    #[arg(long, global = true, env = "QM_WITNESS_PIN", hide_env_values = true)]
    pub witness_pin: Option<String>,
    /// Idempotency key: a retried command with the same key appends nothing. Default: a new random key.
    #[arg(long, global = true)]
    pub idempotency_key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a database and the site's signing key (owner-only); refuses to overwrite either.
    Init {
        #[arg(long)]
        site: String,
        #[arg(long, default_value = "HQ")]
        root_unit: String,
        #[arg(long, default_value = "Headquarters")]
        root_unit_name: String,
        #[arg(long, default_value = "0001")]
        admin_badge: String,
        #[arg(long, default_value = "Administrator")]
        admin_name: String,
        /// The first administrator's PIN (prefer QM_ADMIN_PIN).
        #[arg(long, env = "QM_ADMIN_PIN", hide_env_values = true)]
        admin_pin: String,
    },
    /// Run the server: JSON API and web UI (see docs/server.md).
    Serve {
        /// Address to listen on (default 127.0.0.1:8080, or QM_ADDR, or the config file's `addr`).
        #[arg(long)]
        addr: Option<String>,
        /// A TOML configuration file.
        #[arg(long)]
        config: Option<String>,
        /// Create (or reopen) demo-data/serve-demo.db with a demo organization and print its sign-ins.
        #[arg(long)]
        demo: bool,
    },
    /// Create a demo database, run a realistic day, print stock, a count reconciliation and verify.
    Demo {
        /// Where to write the demo database (a file, replaced if it is a previous demo; or an empty
        /// PostgreSQL database's URL, with --key).
        #[arg(long, default_value = "demo-data/demo.db")]
        out: String,
    },
    /// Units of the organization.
    #[command(subcommand)]
    Unit(UnitCmd),
    /// Locations inside units.
    #[command(subcommand)]
    Location(LocationCmd),
    /// The catalog.
    #[command(subcommand, name = "item-type")]
    ItemType(ItemTypeCmd),
    /// Staff.
    #[command(subcommand)]
    Person(PersonCmd),
    /// Policy a unit sets for its subtree (tightens, never relaxes).
    Policy(PolicyArgs),
    /// The organization's incident rules and safety tables, adopted in the ledger: in force here
    /// and at every site below (docs/sites.md, "Down the tree").
    #[command(subcommand)]
    Rules(RulesCmd),
    /// Import a CSV file (item-types, people, serials, lots): all rows or none.
    Import { kind: String, file: String },
    /// Receive stock from a supplier or outside unit.
    Receive {
        #[arg(long)]
        to: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        document: String,
        #[arg(long)]
        item_type: String,
        /// For lots: manufacture date.
        #[arg(long)]
        manufactured: Option<String>,
        /// For lots: expiry or next inspection date.
        #[arg(long)]
        expires: Option<String>,
        /// Items: SERIAL, LOT:QTY, or SERIAL@LOT for items tracked by both.
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Issue to a person.
    Issue {
        #[arg(long)]
        to: String,
        /// Where lots are drawn from (serials are taken from their rack).
        #[arg(long)]
        from: Option<String>,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Take back from a person.
    Return {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Move within a unit.
    Move {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Transfers between units.
    #[command(subcommand)]
    Transfer(TransferCmd),
    /// Transfers in transit.
    Transfers {
        /// Include received transfers.
        #[arg(long)]
        all: bool,
    },
    /// Expend (fired, used) with a document reference.
    Expend {
        #[command(flatten)]
        from: FromAccount,
        #[arg(long)]
        document: String,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Destroy with a document reference.
    Destroy {
        #[arg(long)]
        from: String,
        #[arg(long)]
        document: String,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Report items lost.
    ReportLoss {
        #[command(flatten)]
        from: FromAccount,
        #[arg(long)]
        document: Option<String>,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Bring lost items back onto the books.
    Recover {
        #[arg(long)]
        to: String,
        #[arg(long)]
        document: Option<String>,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Lots.
    #[command(subcommand)]
    Lot(LotCmd),
    /// API tokens for devices and scripts.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Inventory counts.
    #[command(subcommand)]
    Count(CountCmd),
    /// Incidents, gravest and newest first, with their clocks (docs/incidents.md).
    Incidents {
        /// Only those not closed.
        #[arg(long)]
        open: bool,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        kind: Option<String>,
    },
    /// One incident: open it by hand, show it, or take a step in its life.
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// Directives, newest first (docs/directives.md).
    Directives {
        /// Only those in force now.
        #[arg(long)]
        in_force: bool,
        /// Those issued at this unit or concerning it.
        #[arg(long)]
        unit: Option<String>,
    },
    /// One directive: issue it, relay or acknowledge it for a unit, the shift briefing, a review's
    /// sign-off, extend, cancel, show.
    #[command(subcommand)]
    Directive(DirectiveCmd),
    /// A directive's compliance: per unit acknowledged, relayed, tasks, briefings, incidents, rolled up.
    Compliance {
        directive: String,
        /// As CSV (one line per unit) instead of text.
        #[arg(long)]
        csv: bool,
        /// Only this unit's subtree.
        #[arg(long)]
        unit: Option<String>,
    },
    /// Records, as the site itself, what the clock has made due: incidents nobody acknowledged in
    /// time escalated, reports not made by their deadline, items not returned in time. `qm serve`
    /// does this every 30 s; a site kept from the command line runs it from cron.
    Tick,
    /// Notifications: the outbox of e-mails and webhooks, and checking a notifications file.
    #[command(subcommand)]
    Notifications(NotifyCmd),
    /// Armory access control: rosters, who is inside, a place's door log, the door from the command
    /// line (docs/access.md).
    #[command(subcommand)]
    Access(AccessCmd),
    /// Ask the parent site to witness this site's ledger: its latest checkpoint, with a consistency
    /// proof from what the parent holds, for a cosignature kept here (docs/sites.md).
    Sync {
        /// Without a line to the parent: carry the request and the answer on removable media.
        #[command(subcommand)]
        media: Option<SyncMedia>,
        /// The parent's witness URL (its submission prefix), e.g. https://hq.example/witness.
        #[arg(long, env = "QM_PARENT")]
        parent: Option<String>,
        /// The parent's witness key (`qm witness key` there).
        #[arg(long, env = "QM_PARENT_KEY", global = true)]
        parent_key: Option<String>,
        /// The parent's mirror key (`qm witness key` there): this site's entries are then uploaded
        /// to the parent's mirror after the witness cosigns (C2SP tlog-mirror).
        /// With `sync export`: the entries the mirror lacks go on the media too, and `sync import`
        /// keeps the mirror's cosignature.
        #[arg(long, env = "QM_PARENT_MIRROR_KEY", global = true)]
        parent_mirror_key: Option<String>,
        /// The mirror's URL, when it is not beside the witness's (`…/witness` → `…/mirror`).
        #[arg(long, env = "QM_PARENT_MIRROR")]
        parent_mirror: Option<String>,
        /// The parent's own checkpoint key (`qm verifier-key` there): what it decided for this
        /// site (directives) comes down and is recorded here, each with its proof.
        #[arg(long, env = "QM_PARENT_LOG_KEY")]
        parent_log_key: Option<String>,
    },
    /// This site as the witness of its child sites (docs/sites.md).
    #[command(subcommand)]
    Witness(WitnessCmd),
    /// Correct an entry by a reverse movement that refers to it.
    Correct {
        seq: u64,
        #[arg(long)]
        reason: String,
    },
    /// Balances by unit, location, item type.
    Stock {
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        item_type: Option<String>,
    },
    /// Where a serial is now.
    Where { serial: String },
    /// Every event for a serial or lot, with actor and witness.
    History { item: String },
    /// What a person holds now, and since when.
    Custody { badge: String },
    /// Recent ledger entries.
    Log {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Sign a checkpoint of the ledger with the site key.
    Checkpoint,
    /// List stored checkpoints.
    Checkpoints,
    /// Inclusion proof of an entry against the latest checkpoint.
    Prove {
        seq: u64,
        /// Print a C2SP tlog-proof instead (the entry, its inclusion proof, the checkpoint with the
        /// parent's cosignatures): one file an auditor verifies offline (docs/sites.md).
        #[arg(long)]
        tlog_proof: bool,
    },
    /// Consistency proof between two checkpoints.
    Consistency { old: u64, new: u64 },
    /// The signed-note verifier key an auditor uses to check checkpoints.
    VerifierKey,
    /// Re-hash every entry, check checkpoints, replay and compare projections.
    Verify {
        /// Check checkpoints against this verifier key instead of the one recorded at genesis.
        #[arg(long)]
        verifier_key: Option<String>,
        /// Only the cryptographic checks (every entry re-hashed, the tree, every checkpoint's
        /// signature and root); skip replaying the events into fresh books.
        #[arg(long)]
        tree_only: bool,
        /// Fail when entries after the latest signed checkpoint exist (the tamper window is open).
        #[arg(long)]
        require_checkpointed: bool,
    },
    /// Print the permission table (role × operation).
    Permissions,
    /// Show the site's time zone, or set it (a tz database name such as Europe/Paris; administrators at
    /// the root). Times shown to people are in it, with its abbreviation.
    TimeZone { zone: Option<String> },
    /// Benchmark: a synthetic organization, a standard mix, figures beside in-run baselines.
    Bench {
        /// Where to build it: a new SQLite file, or a postgres:// URL of an empty database (default: a temporary file).
        #[arg(long = "target")]
        target: Option<String>,
        #[arg(long, default_value_t = 100)]
        units: usize,
        #[arg(long, default_value_t = 200_000)]
        serials: usize,
        #[arg(long, default_value_t = 20_000)]
        lots: usize,
        #[arg(long, default_value_t = 5_000)]
        staff: usize,
        #[arg(long, default_value_t = 100_000)]
        movements: usize,
    },
    /// Online backup of the ledger into a new SQLite file (verified); the signing key is not included,
    /// nor the credentials (PIN, password and token hashes) unless --with-credentials.
    Backup {
        file: String,
        /// Copy the credentials too (the file is then written owner-only): a restore keeps sign-ins.
        #[arg(long)]
        with_credentials: bool,
    },
    /// Restore a backup into the database given by --db (which must not exist yet).
    Restore { file: String },
    /// A load of issues and returns on a demo site, printing each acknowledged idempotency key:
    /// used by the crash tests (kill it at any moment; every printed key must survive).
    #[command(hide = true)]
    Load {
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 1_000_000)]
        batches: usize,
        /// Prefix of the idempotency keys, so that restarts do not reuse them.
        #[arg(long)]
        run: String,
    },
    /// Quantity-distance: required distances for a hazard division and NEQ, or the NEQ that distances allow.
    Qd {
        /// Hazard division, e.g. 1.1.
        #[arg(long)]
        hd: String,
        /// NEQ in kg: print the required distance to every kind of exposed site.
        #[arg(long, conflicts_with = "distance", required_unless_present = "distance")]
        neq_kg: Option<f64>,
        /// KIND=METRES (repeatable): print the largest NEQ each distance allows.
        #[arg(long)]
        distance: Vec<String>,
    },
    /// Magazines and depots: NEQ by hazard division against licence and quantity-distance.
    Magazines {
        #[arg(long)]
        unit: Option<String>,
    },
    /// Lots and where they are held: expiring, expired or suspended.
    Lots {
        /// e.g. 90d: lots whose expiry or inspection date falls within that many days (or is past).
        #[arg(long)]
        expiring: Option<String>,
        #[arg(long)]
        expired: bool,
        #[arg(long)]
        suspended: bool,
        #[arg(long)]
        unit: Option<String>,
    },
    /// Storage-condition readings, excursions and charts.
    #[command(subcommand)]
    Conditions(ConditionsCmd),
    /// Reports.
    #[command(subcommand)]
    Report(ReportCmd),
}

#[derive(Args, Debug)]
pub struct FromAccount {
    /// A location.
    #[arg(long, conflicts_with = "from_person", required_unless_present = "from_person")]
    pub from: Option<String>,
    /// A person's custody.
    #[arg(long)]
    pub from_person: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum UnitCmd {
    Add {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        parent: String,
    },
    /// The unit tree.
    List,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing would only add noise
pub enum LocationCmd {
    Add {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        kind: String,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        keeper: Option<String>,
        /// Magazines: licensed NEQ limit in kg.
        #[arg(long)]
        neq_limit_kg: Option<f64>,
        /// Magazines: hazard divisions allowed, e.g. 1.1,1.4.
        #[arg(long, value_delimiter = ',')]
        hazard_divisions: Vec<String>,
        /// Magazines: compatibility groups allowed, e.g. D,S.
        #[arg(long, value_delimiter = ',')]
        compatibility_groups: Vec<String>,
        /// Magazines: distance to an exposed site, KIND=METRES (repeatable).
        #[arg(long)]
        distance: Vec<String>,
    },
    List,
    /// Safety settings: condition flags for the mixing chart's footnotes, and the storage band.
    Safety {
        id: String,
        #[arg(long)]
        flag: Vec<String>,
        /// MIN:MAX in °C.
        #[arg(long)]
        temperature_c: Option<String>,
        /// MIN:MAX in % RH.
        #[arg(long)]
        humidity_pct: Option<String>,
        #[arg(long)]
        excursion_minutes: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ItemTypeCmd {
    Add {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        kind: String,
        #[arg(long)]
        tracking: String,
        #[arg(long, default_value = "each")]
        unit_of_measure: String,
        #[arg(long, default_value_t = 0.0)]
        neq_kg_per_unit: f64,
        #[arg(long)]
        un_code: Option<String>,
        #[arg(long)]
        qualification: Option<String>,
    },
    List,
    /// What the mixing chart's footnotes are about, for an item type (replacing what it had; none
    /// clears): detonator, firework, special_handling, substance in the shipped tables (docs/safety.md).
    Attributes {
        id: String,
        attributes: Vec<String>,
    },
    /// The storage range an item type needs.
    Storage {
        id: String,
        /// MIN:MAX in °C.
        #[arg(long)]
        temperature_c: Option<String>,
        /// MIN:MAX in % RH.
        #[arg(long)]
        humidity_pct: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PersonCmd {
    Add {
        badge: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        unit: String,
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// The new person's PIN (prefer QM_NEW_PIN).
        #[arg(long, env = "QM_NEW_PIN", hide_env_values = true)]
        new_pin: String,
    },
    /// Set a new PIN (QM_NEW_PIN) for a person: your own, or anyone's in your subtree as administrator.
    Pin {
        badge: String,
        #[arg(long, env = "QM_NEW_PIN", hide_env_values = true)]
        new_pin: String,
    },
    /// Set a duress PIN (QM_NEW_PIN) for yourself: at a door terminal it opens the door as your PIN
    /// does and silently raises the alarm (docs/access.md).
    DuressPin {
        badge: String,
        #[arg(long, env = "QM_NEW_PIN", hide_env_values = true)]
        new_pin: String,
    },
    /// Set a web sign-in password (QM_NEW_PASSWORD) for a person.
    Password {
        badge: String,
        #[arg(long, env = "QM_NEW_PASSWORD", hide_env_values = true)]
        new_password: String,
    },
    Qualify {
        badge: String,
        qualification: String,
        #[arg(long)]
        expires: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// Adopt a TOML file (read as such first) as the organization's rules of that kind.
    Adopt {
        /// incident-rules or safety-tables.
        kind: String,
        /// The TOML file (the format of `--incident-rules` or `--safety-tables`).
        file: String,
    },
    /// The rules adopted in the ledger: which, when, from which site, their SHA-256.
    List,
}

#[derive(Args, Debug)]
pub struct PolicyArgs {
    pub unit: String,
    #[arg(long)]
    pub two_person_explosives: bool,
    #[arg(long)]
    pub two_person_all_movements: bool,
    #[arg(long)]
    pub two_person_count_resolution: bool,
    #[arg(long)]
    pub counter_not_keeper: bool,
    #[arg(long)]
    pub counter_not_previous: bool,
    #[arg(long)]
    pub max_issue_quantity: Option<String>,
    /// Nobody alone in an armory, depot or magazine: a second person within --partner-within-min (docs/access.md).
    #[arg(long)]
    pub two_person_entry: bool,
    /// Minutes within which the second person must follow under two-person entry (default 5).
    #[arg(long)]
    pub partner_within_min: Option<u16>,
    /// The longest anyone may stay inside an armory, depot or magazine, in minutes.
    #[arg(long)]
    pub max_inside_min: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum TransferCmd {
    Dispatch {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to_unit: String,
        #[arg(long)]
        document: Option<String>,
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Receive a transfer, with the quantities actually received.
    Receive {
        transfer: String,
        #[arg(long)]
        to: String,
        items: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConditionsCmd {
    /// Record one reading.
    Record {
        location: String,
        #[arg(long)]
        temperature_c: Option<f64>,
        #[arg(long)]
        humidity_pct: Option<f64>,
        /// When it was read (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Import readings from CSV: location,at,temperature_c,humidity_pct.
    Import { file: String },
    /// A place's series, band and excursions; with --svg, a chart.
    Show {
        location: String,
        /// YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        since: String,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        svg: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Daily summary of magazine transactions (27 CFR 555.127).
    Dsmt {
        #[arg(long)]
        magazine: String,
        /// YYYY-MM-DD (UTC day).
        #[arg(long)]
        date: String,
        /// text, csv or json.
        #[arg(long, default_value = "text")]
        format: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Issue a token scoped to a unit subtree and operations; prints the secret once.
    Issue {
        id: String,
        #[arg(long)]
        label: String,
        #[arg(long)]
        unit: String,
        /// Operations the token may perform (see `qm permissions`), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        operations: Vec<String>,
    },
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum LotCmd {
    /// Suspend, reinstate or condemn a lot for a unit's subtree (default: your unit).
    Status {
        lot: String,
        status: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        unit: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CountCmd {
    Start {
        location: String,
        #[arg(long)]
        cycle: bool,
        #[arg(long)]
        blind: bool,
    },
    Record {
        count: String,
        #[arg(long)]
        location: String,
        /// Serials seen and LOT:QTY counted.
        items: Vec<String>,
    },
    Close {
        count: String,
    },
    Show {
        count: String,
    },
    Resolve {
        discrepancy: String,
        /// Approve: the books follow the count.
        #[arg(long, conflicts_with = "explain", required_unless_present = "explain")]
        approve: bool,
        /// Explain: no book change.
        #[arg(long)]
        explain: bool,
        #[arg(long)]
        note: String,
        #[arg(long)]
        item_type: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum WitnessCmd {
    /// This site's witness and mirror keys, for its children's `--parent-key` and
    /// `--parent-mirror-key` (made the first time).
    Key,
    /// A child's request brought on removable media (`qm sync export` there): checked as a push
    /// is; the answer, the cosigned checkpoint, written to ANSWER for the way back.
    Import {
        /// The request file.
        file: String,
        /// Where the answer is written.
        #[arg(long)]
        answer: String,
    },
    /// The child sites witnessed: the latest checkpoint cosigned for each and when, and how much of
    /// each ledger the mirror holds, verified.
    Status,
    /// Signed checkpoints of a child that contradict each other, kept as evidence.
    Evidence,
    /// The children's books as their mirrored ledgers replay them: each site in brief and the stock
    /// of each item type over all sites; with ORIGIN, that site's stock, open incidents, transfers
    /// in transit and directives in force.
    Books {
        /// A child site's origin (its name).
        origin: Option<String>,
    },
    /// A directive at every child site, from their mirrored ledgers: received or not, its units
    /// acknowledged, people briefed.
    Compliance {
        /// The directive, e.g. DIR-3.hq.example.
        directive: String,
    },
    /// Transfers between the child sites, matched from both ledgers: received as sent, with
    /// differences, awaited or overdue.
    Transfers,
}

#[derive(Subcommand, Debug)]
pub enum SyncMedia {
    /// Write what `qm sync` would send (the latest checkpoint, a consistency proof) to FILE.
    Export {
        file: String,
        /// The size the parent holds, when its answer to an earlier import said so (409).
        #[arg(long)]
        parent_held: Option<u64>,
        /// The size the parent's mirror holds, when its answer to an earlier import said so; by
        /// default the size it last cosigned here. Only with --parent-mirror-key.
        #[arg(long)]
        mirrored: Option<u64>,
    },
    /// Keep the parent's answer brought back (`qm witness import --answer` there), once its
    /// cosignature verifies with --parent-key.
    Import { file: String },
    /// Where this site stands with its parent: entries cosigned, when, how many wait.
    Status,
}
