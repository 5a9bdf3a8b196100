//! Throwaway databases for tests and benchmarks: `CREATE DATABASE qm_test_<random>` on a given server,
//! dropped again when the guard goes out of scope (also when a test fails and unwinds).

use crate::{describe, redacted};
use postgres::{Client, NoTls};

/// The environment variable that names the server tests run against.
pub const TEST_URL_VAR: &str = "QM_TEST_POSTGRES_URL";

/// What to tell someone who ran the PostgreSQL tests without a server.
pub const HOW_TO_RUN: &str = "QM_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a server. \
Run `scripts/test-all` (it starts a throwaway PostgreSQL cluster on loopback and sets the variable), \
or point the variable at a server where you may create databases, e.g. \
QM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p qm-demo --test conformance";

/// A database created for one test run; dropped (with any connections still open to it) on drop.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates a fresh, uniquely named UTF8 database on the server `admin_url` points at.
    pub fn create(admin_url: &str) -> Result<ScratchDatabase, String> {
        let name = format!("qm_test_{}", uuid::Uuid::new_v4().simple());
        let url = with_dbname(admin_url, &name)?;
        let mut admin = connect(admin_url)?;
        // template0: a clean copy whatever template1 holds, so the encoding can be chosen.
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"))
            .map_err(|e| format!("creating database {name} on {}: {}", redacted(admin_url), describe(&e)))?;
        Ok(ScratchDatabase { admin_url: admin_url.to_string(), name, url })
    }

    /// The URL of the new database (the admin URL with the database name replaced).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let dropped = connect(&self.admin_url)
            .and_then(|mut c| c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).map_err(|e| describe(&e)));
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

fn connect(url: &str) -> Result<Client, String> {
    Client::connect(url, NoTls).map_err(|e| format!("connecting to {}: {}", redacted(url), describe(&e)))
}

/// Replaces the database name in a `postgres://` URL, keeping user, hosts and query parameters.
pub fn with_dbname(url: &str, dbname: &str) -> Result<String, String> {
    let Some(scheme_end) = url.find("://") else {
        return Err(format!("{} is not a postgres:// URL", redacted(url)));
    };
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after = scheme_end + 3;
    let authority_end = base[after..].find('/').map(|i| after + i).unwrap_or(base.len());
    let mut out = format!("{}/{dbname}", &base[..authority_end]);
    if let Some(q) = query {
        // A dbname given as a parameter would win over the path: drop it.
        let kept: Vec<&str> = q.split('&').filter(|p| !p.starts_with("dbname=")).collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(with_dbname("postgres://u@127.0.0.1:5433/postgres", "x").unwrap(), "postgres://u@127.0.0.1:5433/x");
        assert_eq!(with_dbname("postgresql://u:p@h", "x").unwrap(), "postgresql://u:p@h/x");
        assert_eq!(with_dbname("postgres://u@h/db?connect_timeout=5&dbname=db", "x").unwrap(), "postgres://u@h/x?connect_timeout=5");
        assert_eq!(with_dbname("postgres://%2Ftmp%2Fsock/db", "x").unwrap(), "postgres://%2Ftmp%2Fsock/x");
        assert!(with_dbname("host=h dbname=d", "x").is_err());
    }
}
