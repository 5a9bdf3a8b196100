//! Credentials outside the ledger: which credential a command sets or removes (its hash goes to the
//! store's credentials table, in the same transaction as the entry recording it), and the lockout
//! of a badge after repeated failed PINs or passwords.
//!
//! The ledger says *that* a PIN, password or token was set or revoked, by whom and when; it never
//! holds the Argon2id hash (docs/ledger.md, "Credentials"), so a ledger can be handed to an auditor.

use crate::AppError;
use qm_core::event::CredentialKind;
use qm_core::{Badge, Command, Envelope, Event};
use qm_store::CredentialChange;
use std::collections::HashMap;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Shortest PIN (and password) accepted; longer ones are up to 128 characters.
pub const PIN_LEN_MIN: usize = 4;
/// Failed attempts for one badge, within [`LOCKOUT_WINDOW`], that lock it.
pub const LOCKOUT_FAILURES: u32 = 5;
/// How long failures count, and how long a locked badge stays locked.
pub const LOCKOUT_WINDOW: Duration = Duration::minutes(15);

pub fn badge_subject(badge: &Badge) -> String {
    format!("badge:{badge}")
}

pub fn token_subject(token: &str) -> String {
    format!("token:{token}")
}

/// The credential changes an accepted command makes, stamped with the entry that records each.
pub fn changes(command: &Command, entries: &[Envelope]) -> Vec<CredentialChange> {
    let seq_of = |pred: &dyn Fn(&Event) -> bool| entries.iter().rev().find(|e| pred(&e.event)).map(|e| e.seq);
    let change = |subject: String, kind: &str, hash: Option<&String>, seq: Option<u64>| {
        seq.map(|seq| CredentialChange { subject, kind: kind.to_string(), hash: hash.cloned(), seq })
    };
    let one = match command {
        Command::RegisterPerson { badge, pin_hash, .. } => change(
            badge_subject(badge),
            "pin",
            Some(pin_hash),
            seq_of(&|e| matches!(e, Event::CredentialSet { badge: b, kind: CredentialKind::Pin, .. } if b == badge)),
        ),
        Command::SetCredential { badge, kind, hash } => change(
            badge_subject(badge),
            kind.as_str(),
            Some(hash),
            seq_of(&|e| matches!(e, Event::CredentialSet { badge: b, .. } if b == badge)),
        ),
        Command::IssueToken { token, secret_hash, .. } => change(
            token_subject(token),
            "token",
            Some(secret_hash),
            seq_of(&|e| matches!(e, Event::TokenIssued { token: t, .. } if t == token)),
        ),
        Command::RevokeToken { token, .. } => {
            change(token_subject(token), "token", None, seq_of(&|e| matches!(e, Event::TokenRevoked { token: t, .. } if t == token)))
        }
        _ => None,
    };
    one.into_iter().collect()
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    first: Option<OffsetDateTime>,
    locked_until: Option<OffsetDateTime>,
}

/// Failed attempts per badge: [`LOCKOUT_FAILURES`] within [`LOCKOUT_WINDOW`] lock the badge for
/// [`LOCKOUT_WINDOW`]; a locked badge is refused before its PIN is even compared (rule
/// `auth.locked`). Kept in memory by the process that checks PINs: the server, for every client;
/// a `qm` command runs where the database file is, and has only its own attempts.
#[derive(Debug, Default)]
pub struct Lockout {
    badges: Mutex<HashMap<Badge, Failures>>,
}

impl Lockout {
    /// Refuses a locked badge.
    pub fn check(&self, badge: &Badge, now: OffsetDateTime) -> Result<(), AppError> {
        let map = self.badges.lock().map_err(|_| AppError::Internal("the lockout table is poisoned".into()))?;
        match map.get(badge).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err(AppError::Locked { badge: badge.to_string(), until }),
            _ => Ok(()),
        }
    }

    /// Notes the result of a comparison: a success clears the badge's failures; a failure counts
    /// one and may lock it. Returns the answer to give.
    pub fn settle(&self, badge: &Badge, matched: bool, now: OffsetDateTime, kind: CredentialKind) -> Result<(), AppError> {
        let mut map = self.badges.lock().map_err(|_| AppError::Internal("the lockout table is poisoned".into()))?;
        if matched {
            map.remove(badge);
            return Ok(());
        }
        let f = map.entry(badge.clone()).or_default();
        if f.first.is_none_or(|t| now - t > LOCKOUT_WINDOW) {
            *f = Failures { count: 0, first: Some(now), locked_until: None };
        }
        f.count += 1;
        if f.count >= LOCKOUT_FAILURES {
            f.locked_until = Some(now + LOCKOUT_WINDOW);
        }
        let _ = kind;
        Err(AppError::BadCredentials { badge: badge.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_a_badge_for_the_window_and_a_success_clears_them() {
        let l = Lockout::default();
        let b = Badge::parse("0417").unwrap();
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        for i in 0..LOCKOUT_FAILURES {
            assert!(l.check(&b, t0).is_ok(), "attempt {i}");
            assert!(matches!(l.settle(&b, false, t0, CredentialKind::Pin), Err(AppError::BadCredentials { .. })));
        }
        let e = l.check(&b, t0 + Duration::minutes(1)).unwrap_err();
        assert!(e.to_string().contains("badge 0417") && e.to_string().contains("auth.locked"), "{e}");
        assert!(l.check(&b, t0 + LOCKOUT_WINDOW + Duration::seconds(1)).is_ok(), "the lock ends");
        // A success clears the failures before it.
        let other = Badge::parse("0501").unwrap();
        for _ in 0..LOCKOUT_FAILURES - 1 {
            let _ = l.settle(&other, false, t0, CredentialKind::Pin);
        }
        assert!(l.settle(&other, true, t0, CredentialKind::Pin).is_ok());
        for _ in 0..LOCKOUT_FAILURES - 1 {
            let _ = l.settle(&other, false, t0, CredentialKind::Pin);
        }
        assert!(l.check(&other, t0).is_ok());
    }
}
