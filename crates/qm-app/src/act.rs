//! Acting: the one path from presented credentials to a durable commit, taken by every edge (the
//! CLI on its own thread; the server with the slow comparison off the site's thread, step by step):
//!
//! 1. **eligible** — a witness is a different person whose role allows witnessing and whose unit
//!    covers the units the command acts in ([`Site::witness_eligible`]). This is checked *before*
//!    any PIN is compared, so nobody can learn whether another unit's PIN is right.
//! 2. **secrets** — each PIN (or password) is compared through its badge's lockout: [`Site::attempt`]
//!    reads the hash (fast, on the site's thread), [`Attempt::matches`] compares (Argon2id, slow,
//!    any thread), [`Attempt::settle`] counts the result. A wrong PIN locks only its own badge.
//! 3. **denials** — every refusal of a credential or of authority is a denied attempt in the
//!    ledger. [`Site::deny`] gathers them (alike ones within a gathering become one entry saying
//!    how many times and when), [`Site::flush_denials`] records them in one durable commit.
//! 4. **execute** — the command is decided (an API token's scope, the actor's roles and unit, the
//!    rules) and committed; a denial of authority there is recorded in the same commit.
//!
//! [`Site::act`] runs all four for an edge that compares secrets on its own thread (the CLI).

use crate::credentials::check_secret;
use crate::{AppError, Denial, Outcome, Request, Result, Site};
use qm_core::event::CredentialKind;
use qm_core::permissions::{role_allows, Op};
use qm_core::{Badge, Command, Rejection};
use std::sync::Arc;
use time::OffsetDateTime;

/// A badge and the secret (PIN or password) presented for it.
pub struct Presented {
    pub badge: Badge,
    pub secret: String,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Presented({}, <secret>)", self.badge)
    }
}

/// One act as an edge presents it: who, with which PIN, witnessed by whom, doing what.
#[derive(Debug)]
pub struct Act {
    pub actor: Presented,
    pub witness: Option<Presented>,
    pub command: Command,
    pub idempotency_key: String,
    pub at: OffsetDateTime,
    /// Where the attempt comes from, for the denial's reason ("the command line", an address).
    pub from: String,
}

/// A comparison of one presented secret, begun on the site's thread (the badge is not locked; its
/// stored hash) and finished anywhere.
pub struct Attempt {
    pub badge: Badge,
    pub kind: CredentialKind,
    hash: Option<String>,
    lockout: Arc<crate::credentials::Lockout>,
    /// Why the person may not act now (suspended), said only to one who presented the right secret.
    suspended: Option<String>,
}

impl Attempt {
    /// Compares `secret` with the stored hash: Argon2id, slow on purpose; runs on any thread.
    pub fn matches(&self, secret: &str) -> bool {
        check_secret(secret, self.hash.as_deref())
    }

    /// The stored hash, for an edge that compares it on a pool of its own.
    pub fn hash(&self) -> Option<String> {
        self.hash.clone()
    }

    /// Counts the comparison in the badge's lockout: a success clears its failures, a failure
    /// counts one and may lock it (`auth.locked`). Returns the answer to give.
    pub fn settle(&self, matched: bool) -> Result<()> {
        self.lockout.settle(&self.badge, matched, OffsetDateTime::now_utc(), self.kind)?;
        match &self.suspended {
            Some(message) if matched => Err(AppError::Rejected(Rejection::Refused { rule: "person.suspended", message: message.clone() })),
            _ => Ok(()),
        }
    }
}

/// The reason a refused credential is recorded with (`locked`: the badge was locked, `auth.locked`).
pub fn denial_reason(locked: bool, kind: CredentialKind, from: &str) -> String {
    let what = match (locked, kind) {
        (true, _) => "badge locked",
        (false, CredentialKind::Pin) => "badge or PIN not accepted",
        (false, CredentialKind::Password) => "badge or password not accepted",
        (false, CredentialKind::Duress) => "badge or PIN not accepted",
    };
    format!("{what}, from {from}")
}

