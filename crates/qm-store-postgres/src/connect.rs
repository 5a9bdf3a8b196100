//! Connecting: the URL parsed and shown without its password, sessions that keep acknowledged
//! commits durable, and driver errors turned into store errors that say what and where.

use crate::*;

/// The URL parsed, with our application name and a connect timeout unless it sets its own.
pub(crate) fn config(url: &str, shown: &str) -> Result<Config> {
    let mut cfg = Config::from_str(url).map_err(|e| StoreError::Backend(format!("{shown}: not a PostgreSQL URL: {e}")))?;
    if cfg.get_application_name().is_none() {
        cfg.application_name("quartermaster");
    }
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(std::time::Duration::from_secs(10));
    }
    Ok(cfg)
}

/// Opens a session and makes sure its commits are durable.
pub(crate) fn session(cfg: &Config, shown: &str) -> Result<Client> {
    // A server that answers with an error (no such database, bad password) is not "unavailable".
    let unavailable = |e: postgres::Error| {
        let m = format!("connecting to {shown}: {}", describe(&e));
        if e.as_db_error().is_some() && !is_unavailable(&e) {
            StoreError::Backend(m)
        } else {
            StoreError::Unavailable(m)
        }
    };
    let mut client = cfg.connect(NoTls).map_err(unavailable)?;
    // Durability (see the module comment): `on` is PostgreSQL's default and what we need; only
    // `off` acknowledges commits before they are on disk, so a session that inherits it refuses it.
    let sync: String = client.query_one("SHOW synchronous_commit", &[]).map_err(be)?.get(0);
    if sync.eq_ignore_ascii_case("off") {
        client.batch_execute("SET synchronous_commit = on").map_err(be)?;
    }
    Ok(client)
}

/// True when `db` names a PostgreSQL database rather than a file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

pub(crate) fn be(e: postgres::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(describe(&e))
    } else {
        StoreError::Backend(describe(&e))
    }
}

/// The connection is gone or the server is going away (SQLSTATE classes 08 connection exception and
/// 57P operator intervention: shutdown, crash, not accepting connections yet), as opposed to an error
/// in what we asked.
pub(crate) fn is_unavailable(e: &postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P")
        }
        None => e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// An error with the server's message, detail and hint (the default display says only "db error").
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// The URL as shown in messages: user, hosts, ports and database, never the password.
pub fn redacted(url: &str) -> String {
    let Ok(cfg) = Config::from_str(url) else { return "<unparsable PostgreSQL URL>".into() };
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                postgres::config::Host::Tcp(s) => s.clone(),
                #[cfg(unix)]
                postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            match cfg.get_ports().get(i).or(cfg.get_ports().first()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect();
    let user = cfg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = cfg.get_dbname().unwrap_or_default();
    format!("postgresql://{user}{}/{db}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        let s = redacted("postgres://qm:s3cret@db.example:5433/ledger?sslmode=disable");
        assert_eq!(s, "postgresql://qm@db.example:5433/ledger");
        assert!(!redacted("postgresql://u:pw@h/d?password=pw2").contains("pw"));
        assert_eq!(redacted("not a url at all ="), "<unparsable PostgreSQL URL>");
    }

    #[test]
    fn urls_are_recognised() {
        assert!(is_url("postgres://h/d") && is_url("postgresql://h/d"));
        assert!(!is_url("/var/lib/qm/site.db") && !is_url("postgres.db"));
    }
}
