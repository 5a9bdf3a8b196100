//! Headquarters as the witness of many sites (docs/sites.md): how many checkpoints it cosigns per
//! second over HTTP, 100 simulated sites each growing and asking in turn, beside the in-run
//! baseline of the cryptography each cosignature needs (one Ed25519 verification of the site's
//! signature, one Ed25519 signature, and the consistency proof's SHA-256 hashes) done in a loop.
//!
//! `cargo bench -p qm-server --bench witness` (headquarters on PostgreSQL when
//! QM_TEST_POSTGRES_URL is set, else on SQLite)

mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::*;
use qm_ledger::witness::AddCheckpoint;
use qm_ledger::{Checkpoint, Frontier, Hash, LedgerError, SiteKey};
use std::time::Instant;
use time::OffsetDateTime;

const SITES: usize = 100;
const ROUNDS: usize = 10;
/// Entries a site writes between two syncs.
const GROWTH: usize = 30;
const IN_FLIGHT: usize = 8;

/// A simulated site: its key, and every tree hash its ledger stored (as a site's store keeps them).
struct Sim {
    key: SiteKey,
    tree: Frontier,
    stored: Vec<Hash>,
    held: u64,
}

impl qm_ledger::HashReader for Sim {
    fn read_hashes(&self, idx: &[u64]) -> Result<Vec<Hash>, LedgerError> {
        Ok(idx.iter().map(|i| self.stored[*i as usize]).collect())
    }
}

impl Sim {
    /// Writes `n` entries and signs a checkpoint; the request for the parent.
    fn grow(&mut self, n: usize) -> AddCheckpoint {
        for _ in 0..n {
            let entry = format!("{{\"site\":\"{}\",\"seq\":{}}}", self.key.name(), self.tree.size());
            let created = self.tree.push(qm_ledger::leaf_hash(entry.as_bytes()));
            self.stored.extend(created);
        }
        let size = self.tree.size();
        let note =
            qm_ledger::sign_checkpoint(&self.key, &Checkpoint { origin: self.key.name().into(), size, root: self.tree.root() }).unwrap();
        let proof = if self.held == 0 { vec![] } else { qm_ledger::prove_consistency(self.held, size, self).unwrap() };
        AddCheckpoint { old: self.held, proof, note }
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let at = OffsetDateTime::now_utc();
    let scratch = std::env::var("QM_TEST_POSTGRES_URL").ok().map(|u| qm_store_postgres::scratch::ScratchDatabase::create(&u).unwrap());
    let (db, key) = match &scratch {
        Some(s) => (s.url().to_string(), dir.path().join("hq.key")),
        None => (dir.path().join("hq.db").display().to_string(), dir.path().join("hq.db.key")),
    };
    let g = qm_app::Genesis {
        site: "hq.bench",
        root_unit: &id(qm_core::UnitId::parse("HQ")),
        root_unit_name: "HQ",
        admin: &id(qm_core::Badge::parse("0001")),
        admin_name: "Admin",
        admin_pin: "1234",
        at,
    };
    let site = qm_app::Site::init(qm_backends::open_store, &db, &key, &g).unwrap();
    let mut sims: Vec<Sim> = (0..SITES)
        .map(|i| Sim { key: SiteKey::generate(&format!("d{i}.bench")), tree: Frontier::new(), stored: vec![], held: 0 })
        .collect();
    let children: String =
        sims.iter().map(|s| format!("[children.\"{}\"]\nkey = \"{}\"\nunit = \"HQ\"\n", s.key.name(), s.key.verifier_key())).collect();
    let file = dir.path().join("children.toml");
    std::fs::write(&file, children).unwrap();
    // The baseline: the cryptography of one cosignature, in a loop (verify the site's signature,
    // hash the proof's path, sign), on requests made the same way.
    let witness = SiteKey::generate("hq.bench/witness");
    let mut sample = Sim { key: SiteKey::generate("sample.bench"), tree: Frontier::new(), stored: vec![], held: 0 };
    sample.grow(GROWTH * 5);
    sample.held = sample.tree.size();
    let req = sample.grow(GROWTH);
    let verifier = qm_ledger::CheckpointVerifier::new(&sample.key.verifier_key()).unwrap();
    let n_base = 2000;
    let t = Instant::now();
    for i in 0..n_base {
        let cp = verifier.open(&req.note).unwrap();
        qm_ledger::check_consistency(&req.proof, req.old, &sample_root(&sample, req.old), cp.size, &cp.root).unwrap();
        qm_ledger::witness::cosign(&witness, &req.note, 1_700_000_000 + i).unwrap();
    }
    let base = n_base as f64 / t.elapsed().as_secs_f64();
    let requests: Vec<Vec<String>> = (0..ROUNDS)
        .map(|_| {
            sims.iter_mut()
                .map(|s| {
                    let r = s.grow(GROWTH);
                    s.held = s.tree.size();
                    r.body()
                })
                .collect()
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let config = qm_server::Config {
            addr: "127.0.0.1:0".into(),
            db: db.to_string(),
            key: Some(key.display().to_string()),
            children: Some(file.display().to_string()),
            ..qm_server::Config::default()
        };
        let running = qm_server::start(config, site).await.unwrap();
        let url = format!("http://{}/witness/add-checkpoint", running.addr);
        let client = reqwest::Client::new();
        let n = SITES * ROUNDS;
        let start = Instant::now();
        let mut sending = tokio::task::JoinSet::new();
        for round in requests {
            for body in round {
                if sending.len() == IN_FLIGHT {
                    sending.join_next().await.unwrap().unwrap();
                }
                let (client, url) = (client.clone(), url.clone());
                sending.spawn(async move {
                    let r = client.post(url).body(body).send().await.unwrap();
                    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap_or_default());
                });
            }
            // A round's checkpoints extend the last round's: each site's next request waits for its last.
            while let Some(r) = sending.join_next().await {
                r.unwrap();
            }
        }
        let ours = n as f64 / start.elapsed().as_secs_f64();
        let backend = if db.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
        println!(
            "witness: {SITES} sites × {ROUNDS} rounds, {GROWTH} entries a round, {IN_FLIGHT} requests in flight, headquarters on {backend}"
        );
        println!("  baseline: verify + consistency check + cosign in a loop, no I/O: {base:>8.0} /s");
        println!("  cosignatures over HTTP, each recorded durably before the answer: {ours:>8.0} /s   ratio {:.2}", ours / base);
        running.stop().await.unwrap();
    });
}

/// The root of `s`'s tree at `size` (the size the witness holds), from its stored hashes.
fn sample_root(s: &Sim, size: u64) -> Hash {
    qm_ledger::tree_root(size, s).unwrap()
}
