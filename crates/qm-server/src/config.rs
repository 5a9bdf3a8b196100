//! Server configuration: defaults, then a TOML file, then environment variables (QM_*), then flags.

use serde::Deserialize;
use std::path::Path;

/// Largest request body accepted by default (a CSV import is the largest thing one sends).
pub const BODY_LIMIT_BYTES_DEFAULT: usize = 4 * 1024 * 1024;

/// How the server runs. Every field has a default; see docs/server.md.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0 picks a free one).
    pub addr: String,
    /// The SQLite database file.
    pub db: String,
    /// The signing key (default: the database path + ".key").
    pub key: Option<String>,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// A web session ends after this long without a request.
    pub session_idle_s: u64,
    /// A web session ends this long after sign-in, whatever happens.
    pub session_max_s: u64,
    /// Failed sign-ins per badge, and per client address, within `sign_in_window_s` before 429.
    pub sign_in_failures_max: u32,
    pub sign_in_window_s: u64,
    /// Failed sign-ins (passwords, API tokens) from one address are one ledger entry per this many
    /// seconds, naming the badges tried and how many times (docs/server.md).
    pub sign_in_summary_s: u64,
    /// Sign a checkpoint at most this often while writes arrive (and always at shutdown).
    pub checkpoint_every_s: u64,
    /// Set the `Secure` flag on the session cookie (behind TLS).
    pub secure_cookies: bool,
    /// The notification rules, channels and addresses (docs/notifications.md); without one, each
    /// unit's duty officers see its incidents in the web UI only.
    pub notifications: Option<String>,
    /// How often new entries are read into the outbox and due messages are tried.
    pub notify_every_ms: u64,
    /// How often the site's clock looks for what is due (escalations, missed deadlines, overdue
    /// returns, directives' deadlines).
    pub due_every_ms: u64,
    /// The access-control systems that post door events, their secrets and door and card mappings
    /// (docs/access.md).
    pub access: Option<String>,
    /// The child sites this site witnesses: their origins, checkpoint keys and units (docs/sites.md).
    pub children: Option<String>,
    /// This site's parent, which witnesses its ledger: its witness URL and key (docs/sites.md).
    pub parent: Option<String>,
    pub parent_key: Option<String>,
    /// The parent's mirror, which keeps this site's entries: its key (`qm witness key` there) and,
    /// when it is not beside the witness URL (`…/witness` → `…/mirror`), its URL.
    pub parent_mirror_key: Option<String>,
    pub parent_mirror: Option<String>,
    /// The parent's own checkpoint key (`qm verifier-key` there): directives decided above come down.
    pub parent_log_key: Option<String>,
    /// How often the ledger's new checkpoint goes to the parent (when it can be reached).
    pub sync_every_s: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: "127.0.0.1:8080".into(),
            db: "quartermaster.db".into(),
            key: None,
            body_limit_bytes: BODY_LIMIT_BYTES_DEFAULT,
            session_idle_s: 30 * 60,
            session_max_s: 12 * 3600,
            sign_in_failures_max: 5,
            sign_in_window_s: 5 * 60,
            sign_in_summary_s: qm_app::act::SIGN_IN_SUMMARY_S,
            checkpoint_every_s: 10,
            secure_cookies: false,
            notifications: None,
            notify_every_ms: 2000,
            due_every_ms: 30_000,
            access: None,
            children: None,
            parent: None,
            parent_key: None,
            parent_mirror_key: None,
            parent_mirror: None,
            parent_log_key: None,
            sync_every_s: 30,
        }
    }
}

