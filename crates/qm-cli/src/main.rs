//! `qm`: the Quartermaster command line. Parses, authenticates, calls the application service, prints.

// mimalloc: the validating thread and the writer thread hand each other many small allocations;
// glibc's allocator spent a fifth of the append path on them (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod access_cmds;
mod args;
mod custody_cmds;
mod directive_cmds;
mod incident_cmds;
mod ledger_cmds;
mod notify_cmds;
mod output;
mod safety_cmds;
mod serve;
mod setup_cmds;
mod sites_cmds;

use args::*;
use output::{fail, Out};
use qm_app::query::{self, StockFilter};
use qm_app::{AppError, Request, Site};
use qm_core::policy::PolicyRules;
use qm_core::*;
use std::path::PathBuf;
use std::process::ExitCode;
use time::OffsetDateTime;

type R<T> = Result<T, AppError>;

fn usage(msg: impl std::fmt::Display) -> AppError {
    AppError::Usage(msg.to_string())
}

fn p<T, E: std::fmt::Display>(r: Result<T, E>) -> R<T> {
    r.map_err(usage)
}

/// Items on the command line: SERIAL, LOT:QTY.
fn items(v: &[String]) -> R<Vec<ItemRef>> {
    p(parse_items(v))
}

/// The time commands are made at: the clock, or `QM_TEST_NOW` (RFC 3339) — a simulated clock for
/// tests and drills on a copy of a site, never on a live one: entries are stamped with it, and a
/// ledger's time only moves forward (docs/directives.md, "Drills and tests").
fn now() -> OffsetDateTime {
    match std::env::var("QM_TEST_NOW").ok().and_then(|t| parse_time(&t).ok()) {
        Some(t) => t,
        None => OffsetDateTime::now_utc(),
    }
}

/// The signing key: --key, or next to a database file. A database URL has no "next to": --key is required.
fn key_path(cli: &Cli) -> R<PathBuf> {
    match &cli.key {
        Some(k) => Ok(PathBuf::from(k)),
        None if cli.db.starts_with("postgres://") || cli.db.starts_with("postgresql://") => {
            Err(usage("--db is a PostgreSQL URL: pass --key FILE (the site's signing key; it is never kept in the database)"))
        }
        None => Ok(qm_app::default_key_path(std::path::Path::new(&cli.db))),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::parse_args(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let out = Out { json: cli.json };
    match run(&cli, &out) {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(&out, &e),
    }
}

/// Runs one command as `write` does and prints what it appended.
fn write(site: &mut Site, who: &Who, command: Command, out: &Out) -> R<u8> {
    let outcome = exec(site, who, command)?;
    out.outcome(&outcome);
    Ok(0)
}

/// Where a `qm` command's attempts come from, in the denials the ledger records.
const FROM: &str = "the command line";

fn presented(badge: Option<&str>, pin: Option<&str>, no_pin: &str) -> R<qm_app::Presented> {
    let badge = p(Badge::parse(badge.ok_or_else(|| usage("give --actor BADGE (or QM_ACTOR) and the PIN in QM_PIN"))?))?;
    let secret = pin.ok_or_else(|| usage(no_pin))?.to_string();
    Ok(qm_app::Presented { badge, secret })
}

fn actor(who: &Who) -> R<qm_app::Presented> {
    presented(who.actor.as_deref(), who.pin.as_deref(), "give the actor's PIN in QM_PIN (or --pin)")
}

/// Checks the actor's badge and PIN (the site's one act path, `qm_app::act`); a failure is
/// recorded in the ledger as a denied `operation`. For commands that act without `exec`.
pub(crate) fn sign_in(site: &mut Site, who: &Who, operation: &str) -> R<Badge> {
    let actor = actor(who)?;
    let r = site.check_presented(&actor, qm_core::event::CredentialKind::Pin, operation, FROM);
    site.flush_all_denials()?;
    r?;
    Ok(actor.badge)
}

/// Authenticates the actor (and witness) and runs one command through the site's act path;
/// checkpoints after a write.
fn exec(site: &mut Site, who: &Who, command: Command) -> R<qm_app::Outcome> {
    let actor = actor(who)?;
    let witness = match &who.witness {
        Some(w) => Some(presented(Some(w), who.witness_pin.as_deref(), "give the witness's PIN in QM_WITNESS_PIN (or --witness-pin)")?),
        None => None,
    };
    let idempotency_key = who.idempotency_key.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let outcome = site.act(qm_app::Act { actor, witness, command, idempotency_key, at: now(), from: FROM.into() })?;
    site.checkpoint_if_grown()?;
    Ok(outcome)
}

/// What `qm serve` is given from the command line.
fn serve_args<'a>(cli: &'a Cli, addr: Option<&'a str>, config: Option<&'a str>, demo: bool) -> serve::ServeArgs<'a> {
    serve::ServeArgs {
        db: &cli.db,
        key: cli.key.as_deref(),
        addr,
        config,
        demo,
        safety_tables: cli.safety_tables.as_deref(),
        incident_rules: cli.incident_rules.as_deref(),
        posture_levels: cli.posture_levels.as_deref(),
        notifications: cli.notifications.as_deref(),
        access: cli.access.as_deref(),
        children: cli.children.as_deref(),
    }
}

