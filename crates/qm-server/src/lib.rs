//! The Quartermaster server: the HTTP JSON API, web sign-in and permissions, and the server-rendered web UI.
//!
//! One thread owns the `Site` (it is not `Sync`); handlers talk to it over a channel (`worker`), which
//! also lets concurrent writes share one durable commit (group commit). Everything else here is the
//! edge: parsing, authentication, scope checks, HTML and JSON.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod auth;
pub mod config;
pub mod counter;
pub mod down;
pub mod edge;
pub mod error;
pub mod labels;
pub mod mirror;
pub mod notify;
pub mod reads;
pub mod relay;
pub mod scope;
pub mod sites;
pub mod views;
pub mod web;
pub mod worker;

pub use config::Config;
pub use error::ApiError;
pub use worker::SiteHandle;

use axum::http::{header, HeaderValue};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// The content security policy: our own scripts and styles only, no inline script, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Everything a request handler needs: the site, the sessions and the sign-in limiter.
#[derive(Clone)]
pub struct AppState {
    pub site: SiteHandle,
    pub auth: Arc<auth::Auth>,
    pub config: Arc<Config>,
    /// The access-control systems that post door events (docs/access.md); none configured: empty.
    pub access: Arc<qm_app::access::AccessSystems>,
    /// The child sites this one witnesses and its witness key (docs/sites.md); none: not a witness.
    pub witness: Option<Arc<sites::Witness>>,
}

/// The whole application: API, web UI, assets, with the body limit, CSP and request tracing layers.
pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit_bytes;
    Router::new()
        .merge(api::routes())
        .merge(web::routes())
        .merge(sites::routes())
        .layer(RequestBodyLimitLayer::new(limit))
        // Extractors that read the whole body (`Bytes`, `Json`, forms) stop at axum's own 2 MiB
        // unless told: the configured limit is the one in force.
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        // The mirror's uploads have a limit of their own (and may come gzipped).
        .merge(mirror::routes())
        // A refusal shown as a page keeps the person's menu and a way back.
        .layer(axum::middleware::from_fn_with_state(state.clone(), web::keep_navigation))
        .with_state(state)
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(TraceLayer::new_for_http())
}

/// A running server: its address, and how to stop it and wait until every commit is finished.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    /// Serves until the shutdown signal given to `start_with`, then finishes as `stop` does.
    pub async fn wait(mut self) -> Result<(), String> {
        let _keep = self.shutdown.take();
        self.task.await.map_err(|e| format!("server task: {e}"))?
    }

    /// Stops accepting connections, finishes in-flight requests and commits, checkpoints, returns.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.map_err(|e| format!("server task: {e}"))?
    }
}

/// Checkpoints also when writes stop: the worker signs only after a batch, at most every N seconds.
fn checkpoint_ticker(h: SiteHandle, every_s: u64) -> tokio::task::JoinHandle<()> {
    let every = std::time::Duration::from_secs(every_s.max(1));
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.tick().await;
        loop {
            t.tick().await;
            let r = h.call(|site| site.checkpoint_if_grown().map(|c| c.is_some())).await;
            if let Ok(Err(e)) = &r {
                tracing::warn!("checkpoint failed: {e}");
            }
            if r.is_err() {
                break;
            }
        }
    })
}

/// Headquarters' clock over the transfers between its children (docs/sites.md): every
/// `due_every_ms`, those overdue or received with differences become incidents, once each.
fn transfers_ticker(h: SiteHandle, witness: Arc<sites::Witness>, every_ms: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(std::time::Duration::from_millis(every_ms.max(100)));
        loop {
            t.tick().await;
            let w = witness.clone();
            match h.call(move |site| site.transfers_due(&w.children, auth::now())).await {
                Ok(Ok(n)) if n > 0 => tracing::info!(count = n, "transfers between child sites overdue or received with differences"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("transfers between child sites: {e} (looked at again later)"),
                Err(_) => break,
            }
        }
    })
}

