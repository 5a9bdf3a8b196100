//! `qm bench`: a synthetic organization of a given size, a standard mix of operations (shift-change
//! bursts of issues and returns, receipts, transfers, counts), and per operation the throughput and
//! p50/p99 latency, the verify and projection-rebuild rates, and in the same run the baselines: raw
//! inserts of rows of equal size into the same backend, and raw SHA-256 over the same bytes.

use qm_app::verify::{verify, VerifyOptions};
use qm_app::{decode, AppError, Genesis, Outcome, Request, Result, Site};
use qm_backends::open_store;
use qm_core::*;
use serde::Serialize;
use sha2::Digest;
use std::path::Path;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub units: usize,
    pub serials: usize,
    pub lots: usize,
    pub staff: usize,
    /// Issues and returns in the shift-change bursts.
    pub movements: usize,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig { units: 100, serials: 200_000, lots: 20_000, staff: 5_000, movements: 100_000 }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct OpFigure {
    pub operation: String,
    pub count: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub backend: String,
    pub entries: u64,
    pub build_seconds: f64,
    pub operations: Vec<OpFigure>,
    pub raw_inserts_per_second: f64,
    pub movements_to_raw_inserts: f64,
    /// Wall time of the best round of issue/return bursts, and how much of it the writer thread spent committing.
    pub movement_seconds: f64,
    pub movement_writer_busy_seconds: f64,
    pub verify_mb_per_second: f64,
    pub sha256_mb_per_second: f64,
    pub verify_to_sha256: f64,
    pub rebuild_entries_per_second: f64,
    pub peak_rss_mb: f64,
}

fn id<T>(r: std::result::Result<T, IdError>) -> Result<T> {
    r.map_err(|e| AppError::Internal(e.to_string()))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn figure(operation: &str, mut lat: Vec<Duration>, wall: Duration) -> OpFigure {
    lat.sort();
    OpFigure {
        operation: operation.into(),
        count: lat.len(),
        per_second: lat.len() as f64 / wall.as_secs_f64().max(1e-9),
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
    }
}

/// Peak resident memory of this process, from /proc (Linux); 0 elsewhere.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn unit_id(i: usize) -> Result<UnitId> {
    id(UnitId::parse(&format!("U-{i:03}")))
}