/// Denied attempts waiting to be recorded; alike ones (same who, operation and reason) are one
/// entry that says how many and over what time. Failed sign-ins and API tokens — what a client
/// that is nobody yet can cause — are summarized longer: per operation and reason (which names the
/// source address) over `every`, one entry naming the badges tried, so a flood of bad sign-ins is a
/// handful of entries and commits, still in the ledger.
#[derive(Debug)]
pub(crate) struct Denials {
    pending: Vec<(Denial, u32, OffsetDateTime)>,
    summaries: Vec<Summary>,
    /// How long failed sign-ins are gathered into one summary.
    pub(crate) every: time::Duration,
}

impl Default for Denials {
    fn default() -> Denials {
        Denials { pending: vec![], summaries: vec![], every: time::Duration::seconds(SIGN_IN_SUMMARY_S as i64) }
    }
}

/// Failed sign-ins of one operation and reason (and so one source address) within one interval.
#[derive(Debug)]
struct Summary {
    first: Denial,
    who: std::collections::BTreeSet<String>,
    n: u32,
    last: OffsetDateTime,
}

/// Distinct denials gathered before `deny` records them without waiting for a flush.
pub const DENIALS_MAX: usize = 1000;
/// Default interval over which failed sign-ins from one source become one entry.
pub const SIGN_IN_SUMMARY_S: u64 = 60;
/// Badges a summary names; beyond, it says how many more.
const SUMMARY_NAMES_MAX: usize = 5;

/// Operations denied before anybody is signed in: summarized (see [`Denials`]).
fn summarized(operation: &str) -> bool {
    matches!(operation, "sign_in" | "api" | "access_webhook")
}

fn hms(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

fn times(reason: &str, n: u32, first: OffsetDateTime, last: OffsetDateTime) -> String {
    if n > 1 {
        format!("{reason} ({n} times, {} to {})", hms(first), hms(last))
    } else {
        reason.to_string()
    }
}

impl Denials {
    fn add(&mut self, d: Denial) {
        if summarized(&d.operation) {
            return self.summarize(d);
        }
        match self.pending.iter_mut().find(|(p, ..)| p.who == d.who && p.operation == d.operation && p.reason == d.reason) {
            Some((_, n, last)) => {
                *n += 1;
                *last = d.at;
            }
            None => {
                let at = d.at;
                self.pending.push((d, 1, at));
            }
        }
    }

    fn summarize(&mut self, d: Denial) {
        match self.summaries.iter_mut().find(|s| s.first.operation == d.operation && s.first.reason == d.reason) {
            Some(s) => {
                s.n += 1;
                s.last = d.at;
                if s.who.len() <= SUMMARY_NAMES_MAX {
                    s.who.insert(d.who);
                }
            }
            None => {
                let who = std::iter::once(d.who.clone()).collect();
                let last = d.at;
                self.summaries.push(Summary { first: d, who, n: 1, last });
            }
        }
    }

    fn pending(&self) -> usize {
        self.pending.len() + self.summaries.len()
    }

    /// The denials to record now: every alike group, and the summaries whose interval has passed
    /// (all of them when `all`, at shutdown).
    fn take(&mut self, now: OffsetDateTime, all: bool) -> Vec<Denial> {
        let mut out: Vec<Denial> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(mut d, n, last)| {
                d.reason = times(&d.reason, n, d.at, last);
                d.at = last;
                d
            })
            .collect();
        let every = self.every;
        let (due, kept): (Vec<Summary>, Vec<Summary>) =
            std::mem::take(&mut self.summaries).into_iter().partition(|s| all || now - s.first.at >= every);
        self.summaries = kept;
        out.extend(due.into_iter().map(|s| {
            let mut names: Vec<String> = s.who.into_iter().collect();
            if names.len() > SUMMARY_NAMES_MAX {
                names.truncate(SUMMARY_NAMES_MAX);
                names.push("others".into());
            }
            Denial { who: names.join(", "), reason: times(&s.first.reason, s.n, s.first.at, s.last), at: s.last, ..s.first }
        }));
        out
    }
}