/// Gathered denials are recorded every DENIALS_EVERY (the worker also records them before reads).
fn denials_ticker(h: SiteHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(worker::DENIALS_EVERY);
        loop {
            t.tick().await;
            if !h.flush_denials().await {
                break;
            }
        }
    })
}

/// Binds `config.addr`, starts the site's worker and serves until `stop` (or `shutdown` resolves).
pub async fn start(config: Config, site: qm_app::Site) -> Result<Running, String> {
    start_with(config, site, std::future::pending::<()>()).await
}

/// As `start`, and also stops when `signal` resolves (SIGINT/SIGTERM for `qm serve`).
pub async fn start_with(
    config: Config,
    site: qm_app::Site,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Running, String> {
    let listener = tokio::net::TcpListener::bind(&config.addr).await.map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut site = site;
    site.set_sign_in_summary(std::time::Duration::from_secs(config.sign_in_summary_s));
    let notifier = notify::Notifier::configured(config.notifications.as_deref(), site.state())?;
    let access = match config.access.as_deref() {
        Some(p) => {
            qm_app::access::AccessSystems::load(std::path::Path::new(p), site.state()).map_err(|e| format!("access systems: {e}"))?
        }
        None => Default::default(),
    };
    let witness = match config.children.as_deref() {
        Some(p) => Some(sites::witness(p, &config.key_path(), &site.site_name()).map_err(|e| format!("child sites: {e}"))?),
        None => None,
    };
    let parent = parent_of(&config)?;
    let (handle, worker) = worker::spawn(site, config.checkpoint_every_s, config.due_every_ms);
    let auth = Arc::new(auth::Auth::new(&config));
    let state = AppState { site: handle.clone(), auth, config: Arc::new(config), access: Arc::new(access), witness };
    let ticker = checkpoint_ticker(handle.clone(), state.config.checkpoint_every_s);
    let denials = denials_ticker(handle.clone());
    let sync = parent.map(|p| {
        sites::spawn_sync(handle.clone(), p, std::time::Duration::from_secs(state.config.sync_every_s.max(1)), state.witness.is_some())
    });
    let due = state.witness.clone().map(|w| transfers_ticker(handle.clone(), w, state.config.due_every_ms));
    let notifications = notify::spawn(handle.clone(), notifier, std::time::Duration::from_millis(state.config.notify_every_ms.max(50)));
    let app = router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            tokio::select! {
                _ = rx => {}
                _ = signal => {}
            }
            tracing::info!("shutting down: finishing in-flight requests and commits");
        };
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| format!("server: {e}"));
        // Every request has finished; the worker commits what is queued, checkpoints and exits.
        ticker.abort();
        denials.abort();
        notifications.abort();
        for t in sync.iter().chain(due.iter()) {
            t.abort();
        }
        handle.shutdown().await;
        let joined = tokio::task::spawn_blocking(move || worker.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            return Err("the site worker did not stop cleanly".into());
        }
        tracing::info!("stopped");
        served
    });
    Ok(Running { addr, shutdown: Some(tx), task })
}

/// The parent configured (QM_PARENT and its keys, docs/sites.md), its keys checked; none: no parent.
fn parent_of(config: &Config) -> Result<Option<sites::Parent>, String> {
    Ok(match (&config.parent, &config.parent_key) {
        (Some(url), Some(key)) => {
            qm_app::sites::CosignatureVerifier::new(key).map_err(|e| format!("the parent's witness key (QM_PARENT_KEY): {e}"))?;
            let mirror =
                config.parent_mirror_key.as_ref().map(|k| mirror::parent_mirror(url, config.parent_mirror.as_deref(), k)).transpose()?;
            if let Some(k) = &config.parent_log_key {
                qm_app::sites::CheckpointVerifier::new(k).map_err(|e| format!("the parent's checkpoint key (QM_PARENT_LOG_KEY): {e}"))?;
            }
            Some(sites::Parent { url: url.clone(), key: key.clone(), mirror, log_key: config.parent_log_key.clone() })
        }
        (None, None) => None,
        _ => return Err("a parent needs both its URL (QM_PARENT) and its witness key (QM_PARENT_KEY)".into()),
    })
}