/// Builds the organization in `db` (a new database) and runs the mix. `progress(stage, done, total)`.
pub fn run(db: &str, key: &Path, cfg: &BenchConfig, scratch: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<BenchReport> {
    let now = OffsetDateTime::now_utc();
    let hq = id(UnitId::parse("HQ"))?;
    let admin = id(Badge::parse("0001"))?;
    let t_build = Instant::now();
    let genesis = Genesis {
        site: "bench",
        root_unit: &hq,
        root_unit_name: "HQ",
        admin: &admin,
        admin_name: "Admin",
        admin_pin: "bench-pin",
        at: now,
    };
    let mut site = Site::init(open_store, db, key, &genesis)?;
    // One Argon2id hash serves every synthetic person: hashing 5,000 PINs would measure Argon2, not us.
    let pin = qm_app::hash_secret("bench-pin")?;
    let regions = (cfg.units / 10).max(1);
    let depts = cfg.units.saturating_sub(1 + regions).max(1);
    let mut setup: Vec<Command> = vec![];
    for r in 0..regions {
        setup.push(Command::CreateUnit { unit: id(UnitId::parse(&format!("R-{r:02}")))?, name: format!("Region {r}"), parent: hq.clone() });
    }
    for d in 0..depts {
        let unit = unit_id(d)?;
        setup.push(Command::CreateUnit {
            unit: unit.clone(),
            name: format!("Department {d}"),
            parent: id(UnitId::parse(&format!("R-{:02}", d % regions)))?,
        });
        setup.push(Command::CreateLocation {
            location: id(LocationId::parse(&format!("ARM-{d:03}")))?,
            name: "Armory".into(),
            unit: unit.clone(),
            parent: None,
            kind: LocationKind::Armory,
            keeper: None,
            magazine: None,
        });
        for rack in ["RACK", "AMMO"] {
            setup.push(Command::CreateLocation {
                location: id(LocationId::parse(&format!("{rack}-{d:03}")))?,
                name: rack.into(),
                unit: unit.clone(),
                parent: Some(id(LocationId::parse(&format!("ARM-{d:03}")))?),
                kind: if rack == "RACK" { LocationKind::Rack } else { LocationKind::Locker },
                keeper: None,
                magazine: None,
            });
        }
    }
    for (t, kind, tracking, uom) in
        [("RIFLE", ItemKind::Weapon, Tracking::Serial, "each"), ("AMMO", ItemKind::Ammunition, Tracking::Lot, "round")]
    {
        setup.push(Command::DefineItemType {
            item_type: id(ItemTypeId::parse(t))?,
            name: t.into(),
            kind,
            tracking,
            unit_of_measure: uom.into(),
            neq_kg_per_unit: 0.0,
            un_code: (t == "AMMO").then(|| "1.4S".to_string()),
            qualification: None,
        });
    }
    // Per department: an armorer (A), a logistics officer (L), an inspector (I); the rest members.
    for s in 0..cfg.staff {
        let d = s % depts;
        let roles = match s / depts {
            0 => vec![Role::Armorer],
            1 => vec![Role::Logistics],
            2 => vec![Role::Inspector],
            _ => vec![Role::Member],
        };
        setup.push(Command::RegisterPerson {
            badge: id(Badge::parse(&format!("P{s:05}")))?,
            name: format!("Staff {s}"),
            unit: unit_id(d)?,
            roles,
            pin_hash: pin.clone(),
        });
    }
    let setup_total = setup.len() as u64;
    let mut key_n = 0usize;
    let mut next_key = || {
        key_n += 1;
        format!("b-{key_n}")
    };
    for (i, chunk) in setup.chunks(2000).enumerate() {
        let reqs = chunk.iter().map(|c| Request::new(admin.clone(), c.clone(), next_key(), now)).collect();
        for r in site.execute_batch(reqs) {
            r?;
        }
        progress("organization", ((i + 1) * 2000).min(setup.len()) as u64, setup_total);
    }
    let armorer = |d: usize| id(Badge::parse(&format!("P{d:05}")));
    let logistics = |d: usize| id(Badge::parse(&format!("P{:05}", d + depts)));
    let inspector = |d: usize| id(Badge::parse(&format!("P{:05}", d + 2 * depts)));
    // Stock: serials into racks and lots into lockers, department by department.
    let per_dept_serials = cfg.serials / depts;
    let per_dept_lots = (cfg.lots / depts).max(1);
    let mut reqs = vec![];
    for d in 0..depts {
        for chunk in (0..per_dept_serials).collect::<Vec<_>>().chunks(1000) {
            let lines = chunk
                .iter()
                .map(|i| {
                    Ok(ReceiptLine {
                        item_type: id(ItemTypeId::parse("RIFLE"))?,
                        serial: Some(id(Serial::parse(&format!("S{d:03}-{i:05}")))?),
                        lot: None,
                        quantity: Quantity::ONE,
                        manufactured: None,
                        expires: None,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            reqs.push(Request::new(
                armorer(d)?,
                Command::Receive {
                    to: id(LocationId::parse(&format!("RACK-{d:03}")))?,
                    from: "Arms Depot".into(),
                    document: "DN".into(),
                    lines,
                },
                next_key(),
                now,
            ));
        }
        let lines = (0..per_dept_lots)
            .map(|i| {
                Ok(ReceiptLine {
                    item_type: id(ItemTypeId::parse("AMMO"))?,
                    serial: None,
                    lot: Some(id(LotNo::parse(&format!("L{d:03}-{i:04}")))?),
                    quantity: Quantity::units(10_000),
                    manufactured: None,
                    expires: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        reqs.push(Request::new(
            armorer(d)?,
            Command::Receive {
                to: id(LocationId::parse(&format!("AMMO-{d:03}")))?,
                from: "Ammunition Depot".into(),
                document: "DN".into(),
                lines,
            },
            next_key(),
            now,
        ));
    }
    let stock_total = reqs.len() as u64;
    let mut done = 0u64;
    for chunk in reqs.chunks(20) {
        for r in site.execute_batch(chunk.to_vec()) {
            r?;
        }
        done += chunk.len() as u64;
        progress("stock", done, stock_total);
    }
    site.checkpoint()?;
    let build_seconds = t_build.elapsed().as_secs_f64();
    let entries_before_mix = site.size();

    // Shift change: bursts of issues then returns, pipelined group commit in batches of 500. The
    // requests are made before the clock starts, as they would arrive from the counters: the figure
    // is the site's work (validate, encode, hash, commit), not the load generator's.
    let members_per_dept = (cfg.staff / depts).saturating_sub(3).max(1);
    let mut batches: Vec<Vec<Request>> = vec![];
    let mut issued: Vec<(usize, usize, usize)> = vec![];
    let mut moved = 0usize;
    while moved < cfg.movements {
        let mut batch = vec![];
        if batches.len().is_multiple_of(2) {
            for k in 0..500usize {
                let n = moved + k;
                let d = n % depts;
                let s = (n / depts) % per_dept_serials.max(1);
                let m = 3 + (n / depts) % members_per_dept;
                issued.push((d, s, m));
                batch.push(Request::new(
                    armorer(d)?,
                    Command::Issue {
                        to: id(Badge::parse(&format!("P{:05}", d + m * depts)))?,
                        from: None,
                        items: vec![ItemRef::Serial(id(Serial::parse(&format!("S{d:03}-{s:05}")))?)],
                    },
                    next_key(),
                    now,
                ));
            }
        } else {
            for (d, s, m) in issued.drain(..) {
                batch.push(Request::new(
                    armorer(d)?,
                    Command::return_to(
                        id(Badge::parse(&format!("P{:05}", d + m * depts)))?,
                        id(LocationId::parse(&format!("RACK-{d:03}")))?,
                        vec![ItemRef::Serial(id(Serial::parse(&format!("S{d:03}-{s:05}")))?)],
                    ),
                    next_key(),
                    now,
                ));
            }
        }
        moved += batch.len();
        batches.push(batch);
    }
    site.start_writer()?;
    let mut ops = vec![];
    let mut lat = Vec::with_capacity(cfg.movements);
    // Three rounds, each of whole issue-and-return bursts; the rate is the best round's, as for the
    // baselines (this machine's disk and CPU vary by tens of percent from one second to the next).
    let per_round = (batches.len() / ROUNDS).max(2) & !1;
    let (mut best, mut movement_wall, mut movement_writer_busy) = (0.0f64, Duration::ZERO, Duration::ZERO);
    let mut moved = 0usize;
    let total_batches = batches.len();
    let mut batches = batches.into_iter();
    for round in 0..ROUNDS {
        let take = if round + 1 == ROUNDS { total_batches } else { per_round };
        let busy_before = site.writer_busy();
        let t = Instant::now();
        let mut pending: Option<(qm_app::Ticket, Instant, usize)> = None;
        let mut in_round = 0usize;
        for batch in batches.by_ref().take(take) {
            let n = batch.len();
            let sent = Instant::now();
            let ticket = site.submit(batch);
            if let Some((p, at, k)) = pending.take() {
                for r in site.finish(p) {
                    r?;
                }
                let l = at.elapsed();
                lat.extend(std::iter::repeat_n(l, k));
            }
            pending = Some((ticket, sent, n));
            moved += n;
            in_round += n;
            progress("shift change", moved as u64, cfg.movements as u64);
        }
        if let Some((p, at, k)) = pending.take() {
            for r in site.finish(p) {
                r?;
            }
            lat.extend(std::iter::repeat_n(at.elapsed(), k));
        }
        let (wall, busy) = (t.elapsed(), site.writer_busy().saturating_sub(busy_before));
        let rate = in_round as f64 / wall.as_secs_f64().max(1e-9);
        if in_round > 0 && rate > best {
            (best, movement_wall, movement_writer_busy) = (rate, wall, busy);
        }
    }
    let mut movement_fig = figure("issue/return (pipelined batches of 500)", lat, movement_wall);
    movement_fig.per_second = best;
    let movement_rate = best;
    ops.push(movement_fig);
    // Receipts, transfers and counts, one command at a time (each acknowledged durable on its own).
    let mut one = |site: &mut Site, actor: Badge, command: Command, lat: &mut Vec<Duration>| -> Result<Outcome> {
        let t = Instant::now();
        let ticket = site_submit(site, actor, command, next_key(), now);
        let o = site.finish(ticket);
        lat.push(t.elapsed());
        o.into_iter().next().unwrap_or_else(|| Err(AppError::Internal("no result".into())))
    };
    let (mut lat_r, mut lat_t, mut lat_c) = (vec![], vec![], vec![]);
    let t = Instant::now();
    let receipts = 200.min(depts * 10);
    for i in 0..receipts {
        let d = i % depts;
        let lines = (0..50)
            .map(|k| {
                Ok(ReceiptLine {
                    item_type: id(ItemTypeId::parse("AMMO"))?,
                    serial: None,
                    lot: Some(id(LotNo::parse(&format!("N{d:03}-{i:04}-{k:02}")))?),
                    quantity: Quantity::units(1000),
                    manufactured: None,
                    expires: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        one(
            &mut site,
            armorer(d)?,
            Command::Receive {
                to: id(LocationId::parse(&format!("AMMO-{d:03}")))?,
                from: "Depot".into(),
                document: format!("DN-{i}"),
                lines,
            },
            &mut lat_r,
        )?;
    }
    ops.push(figure("receipt of 50 lots", lat_r, t.elapsed()));
    let t = Instant::now();
    let transfers = 100.min(depts * 5);
    for i in 0..transfers {
        let (d, e) = (i % depts, (i + 1) % depts);
        let lot = id(LotNo::parse(&format!("L{d:03}-{:04}", i % per_dept_lots)))?;
        let o = one(
            &mut site,
            logistics(d)?,
            Command::Dispatch {
                from: id(LocationId::parse(&format!("AMMO-{d:03}")))?,
                to_unit: unit_id(e)?,
                items: vec![ItemRef::Lot { lot: lot.clone(), quantity: Quantity::units(100) }],
                document: None,
            },
            &mut lat_t,
        )?;
        let transfer = o.entries.iter().find_map(|x| match &x.event {
            Event::TransferDispatched { transfer, .. } => Some(transfer.clone()),
            _ => None,
        });
        if let Some(tr) = transfer {
            one(
                &mut site,
                logistics(e)?,
                Command::ReceiveTransfer {
                    transfer: tr,
                    to: id(LocationId::parse(&format!("AMMO-{e:03}")))?,
                    received: vec![ItemRef::Lot { lot, quantity: Quantity::units(100) }],
                },
                &mut lat_t,
            )?;
        }
    }
    ops.push(figure("transfer dispatch or receipt", lat_t, t.elapsed()));
    let t = Instant::now();
    let counts = 20.min(depts);
    for d in 0..counts {
        let o = one(
            &mut site,
            inspector(d)?,
            Command::StartCount { root: id(LocationId::parse(&format!("RACK-{d:03}")))?, kind: CountKind::Cycle, blind: true },
            &mut lat_c,
        )?;
        let count = o.entries.iter().find_map(|x| match &x.event {
            Event::CountStarted { count, .. } => Some(count.clone()),
            _ => None,
        });
        let Some(count) = count else { continue };
        let serials: Vec<Serial> =
            (0..per_dept_serials.min(1000)).map(|s| id(Serial::parse(&format!("S{d:03}-{s:05}")))).collect::<Result<_>>()?;
        one(
            &mut site,
            inspector(d)?,
            Command::RecordCount { count: count.clone(), location: id(LocationId::parse(&format!("RACK-{d:03}")))?, serials, lots: vec![] },
            &mut lat_c,
        )?;
        one(&mut site, inspector(d)?, Command::CloseCount { count }, &mut lat_c)?;
    }
    ops.push(figure("count start, record 1000 serials, close", lat_c, t.elapsed()));
    site.checkpoint()?;
    // The auditor's rates are measured on a quiet site: the writer stops here, writing the rows it
    // held back (up to 20,000 entries' worth; written while verify ran, they took a third of its
    // time on the quick organization on PostgreSQL).
    site.stop_writer();
    let entries = site.size();
    let _ = entries_before_mix;

    // Baselines and the auditor's rates.
    let mut all: Vec<Vec<u8>> = Vec::with_capacity(entries as usize);
    site.store().scan_entries(0, &mut |_, _, bytes, _| {
        all.push(bytes.to_vec());
        true
    })?;
    let total: usize = all.iter().map(Vec::len).sum();
    let avg = total / all.len().max(1);
    let (sha_s, verify_s) = tree_verify_against_sha256(site.store(), &all)?;
    let sha = total as f64 / sha_s / 1e6;
    let verify_rate = total as f64 / verify_s / 1e6;
    let t = Instant::now();
    let mut state = State::new();
    for b in &all {
        state.apply(&decode(b).map_err(AppError::Internal)?).map_err(|e| AppError::Internal(e.to_string()))?;
    }
    let rebuild = all.len() as f64 / t.elapsed().as_secs_f64();
    let rows = (cfg.movements / ROUNDS).clamp(500, 100_000);
    let mut raw = 0.0f64;
    for round in 0..ROUNDS {
        raw = raw.max(raw_inserts(site.store().backend(), db, scratch, rows, avg + 64, round)?);
    }
    Ok(BenchReport {
        backend: site.store().backend().to_string(),
        entries,
        build_seconds,
        operations: ops,
        raw_inserts_per_second: raw,
        movements_to_raw_inserts: movement_rate / raw,
        movement_seconds: movement_wall.as_secs_f64(),
        movement_writer_busy_seconds: movement_writer_busy.as_secs_f64(),
        verify_mb_per_second: verify_rate,
        sha256_mb_per_second: sha,
        verify_to_sha256: verify_rate / sha,
        rebuild_entries_per_second: rebuild,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Seconds for raw SHA-256 over `entries` (one digest per entry, in memory) and for verify's tree
/// path over the store that holds them, each the best of five rounds run one after the other, so
/// that a slow moment of a shared machine does not fall on one side only (a database server's
/// autovacuum after the bench's writes takes one of the two cores for a while; each round is a
/// fraction of a second). Used by `qm bench` and `cargo bench --bench ledger`.
pub fn tree_verify_against_sha256(store: &dyn qm_store::Store, entries: &[Vec<u8>]) -> Result<(f64, f64)> {
    let (mut sha_s, mut verify_s) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let t = Instant::now();
        let mut acc = 0u8;
        for b in entries {
            acc ^= sha2::Sha256::digest(b)[0];
        }
        std::hint::black_box(acc);
        sha_s = sha_s.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let report = verify(store, &VerifyOptions { verifier_key: None, skip_replay: true, ..Default::default() });
        verify_s = verify_s.min(t.elapsed().as_secs_f64());
        if !report.ok() {
            return Err(AppError::Internal(format!("the bench ledger does not verify: {:?}", report.problems)));
        }
    }
    Ok((sha_s, verify_s))
}

fn site_submit(site: &mut Site, actor: Badge, command: Command, key: String, at: OffsetDateTime) -> qm_app::Ticket {
    site.submit(vec![Request::new(actor, command, key, at)])
}

/// Rounds of the movement bursts and of the raw-insert baseline; each figure is its best round's.
const ROUNDS: usize = 3;

/// One round of raw inserts of rows of the ledger's entry size into the same kind of backend, same settings.
fn raw_inserts(backend: &str, db: &str, scratch: &Path, rows: usize, row_bytes: usize, round: usize) -> Result<f64> {
    match backend {
        "sqlite" => Ok(qm_store_sqlite::raw_insert_rate(&scratch.join("raw-baseline.db"), rows, row_bytes, 500)?),
        "postgres" => Ok(qm_store_postgres::raw_insert_rate(db, rows, row_bytes, 500, round, round + 1 == ROUNDS)?),
        other => Err(AppError::Usage(format!("no raw-insert baseline for backend {other} yet"))),
    }
}
