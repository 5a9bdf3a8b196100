//! `qm serve`: reads the configuration, opens (or, with --demo, creates) the site and runs the server
//! until SIGINT or SIGTERM, then finishes in-flight requests and commits before exiting.

use qm_app::{AppError, Site};
use qm_server::Config;
use std::path::Path;

/// The database `--demo` uses unless `--db` names another.
pub const DEMO_DB: &str = "demo-data/serve-demo.db";

pub struct ServeArgs<'a> {
    pub db: &'a str,
    pub key: Option<&'a str>,
    pub addr: Option<&'a str>,
    pub config: Option<&'a str>,
    pub demo: bool,
    pub safety_tables: Option<&'a str>,
    pub incident_rules: Option<&'a str>,
    pub posture_levels: Option<&'a str>,
    pub notifications: Option<&'a str>,
    pub access: Option<&'a str>,
    pub children: Option<&'a str>,
}

pub fn serve(a: ServeArgs) -> Result<u8, AppError> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QM_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The log goes to stdout; coloured only when that is a terminal and NO_COLOR is not set.
    let ansi = crate::output::colour(&std::io::stdout());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).try_init();
    let mut c = Config::load(a.config.map(Path::new)).map_err(AppError::Usage)?;
    // clap fills --db with its default; only a --db flag or QM_DB overrides the configuration file.
    let db_given = std::env::var_os("QM_DB").is_some() || std::env::args().any(|x| x == "--db" || x.starts_with("--db="));
    if db_given {
        c.db = a.db.to_string();
    } else if a.demo {
        c.db = DEMO_DB.to_string();
    }
    if let Some(k) = a.key {
        c.key = Some(k.to_string());
    }
    if qm_backends::is_url(&c.db) && c.key.is_none() {
        return Err(AppError::Usage(
            "--db is a PostgreSQL URL: pass --key FILE (the site's signing key; it is never kept in the database)".into(),
        ));
    }
    if let Some(n) = a.notifications {
        c.notifications = Some(n.to_string());
    }
    if let Some(n) = a.access {
        c.access = Some(n.to_string());
    }
    if let Some(n) = a.children {
        c.children = Some(n.to_string());
    }
    if let Some(addr) = a.addr {
        c.addr = addr.to_string();
    }
    let mut site = if a.demo {
        if qm_backends::is_url(&c.db) {
            eprintln!("opening {} (the demo organization is created there if the database is empty) …", crate::shown_db(&c.db));
        } else if !Path::new(&c.db).exists() {
            eprintln!("creating the demo organization in {} (a few seconds) …", c.db);
        }
        qm_demo::demo_org::open_or_create(&c.db, &c.key_path(), time::OffsetDateTime::now_utc())?
    } else {
        Site::open(qm_backends::open_store, &c.db, Some(&c.key_path()))?
    };
    crate::configure(&mut site, a.safety_tables, a.incident_rules, a.posture_levels)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| AppError::Internal(format!("tokio: {e}")))?;
    let demo = a.demo;
    let db = c.db.clone();
    runtime.block_on(async move {
        let running = qm_server::start_with(c, site, shutdown_signal()).await.map_err(AppError::Usage)?;
        println!("Quartermaster is serving http://{}/  (database {}; Ctrl-C stops it)", running.addr, crate::shown_db(&db));
        if demo {
            println!(
                "Demo sign-ins (password {:?}; PIN {} for the counter and witnesses):",
                qm_demo::demo_org::DEMO_PASSWORD,
                qm_demo::demo_org::DEMO_PIN
            );
            for (badge, who) in qm_demo::demo_org::sign_ins() {
                println!("  badge {badge}  {who}");
            }
        }
        running.wait().await.map_err(AppError::Internal)
    })?;
    Ok(0)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
