//! Notifications: who is told about an incident, through which channel, and the outbox that keeps
//! every message until it is delivered (docs/notifications.md).
//!
//! The rules are a site's configuration (a TOML file; the addresses of staff and the secrets of
//! webhooks stay out of the ledger). Messages are derived from ledger entries — an incident
//! opened, escalated, reopened or closed, a reporting deadline missed — and put in the store's
//! outbox in one transaction with the cursor that says how far the ledger has been read, so a
//! crash neither loses nor repeats one. Delivery (SMTP, webhooks) is the server's
//! (`qm_server::notify`); an attempt's outcome is recorded here, with the next one due.

use crate::{AppError, Result, Site};
use qm_core::event::IncidentAction;
use qm_core::*;
use qm_store::{OutboxMessage, OutboxQuery};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// How to reach the SMTP server.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 587 with `starttls`, 465 with `tls`, 25 with `none`.
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// The sender, e.g. `Quartermaster <qm@example.org>`.
    pub from: String,
    pub username: Option<String>,
    /// A file holding the password (owner-only permissions).
    pub password_file: Option<PathBuf>,
    /// A PEM file of further root certificates to trust (a private CA), beside the system's.
    pub ca_file: Option<PathBuf>,
    #[serde(default = "timeout_default")]
    pub timeout_s: u64,
}

fn timeout_default() -> u64 {
    10
}

/// TLS to the SMTP server: STARTTLS on a plain connection (the default), TLS from the first byte
/// (`tls`, port 465), or none (`none`: only for a relay on the same machine or network).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    #[default]
    Starttls,
    Tls,
    None,
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }
}

/// An outgoing webhook, signed in the Standard Webhooks format.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// The signing secret, `whsec_` and base64; or `secret_file`.
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
}

/// Which incident changes a rule is about.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    Opened,
    Escalated,
    DeadlineMissed,
    Reopened,
    Closed,
    /// A directive issued, relayed, extended or cancelled: told to the units it concerns.
    Directive,
}

impl NotifyOn {
    pub const ALL: [NotifyOn; 6] =
        [NotifyOn::Opened, NotifyOn::Escalated, NotifyOn::DeadlineMissed, NotifyOn::Reopened, NotifyOn::Closed, NotifyOn::Directive];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::Opened => "opened",
            NotifyOn::Escalated => "escalated",
            NotifyOn::DeadlineMissed => "deadline_missed",
            NotifyOn::Reopened => "reopened",
            NotifyOn::Closed => "closed",
            NotifyOn::Directive => "directive",
        }
    }
}

/// One rule: incidents at `unit` (and, with `subtree`, below it) of these kinds and at least this
/// severity are told to these people, addresses and webhooks. `unit = "*"` means every unit for
/// itself: the roles are then those of the unit the incident is at.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyRule {
    pub unit: String,
    #[serde(default = "yes")]
    pub subtree: bool,
    /// Empty: every kind.
    #[serde(default)]
    pub kinds: Vec<IncidentKind>,
    #[serde(default = "lowest")]
    pub min_severity: Severity,
    /// Empty: every change that notifies.
    #[serde(default)]
    pub on: Vec<NotifyOn>,
    /// People holding these roles at the rule's unit (or, for `*`, at the incident's).
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub badges: Vec<String>,
    /// Further e-mail addresses (a duty desk, a mailing list).
    #[serde(default)]
    pub email: Vec<String>,
    /// Names of `[webhooks.NAME]`.
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// The people named (by role or badge) also see it in their list in the web UI.
    #[serde(default = "yes")]
    pub web: bool,
}

fn yes() -> bool {
    true
}

fn lowest() -> Severity {
    Severity::Low
}

/// How soon a failed delivery is tried again: `first_s`, doubling each time, at most `max_s`.
/// A message is never dropped: it is tried until delivered, and shown to administrators meanwhile.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub first_s: u64,
    pub max_s: u64,
}

impl RetryConfig {
    /// Seconds to wait after the `attempts`-th failed attempt (from 1).
    pub fn wait_s(&self, attempts: u32) -> u64 {
        self.first_s.max(1).saturating_mul(1u64 << attempts.saturating_sub(1).min(20)).min(self.max_s.max(1))
    }
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig { first_s: 30, max_s: 3600 }
    }
}

