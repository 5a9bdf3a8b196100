//! `qm`: the Quartermaster command line. Parses, authenticates, calls the application service, prints.

// mimalloc: the validating thread and the writer thread hand each other many small allocations;
// glibc's allocator spent a fifth of the append path on them (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod output;
mod safety_cmds;
mod serve;

use args::*;
use clap::Parser;
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

/// An item on the command line: SERIAL, LOT:QTY.
fn item(s: &str) -> R<ItemRef> {
    p(ItemRef::parse(s))
}

fn items(v: &[String]) -> R<Vec<ItemRef>> {
    v.iter().map(|s| item(s)).collect()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
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
    let cli = match Cli::try_parse() {
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

/// Checks the actor's badge and PIN; a failure is recorded in the ledger as a denied `operation`.
/// Every command that acts goes through here.
pub(crate) fn sign_in(site: &mut Site, who: &Who, operation: &str) -> R<Badge> {
    let actor = p(Badge::parse(who.actor.as_deref().ok_or_else(|| usage("give --actor BADGE (or QM_ACTOR) and the PIN in QM_PIN"))?))?;
    let pin = who.pin.as_deref().ok_or_else(|| usage("give the actor's PIN in QM_PIN (or --pin)"))?;
    if let Err(e) = site.authenticate(&actor, pin) {
        site.record_denial(actor.as_str(), operation, "badge or PIN not accepted", now())?;
        return Err(e);
    }
    Ok(actor)
}

/// Authenticates the actor (and witness) and runs one command; checkpoints after a write.
fn exec(site: &mut Site, who: &Who, command: Command) -> R<qm_app::Outcome> {
    let actor = sign_in(site, who, command.name())?;
    let witness = match &who.witness {
        Some(w) => {
            let w = p(Badge::parse(w))?;
            let wp = who.witness_pin.as_deref().ok_or_else(|| usage("give the witness's PIN in QM_WITNESS_PIN (or --witness-pin)"))?;
            if let Err(e) = site.authenticate(&w, wp) {
                site.record_denial(w.as_str(), "witness", "witness badge or PIN not accepted", now())?;
                return Err(e);
            }
            Some(w)
        }
        None => None,
    };
    let key = who.idempotency_key.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let outcome = site.execute(Request { actor, witness, command, idempotency_key: key, at: now() })?;
    site.checkpoint_if_grown()?;
    Ok(outcome)
}

fn run(cli: &Cli, out: &Out) -> R<u8> {
    let who = &cli.who;
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
            let s = Site::init(&cli.db, &key_path(cli)?, &g)?;
            out.kv(&[
                ("database", shown_db(&cli.db)),
                ("key", key_path(cli)?.display().to_string()),
                ("site", s.site_name()),
                ("verifier_key", s.state().site.as_ref().map(|x| x.verifier_key.clone()).unwrap_or_default()),
            ]);
            Ok(0)
        }
        Cmd::Demo { out: path } => output::demo(path, cli.key.as_deref(), out),
        Cmd::Serve { addr, config, demo } => serve::serve(serve::ServeArgs {
            db: &cli.db,
            key: cli.key.as_deref(),
            addr: addr.as_deref(),
            config: config.as_deref(),
            demo: *demo,
        }),
        Cmd::Unit(UnitCmd::Add { id, name, parent }) => {
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::CreateUnit { unit: p(UnitId::parse(id))?, name: name.clone(), parent: p(UnitId::parse(parent))? },
                out,
            )
        }
        Cmd::Unit(UnitCmd::List) => {
            let s = open()?;
            out.units(s.state());
            Ok(0)
        }
        Cmd::Location(LocationCmd::Add {
            id,
            name,
            unit,
            kind,
            parent,
            keeper,
            neq_limit_kg,
            hazard_divisions,
            compatibility_groups,
            distance,
        }) => {
            let kind = p(LocationKind::parse(kind))?;
            let magazine = if kind == LocationKind::Magazine {
                let exposed_sites = distance
                    .iter()
                    .map(|d| {
                        let (k, m) = d.split_once('=').ok_or_else(|| usage(format!("--distance {d:?}: write KIND=METRES")))?;
                        Ok(ExposedSite {
                            kind: k.to_string(),
                            distance_m: m.parse().map_err(|_| usage(format!("--distance {d:?}: {m:?} is not a number")))?,
                        })
                    })
                    .collect::<R<Vec<_>>>()?;
                Some(MagazineLicence {
                    neq_limit_kg: neq_limit_kg.ok_or_else(|| usage("a magazine needs --neq-limit-kg"))?,
                    hazard_divisions: hazard_divisions.clone(),
                    compatibility_groups: compatibility_groups.clone(),
                    exposed_sites,
                })
            } else {
                None
            };
            let mut s = open()?;
            let cmd = Command::CreateLocation {
                location: p(LocationId::parse(id))?,
                name: name.clone(),
                unit: p(UnitId::parse(unit))?,
                parent: parent.as_deref().map(LocationId::parse).transpose().map_err(usage)?,
                kind,
                keeper: keeper.as_deref().map(Badge::parse).transpose().map_err(usage)?,
                magazine,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::Location(LocationCmd::Safety { id, flag, temperature_c, humidity_pct, excursion_minutes }) => {
            let mut s = open()?;
            let conditions = if temperature_c.is_some() || humidity_pct.is_some() || excursion_minutes.is_some() {
                Some(qm_core::event::LocationConditions {
                    temperature_c: temperature_c.as_deref().map(safety_cmds::range).transpose()?,
                    humidity_pct: humidity_pct.as_deref().map(safety_cmds::range).transpose()?,
                    excursion_minutes: *excursion_minutes,
                })
            } else {
                None
            };
            write(&mut s, who, Command::SetLocationSafety { location: p(LocationId::parse(id))?, flags: flag.clone(), conditions }, out)
        }
        Cmd::Location(LocationCmd::List) => {
            let s = open()?;
            out.locations(s.state());
            Ok(0)
        }
        Cmd::ItemType(ItemTypeCmd::Add { id, name, kind, tracking, unit_of_measure, neq_kg_per_unit, un_code, qualification }) => {
            let mut s = open()?;
            let cmd = Command::DefineItemType {
                item_type: p(ItemTypeId::parse(id))?,
                name: name.clone(),
                kind: p(ItemKind::parse(kind))?,
                tracking: p(Tracking::parse(tracking))?,
                unit_of_measure: unit_of_measure.clone(),
                neq_kg_per_unit: *neq_kg_per_unit,
                un_code: un_code.clone(),
                qualification: qualification.clone(),
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::ItemType(ItemTypeCmd::Storage { id, temperature_c, humidity_pct }) => {
            let mut s = open()?;
            let cmd = Command::SetItemTypeStorage {
                item_type: p(ItemTypeId::parse(id))?,
                temperature_c: temperature_c.as_deref().map(safety_cmds::range).transpose()?,
                humidity_pct: humidity_pct.as_deref().map(safety_cmds::range).transpose()?,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::ItemType(ItemTypeCmd::List) => {
            let s = open()?;
            out.item_types(s.state());
            Ok(0)
        }
        Cmd::Person(PersonCmd::Add { badge, name, unit, roles, new_pin }) => {
            let mut s = open()?;
            let roles = roles.iter().map(|r| Role::parse(r)).collect::<Result<Vec<_>, _>>().map_err(usage)?;
            let cmd = Command::RegisterPerson {
                badge: p(Badge::parse(badge))?,
                name: name.clone(),
                unit: p(UnitId::parse(unit))?,
                roles,
                pin_hash: qm_app::hash_secret(new_pin)?,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::Person(PersonCmd::Qualify { badge, qualification, expires }) => {
            let mut s = open()?;
            let cmd = Command::GrantQualification {
                badge: p(Badge::parse(badge))?,
                qualification: qualification.clone(),
                expires: p(qm_app::import::parse_date(expires))?,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::Person(PersonCmd::Pin { badge, new_pin }) => {
            let mut s = open()?;
            let cmd = Command::SetCredential {
                badge: p(Badge::parse(badge))?,
                kind: qm_core::event::CredentialKind::Pin,
                hash: qm_app::hash_secret(new_pin)?,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::Person(PersonCmd::Password { badge, new_password }) => {
            if new_password.chars().count() < 10 {
                return Err(usage("a password has at least 10 characters"));
            }
            let mut s = open()?;
            let cmd = Command::SetCredential {
                badge: p(Badge::parse(badge))?,
                kind: qm_core::event::CredentialKind::Password,
                hash: qm_app::hash_secret(new_password)?,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::Token(TokenCmd::Issue { id, label, unit, operations }) => {
            let mut s = open()?;
            let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            let cmd = Command::IssueToken {
                token: id.clone(),
                label: label.clone(),
                unit: p(UnitId::parse(unit))?,
                operations: operations.clone(),
                secret_hash: qm_app::hash_secret(&secret)?,
            };
            let outcome = exec(&mut s, who, cmd)?;
            let token = format!("{id}.{secret}");
            out.json_or(&serde_json::json!({"token": token, "first_seq": outcome.first_seq}), || {
                format!("token (shown once; store it now): {token}")
            });
            Ok(0)
        }
        Cmd::Token(TokenCmd::Revoke { id, reason }) => {
            let mut s = open()?;
            write(&mut s, who, Command::RevokeToken { token: id.clone(), reason: reason.clone() }, out)
        }
        Cmd::Person(PersonCmd::List) => {
            let s = open()?;
            out.people(s.state());
            Ok(0)
        }
        Cmd::Policy(a) => {
            let mut s = open()?;
            let rules = PolicyRules {
                two_person_explosives: a.two_person_explosives,
                two_person_all_movements: a.two_person_all_movements,
                two_person_count_resolution: a.two_person_count_resolution,
                counter_not_keeper: a.counter_not_keeper,
                counter_not_previous: a.counter_not_previous,
                max_issue_quantity: a.max_issue_quantity.as_deref().map(Quantity::parse).transpose().map_err(usage)?,
            };
            write(&mut s, who, Command::SetPolicy { unit: p(UnitId::parse(&a.unit))?, rules }, out)
        }
        Cmd::Import { kind, file } => {
            let kind = p(qm_app::import::ImportKind::parse(kind))?;
            let mut s = open()?;
            let actor = sign_in(&mut s, who, "import")?;
            let bar = output::progress(out);
            let report = qm_app::import::import(&mut s, kind, std::path::Path::new(file), &actor, now(), &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            });
            bar.finish_and_clear();
            let report = report?;
            s.checkpoint_if_grown()?;
            out.json_or(&report, || format!("imported {} rows from {} as {} ledger entries", report.rows, report.file, report.entries));
            Ok(0)
        }
        Cmd::Receive { to, from, document, item_type, manufactured, expires, items: list } => {
            let item_type = p(ItemTypeId::parse(item_type))?;
            let manufactured = manufactured.as_deref().map(qm_app::import::parse_date).transpose().map_err(usage)?;
            let expires = expires.as_deref().map(qm_app::import::parse_date).transpose().map_err(usage)?;
            let lines = list
                .iter()
                .map(|s| {
                    let (serial, lot, quantity) = match (s.split_once('@'), s.split_once(':')) {
                        (Some((serial, lot)), _) => (Some(p(Serial::parse(serial))?), Some(p(LotNo::parse(lot))?), Quantity::ONE),
                        (None, Some((lot, q))) => (None, Some(p(LotNo::parse(lot))?), p(Quantity::parse(q))?),
                        (None, None) => (Some(p(Serial::parse(s))?), None, Quantity::ONE),
                    };
                    Ok(ReceiptLine { item_type: item_type.clone(), serial, lot, quantity, manufactured, expires })
                })
                .collect::<R<Vec<_>>>()?;
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::Receive { to: p(LocationId::parse(to))?, from: from.clone(), document: document.clone(), lines },
                out,
            )
        }
        Cmd::Issue { to, from, items: list } => {
            let mut s = open()?;
            let from = from.as_deref().map(LocationId::parse).transpose().map_err(usage)?;
            write(&mut s, who, Command::Issue { to: p(Badge::parse(to))?, from, items: items(list)? }, out)
        }
        Cmd::Return { from, to, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::Return { from: p(Badge::parse(from))?, to: p(LocationId::parse(to))?, items: items(list)? }, out)
        }
        Cmd::Move { from, to, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::Move { from: p(LocationId::parse(from))?, to: p(LocationId::parse(to))?, items: items(list)? }, out)
        }
        Cmd::Transfer(TransferCmd::Dispatch { from, to_unit, document, items: list }) => {
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::Dispatch {
                    from: p(LocationId::parse(from))?,
                    to_unit: p(UnitId::parse(to_unit))?,
                    items: items(list)?,
                    document: document.clone(),
                },
                out,
            )
        }
        Cmd::Transfer(TransferCmd::Receive { transfer, to, items: list }) => {
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::ReceiveTransfer {
                    transfer: p(TransferId::parse(transfer))?,
                    to: p(LocationId::parse(to))?,
                    received: items(list)?,
                },
                out,
            )
        }
        Cmd::Transfers { all } => {
            let s = open()?;
            out.transfers(&query::transfers(s.state(), *all));
            Ok(0)
        }
        Cmd::Expend { from, document, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::Expend { from: account(from)?, items: items(list)?, document: document.clone() }, out)
        }
        Cmd::Destroy { from, document, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::Destroy { from: p(LocationId::parse(from))?, items: items(list)?, document: document.clone() }, out)
        }
        Cmd::ReportLoss { from, document, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::ReportLost { from: account(from)?, items: items(list)?, document: document.clone() }, out)
        }
        Cmd::Recover { to, document, items: list } => {
            let mut s = open()?;
            write(&mut s, who, Command::Recover { to: p(LocationId::parse(to))?, items: items(list)?, document: document.clone() }, out)
        }
        Cmd::Lot(LotCmd::Status { lot, status, reason, unit }) => {
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::SetLotStatus {
                    lot: p(LotNo::parse(lot))?,
                    status: p(LotStatus::parse(status))?,
                    reason: reason.clone(),
                    unit: unit.as_deref().map(UnitId::parse).transpose().map_err(usage)?,
                },
                out,
            )
        }
        Cmd::Count(c) => count(cli, c, out),
        Cmd::Correct { seq, reason } => {
            let mut s = open()?;
            let original = Box::new(s.envelope(*seq)?);
            write(&mut s, who, Command::Correct { original, reason: reason.clone() }, out)
        }
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
        Cmd::Where { serial } => {
            let s = open()?;
            let w = query::where_is(s.state(), &p(Serial::parse(serial))?)?;
            out.json_or(&w, || {
                let holder = w.holder.as_ref().map(|h| format!(" — {h}")).unwrap_or_default();
                format!("{} ({}) is at {}{holder} since {} (entry {})", w.serial, w.item_type, w.account, w.since, w.since_seq)
            });
            Ok(0)
        }
        Cmd::History { item: what } => {
            let s = open()?;
            out.log(&query::history(&s, what)?);
            Ok(0)
        }
        Cmd::Custody { badge } => {
            let s = open()?;
            out.custody(&query::custody(s.state(), &p(Badge::parse(badge))?)?);
            Ok(0)
        }
        Cmd::Log { limit } => {
            let s = open()?;
            out.log(&query::log(&s, (*limit).min(10_000))?);
            Ok(0)
        }
        Cmd::Checkpoint => {
            let mut s = open()?;
            let note = s.checkpoint()?;
            out.json_or(&serde_json::json!({ "checkpoint": note }), || note.clone());
            Ok(0)
        }
        Cmd::Checkpoints => {
            let s = open()?;
            let cps = s.store().checkpoints()?;
            let rows: Vec<_> = cps.iter().map(|c| serde_json::json!({"size": c.size, "note": c.note})).collect();
            out.json_or(&rows, || cps.iter().map(|c| c.note.clone()).collect::<Vec<_>>().join("\n"));
            Ok(0)
        }
        Cmd::Prove { seq } => {
            let s = open()?;
            let pr = s.prove(*seq)?;
            out.json_or(&pr, || {
                format!(
                    "entry {} in tree of size {}\nleaf hash {}\nproof:\n{}\ncheckpoint:\n{}\nentry:\n{}",
                    pr.seq,
                    pr.tree_size,
                    pr.leaf_hash,
                    pr.proof.iter().map(|h| format!("  {h}")).collect::<Vec<_>>().join("\n"),
                    pr.checkpoint,
                    pr.entry
                )
            });
            Ok(0)
        }
        Cmd::Consistency { old, new } => {
            let s = open()?;
            let pr = s.prove_consistency(*old, *new)?;
            out.json_or(&pr, || {
                format!(
                    "consistency {} → {} verified\nproof:\n{}",
                    pr.old_size,
                    pr.new_size,
                    pr.proof.iter().map(|h| format!("  {h}")).collect::<Vec<_>>().join("\n")
                )
            });
            Ok(0)
        }
        Cmd::VerifierKey => {
            let s = open()?;
            let vk = s.state().site.as_ref().map(|x| x.verifier_key.clone()).unwrap_or_default();
            out.json_or(&serde_json::json!({ "verifier_key": vk }), || vk.clone());
            Ok(0)
        }
        Cmd::Verify { verifier_key, tree_only } => {
            // Verify reads the store directly: a damaged file must still be examined, not refused at open.
            let store = qm_app::open_store(&cli.db, false)?;
            let report = qm_app::verify::verify(
                store.as_ref(),
                &qm_app::verify::VerifyOptions { verifier_key: verifier_key.clone(), skip_replay: *tree_only },
            );
            out.verify(&report);
            Ok(if report.ok() { 0 } else { 1 })
        }
        Cmd::TimeZone { zone: None } => {
            let s = open()?;
            let z = qm_app::zone::SiteZone::of(s.state());
            let now = time::OffsetDateTime::now_utc();
            out.json_or(&serde_json::json!({ "time_zone": z.name, "now": z.show(now) }), || format!("{} (now {})", z.name, z.show(now)));
            Ok(0)
        }
        Cmd::TimeZone { zone: Some(zone) } => {
            let mut s = open()?;
            write(&mut s, who, Command::SetTimeZone { zone: zone.clone() }, out)
        }
        Cmd::Permissions => {
            out.json_or(&serde_json::json!({ "table": qm_core::permissions::markdown_table() }), qm_core::permissions::markdown_table);
            Ok(0)
        }
        Cmd::Qd { .. } | Cmd::Magazines { .. } | Cmd::Lots { .. } | Cmd::Conditions(_) | Cmd::Report(_) => safety_cmds::run(cli, out),
        Cmd::Backup { file, with_credentials } => {
            let bar = output::progress(out);
            let r = qm_app::backup::backup(&cli.db, file, *with_credentials, &mut |d, t| {
                bar.set_length(t);
                bar.set_position(d);
            });
            bar.finish_and_clear();
            let r = r?;
            out.json_or(&r, || {
                format!(
                    "backed up {} entries, {} checkpoints, {} readings, {} credentials to {file}; verified; root {}",
                    r.entries, r.checkpoints, r.readings, r.credentials, r.root
                )
            });
            Ok(0)
        }
        Cmd::Restore { file } => {
            let bar = output::progress(out);
            let r = qm_app::backup::restore(file, &cli.db, &mut |d, t| {
                bar.set_length(t);
                bar.set_position(d);
            });
            bar.finish_and_clear();
            let r = r?;
            out.json_or(&r, || {
                format!(
                    "restored {} entries, {} checkpoints, {} readings, {} credentials into {}; verified; root {}",
                    r.entries, r.checkpoints, r.readings, r.credentials, cli.db, r.root
                )
            });
            Ok(0)
        }
        Cmd::Load { batch, batches, run } => load(cli, *batch, *batches, run),
        Cmd::Bench { target, units, serials, lots, staff, movements } => {
            let scratch = tempfile_dir()?;
            let db = target.clone().unwrap_or_else(|| scratch.join("bench.db").display().to_string());
            let key = cli.key.as_ref().map(PathBuf::from).unwrap_or_else(|| scratch.join("bench.key"));
            let cfg = qm_app::bench::BenchConfig { units: *units, serials: *serials, lots: *lots, staff: *staff, movements: *movements };
            let bar = output::progress(out);
            let r = qm_app::bench::run(&db, &key, &cfg, &scratch, &mut |stage, d, t| {
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
    let rifles: Vec<Serial> =
        site.state().serials.iter().filter(|(_, s)| s.account == Account::Location(rack.clone())).map(|(k, _)| k.clone()).collect();
    if rifles.is_empty() {
        return Err(usage("no rifles in D11-RACK-A: run `qm demo` first and point --db at it"));
    }
    let officers: Vec<Badge> = ["1001", "1002"].iter().filter_map(|b| Badge::parse(b).ok()).collect();
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
                Some(Account::Person(b)) => Command::Return { from: b, to: rack.clone(), items: vec![ItemRef::Serial(serial)] },
                _ => Command::Issue { to: officers[n % officers.len().max(1)].clone(), from: None, items: vec![ItemRef::Serial(serial)] },
            };
            reqs.push(Request { actor: armorer.clone(), witness: None, command, idempotency_key: format!("{run}-{n}"), at: now() });
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
    if qm_store_postgres::is_url(db) {
        qm_store_postgres::redacted(db)
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

/// Opens the site, with the organization's safety tables when given.
pub(crate) fn open_site(cli: &Cli) -> R<Site> {
    let mut site = Site::open(&cli.db, Some(&key_path(cli)?))?;
    if let Some(t) = &cli.safety_tables {
        site.set_safety_tables(qm_app::load_safety_tables(std::path::Path::new(t))?);
    }
    Ok(site)
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