/// `qm where SERIAL`.
fn where_is(s: &Site, serial: &str, out: &Out) -> R<u8> {
    let w = query::where_is(s.state(), &p(Serial::parse(serial))?)?;
    out.json_or(&w, || {
        let holder = w.holder.as_ref().map(|h| format!(" — {h}")).unwrap_or_default();
        format!("{} ({}) is at {}{holder} since {} (entry {})", w.serial, w.item_type, w.account, w.since, w.since_seq)
    });
    Ok(0)
}

fn run(cli: &Cli, out: &Out) -> R<u8> {
    let open = || open_site(cli);
    match &cli.command {
        Cmd::Init { site, root_unit, root_unit_name, admin_badge, admin_name, admin_pin } => {
            let g = qm_app::Genesis {
                site,
                root_unit: &p(UnitId::parse(root_unit))?,
                root_unit_name,
                admin: &p(Badge::parse(admin_badge))?,
                admin_name,
                admin_pin,
                at: now(),
            };
            let s = Site::init(qm_backends::open_store, &cli.db, &key_path(cli)?, &g)?;
            out.kv(&[
                ("database", shown_db(&cli.db)),
                ("key", key_path(cli)?.display().to_string()),
                ("site", s.site_name()),
                ("verifier_key", s.state().site.as_ref().map(|x| x.verifier_key.clone()).unwrap_or_default()),
            ]);
            Ok(0)
        }
        Cmd::Demo { out: path } => output::demo(path, cli.key.as_deref(), out),
        Cmd::Serve { addr, config, demo, .. } => serve::serve(serve_args(cli, addr.as_deref(), config.as_deref(), *demo)),
        Cmd::Unit(_)
        | Cmd::Location(_)
        | Cmd::ItemType(_)
        | Cmd::Person(_)
        | Cmd::Token(_)
        | Cmd::Policy(_)
        | Cmd::Rules(_)
        | Cmd::TimeZone { .. }
        | Cmd::Import { .. } => setup_cmds::run(cli, out),
        Cmd::Receive { .. }
        | Cmd::Issue { .. }
        | Cmd::Return { .. }
        | Cmd::Move { .. }
        | Cmd::Transfer(_)
        | Cmd::Transfers { .. }
        | Cmd::Expend { .. }
        | Cmd::Destroy { .. }
        | Cmd::ReportLoss { .. }
        | Cmd::Recover { .. }
        | Cmd::Lot(_)
        | Cmd::Count(_)
        | Cmd::Correct { .. } => custody_cmds::run(cli, out),
        Cmd::Stock { unit, location, item_type } => {
            let s = open()?;
            let f = StockFilter {
                unit: unit.as_deref().map(UnitId::parse).transpose().map_err(usage)?,
                location: location.as_deref().map(LocationId::parse).transpose().map_err(usage)?,
                item_type: item_type.as_deref().map(ItemTypeId::parse).transpose().map_err(usage)?,
            };
            out.stock(&query::stock(s.state(), &f));
            Ok(0)
        }
        Cmd::Where { serial } => where_is(&open()?, serial, out),
        Cmd::Counts { schedule } => custody_cmds::counts(&open()?, *schedule, out),
        Cmd::History { item: what } => {
            let s = open()?;
            out.log(&query::history(&s, what)?);
            Ok(0)
        }
        Cmd::Custody { badge } => {
            let s = open()?;
            out.custody(&query::custody(s.state(), &p(Badge::parse(badge))?, time::OffsetDateTime::now_utc().date())?);
            Ok(0)
        }
        Cmd::Log { .. }
        | Cmd::Checkpoint
        | Cmd::Checkpoints
        | Cmd::Prove { .. }
        | Cmd::Consistency { .. }
        | Cmd::VerifierKey
        | Cmd::Verify { .. }
        | Cmd::Backup { .. }
        | Cmd::Restore { .. } => ledger_cmds::run(cli, out),
        Cmd::Permissions => {
            out.json_or(&serde_json::json!({ "table": qm_core::permissions::markdown_table() }), qm_core::permissions::markdown_table);
            Ok(0)
        }
        Cmd::Qd { .. } | Cmd::Magazines { .. } | Cmd::Lots { .. } | Cmd::Conditions(_) | Cmd::Report(_) => safety_cmds::run(cli, out),
        Cmd::Load { batch, batches, run } => load(cli, *batch, *batches, run),
        Cmd::Bench { target, units, serials, lots, staff, movements } => {
            let scratch = tempfile_dir()?;
            let db = target.clone().unwrap_or_else(|| scratch.join("bench.db").display().to_string());
            let key = cli.key.as_ref().map(PathBuf::from).unwrap_or_else(|| scratch.join("bench.key"));
            let cfg = qm_demo::bench::BenchConfig { units: *units, serials: *serials, lots: *lots, staff: *staff, movements: *movements };
            let bar = output::progress(out);
            let r = qm_demo::bench::run(&db, &key, &cfg, &scratch, &mut |stage, d, t| {
                bar.set_message(stage.to_string());
                bar.set_length(t);
                bar.set_position(d);
            });
            bar.finish_and_clear();
            let _ = std::fs::remove_dir_all(&scratch);
            let r = r?;
            out.json_or(&r, || output::bench_text(&r));
            Ok(0)
        }
        _ => incident_cmds::run(cli, out), // incidents, notifications, the clock, directives
    }
}

