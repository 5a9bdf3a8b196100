//! Many sites (docs/sites.md): the C2SP tlog-witness `add-checkpoint` endpoint a parent serves its
//! children at `POST /witness/add-checkpoint`, and the client a child uses to ask for a cosignature.

use crate::{auth::now, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use qm_app::sites::{Children, Refusal, WitnessAnswer};
use std::sync::Arc;

/// What a parent needs to witness and mirror its children: who they are, and its own witness and
/// mirror keys (two cosigners, as tlog-mirror asks).
pub struct Witness {
    pub children: Children,
    pub key: qm_app::sites::SiteKey,
    pub mirror: qm_app::sites::SiteKey,
}

/// `POST /witness/add-checkpoint` (C2SP tlog-witness): 200 with the cosignature line; 400, 403,
/// 404, 409 (with the size held, `text/x.tlog.size`) or 422 with the reason as text.
pub(crate) async fn add_checkpoint(State(st): State<AppState>, body: Bytes) -> Response {
    let Some(witness) = st.witness.clone() else {
        return (StatusCode::NOT_FOUND, "this site witnesses no child sites (no --children file)\n").into_response();
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "the request is not UTF-8 text\n").into_response();
    };
    let at = now();
    let answer = st.site.call(move |site| site.add_checkpoint(&witness.children, &witness.key, &body, at)).await;
    match answer {
        Ok(Ok(WitnessAnswer::Cosigned(line))) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response()
        }
        Ok(Ok(WitnessAnswer::Refused(Refusal::Conflict { latest }))) => {
            (StatusCode::CONFLICT, [(header::CONTENT_TYPE, "text/x.tlog.size")], format!("{latest}\n")).into_response()
        }
        Ok(Ok(WitnessAnswer::Refused(r))) => {
            let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("refused: {r}\n")).into_response()
        }
        Ok(Err(e)) | Err(e) => {
            tracing::error!("witnessing a checkpoint: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, format!("the witness could not record this checkpoint: {e}\n")).into_response()
        }
    }
}

/// Only staff of the site's root unit see its children; a denial is recorded.
async fn root_only(st: &AppState, p: &crate::auth::Principal) -> Result<(), crate::error::ApiError> {
    if p.at_root {
        return Ok(());
    }
    let why = format!("badge {} (unit {}) may not see the child sites: only staff of the site's root unit may", p.badge, p.unit);
    crate::auth::record_denial(st, p.badge.as_str(), "read", &why).await;
    Err(crate::error::ApiError::forbidden("permission.scope", format!("refused: {why} (rule permission.scope)")))
}

/// A read of the children's books, for staff of the root unit only (a denial is recorded): `f`
/// with the site and its children file, on the site's thread; `none` when it witnesses no child.
async fn read_children<T: Send + 'static>(
    st: &AppState,
    p: &crate::auth::Principal,
    none: impl FnOnce() -> Result<T, crate::error::ApiError>,
    f: impl FnOnce(&mut qm_app::Site, &Children, time::OffsetDateTime) -> qm_app::Result<T> + Send + 'static,
) -> Result<T, crate::error::ApiError> {
    root_only(st, p).await?;
    let Some(w) = st.witness.clone() else { return none() };
    Ok(st.site.call(move |site| f(site, &w.children, now())).await??)
}

/// The child sites this site witnesses, as headquarters sees them. None configured: an empty list.
pub(crate) async fn sites(st: &AppState, p: &crate::auth::Principal) -> Result<Vec<qm_app::sites::SiteView>, crate::error::ApiError> {
    read_children(st, p, || Ok(vec![]), |site, c, now| qm_app::sites::sites_view(site, c, now)).await
}

/// Headquarters' read model over its children's mirrored ledgers.
pub(crate) async fn span(st: &AppState, p: &crate::auth::Principal) -> Result<qm_app::span::Span, crate::error::ApiError> {
    read_children(st, p, || Ok(qm_app::span::Span { sites: vec![], totals: vec![] }), qm_app::span::span).await
}

/// One child's books in full, from its mirror.
pub(crate) async fn child_books(
    st: &AppState,
    p: &crate::auth::Principal,
    origin: String,
) -> Result<qm_app::span::ChildBooks, crate::error::ApiError> {
    let none = || Err(crate::error::ApiError::not_found("child site", &origin));
    let o = origin.clone();
    read_children(st, p, none, move |site, c, now| qm_app::span::child_books(site, c, &o, now)).await
}

/// Transfers between the child sites, matched from their mirrors.
pub(crate) async fn site_transfers(
    st: &AppState,
    p: &crate::auth::Principal,
) -> Result<Vec<qm_app::across::SiteTransfer>, crate::error::ApiError> {
    read_children(st, p, || Ok(vec![]), qm_app::across::transfers_across).await
}