/// A site's notification settings (`--notifications FILE`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub webhooks: BTreeMap<String, WebhookConfig>,
    /// E-mail addresses of staff, by badge.
    #[serde(default)]
    pub people: BTreeMap<String, String>,
    #[serde(default)]
    pub notify: Vec<NotifyRule>,
    #[serde(default)]
    pub retry: RetryConfig,
    /// The server's address as people reach it, for links in e-mails (`https://qm.example.org`).
    pub public_url: Option<String>,
}

impl Default for NotifyConfig {
    /// Without a file: every unit's duty officers see their unit's incidents in the web UI.
    fn default() -> NotifyConfig {
        NotifyConfig {
            smtp: None,
            webhooks: BTreeMap::new(),
            people: BTreeMap::new(),
            notify: vec![NotifyRule {
                unit: "*".into(),
                subtree: false,
                kinds: vec![],
                min_severity: Severity::Low,
                on: vec![],
                roles: vec![Role::DutyOfficer],
                badges: vec![],
                email: vec![],
                webhooks: vec![],
                web: true,
            }],
            retry: RetryConfig::default(),
            public_url: None,
        }
    }
}

/// A secret read from a file must be the owner's alone (as the signing key).
pub fn read_secret_file(path: &Path, key: &str, file: &str) -> std::result::Result<String, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| format!("{file}: key {key}: {}: {e}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{file}: key {key}: {} is readable by others (mode {mode:o}); make it the owner's alone (chmod 600)",
                path.display()
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: key {key}: {}: {e}", path.display()))?;
    Ok(text.trim().to_string())
}