/// Issues and returns rifles of the demo site in pipelined batches, printing each acknowledged key
/// once its batch is durable. A crash test kills this process at random moments.
fn load(cli: &Cli, batch: usize, batches: usize, run: &str) -> R<u8> {
    use std::io::Write;
    let mut site = open_site(cli)?;
    let armorer = sign_in(&mut site, &cli.who, "load")?;
    site.start_writer()?;
    let rack = LocationId::parse("D11-RACK-A").map_err(usage)?;
    let officers: Vec<Badge> = ["1001", "1002"].iter().filter_map(|b| Badge::parse(b).ok()).collect();
    // The rack's rifles: on it, or with one of the load's officers (a load killed midway leaves
    // some out, and every one of them may be out: the next load returns them first).
    let ours = |a: &Account| *a == Account::Location(rack.clone()) || officers.iter().any(|o| *a == Account::Person(o.clone()));
    let rifles: Vec<Serial> =
        site.state().serials.iter().filter(|(k, s)| ours(&s.account) && k.as_str().starts_with("R-")).map(|(k, _)| k.clone()).collect();
    if rifles.is_empty() {
        return Err(usage("no rifles in D11-RACK-A: run `qm demo` first and point --db at it"));
    }
    let stdout = std::io::stdout();
    let mut pending: Option<qm_app::Ticket> = None;
    let mut n = 0usize;
    for _ in 0..batches {
        let mut reqs = vec![];
        for _ in 0..batch {
            n += 1;
            let serial = rifles[n % rifles.len().max(1)].clone();
            let at_person = site.state().serials.get(&serial).map(|s| s.account.clone());
            let command = match at_person {
                Some(Account::Person(b)) => Command::return_to(b, rack.clone(), vec![ItemRef::Serial(serial)]),
                _ => Command::Issue { to: officers[n % officers.len().max(1)].clone(), from: None, items: vec![ItemRef::Serial(serial)] },
            };
            reqs.push(Request {
                token: None,
                actor: armorer.clone(),
                witness: None,
                command,
                idempotency_key: format!("{run}-{n}"),
                at: now(),
            });
        }
        let ticket = site.submit(reqs);
        if let Some(t) = pending.take() {
            let mut lock = stdout.lock();
            for o in site.finish(t).into_iter().flatten() {
                if !o.replayed {
                    let _ = writeln!(lock, "{}", o.entries.first().map(|e| e.idempotency_key.as_str()).unwrap_or(""));
                }
            }
            let _ = lock.flush();
        }
        pending = Some(ticket);
    }
    if let Some(t) = pending.take() {
        for o in site.finish(t).into_iter().flatten() {
            println!("{}", o.entries.first().map(|e| e.idempotency_key.as_str()).unwrap_or(""));
        }
    }
    Ok(0)
}