/// A directive's compliance at each child site, from the mirrors (no children: none).
pub(crate) async fn directive_sites(
    st: &AppState,
    p: &crate::auth::Principal,
    id: String,
) -> Result<Vec<qm_app::span::SiteCompliance>, crate::error::ApiError> {
    read_children(st, p, || Ok(vec![]), move |site, c, now| qm_app::span::directive_across(site, c, &id, now)).await
}

#[utoipa::path(get, path = "/api/sites/transfers", tag = "sites",
    responses((status = 200, body = serde_json::Value, description = "each transfer between child sites: id (origin/transfer), from_site, to_site, to_unit, document, dispatched_at, lines, status (received, mismatch, awaited, overdue), receipt_seq, differences, hours"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn site_transfers_api(
    crate::edge::Caller { st, p, .. }: crate::edge::Caller,
) -> Result<axum::Json<Vec<qm_app::across::SiteTransfer>>, crate::error::ApiError> {
    Ok(axum::Json(site_transfers(&st, &p).await?))
}

#[utoipa::path(get, path = "/api/directives/{id}/sites", tag = "sites", params(("id" = String, Path, description = "the directive")),
    responses((status = 200, body = serde_json::Value, description = "per child site mirrored here: origin, unit, mirrored, mirrored_at, recorded, status, units_concerned, units_acknowledged, briefed"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn directive_sites_api(
    crate::edge::Caller { st, p, .. }: crate::edge::Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<Vec<qm_app::span::SiteCompliance>>, crate::error::ApiError> {
    Ok(axum::Json(directive_sites(&st, &p, id).await?))
}

#[utoipa::path(get, path = "/api/sites", tag = "sites",
    responses((status = 200, body = serde_json::Value, description = "each child site: origin, unit, size, cosigned_at, age_h, evidence, state, mirrored, backlog"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn sites_api(
    crate::edge::Caller { st, p, .. }: crate::edge::Caller,
) -> Result<axum::Json<Vec<qm_app::sites::SiteView>>, crate::error::ApiError> {
    Ok(axum::Json(sites(&st, &p).await?))
}

#[utoipa::path(get, path = "/api/sites/books", tag = "sites",
    responses((status = 200, body = serde_json::Value, description = "sites: each mirrored child's books in brief (origin, unit, mirrored, units, incidents_open, incidents_critical, in_transit, issued, directives_in_force); totals: stock per item type, per site and in all"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn span_api(
    crate::edge::Caller { st, p, .. }: crate::edge::Caller,
) -> Result<axum::Json<qm_app::span::Span>, crate::error::ApiError> {
    Ok(axum::Json(span(&st, &p).await?))
}

#[utoipa::path(get, path = "/api/sites/{origin}/books", tag = "sites", params(("origin" = String, Path, description = "the child site's origin (its name)")),
    responses((status = 200, body = serde_json::Value, description = "row, stock, incidents (open), transfers (in transit), directives (in force), as the child's mirrored ledger replays"), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn child_books_api(
    crate::edge::Caller { st, p, .. }: crate::edge::Caller,
    axum::extract::Path(origin): axum::extract::Path<String>,
) -> Result<axum::Json<qm_app::span::ChildBooks>, crate::error::ApiError> {
    Ok(axum::Json(child_books(&st, &p, origin).await?))
}

/// `GET /ledger/checkpoint`: the latest checkpoint with the parent's cosignatures (C2SP tlog-tiles).
pub(crate) async fn ledger_checkpoint(State(st): State<AppState>) -> Response {
    match st.site.call(|s| s.served_checkpoint()).await {
        Ok(Ok(note)) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], note).into_response(),
        Ok(Err(e)) | Err(e) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
    }
}

async fn tile_response(st: &AppState, path: &str) -> Response {
    let Some(t) = qm_app::sites::tile_at(path) else {
        return (StatusCode::NOT_FOUND, format!("not a tile path: {path}\n")).into_response();
    };
    match st.site.call(move |s| s.tile(t)).await {
        Ok(Ok(data)) => {
            // A full tile never changes; a partial one grows.
            let cache = if t.width == 256 { "public, max-age=31536000, immutable" } else { "no-cache" };
            ([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, cache)], data).into_response()
        }
        Ok(Err(qm_app::AppError::Rejected(r))) => (StatusCode::NOT_FOUND, format!("{r}\n")).into_response(),
        Ok(Err(e)) | Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// `GET /ledger/tile/<L>/<N>[.p/<W>]`: a hash tile (hashes only; anyone who can reach the server).
pub(crate) async fn ledger_tile(State(st): State<AppState>, axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    tile_response(&st, &path).await
}

/// `GET /ledger/tile/entries/<N>[.p/<W>]`: an entry bundle; the entries are the books themselves,
/// so only for staff of the root unit (a session or a bearer token; a denial is recorded).
pub(crate) async fn ledger_entries(
    crate::edge::Caller { st, p, .. }: crate::edge::Caller,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Response {
    if !p.at_root {
        let why = format!("badge {} (unit {}) may not read the whole ledger: only staff of the site's root unit may", p.badge, p.unit);
        crate::auth::record_denial(&st, p.badge.as_str(), "read", &why).await;
        return (StatusCode::FORBIDDEN, format!("refused: {why}\n")).into_response();
    }
    tile_response(&st, &format!("entries/{rest}")).await
}

pub(crate) fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/witness/add-checkpoint", post(add_checkpoint))
        .route("/down", post(crate::down::down))
        .route("/api/sites", get(sites_api))
        .route("/api/sites/books", get(span_api))
        .route("/api/sites/transfers", get(site_transfers_api))
        .route("/api/sites/{origin}/books", get(child_books_api))
        .route("/api/directives/{id}/sites", get(directive_sites_api))
        .route("/ledger/checkpoint", get(ledger_checkpoint))
        .route("/ledger/tile/entries/{*rest}", get(ledger_entries))
        .route("/ledger/tile/{*path}", get(ledger_tile))
}

/// Loads the children file and the witness and mirror keys (made beside the site's key the first time).
pub fn witness(children: &str, site_key: &std::path::Path, site: &str) -> Result<Arc<Witness>, String> {
    let children = Children::read(std::path::Path::new(children)).map_err(|e| e.to_string())?;
    let key = qm_app::sites::witness_key(&qm_app::sites::witness_key_path(site_key), site).map_err(|e| e.to_string())?;
    let mirror = qm_app::mirror::mirror_key(&qm_app::mirror::mirror_key_path(site_key), site).map_err(|e| e.to_string())?;
    Ok(Arc::new(Witness { children, key, mirror }))
}

/// The HTTP client a child asks its parent with (a minute at most per request).
pub fn parent_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build().map_err(|e| e.to_string())
}

/// What a parent answered an add-checkpoint request.
pub enum ParentAnswer {
    /// The cosignature lines.
    Cosigned(String),
    /// 409: the size of this site's ledger the parent holds.
    Holds(u64),
    Refused(u16, String),
}

/// Asks the parent at `url` (its submission prefix, e.g. `https://hq.example/witness`) to cosign.
pub async fn ask_parent(client: &reqwest::Client, url: &str, body: String) -> Result<ParentAnswer, String> {
    let r = client
        .post(format!("{}/add-checkpoint", url.trim_end_matches('/')))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("the parent at {url} cannot be reached: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("reading the parent's answer: {e}"))?;
    Ok(match status {
        200 => ParentAnswer::Cosigned(text),
        409 => ParentAnswer::Holds(text.trim().parse().map_err(|_| format!("the parent answered 409 with {text:?}, not a size"))?),
        s => ParentAnswer::Refused(s, text.trim().to_string()),
    })
}

/// A child's parent: its witness URL (submission prefix) and witness key, and its mirror when the
/// child's entries are to be kept there (docs/sites.md).
#[derive(Clone, Debug)]
pub struct Parent {
    pub url: String,
    pub key: String,
    pub mirror: Option<crate::mirror::MirrorParent>,
    /// The parent's own checkpoint key (`qm verifier-key` there): with it, what the parent decides
    /// for this site flows down here (`crate::down`).
    pub log_key: Option<String>,
}

/// The parent cosigned this site's checkpoint of `size`; `held`: the size it held before;
/// `mirrored`: the size its mirror holds, verified and cosigned (with a mirror).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Synced {
    pub size: u64,
    pub witness: String,
    pub held: u64,
    pub mirrored: Option<u64>,
}

/// One exchange with the parent (`qm sync`, and the server's sync task): the latest checkpoint with
/// a proof from the size the parent last cosigned here; once more from the size a 409 names; the
/// cosignature kept once it verifies. Then, with a mirror, the entries up to that checkpoint
/// uploaded until the mirror cosigns it. `None`: the parent already holds the whole ledger (asked
/// again anyway when `always`: `qm sync` by hand shows what the parent says of it now).
pub async fn sync_once(
    site: &crate::worker::SiteHandle,
    client: &reqwest::Client,
    parent: &Parent,
    always: bool,
) -> Result<Option<Synced>, String> {
    let err = |e: qm_app::AppError| e.to_string();
    let mirror_name = parent.mirror.as_ref().map(|m| m.name().to_string());
    let (size, holds, mirrored) = site
        .call(move |s| {
            let mirrored = mirror_name.map(|n| s.mirrored_size(&n)).transpose()?;
            Ok::<_, qm_app::AppError>((s.size(), s.cosigned_size()?, mirrored))
        })
        .await
        .map_err(err)?
        .map_err(err)?;
    let mirror_behind = mirrored.is_some_and(|m| m < holds);
    if size == holds && !mirror_behind && !always {
        return Ok(None);
    }
    let (witnessed, note) = if size == holds && !always {
        let req = site.call(move |s| s.add_checkpoint_request(holds)).await.map_err(err)?.map_err(err)?;
        (Synced { size: holds, witness: String::new(), held: holds, mirrored }, req.note)
    } else {
        witness_exchange(site, client, parent, holds).await?
    };
    let mirrored = match &parent.mirror {
        Some(m) if mirrored.is_none_or(|n| n < witnessed.size) => {
            Some(crate::mirror::upload(site, client, m, note, witnessed.size, false).await?)
        }
        _ => mirrored,
    };
    Ok(Some(Synced { mirrored, ..witnessed }))
}

/// The witness part of a sync: the latest checkpoint cosigned, and its note.
async fn witness_exchange(
    site: &crate::worker::SiteHandle,
    client: &reqwest::Client,
    parent: &Parent,
    mut holds: u64,
) -> Result<(Synced, String), String> {
    let err = |e: qm_app::AppError| e.to_string();
    for _ in 0..2 {
        let req = site.call(move |s| s.add_checkpoint_request(holds)).await.map_err(err)?.map_err(err)?;
        let note = req.note.clone();
        match ask_parent(client, &parent.url, req.body()).await? {
            ParentAnswer::Cosigned(lines) => {
                let key = parent.key.clone();
                let at = now();
                let kept = note.clone();
                let c = site.call(move |s| s.keep_cosignature(&kept, &lines, &key, at)).await.map_err(err)?.map_err(err)?;
                return Ok((Synced { size: c.size, witness: c.witness, held: holds, mirrored: None }, note));
            }
            ParentAnswer::Holds(n) if n != holds => holds = n,
            ParentAnswer::Holds(n) => return Err(format!("the parent holds size {n} and refused it again")),
            ParentAnswer::Refused(status, why) => {
                let mut said = format!("the parent refused this site's checkpoint ({status}): {why}");
                if let (422, Some(mirror)) = (status, &parent.mirror) {
                    // A history the witness finds contradicting: the entries go to the mirror, which
                    // names the first one that differs from what it holds.
                    let size = note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
                    match crate::mirror::upload(site, client, mirror, note, size, true).await {
                        Ok(n) => said.push_str(&format!("; the mirror cosigned {n}")),
                        Err(e) => said.push_str(&format!("; {e}")),
                    }
                }
                return Err(said);
            }
        }
    }
    Err("the parent's size kept changing; try again".into())
}

/// The longest wait between two tries while the parent cannot be reached or refuses.
pub const SYNC_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(300);

/// The server's sync task: every `every`, the ledger's new checkpoint to the parent, and (`relay`:
/// this site mirrors child sites) each child ledger mirrored here relayed to it
/// (`crate::relay`); while that fails (the line is down, the parent refuses), tries again after
/// 1 s, 2 s, 4 s … up to `SYNC_BACKOFF_MAX`. The site works on meanwhile; a later exchange carries
/// everything since.
pub(crate) fn spawn_sync(
    site: crate::worker::SiteHandle,
    parent: Parent,
    every: std::time::Duration,
    relay: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match parent_client() {
            Ok(c) => c,
            Err(e) => return tracing::error!("no HTTP client for the parent: {e}"),
        };
        let mut failing = std::time::Duration::ZERO;
        let mut relayed = crate::relay::Relayed::default();
        loop {
            let wait = if failing.is_zero() { every } else { failing };
            tokio::time::sleep(wait).await;
            let mut r = sync_once(&site, &client, &parent, false).await.map(|s| {
                if let Some(s) = s {
                    tracing::info!(size = s.size, witness = %s.witness, mirrored = ?s.mirrored, "the parent cosigned this site's checkpoint");
                }
            });
            if r.is_ok() {
                r = crate::down::pull_down(&site, &client, &parent).await.map(|n| {
                    if n > 0 {
                        tracing::info!(entries = n, "what the parent decided for this site is recorded here");
                    }
                });
            }
            if relay && r.is_ok() {
                r = crate::relay::relay_children(&site, &client, &parent, &mut relayed).await.map(|list| {
                    for c in list {
                        tracing::info!(origin = %c.origin, size = c.size, mirrored = ?c.mirrored, "a child's ledger relayed to the parent");
                    }
                });
            }
            match r {
                Ok(()) => failing = std::time::Duration::ZERO,
                Err(e) => {
                    failing = (failing * 2).clamp(std::time::Duration::from_secs(1), SYNC_BACKOFF_MAX);
                    tracing::warn!("sync with the parent failed, trying again in {} s: {e}", failing.as_secs());
                }
            }
        }
    })
}