impl Site {
    /// Step 1: refuses a witness who could not witness this command whatever PIN they give — the
    /// actor themselves, an unknown badge, no role that witnesses, or a unit that does not cover
    /// the units the command acts in (rule `two_person`).
    pub fn witness_eligible(&self, actor: &Badge, witness: &Badge, command: &Command) -> Result<()> {
        let refuse = |message: String| Err(AppError::Rejected(Rejection::Refused { rule: "two_person", message }));
        if witness == actor {
            return refuse(format!("the witness must be a different person from badge {actor}"));
        }
        let s = self.state();
        let Some(p) = s.people.get(witness) else {
            return refuse(format!("badge {witness} is not authorized to witness: no such person"));
        };
        // A suspension is said only after the witness's PIN matched (deciding refuses `person.suspended`).
        if !p.roles.iter().any(|r| role_allows(*r, Op::Witness)) {
            return refuse(format!("badge {witness} is not authorized to witness: no role of theirs allows it"));
        }
        match qm_core::decide::scope::units_of(s, command).into_iter().find(|u| !s.unit_within(u, &p.unit)) {
            Some(u) => refuse(format!("badge {witness} is not authorized to witness at unit {u}")),
            None => Ok(()),
        }
    }

    /// Step 2's start, on the site's thread: refuses a locked badge (`auth.locked`) and reads the
    /// hash the secret is compared with.
    pub fn attempt(&self, badge: &Badge, kind: CredentialKind) -> Result<Attempt> {
        self.lockout.check(badge, OffsetDateTime::now_utc())?;
        let suspended = self
            .state()
            .people
            .get(badge)
            .and_then(|p| p.suspended.as_ref())
            .map(|s| format!("badge {badge} is suspended since {}: {}; ask an administrator of the unit", s.since.date(), s.reason));
        Ok(Attempt { badge: badge.clone(), kind, hash: self.credential_hash(badge, kind)?, lockout: self.lockout.clone(), suspended })
    }

    /// Step 2 on this thread: a presented secret is checked, and a refusal gathered as a denial of
    /// `operation`. Returns the refusal.
    pub fn check_presented(&mut self, p: &Presented, kind: CredentialKind, operation: &str, from: &str) -> Result<()> {
        let r = self.attempt(&p.badge, kind).and_then(|a| a.settle(a.matches(&p.secret)));
        let reason = match &r {
            Err(e @ (AppError::BadCredentials { .. } | AppError::Locked { .. })) => {
                Some(denial_reason(matches!(e, AppError::Locked { .. }), kind, from))
            }
            Err(e @ AppError::Rejected(_)) => Some(format!("{e}, from {from}")),
            _ => None,
        };
        if let Some(reason) = reason {
            self.deny(Denial { who: p.badge.to_string(), operation: operation.to_string(), reason, at: OffsetDateTime::now_utc() })?;
        }
        r
    }

    /// Step 3: gathers a denied attempt, to be recorded with others by [`Site::flush_denials`]
    /// (or at once when [`DENIALS_MAX`] distinct ones are waiting: then the error of recording them).
    pub fn deny(&mut self, d: Denial) -> Result<()> {
        self.denials.add(d);
        if self.denials.pending() >= DENIALS_MAX {
            return self.flush_all_denials();
        }
        Ok(())
    }

    /// Records one denial with those gathered, at once.
    pub fn record_denial_now(&mut self, d: Denial) -> Result<()> {
        self.denials.add(d);
        self.flush_all_denials()
    }

    /// Records the gathered denials in one durable commit, one entry per distinct attempt; failed
    /// sign-ins only once their summary's interval has passed.
    pub fn flush_denials(&mut self) -> Result<()> {
        let gathered = self.denials.take(OffsetDateTime::now_utc(), false);
        self.record_denials(&gathered)
    }

    /// Records every gathered denial, summaries included (at shutdown, or when too many wait).
    pub fn flush_all_denials(&mut self) -> Result<()> {
        let gathered = self.denials.take(OffsetDateTime::now_utc(), true);
        self.record_denials(&gathered)
    }

    /// How long failed sign-ins and API tokens are gathered into one entry per source
    /// (default [`SIGN_IN_SUMMARY_S`]).
    pub fn set_sign_in_summary(&mut self, every: std::time::Duration) {
        self.denials.every = time::Duration::try_from(every).unwrap_or(time::Duration::seconds(SIGN_IN_SUMMARY_S as i64));
    }

