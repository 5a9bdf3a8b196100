//! Command-line arguments: parsing only checks shapes; the rules live in the core. The top level
//! here; each domain's subcommands in a module of their own.

use clap::{Args, Parser, Subcommand};

mod custody;
mod duty;
mod safety;
mod setup;
mod sites;
pub use custody::*;
pub use duty::*;
pub use safety::*;
pub use setup::*;
pub use sites::*;

#[derive(Parser, Debug)]
#[command(name = "qm", version, about = "Quartermaster: the system of record for weapons, ammunition and explosives")]
#[command(next_help_heading = "Global options")]
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

impl Cli {
    /// Parses a command line as clap does, and refuses the flags people try that `qm` has under
    /// another name with an error that names the right one: `qm serve --listen` (or `--bind`) is
    /// `--addr HOST:PORT`.
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let cli = Cli::try_parse_from(&args)?;
        if let Cmd::Serve { listen: Some(_), .. } = &cli.command {
            let tried = if args.iter().any(|a| a.to_string_lossy().starts_with("--bind")) { "--bind" } else { "--listen" };
            let mut qm = <Cli as clap::CommandFactory>::command();
            qm.build(); // so that the usage shown is `qm serve`
            let why = format!("`qm serve` has no {tried}: give the address to listen on with --addr HOST:PORT (e.g. --addr 0.0.0.0:8080)");
            let kind = clap::error::ErrorKind::UnknownArgument;
            return Err(match qm.find_subcommand_mut("serve") {
                Some(serve) => serve.error(kind, why),
                None => qm.error(kind, why),
            });
        }
        Ok(cli)
    }
}