fn looks_like_address(a: &str) -> bool {
    let a = a.trim();
    let bare = a.rsplit_once('<').map_or(a, |(_, r)| r.trim_end_matches('>'));
    matches!(bare.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') || matches!(bare.split_once('@'), Some((_, "localhost"))))
        && !bare.contains(char::is_whitespace)
}

impl NotifyConfig {
    /// Parses and checks a file against the books: units, badges and webhooks named must exist,
    /// addresses must be addresses, secrets must be there and the owner's alone. A wrong file is
    /// refused with file, key and reason.
    pub fn from_toml_str(text: &str, file: &str, state: &State) -> std::result::Result<NotifyConfig, String> {
        let c: NotifyConfig = toml::from_str(text).map_err(|e| format!("{file}: {}", e.to_string().trim()))?;
        c.check(file, state)?;
        Ok(c)
    }

    pub fn load(path: &Path, state: &State) -> Result<NotifyConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| AppError::Usage(format!("{}: {e}", path.display())))?;
        let shown = path.display().to_string();
        let c = NotifyConfig::from_toml_str(&text, &shown, state).map_err(AppError::Usage)?;
        // An inline secret makes the file itself a secret.
        if c.webhooks.values().any(|w| w.secret.is_some()) {
            read_secret_file(path, "webhooks.*.secret", &shown).map_err(AppError::Usage)?;
        }
        Ok(c)
    }

    fn check(&self, file: &str, state: &State) -> std::result::Result<(), String> {
        let person = |b: &str, key: &str| match Badge::parse(b) {
            Ok(b) if state.people.contains_key(&b) => Ok(()),
            _ => Err(format!("{file}: key {key}: no person has badge {b:?}")),
        };
        for (b, a) in &self.people {
            person(b, &format!("people.{b}"))?;
            if !looks_like_address(a) {
                return Err(format!("{file}: key people.{b}: {a:?} is not an e-mail address"));
            }
        }
        if let Some(s) = &self.smtp {
            if s.host.trim().is_empty() {
                return Err(format!("{file}: key smtp.host: empty"));
            }
            if !looks_like_address(&s.from) {
                return Err(format!("{file}: key smtp.from: {:?} is not an e-mail address", s.from));
            }
            if s.password_file.is_some() != s.username.is_some() {
                return Err(format!("{file}: key smtp.username: a username and a password_file go together"));
            }
            if let Some(p) = &s.password_file {
                read_secret_file(p, "smtp.password_file", file)?;
            }
        }
        for (name, w) in &self.webhooks {
            if !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
                return Err(format!("{file}: key webhooks.{name}.url: {:?} is not an http(s) URL", w.url));
            }
            let secret = match (&w.secret, &w.secret_file) {
                (Some(s), None) => s.clone(),
                (None, Some(p)) => read_secret_file(p, &format!("webhooks.{name}.secret_file"), file)?,
                _ => return Err(format!("{file}: key webhooks.{name}: give exactly one of secret and secret_file")),
            };
            webhook_key(&secret).map_err(|e| format!("{file}: key webhooks.{name}.secret: {e}"))?;
        }
        for (i, r) in self.notify.iter().enumerate() {
            let key = format!("notify[{i}]");
            if r.unit != "*" && UnitId::parse(&r.unit).ok().is_none_or(|u| !state.units.contains_key(&u)) {
                return Err(format!("{file}: key {key}.unit: no unit {:?} (or \"*\" for every unit)", r.unit));
            }
            for (j, b) in r.badges.iter().enumerate() {
                person(b, &format!("{key}.badges[{j}]"))?;
            }
            if let Some(a) = r.email.iter().find(|a| !looks_like_address(a)) {
                return Err(format!("{file}: key {key}.email: {a:?} is not an e-mail address"));
            }
            if let Some(w) = r.webhooks.iter().find(|w| !self.webhooks.contains_key(*w)) {
                return Err(format!("{file}: key {key}.webhooks: no [webhooks.{w}]"));
            }
            if !r.email.is_empty() && self.smtp.is_none() {
                return Err(format!("{file}: key {key}.email: addresses to write to, but no [smtp] to write through"));
            }
            if r.roles.is_empty() && r.badges.is_empty() && r.email.is_empty() && r.webhooks.is_empty() {
                return Err(format!("{file}: key {key}: tells nobody (give roles, badges, email or webhooks)"));
            }
        }
        Ok(())
    }

    /// The signing key of a webhook (the secret's bytes).
    pub fn webhook_secret(&self, name: &str) -> std::result::Result<Vec<u8>, String> {
        let w = self.webhooks.get(name).ok_or_else(|| format!("no webhook {name:?} is configured"))?;
        let secret = match (&w.secret, &w.secret_file) {
            (Some(s), _) => s.clone(),
            (None, Some(p)) => read_secret_file(p, &format!("webhooks.{name}.secret_file"), "notifications")?,
            (None, None) => return Err(format!("webhook {name:?} has no secret")),
        };
        webhook_key(&secret)
    }
}

/// The key bytes of a Standard Webhooks secret (`whsec_` and base64 of at least 24 bytes).
pub fn webhook_key(secret: &str) -> std::result::Result<Vec<u8>, String> {
    use base64::Engine;
    let b64 = secret.trim().strip_prefix("whsec_").ok_or("must begin with whsec_ (Standard Webhooks)")?;
    let key = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("not base64 after whsec_: {e}"))?;
    if key.len() < 24 {
        return Err(format!("{} bytes of key; at least 24 (Standard Webhooks)", key.len()));
    }
    Ok(key)
}

/// What an entry means for notifications: per incident it opened or changed, what happened and the
/// unit whose rules apply (its own; the one it went up to; the one responsible now).
fn changes_of(state: &State, env: &Envelope) -> Vec<(IncidentId, NotifyOn, UnitId)> {
    let mut out: Vec<(IncidentId, NotifyOn, UnitId)> = vec![];
    for event in std::iter::once(&env.event).chain(&env.opens) {
        match event {
            Event::IncidentOpened { incident, unit, .. } => out.push((incident.clone(), NotifyOn::Opened, unit.clone())),
            Event::IncidentUpdated { incident, action } => {
                let Some(now) = state.incidents.get(incident).map(|i| i.responsible.clone()) else { continue };
                let change = match action {
                    IncidentAction::Escalate { to, .. } => (NotifyOn::Escalated, to.clone()),
                    IncidentAction::DeadlineMissed { .. } => (NotifyOn::DeadlineMissed, now),
                    IncidentAction::Reopen { .. } => (NotifyOn::Reopened, now),
                    IncidentAction::Close { .. } => (NotifyOn::Closed, now),
                    _ => continue,
                };
                out.push((incident.clone(), change.0, change.1));
            }
            _ => {}
        }
    }
    out
}