    /// Steps 1 to 4 on this thread: the actor's PIN, the witness's eligibility and PIN, then the
    /// command. Every refusal of a credential or of authority is recorded before this returns.
    pub fn act(&mut self, a: Act) -> Result<Outcome> {
        let r = self.act_inner(a);
        let flushed = self.flush_denials();
        let outcome = r?;
        flushed?;
        Ok(outcome)
    }

    fn act_inner(&mut self, a: Act) -> Result<Outcome> {
        self.check_presented(&a.actor, CredentialKind::Pin, a.command.name(), &a.from)?;
        let actor = a.actor.badge;
        let witness = match &a.witness {
            Some(w) => {
                if let Err(e) = self.witness_eligible(&actor, &w.badge, &a.command) {
                    self.deny(Denial { who: w.badge.to_string(), operation: "witness".into(), reason: e.to_string(), at: a.at })?;
                    return Err(e);
                }
                self.check_presented(w, CredentialKind::Pin, "witness", &a.from)?;
                Some(w.badge.clone())
            }
            None => None,
        };
        let req =
            Request { token: None, actor, witness: witness.clone(), command: a.command, idempotency_key: a.idempotency_key, at: a.at };
        let r = self.execute(req);
        self.deny_refused_witness(&r, witness.as_ref(), a.at)?;
        r
    }

    /// A witness the rules refuse (`two_person` with a witness given) is a denied attempt of theirs.
    pub fn deny_refused_witness(&mut self, r: &Result<Outcome>, witness: Option<&Badge>, at: OffsetDateTime) -> Result<()> {
        match (r, witness) {
            (Err(AppError::Rejected(Rejection::Refused { rule: "two_person", message })), Some(w)) => {
                self.deny(Denial { who: w.to_string(), operation: "witness".into(), reason: message.clone(), at })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alike_denials_in_one_gathering_are_one_entry_saying_how_many() {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let d = |who: &str, at| Denial { who: who.into(), operation: "witness".into(), reason: "badge or PIN not accepted".into(), at };
        let mut g = Denials::default();
        g.add(d("0417", t0));
        g.add(d("0417", t0 + time::Duration::seconds(3)));
        g.add(d("0501", t0));
        let out = g.take(t0, false);
        assert_eq!(out.len(), 2);
        assert!(out[0].reason.ends_with("(2 times, 00:00:00 to 00:00:03)"), "{}", out[0].reason);
        assert_eq!(out[0].at, t0 + time::Duration::seconds(3));
        assert_eq!(out[1].reason, "badge or PIN not accepted");
        assert!(g.take(t0, false).is_empty(), "a gathering is taken once");
    }

    #[test]
    fn failed_sign_ins_from_one_address_are_one_entry_per_interval_naming_the_badges() {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let reason = |ip: &str| format!("badge or password not accepted, from {ip}");
        let d = |who: String, ip: &str, s: i64| Denial {
            who,
            operation: "sign_in".into(),
            reason: reason(ip),
            at: t0 + time::Duration::seconds(s),
        };
        let mut g = Denials::default();
        for i in 0..40 {
            g.add(d(format!("{:04}", i % 8), "10.0.0.7", i));
        }
        g.add(d("0417".into(), "10.0.0.9", 5));
        assert!(g.take(t0 + time::Duration::seconds(50), false).is_empty(), "held until the interval has passed");
        let out = g.take(t0 + time::Duration::seconds(65), false);
        assert_eq!(out.len(), 2, "one entry per address: {out:?}");
        assert_eq!(out[0].who, "0000, 0001, 0002, 0003, 0004, others");
        assert_eq!(out[0].reason, format!("{} (40 times, 00:00:00 to 00:00:39)", reason("10.0.0.7")));
        assert_eq!((out[1].who.as_str(), out[1].reason.clone()), ("0417", reason("10.0.0.9")));
        // At shutdown everything gathered is recorded, due or not.
        g.add(d("0417".into(), "10.0.0.9", 61));
        assert_eq!(g.take(t0 + time::Duration::seconds(62), true).len(), 1);
    }
}