/// Who acts, who witnesses; PINs come from the environment so they stay out of shell history.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Who acts (global options)")]
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
        /// The site's name, e.g. riverside.police: the origin its checkpoints are signed under, as its
        /// parent and auditors know it.
        #[arg(long)]
        site: String,
        /// The id of the organization tree's root unit.
        #[arg(long, default_value = "HQ")]
        root_unit: String,
        /// The root unit's name.
        #[arg(long, default_value = "Headquarters")]
        root_unit_name: String,
        /// Badge number of the first administrator (at the root unit).
        #[arg(long, default_value = "0001")]
        admin_badge: String,
        /// The first administrator's name.
        #[arg(long, default_value = "Administrator")]
        admin_name: String,
        /// The first administrator's PIN (prefer QM_ADMIN_PIN).
        #[arg(long, env = "QM_ADMIN_PIN", hide_env_values = true)]
        admin_pin: String,
    },
    /// Run the server: JSON API and web UI (see docs/server.md).
    Serve {
        /// Address to listen on, HOST:PORT (default 127.0.0.1:8080, or QM_ADDR, or the config file's `addr`).
        #[arg(long)]
        addr: Option<String>,
        /// Not an option of `qm serve` (nor --bind): refused with a pointer to --addr HOST:PORT.
        #[arg(long, alias = "bind", hide = true, num_args = 0..=1, value_name = "ADDR")]
        listen: Option<Option<String>>,
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
    /// Policy a unit sets for its subtree (tightens, never relaxes). Each time, the whole of it: a
    /// requirement left out is no longer this unit's (a unit above may still make it).
    Policy(PolicyArgs),
    /// The organization's incident rules and safety tables, adopted in the ledger: in force here
    /// and at every site below (docs/sites.md, "Down the tree").
    #[command(subcommand)]
    Rules(RulesCmd),
    /// Import a CSV file (item-types, people, serials, lots): all rows or none.
    Import {
        /// What the file holds: item-types, people, serials or lots (columns in docs/operations.md).
        kind: String,
        /// The CSV file, with a header row.
        file: String,
    },
    /// Receive stock from a supplier or outside unit.
    Receive {
        /// The location id where the items are put.
        #[arg(long)]
        to: String,
        /// Who they come from: the supplier's or outside unit's name, e.g. "National Arms Depot".
        #[arg(long)]
        from: String,
        /// The delivery document's reference, e.g. DN-0871.
        #[arg(long)]
        document: String,
        /// The item type of everything received (one type per receipt).
        #[arg(long)]
        item_type: String,
        /// For lots: manufacture date, YYYY-MM-DD.
        #[arg(long)]
        manufactured: Option<String>,
        /// For lots: expiry or next inspection date, YYYY-MM-DD.
        #[arg(long)]
        expires: Option<String>,
        /// Items: SERIAL, LOT:QTY, or SERIAL@LOT for items tracked by both.
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Issue to a person.
    Issue {
        /// Badge number of the person who takes them.
        #[arg(long)]
        to: String,
        /// Where lots are drawn from (serials are taken from their rack).
        #[arg(long)]
        from: Option<String>,
        /// Items: SERIAL, or LOT:QTY for a quantity of a lot (e.g. R-1042 L556-07:60).
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Take back from a person.
    Return {
        /// Badge number of the person who hands them back.
        #[arg(long)]
        from: String,
        /// The location id they all go back to; without it each goes back to its home (a serial to
        /// the place it was issued from, a lot to the store of the person's unit holding most of it).
        #[arg(long)]
        to: Option<String>,
        /// Items: SERIAL, or LOT:QTY for a quantity of a lot; only what that person holds. Without
        /// --to, 'SERIAL > LOCATION' sends one item elsewhere than its home.
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Move within a unit.
    Move {
        /// The location id they leave.
        #[arg(long)]
        from: String,
        /// The location id they go to, in the same unit.
        #[arg(long)]
        to: String,
        /// Items: SERIAL, or LOT:QTY for a quantity of a lot (e.g. R-1042 L556-07:60).
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
        /// The document that records the use, e.g. a range log's reference.
        #[arg(long)]
        document: String,
        /// Items: SERIAL, or LOT:QTY for a quantity of a lot (e.g. R-1042 L556-07:60).
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Destroy with a document reference.
    Destroy {
        /// The location id they are taken from.
        #[arg(long)]
        from: String,
        /// The destruction record's reference.
        #[arg(long)]
        document: String,
        /// Items: SERIAL, or LOT:QTY for a quantity of a lot (e.g. R-1042 L556-07:60).
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Report items lost.
    ReportLoss {
        #[command(flatten)]
        from: FromAccount,
        /// The loss report's reference.
        #[arg(long)]
        document: Option<String>,
        /// Items: SERIAL, or LOT:QTY for a quantity of a lot (e.g. R-1042 L556-07:60).
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Bring lost items back onto the books.
    Recover {
        /// The location id where they are put back.
        #[arg(long)]
        to: String,
        /// The reference of the record of their finding.
        #[arg(long)]
        document: Option<String>,
        /// Items reported lost: SERIAL, or LOT:QTY for a quantity of a lot.
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
    /// Every count, newest first, with its unit, place, kind, counter, times and result; or, with
    /// --schedule, each armory, depot and magazine with its last full count and when the next is due.
    Counts {
        /// The schedule of full counts per place instead of the list (overdue places first).
        #[arg(long)]
        schedule: bool,
    },
    /// Incidents, gravest and newest first, with their clocks (docs/incidents.md).
    Incidents {
        /// Only those not closed.
        #[arg(long)]
        open: bool,
        /// Only those of this unit's subtree.
        #[arg(long)]
        unit: Option<String>,
        /// Only those of this kind, e.g. theft (the kinds: `qm incident open --help`).
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
        /// The directive's id, e.g. DIR-2.hq.example.
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
        /// The entry's sequence number (`qm log`, `qm history`).
        seq: u64,
        /// Why it is corrected (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Balances by unit, location, item type.
    Stock {
        /// Only this unit's subtree.
        #[arg(long)]
        unit: Option<String>,
        /// Only this location and the places inside it.
        #[arg(long)]
        location: Option<String>,
        /// Only this item type.
        #[arg(long)]
        item_type: Option<String>,
    },
    /// Where a serial is now.
    Where {
        /// The serial number, e.g. R-1042.
        serial: String,
    },
    /// Every event for a serial or lot, with actor and witness.
    History {
        /// A serial number or a lot number.
        item: String,
    },
    /// What a person holds now, and since when.
    Custody {
        /// The person's badge number.
        badge: String,
    },
    /// Recent ledger entries.
    Log {
        /// How many of the latest entries (at most 10,000).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Sign a checkpoint of the ledger with the site key.
    Checkpoint,
    /// List stored checkpoints.
    Checkpoints,
    /// Inclusion proof of an entry against the latest checkpoint.
    Prove {
        /// The entry's sequence number.
        seq: u64,
        /// Print a C2SP tlog-proof instead (the entry, its inclusion proof, the checkpoint with the
        /// parent's cosignatures): one file an auditor verifies offline (docs/sites.md).
        #[arg(long)]
        tlog_proof: bool,
    },
    /// Consistency proof between two checkpoints.
    Consistency {
        /// The older checkpoint's tree size (entries), as `qm checkpoints` lists it.
        old: u64,
        /// The newer checkpoint's tree size.
        new: u64,
    },
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
    TimeZone {
        /// The new time zone, e.g. Europe/Paris; without it, the zone is shown.
        zone: Option<String>,
    },
    /// Benchmark: a synthetic organization, a standard mix, figures beside in-run baselines.
    Bench {
        /// Where to build it: a new SQLite file, or a postgres:// URL of an empty database (default: a temporary file).
        #[arg(long = "target")]
        target: Option<String>,
        /// Units in the synthetic organization.
        #[arg(long, default_value_t = 100)]
        units: usize,
        /// Serial-numbered items on its books.
        #[arg(long, default_value_t = 200_000)]
        serials: usize,
        /// Lots on its books.
        #[arg(long, default_value_t = 20_000)]
        lots: usize,
        /// People on its staff.
        #[arg(long, default_value_t = 5_000)]
        staff: usize,
        /// Issues and returns in the measured shift-change bursts.
        #[arg(long, default_value_t = 100_000)]
        movements: usize,
    },
    /// Online backup of the ledger into a new SQLite file (verified); the signing key is not included,
    /// nor the credentials (PIN, password and token hashes) unless --with-credentials.
    Backup {
        /// The new SQLite file (a backup never overwrites a file).
        file: String,
        /// Copy the credentials too (the file is then written owner-only): a restore keeps sign-ins.
        #[arg(long)]
        with_credentials: bool,
    },
    /// Restore a backup into the database given by --db (which must not exist yet).
    Restore {
        /// The backup file (`qm backup`).
        file: String,
    },
    /// A load of issues and returns on a demo site, printing each acknowledged idempotency key:
    /// used by the crash tests (kill it at any moment; every printed key must survive).
    #[command(hide = true)]
    Load {
        /// Movements per batch.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// How many batches (the crash tests kill it long before the end).
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
        /// Only those of this unit's subtree.
        #[arg(long)]
        unit: Option<String>,
    },
    /// Lots and where they are held: expiring, expired or suspended.
    Lots {
        /// e.g. 90d: lots whose expiry or inspection date falls within that many days (or is past).
        #[arg(long)]
        expiring: Option<String>,
        /// Only lots held past their expiry or inspection date.
        #[arg(long)]
        expired: bool,
        /// Only lots held where they are suspended or unserviceable (the lot's status or a unit's
        /// decision).
        #[arg(long)]
        suspended: bool,
        /// Only where this unit's subtree holds them.
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

#[derive(Subcommand, Debug)]
pub enum CountCmd {
    /// Start a count of a location and every place inside it.
    Start {
        /// The location id where the count starts (its whole subtree is counted).
        location: String,
        /// A cycle count: only the places recorded are compared with the books (default: full).
        #[arg(long)]
        cycle: bool,
        /// A blind count: the book figures stay hidden until it closes.
        #[arg(long)]
        blind: bool,
    },
    /// Record what was seen at one place of an open count (the counter alone).
    Record {
        /// The count's id, e.g. C-1.
        count: String,
        /// The location id where these items were seen.
        #[arg(long)]
        location: String,
        /// Serials seen and LOT:QTY counted.
        items: Vec<String>,
    },
    /// Close a count: the books are compared with what was recorded, one discrepancy per difference.
    Close {
        /// The count's id, e.g. C-1.
        count: String,
    },
    /// A count: what was recorded, the book (hidden while a blind count is open), the discrepancies.
    Show {
        /// The count's id, e.g. C-1.
        count: String,
    },
    /// Resolve a discrepancy: approve it (the books follow the count) or explain it (no change).
    Resolve {
        /// The discrepancy's id, e.g. D-3.
        discrepancy: String,
        /// Approve: the books follow the count.
        #[arg(long, conflicts_with = "explain", required_unless_present = "explain")]
        approve: bool,
        /// Explain: no book change.
        #[arg(long)]
        explain: bool,
        /// Why: what was found or explains the difference (recorded).
        #[arg(long)]
        note: String,
        /// The item type of a find the catalog does not know (needed to approve it).
        #[arg(long)]
        item_type: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command and every option of `qm` says what it is for in `--help` (issue 18).
    #[test]
    fn every_command_and_option_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_long().map_or(a.get_id().to_string(), |l| format!("--{l}"))));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let here = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{here} (the command)"));
                }
                walk(sub, &here, missing);
            }
        }
        let mut missing = vec![];
        walk(&Cli::command(), "qm", &mut missing);
        assert!(missing.is_empty(), "{} without help text:\n{}", missing.len(), missing.join("\n"));
    }

    /// `qm serve --listen` (and `--bind`), in any spelling, is refused with a pointer to `--addr`.
    #[test]
    fn serve_listen_and_bind_point_to_addr() {
        for args in [
            &["qm", "serve", "--listen", "0.0.0.0:8080"][..],
            &["qm", "serve", "--listen=0.0.0.0:8080"],
            &["qm", "serve", "--listen"],
            &["qm", "--db", "x.db", "serve", "--bind", "0.0.0.0:8080"],
        ] {
            let e = Cli::parse_args(args).map(|_| ()).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{args:?}");
            let text = e.to_string();
            assert!(text.contains("--addr HOST:PORT") && text.contains("Usage: qm serve"), "{args:?}: {text}");
            assert!(text.contains(if args.contains(&"--bind") { "no --bind" } else { "no --listen" }), "{text}");
        }
        assert!(Cli::parse_args(["qm", "serve", "--addr", "0.0.0.0:8080"]).is_ok());
        // Elsewhere --listen is not known at all: clap's own error.
        let e = Cli::parse_args(["qm", "stock", "--listen", "x"]).map(|_| ()).unwrap_err();
        assert!(!e.to_string().contains("--addr"), "{e}");
    }
}