impl Config {
    /// Defaults, overlaid by the TOML file if one is given.
    pub fn load(file: Option<&Path>) -> Result<Config, String> {
        let mut c = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| format!("config file {}: {e}", p.display()))?;
                toml::from_str::<Config>(&text).map_err(|e| format!("config file {}: {e}", p.display()))?
            }
            None => Config::default(),
        };
        c.apply_env(|k| std::env::var(k).ok())?;
        Ok(c)
    }

    /// Environment variables win over the file: QM_ADDR, QM_DB, QM_KEY, QM_BODY_LIMIT_BYTES,
    /// QM_SESSION_IDLE_S, QM_SESSION_MAX_S, QM_SECURE_COOKIES, QM_NOTIFICATIONS, QM_NOTIFY_EVERY_MS, QM_DUE_EVERY_MS, QM_ACCESS, QM_CHILDREN, QM_PARENT, QM_PARENT_KEY, QM_SYNC_EVERY_S.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.trim().parse().map_err(|_| format!("environment variable {name}={v:?} is not a number"))
        }
        if let Some(v) = get("QM_ADDR") {
            self.addr = v;
        }
        if let Some(v) = get("QM_DB") {
            self.db = v;
        }
        if let Some(v) = get("QM_KEY") {
            self.key = Some(v);
        }
        if let Some(v) = get("QM_BODY_LIMIT_BYTES") {
            self.body_limit_bytes = num("QM_BODY_LIMIT_BYTES", v)?;
        }
        if let Some(v) = get("QM_SESSION_IDLE_S") {
            self.session_idle_s = num("QM_SESSION_IDLE_S", v)?;
        }
        if let Some(v) = get("QM_SESSION_MAX_S") {
            self.session_max_s = num("QM_SESSION_MAX_S", v)?;
        }
        if let Some(v) = get("QM_NOTIFICATIONS") {
            self.notifications = Some(v);
        }
        if let Some(v) = get("QM_ACCESS") {
            self.access = Some(v);
        }
        if let Some(v) = get("QM_CHILDREN") {
            self.children = Some(v);
        }
        if let Some(v) = get("QM_PARENT") {
            self.parent = Some(v);
        }
        if let Some(v) = get("QM_PARENT_KEY") {
            self.parent_key = Some(v);
        }
        if let Some(v) = get("QM_PARENT_MIRROR_KEY") {
            self.parent_mirror_key = Some(v);
        }
        if let Some(v) = get("QM_PARENT_MIRROR") {
            self.parent_mirror = Some(v);
        }
        if let Some(v) = get("QM_PARENT_LOG_KEY") {
            self.parent_log_key = Some(v);
        }
        if let Some(v) = get("QM_SYNC_EVERY_S") {
            self.sync_every_s = num("QM_SYNC_EVERY_S", v)?;
        }
        if let Some(v) = get("QM_DUE_EVERY_MS") {
            self.due_every_ms = num("QM_DUE_EVERY_MS", v)?;
        }
        if let Some(v) = get("QM_NOTIFY_EVERY_MS") {
            self.notify_every_ms = num("QM_NOTIFY_EVERY_MS", v)?;
        }
        if let Some(v) = get("QM_SECURE_COOKIES") {
            self.secure_cookies = matches!(v.trim(), "1" | "true" | "yes");
        }
        Ok(())
    }

    /// The signing key's path.
    pub fn key_path(&self) -> std::path::PathBuf {
        match &self.key {
            Some(k) => k.into(),
            None => qm_app::default_key_path(Path::new(&self.db)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let mut c: Config = toml::from_str("addr = \"0.0.0.0:9000\"\nbody_limit_bytes = 1000").unwrap();
        assert_eq!(c.addr, "0.0.0.0:9000");
        c.apply_env(|k| (k == "QM_ADDR").then(|| "127.0.0.1:1".to_string())).unwrap();
        assert_eq!(c.addr, "127.0.0.1:1");
        assert_eq!(c.body_limit_bytes, 1000);
        assert!(c.apply_env(|k| (k == "QM_BODY_LIMIT_BYTES").then(|| "lots".to_string())).is_err());
        assert!(toml::from_str::<Config>("adress = 1").is_err());
    }
}
