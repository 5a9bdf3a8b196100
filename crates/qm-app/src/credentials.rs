//! Credentials outside the ledger: which credential a command sets or removes (its hash goes to the
//! store's credentials table, in the same transaction as the entry recording it), and the lockout
//! of a badge after repeated failed PINs or passwords.
//!
//! The ledger says *that* a PIN, password or token was set or revoked, by whom and when; it never
//! holds the Argon2id hash (docs/ledger.md, "Credentials"), so a ledger can be handed to an auditor.

use crate::{AppError, Denial, Result, Site};
use qm_core::event::CredentialKind;
use qm_core::{Badge, Command, Envelope, Event};
use qm_store::Commit;
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
    pub fn check(&self, badge: &Badge, now: OffsetDateTime) -> std::result::Result<(), AppError> {
        let map = self.badges.lock().map_err(|_| AppError::Internal("the lockout table is poisoned".into()))?;
        match map.get(badge).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err(AppError::Locked { badge: badge.to_string(), until }),
            _ => Ok(()),
        }
    }

    /// Notes the result of a comparison: a success clears the badge's failures; a failure counts
    /// one and may lock it. Returns the answer to give.
    pub fn settle(&self, badge: &Badge, matched: bool, now: OffsetDateTime, kind: CredentialKind) -> std::result::Result<(), AppError> {
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

/// Fewest characters a web password has.
pub const PASSWORD_LEN_MIN: usize = 10;

/// A new web password is good enough to set: at least [`PASSWORD_LEN_MIN`] characters, not only
/// spaces, no control characters. The CLI and the API ask the same.
pub fn check_new_password(password: &str) -> Result<()> {
    if password.chars().count() < PASSWORD_LEN_MIN {
        return Err(AppError::Usage(format!("a password has at least {PASSWORD_LEN_MIN} characters")));
    }
    if password.trim().is_empty() {
        return Err(AppError::Usage("a password of only spaces is refused".into()));
    }
    if password.chars().any(char::is_control) {
        return Err(AppError::Usage("a password may not hold control characters (tab, line breaks …)".into()));
    }
    Ok(())
}

/// Hashes a PIN or password with Argon2id and a random salt, as a PHC string.
pub fn hash_secret(secret: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher;
    if secret.chars().count() < PIN_LEN_MIN || secret.len() > 128 {
        return Err(AppError::Usage(format!("a PIN or password has {} to 128 characters", PIN_LEN_MIN)));
    }
    argon2::Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("hashing a PIN: {e}")))
}