/// Who is told, per channel: badges (web), addresses, webhooks; each once.
#[derive(Debug, Default, PartialEq)]
pub struct Recipients {
    pub web: std::collections::BTreeSet<Badge>,
    pub email: std::collections::BTreeSet<String>,
    pub webhooks: std::collections::BTreeSet<String>,
}

/// The people a rule names: those holding its roles at `unit`, and its badges.
pub fn rule_people(state: &State, r: &NotifyRule, unit: &UnitId) -> Vec<Badge> {
    let mut people: Vec<Badge> = state
        .people
        .iter()
        .filter(|(_, p)| &p.unit == unit && p.roles.iter().any(|x| r.roles.contains(x)))
        .map(|(b, _)| b.clone())
        .collect();
    people.extend(r.badges.iter().filter_map(|b| Badge::parse(b).ok()));
    people
}

/// The recipients of a change of an incident whose rules are those of `at` (see `change_of`).
pub fn recipients(state: &State, cfg: &NotifyConfig, incident: &books::Incident, on: NotifyOn, at: &UnitId) -> Recipients {
    let mut out = Recipients::default();
    for r in &cfg.notify {
        if (!r.kinds.is_empty() && !r.kinds.contains(&incident.kind))
            || incident.severity < r.min_severity
            || (!r.on.is_empty() && !r.on.contains(&on))
        {
            continue;
        }
        out.add(state, cfg, r, at);
    }
    out
}

impl Recipients {
    /// Adds what rule `r` names for a change whose rules are those of `at`: its people (by role at
    /// the rule's unit, or `at` itself for `*`, and by badge), addresses and webhooks — when the
    /// rule covers `at` (its unit, or below it with `subtree`).
    fn add(&mut self, state: &State, cfg: &NotifyConfig, r: &NotifyRule, at: &UnitId) {
        let rule_unit = match r.unit.as_str() {
            "*" => at.clone(),
            u => match UnitId::parse(u) {
                Ok(u) if &u == at || (r.subtree && state.unit_within(at, &u)) => u,
                _ => return,
            },
        };
        for b in rule_people(state, r, &rule_unit) {
            if let (Some(a), Some(_)) = (cfg.people.get(b.as_str()), &cfg.smtp) {
                self.email.insert(a.clone());
            }
            if r.web {
                self.web.insert(b);
            }
        }
        self.email.extend(r.email.iter().cloned());
        self.webhooks.extend(r.webhooks.iter().cloned());
    }
}

/// A message's stable id: entry, channel and a digest of the target (a receiver deduplicates by it).
fn message_id(seq: u64, channel: &str, target: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(target.as_bytes());
    format!("msg_{seq}_{channel}_{}", &crate::hex(&d)[..12])
}

/// The messages one entry gives rise to under `cfg` (none for most entries).
pub fn messages_for(state: &State, cfg: &NotifyConfig, env: &Envelope, now: OffsetDateTime) -> Vec<OutboxMessage> {
    let mut out: Vec<OutboxMessage> =
        changes_of(state, env).into_iter().flat_map(|(id, on, at)| messages_of_change(state, cfg, env, &id, on, &at, now)).collect();
    out.extend(directive_messages(state, cfg, env, now));
    out
}