/// The database as shown to people: a URL without its password (secrets never print).
pub(crate) fn shown_db(db: &str) -> String {
    if qm_backends::is_url(db) {
        qm_backends::redacted(db)
    } else {
        db.to_string()
    }
}

/// A fresh scratch directory for `qm bench`, removed when it ends.
fn tempfile_dir() -> R<PathBuf> {
    let d = std::env::temp_dir().join(format!("qm-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).map_err(|e| usage(format!("{}: {e}", d.display())))?;
    Ok(d)
}

/// Opens the site, with the organization's safety tables and incident rules when given.
pub(crate) fn open_site(cli: &Cli) -> R<Site> {
    let mut site = Site::open(qm_backends::open_store, &cli.db, Some(&key_path(cli)?))?;
    configure(&mut site, cli.safety_tables.as_deref(), cli.incident_rules.as_deref(), cli.posture_levels.as_deref())?;
    Ok(site)
}

/// Gives the site the organization's own safety tables and incident rules, when named.
pub(crate) fn configure(site: &mut Site, safety_tables: Option<&str>, incident_rules: Option<&str>, postures: Option<&str>) -> R<()> {
    if let Some(p) = postures {
        site.set_postures(qm_app::directives::load_postures(std::path::Path::new(p))?);
    }
    let mut ignored = vec![];
    if let Some(t) = safety_tables {
        ignored.extend(site.set_safety_tables(qm_app::load_safety_tables(std::path::Path::new(t))?));
    }
    if let Some(r) = incident_rules {
        ignored.extend(site.set_incident_rules(qm_app::load_incident_rules(std::path::Path::new(r))?));
    }
    for why in ignored {
        eprintln!("note: {}", output::printable(&why, true));
    }
    Ok(())
}

/// The tables to use without a site (for `qm qd`).
pub(crate) fn tables(cli: &Cli) -> R<qm_safety::SafetyTables> {
    match &cli.safety_tables {
        Some(t) => qm_app::load_safety_tables(std::path::Path::new(t)),
        None => Ok(qm_safety::SafetyTables::default_tables()),
    }
}

fn account(f: &FromAccount) -> R<Account> {
    match (&f.from, &f.from_person) {
        (Some(l), None) => Ok(Account::Location(p(LocationId::parse(l))?)),
        (None, Some(b)) => Ok(Account::Person(p(Badge::parse(b))?)),
        _ => Err(usage("give --from LOCATION or --from-person BADGE")),
    }
}

fn count(cli: &Cli, c: &CountCmd, out: &Out) -> R<u8> {
    let mut s = open_site(cli)?;
    let who = &cli.who;
    match c {
        CountCmd::Start { location, cycle, blind } => {
            let kind = if *cycle { CountKind::Cycle } else { CountKind::Full };
            write(&mut s, who, Command::StartCount { root: p(LocationId::parse(location))?, kind, blind: *blind }, out)
        }
        CountCmd::Record { count, location, items: list } => {
            let mut serials = vec![];
            let mut lots = vec![];
            for i in items(list)? {
                match i {
                    ItemRef::Serial(x) => serials.push(x),
                    ItemRef::Lot { lot, quantity } => lots.push((lot, quantity)),
                }
            }
            write(
                &mut s,
                who,
                Command::RecordCount { count: p(CountId::parse(count))?, location: p(LocationId::parse(location))?, serials, lots },
                out,
            )
        }
        CountCmd::Close { count } => {
            let id = p(CountId::parse(count))?;
            exec(&mut s, who, Command::CloseCount { count: id.clone() })?;
            out.count(&query::count_view(s.state(), &id)?);
            Ok(0)
        }
        CountCmd::Show { count } => {
            out.count(&query::count_view(s.state(), &p(CountId::parse(count))?)?);
            Ok(0)
        }
        CountCmd::Resolve { discrepancy, approve, explain: _, note, item_type } => {
            let cmd = Command::ResolveDiscrepancy {
                discrepancy: p(DiscrepancyId::parse(discrepancy))?,
                approve: *approve,
                note: note.clone(),
                item_type: item_type.as_deref().map(ItemTypeId::parse).transpose().map_err(usage)?,
            };
            write(&mut s, who, cmd, out)
        }
    }
}