/// Whether `secret` matches an Argon2id PHC string (`None`: nothing to match, always false). The
/// slow part of every sign-in: the server runs it off the thread that owns the site.
pub fn check_secret(secret: &str, phc: Option<&str>) -> bool {
    use argon2::password_hash::{phc::PasswordHash, PasswordVerifier};
    let Some(phc) = phc else {
        // As slow as a real check, so that a badge without a credential is not told apart by timing.
        let _ = hash_secret("not-a-pin-of-anyone");
        return false;
    };
    match PasswordHash::new(phc) {
        Ok(h) => argon2::Argon2::default().verify_password(secret.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

impl Site {
    /// The Argon2id hash a badge's PIN or password is checked against: the credentials table's, or
    /// on a ledger begun before credentials moved there, the one its entries still carry. Fast (one
    /// indexed read): the slow comparison is [`check_secret`], which may run on any thread.
    pub fn credential_hash(&self, badge: &Badge, kind: CredentialKind) -> Result<Option<String>> {
        if let Some(h) = self.store.credential(&badge_subject(badge), kind.as_str())? {
            return Ok(Some(h));
        }
        let legacy = self.state.people.get(badge).and_then(|p| match kind {
            CredentialKind::Pin => p.pin_hash.clone(),
            CredentialKind::Password => p.password_hash.clone(),
            CredentialKind::Duress => None,
        });
        Ok(legacy)
    }

    /// The hash an API token's secret is checked against, when the token exists and is not revoked.
    pub fn token_hash(&self, id: &str) -> Result<Option<String>> {
        let Some(t) = self.state.tokens.get(id) else { return Ok(None) };
        if t.revoked {
            return Ok(None);
        }
        match self.store.credential(&token_subject(id), "token")? {
            Some(h) => Ok(Some(h)),
            None => Ok(t.secret_hash.clone()),
        }
    }

    /// Failed PIN and password attempts per badge, shared with the server's sign-in threads.
    pub fn lockout(&self) -> std::sync::Arc<Lockout> {
        self.lockout.clone()
    }

    /// Checks a badge and PIN against the stored Argon2id hash (and the badge's lockout).
    pub fn authenticate(&self, badge: &Badge, pin: &str) -> Result<()> {
        self.authenticate_kind(badge, CredentialKind::Pin, pin)
    }

    fn authenticate_kind(&self, badge: &Badge, kind: CredentialKind, secret: &str) -> Result<()> {
        let a = self.attempt(badge, kind)?;
        a.settle(a.matches(secret))
    }

    /// Records a denied sign-in or request in the ledger (durably) and returns nothing else.
    pub fn record_denial(&mut self, who: &str, operation: &str, reason: &str, at: OffsetDateTime) -> Result<()> {
        self.record_denials(&[Denial { who: who.to_string(), operation: operation.to_string(), reason: reason.to_string(), at }])
    }

    /// Records many denials in one durable commit, one entry each (the server gathers them, so a
    /// flood of bad sign-ins costs one commit per gathering, not one per attempt).
    pub fn record_denials(&mut self, denials: &[Denial]) -> Result<()> {
        let unknown = Badge::parse("unknown").map_err(|e| AppError::Internal(e.to_string()))?;
        // Each decided once those before it are staged, so the incidents they open are numbered apart.
        self.record_now(denials.len(), |site, i| {
            let d = &denials[i];
            let denied = site.denial(
                d.who.chars().take(64).collect(),
                d.operation.chars().take(64).collect(),
                d.reason.chars().take(qm_core::rules::TEXT_LEN_MAX).collect(),
                d.at,
            );
            (Badge::parse(&d.who).unwrap_or_else(|_| unknown.clone()), format!("denied-{}", uuid::Uuid::now_v7()), denied, d.at)
        })
    }

    /// Records, in a durable commit of its own, what a refused request leaves behind (a safety
    /// refusal's incident) after the batch it was in was abandoned.
    pub(crate) fn record_refusal_now(&mut self, req: &crate::Request, refused: qm_core::decide::Decision) -> Result<()> {
        let mut refused = Some(refused);
        self.record_now(1, |_, _| {
            let decision = refused.take().unwrap_or_else(|| qm_core::decide::Decision::of(vec![]));
            (req.actor.clone(), format!("refused-{}", uuid::Uuid::now_v7()), decision, req.at)
        })
    }

    /// Records `n` decisions made outside a request (denied attempts, what a refusal leaves behind)
    /// in one durable commit, each as its actor at its time under its own key; all or none. Each is
    /// made by `next` once the ones before it are staged in the books.
    fn record_now(
        &mut self,
        n: usize,
        mut next: impl FnMut(&Site, usize) -> (Badge, String, qm_core::decide::Decision, OffsetDateTime),
    ) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.ensure_fresh()?;
        let mut commit = Commit::default();
        for i in 0..n {
            let (actor, key, decision, at) = next(self, i);
            // Gathered attempts are recorded after the fact: never stamped before an entry made
            // meanwhile (the ledger's time only moves forward); their reason keeps their own times.
            let at = self.state.last_at.map_or(at, |l| at.max(l));
            let origin = crate::staging::Origin { actor: &actor, witness: None, token: None, key: &key, request: None, at };
            if let Err(e) = self.stage(origin, decision, &mut commit) {
                self.resync();
                return Err(e);
            }
        }
        self.flush_or_reload(commit)
    }

    /// Checks a badge and password (web sign-in) against the stored Argon2id hash.
    pub fn authenticate_password(&self, badge: &Badge, password: &str) -> Result<()> {
        self.authenticate_kind(badge, CredentialKind::Password, password)
    }

    /// Checks an API token `ID.SECRET`; returns the token's id when it is valid and not revoked.
    pub fn authenticate_token(&self, presented: &str) -> Result<String> {
        let (id, secret) = presented.split_once('.').ok_or_else(|| AppError::BadCredentials { badge: "token".into() })?;
        let hash = self.token_hash(id)?;
        if check_secret(secret, hash.as_deref()) {
            Ok(id.to_string())
        } else {
            Err(AppError::BadCredentials { badge: format!("token {id}") })
        }
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