/// The messages to the recipients, one per channel and target: web ones delivered already (the list
/// is the delivery), e-mails and webhooks waiting in the outbox. `key` makes a target's message id
/// unique when one entry concerns several incidents.
fn outbox_messages(
    env: &Envelope,
    key: &dyn Fn(&str) -> String,
    subject: &str,
    (text, payload): (&str, &str),
    who: Recipients,
    now: OffsetDateTime,
) -> Vec<OutboxMessage> {
    let ms = ms_of(now);
    let message = |channel: &str, target: String, body: &str, delivered: bool| OutboxMessage {
        id: message_id(env.seq, channel, &key(&target)),
        seq: env.seq,
        channel: channel.into(),
        target,
        subject: subject.to_string(),
        body: body.to_string(),
        created_ms: ms,
        attempts: 0,
        next_ms: ms,
        last_error: None,
        delivered_ms: delivered.then_some(ms),
    };
    let mut out = Vec::new();
    out.extend(who.web.into_iter().map(|b| message("web", b.to_string(), text, true)));
    out.extend(who.email.into_iter().map(|a| message("email", a, text, false)));
    out.extend(who.webhooks.into_iter().map(|w| message("webhook", w, payload, false)));
    out
}

/// The units a directive's entry reaches: all it concerns when issued, extended or cancelled (here,
/// or above and received from the parent site); those below the relaying unit when relayed; none for
/// the other steps. With the badge that decided it.
fn directive_reach(state: &State, env: &Envelope) -> Option<(DirectiveId, &'static str, Vec<UnitId>, Badge)> {
    use qm_core::event::DirectiveAction as A;
    let decided;
    let env = match &env.event {
        Event::FromParent { entry, .. } => {
            decided = qm_core::directives::decided_entry(entry).ok()?;
            &decided
        }
        _ => env,
    };
    let (id, what) = match &env.event {
        Event::DirectiveIssued { directive, .. } => (directive, "issued"),
        Event::DirectiveUpdated { directive, action: A::Relay { .. } } => (directive, "relayed"),
        Event::DirectiveUpdated { directive, action: A::Extend { .. } } => (directive, "extended"),
        Event::DirectiveUpdated { directive, action: A::Cancel { .. } } => (directive, "cancelled"),
        _ => return None,
    };
    let d = state.directives.get(id)?;
    let mut units = qm_core::directives::units_concerned(state, d);
    if let Event::DirectiveUpdated { action: A::Relay { unit, .. }, .. } = &env.event {
        units.retain(|u| u != unit && state.unit_within(u, unit));
    }
    Some((id.clone(), what, units, env.actor.clone()))
}

/// The messages a directive's entry gives rise to: per unit it reaches, the people, addresses and
/// webhooks of the rules that take directives there (`on` naming `directive`, or a rule with neither
/// `on` nor `kinds`: the "tell me everything" ones), each once.
fn directive_messages(state: &State, cfg: &NotifyConfig, env: &Envelope, now: OffsetDateTime) -> Vec<OutboxMessage> {
    let Some((id, what, units, by)) = directive_reach(state, env) else { return vec![] };
    let Some(d) = state.directives.get(&id) else { return vec![] };
    let mut who = Recipients::default();
    for at in &units {
        for r in cfg.notify.iter().filter(|r| r.on.contains(&NotifyOn::Directive) || (r.on.is_empty() && r.kinds.is_empty())) {
            who.add(state, cfg, r, at);
        }
    }
    let view = crate::directives::view(state, &id, d, now);
    let subject =
        format!("[Quartermaster] directive {} {what}: {} ({} posture, until {})", view.id, view.title, view.posture, view.ends_at);
    let link = cfg.public_url.as_deref().map(|u| format!("\n{}/directives/{}\n", u.trim_end_matches('/'), view.id)).unwrap_or_default();
    let text = format!(
        "Directive {} {what} by badge {} ({}).\n\n{}\n\nMeasures: {}\nFrom {} to {}.\nAcknowledge it for your unit and brief every shift.\n{link}",
        view.id,
        by,
        view.unit,
        view.text,
        if view.measures.is_empty() { "none".to_string() } else { view.measures.join(", ") },
        view.starts_at,
        view.ends_at
    );
    let payload = serde_json::json!({
        "type": format!("directive.{what}"),
        "timestamp": env.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "data": { "site": env.site, "seq": env.seq, "actor": by.to_string(), "units": units, "directive": view },
    })
    .to_string();
    outbox_messages(env, &|target: &str| format!("{id} {target}"), &subject, (&text, &payload), who, now)
}

fn messages_of_change(
    state: &State,
    cfg: &NotifyConfig,
    env: &Envelope,
    id: &IncidentId,
    on: NotifyOn,
    at: &UnitId,
    now: OffsetDateTime,
) -> Vec<OutboxMessage> {
    let Some(incident) = state.incidents.get(id) else { return vec![] };
    let who = recipients(state, cfg, incident, on, at);
    let view = crate::incidents::view(state, id, incident, now);
    let subject = format!(
        "[Quartermaster] {} {} at {}: {} {}",
        view.severity.to_uppercase(),
        view.kind.replace('_', " "),
        view.unit,
        view.id,
        on.as_str().replace('_', " ")
    );
    let text = email_text(&view, on, at, env, cfg.public_url.as_deref());
    let payload = serde_json::json!({
        "type": format!("incident.{}", on.as_str()),
        "timestamp": env.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "data": { "site": env.site, "seq": env.seq, "unit_told": at.to_string(), "actor": env.actor.to_string(), "incident": view },
    })
    .to_string();
    outbox_messages(env, &|target: &str| format!("{id} {target}"), &subject, (&text, &payload), who, now)
}

fn email_text(v: &crate::incidents::IncidentView, on: NotifyOn, at: &UnitId, env: &Envelope, public_url: Option<&str>) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let _ =
        writeln!(t, "Incident {} ({}, {}) {}: told to {at}.", v.id, v.kind.replace('_', " "), v.severity, on.as_str().replace('_', " "));
    let _ = writeln!(t);
    let _ = writeln!(t, "Unit:        {} (responsible now: {})", v.unit, v.responsible);
    if let Some(l) = &v.location {
        let _ = writeln!(t, "Location:    {l}");
    }
    let _ = writeln!(t, "State:       {}", v.state);
    let _ = writeln!(t, "Summary:     {}", v.summary);
    let _ = writeln!(t, "Discovered:  {} by badge {}", v.discovered_at, v.discovered_by);
    for c in &v.clocks {
        let _ = writeln!(t, "Clock:       {} to {} due {} ({}; {})", c.what, c.to, c.due, c.status, c.source);
    }
    if let Some(r) = &v.resolution {
        let _ = writeln!(t, "Resolution:  {r}");
    }
    let _ = writeln!(t);
    if let Some(u) = public_url {
        let _ = writeln!(t, "Open it: {}/incidents/{}", u.trim_end_matches('/'), v.id);
    }
    let _ = writeln!(t, "Ledger entry {} of site {}, by badge {}.", env.seq, env.site, env.actor);
    t
}

/// A message as people see it: times in the site's zone, its state in a word, its incident.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OutboxView {
    pub id: String,
    pub seq: u64,
    pub incident: Option<String>,
    pub channel: String,
    pub target: String,
    pub subject: String,
    /// `delivered`, `waiting` (not tried yet) or `failing` (tried, not delivered: see `last_error`).
    pub status: &'static str,
    pub attempts: u32,
    pub created: String,
    pub next_attempt: Option<String>,
    pub last_error: Option<String>,
    pub delivered: Option<String>,
    pub body: String,
}

fn at_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Views of messages, each with the incident its entry is about.
pub fn views(state: &State, messages: Vec<OutboxMessage>) -> Vec<OutboxView> {
    let zone = crate::zone::SiteZone::of(state);
    let seqs: std::collections::BTreeSet<u64> = messages.iter().map(|m| m.seq).collect();
    let mut incident_of = BTreeMap::new();
    for (id, i) in &state.incidents {
        for e in i.entries.iter().filter(|e| seqs.contains(e)) {
            incident_of.insert(*e, id.to_string());
        }
    }
    messages
        .into_iter()
        .map(|m| OutboxView {
            incident: incident_of.get(&m.seq).cloned(),
            status: match (m.delivered_ms, m.attempts) {
                (Some(_), _) => "delivered",
                (None, 0) => "waiting",
                (None, _) => "failing",
            },
            created: zone.show(at_ms(m.created_ms)),
            next_attempt: m.delivered_ms.is_none().then(|| zone.show(at_ms(m.next_ms))),
            delivered: m.delivered_ms.map(|d| zone.show(at_ms(d))),
            id: m.id,
            seq: m.seq,
            channel: m.channel,
            target: m.target,
            subject: m.subject,
            attempts: m.attempts,
            last_error: m.last_error,
            body: m.body,
        })
        .collect()
}

/// What one delivery attempt came to.
pub type Attempt = std::result::Result<(), String>;

fn ms_of(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Site {
    /// Reads the ledger from the outbox's cursor to its end and puts the messages those entries
    /// call for in the outbox, with the new cursor, in one transaction. The first time (no cursor
    /// yet) it starts at the end: a site that turns notifications on is not told its whole past.
    /// Returns how many messages were added.
    pub fn notify_enqueue(&mut self, cfg: &NotifyConfig, now: OffsetDateTime) -> Result<usize> {
        let size = self.store.entry_count()?;
        let Some(from) = self.store.outbox_cursor()? else {
            self.store.outbox_put(&[], size)?;
            return Ok(0);
        };
        let mut added = 0;
        let mut at = from;
        while at < size {
            let entries = self.store.read_entries(at, 1000)?;
            if entries.is_empty() {
                break;
            }
            let mut messages = Vec::new();
            for e in &entries {
                let env = crate::decode(&e.bytes).map_err(|m| AppError::Internal(format!("entry {}: {m}", e.seq)))?;
                messages.extend(messages_for(&self.state, cfg, &env, now));
            }
            at += entries.len() as u64;
            added += messages.len();
            self.store.outbox_put(&messages, at)?;
        }
        Ok(added)
    }

    /// Messages by the query (the administrators' view, a person's web list).
    pub fn outbox(&self, q: &OutboxQuery) -> Result<Vec<OutboxMessage>> {
        Ok(self.store.outbox(q)?)
    }

    /// E-mails and webhooks due by `now`, soonest first.
    pub fn outbox_due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<OutboxMessage>> {
        let q = OutboxQuery { due_by_ms: Some(ms_of(now)), pending_only: true, limit, ..Default::default() };
        Ok(self.store.outbox(&q)?.into_iter().filter(|m| m.channel != "web").collect())
    }

    /// Records an attempt: delivered, or failed with the error and the next attempt due after
    /// `retry`'s backoff.
    pub fn outbox_attempted(&mut self, m: &OutboxMessage, outcome: &Attempt, retry: &RetryConfig, now: OffsetDateTime) -> Result<()> {
        let mut m = m.clone();
        m.attempts += 1;
        match outcome {
            Ok(()) => {
                m.delivered_ms = Some(ms_of(now));
                m.last_error = None;
            }
            Err(e) => {
                m.next_ms = ms_of(now) + (retry.wait_s(m.attempts) as i64) * 1000;
                m.last_error = Some(e.chars().take(500).collect());
            }
        }
        Ok(self.store.outbox_update(&m)?)
    }

    /// An administrator asks for a failing message to be tried at once.
    pub fn outbox_retry(&mut self, id: &str, now: OffsetDateTime) -> Result<OutboxMessage> {
        let all = self.store.outbox(&OutboxQuery { pending_only: true, limit: 100_000, ..Default::default() })?;
        let Some(mut m) = all.into_iter().find(|m| m.id == id) else {
            return Err(AppError::Rejected(Rejection::NotFound { what: "undelivered message", id: id.to_string() }));
        };
        m.next_ms = ms_of(now);
        self.store.outbox_update(&m)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_secrets() {
        assert!(looks_like_address("ops@example.org"));
        assert!(looks_like_address("Quartermaster <qm@example.org>"));
        assert!(looks_like_address("qm@localhost"));
        assert!(!looks_like_address("ops"));
        assert!(!looks_like_address("o ps@example.org"));
        assert!(webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(webhook_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err().contains("whsec_"));
        assert!(webhook_key("whsec_c2hvcnQ=").unwrap_err().contains("at least 24"));
    }

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let r = RetryConfig { first_s: 30, max_s: 3600 };
        assert_eq!([r.wait_s(1), r.wait_s(2), r.wait_s(3), r.wait_s(8), r.wait_s(40)], [30, 60, 120, 3600, 3600]);
        assert_eq!(RetryConfig { first_s: 0, max_s: 0 }.wait_s(3), 1);
    }
}
