//! Many sites (docs/sites.md): the C2SP tlog-mirror `add-entries` endpoint a parent serves its
//! children at `POST /mirror/add-entries` (gzip accepted), and the upload a child makes after its
//! checkpoint is witnessed, until the parent's mirror cosigns it.

use crate::{auth::now, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use qm_app::mirror::MirrorAnswer;
use qm_app::mirror::MirrorInfo;

/// The largest `add-entries` body, decompressed: a child sends about 4 MiB at a time, and one
/// package of 256 entries of at most 64 KiB each in the worst case.
pub const MIRROR_BODY_LIMIT: usize = 64 << 20;
const MIRROR_INFO: &str = "text/x.tlog.mirror-info";

/// `POST /mirror/add-entries` (C2SP tlog-mirror): 200 with the mirror's cosignature line once every
/// entry up to the pending checkpoint is stored and verified; 202 or 409 with the mirror-info (the
/// pending size, the next entry, a ticket); 400, 404 or 422 with the reason.
pub(crate) async fn add_entries(State(st): State<AppState>, body: Bytes) -> Response {
    let accept = || [(header::ACCEPT_ENCODING, "gzip")];
    let Some(w) = st.witness.clone() else {
        return (StatusCode::NOT_FOUND, accept(), "this site mirrors no child sites (no --children file)\n").into_response();
    };
    let at = now();
    let answer = st.site.call(move |site| site.add_entries(&w.children, &w.mirror, &body, at)).await;
    let info = |status: StatusCode, i: MirrorInfo| (status, accept(), [(header::CONTENT_TYPE, MIRROR_INFO)], i.to_text()).into_response();
    match answer {
        Ok(Ok(MirrorAnswer::Cosigned(line))) => {
            (StatusCode::OK, accept(), [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response()
        }
        Ok(Ok(MirrorAnswer::Partial(i))) => info(StatusCode::ACCEPTED, i),
        Ok(Ok(MirrorAnswer::Conflict(i))) => info(StatusCode::CONFLICT, i),
        Ok(Ok(MirrorAnswer::Refused(status, why))) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, accept(), [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("refused: {why}\n")).into_response()
        }
        Ok(Err(e)) | Err(e) => {
            tracing::error!("mirroring entries: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, accept(), format!("the mirror could not record these entries: {e}\n")).into_response()
        }
    }
}

/// The mirror's route, with its own body limit (applied to the body once decompressed).
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/mirror/add-entries", axum::routing::post(add_entries))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MIRROR_BODY_LIMIT))
        // The body is read as `Bytes`, which axum caps at 2 MiB unless told otherwise: a child's
        // request of about 4 MiB (a backlog after an outage) was refused with 413, every time.
        .layer(axum::extract::DefaultBodyLimit::max(MIRROR_BODY_LIMIT))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
}

/// A parent's mirror, as its child is configured with it: the submission prefix and the mirror key.
#[derive(Clone, Debug)]
pub struct MirrorParent {
    pub url: String,
    pub key: String,
}

impl MirrorParent {
    /// The mirror key's name (its cosignatures are kept under it).
    pub fn name(&self) -> &str {
        self.key.split('+').next().unwrap_or_default()
    }
}

/// The mirror's submission prefix beside a Quartermaster parent's witness prefix:
/// `https://hq.example/witness` → `https://hq.example/mirror`.
pub fn mirror_url_beside(witness_url: &str) -> Option<String> {
    witness_url.trim_end_matches('/').strip_suffix("/witness").map(|base| format!("{base}/mirror"))
}

/// The parent's mirror from the configuration: its URL (given, or beside the witness's) and its key,
/// checked to be a cosigner key.
pub fn parent_mirror(witness_url: &str, url: Option<&str>, key: &str) -> Result<MirrorParent, String> {
    qm_app::sites::CosignatureVerifier::new(key).map_err(|e| format!("the parent's mirror key (QM_PARENT_MIRROR_KEY): {e}"))?;
    let url = match url {
        Some(u) => u.to_string(),
        None => mirror_url_beside(witness_url).ok_or_else(|| {
            format!("the parent's witness URL {witness_url} does not end in /witness: give its mirror's URL (QM_PARENT_MIRROR)")
        })?,
    };
    Ok(MirrorParent { url, key: key.to_string() })
}

/// What a mirror answered an upload.
enum Reply {
    Cosigned(String),
    Info(u16, MirrorInfo),
    Refused(u16, String),
}

async fn ask_mirror(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<Reply, String> {
    let r = client
        .post(format!("{}/add-entries", url.trim_end_matches('/')))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("the parent's mirror at {url} cannot be reached: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("reading the mirror's answer: {e}"))?;
    Ok(match status {
        200 => Reply::Cosigned(text),
        202 | 409 => Reply::Info(status, MirrorInfo::parse(&text).map_err(|e| format!("the mirror answered {status}: {e}"))?),
        s => Reply::Refused(s, text.trim().to_string()),
    })
}

/// The root hash of a checkpoint note (its third line, base64).
fn note_root(note: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let line = note.lines().nth(2).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.decode(line).map_err(|_| format!("not a checkpoint note: {line:?}"))
}

/// The most requests one upload makes (each carries up to 8,192 entries or about 4 MiB).
const UPLOAD_ROUNDS_MAX: usize = 1_000;

/// Uploads this site's entries to its parent's mirror up to `end` (the size of the checkpoint
/// `note`, which the parent's witness has just cosigned), from the size the mirror last cosigned here
/// (the mirror names its next entry if it differs), until the mirror cosigns it; the cosignature is
/// kept once it verifies. Returns the size mirrored.
///
/// `contradicting`: the witness refused `note` as contradicting what it cosigned before; the
/// entries are then sent from 0 with the note's root as the ticket, for the mirror to compare with
/// what it holds (it names the first entry that differs; docs/sites.md).
pub async fn upload(
    site: &crate::worker::SiteHandle,
    client: &reqwest::Client,
    mirror: &MirrorParent,
    note: String,
    end: u64,
    contradicting: bool,
) -> Result<u64, String> {
    let err = |e: qm_app::AppError| e.to_string();
    let name = mirror.name().to_string();
    let ticket = if contradicting { note_root(&note)? } else { vec![] };
    let from = if contradicting { 0 } else { site.call(move |s| s.mirrored_size(&name)).await.map_err(err)?.map_err(err)?.min(end) };
    let lines = push_entries(site, client, &mirror.url, (from, end), &Entries::Own { ticket }).await?;
    let (key, at) = (mirror.key.clone(), now());
    let c = site.call(move |s| s.keep_cosignature(&note, &lines, &key, at)).await.map_err(err)?.map_err(err)?;
    Ok(c.size)
}

/// Whose entries an upload sends: this site's own (with a ticket), or a child's it mirrors and
/// relays to its own parent.
pub(crate) enum Entries {
    Own { ticket: Vec<u8> },
    Relayed { origin: String },
}

/// Posts `add-entries` requests of `source`'s entries, from `from` and then from the entry the
/// mirror names, until the mirror cosigns the checkpoint of size `end`: its cosignature lines.
pub(crate) async fn push_entries(
    site: &crate::worker::SiteHandle,
    client: &reqwest::Client,
    url: &str,
    (mut from, end): (u64, u64),
    source: &Entries,
) -> Result<String, String> {
    let err = |e: qm_app::AppError| e.to_string();
    for _ in 0..UPLOAD_ROUNDS_MAX {
        let req = match source {
            Entries::Own { ticket } => {
                let ticket = ticket.clone();
                site.call(move |s| s.add_entries_request(from, end).map(|r| qm_app::mirror::AddEntries { ticket, ..r })).await
            }
            Entries::Relayed { origin } => {
                let origin = origin.clone();
                site.call(move |s| s.relay_entries_request(&origin, from, end)).await
            }
        };
        let body = req.map_err(err)?.map_err(err)?.to_bytes().map_err(|e| e.to_string())?;
        match ask_mirror(client, url, body).await? {
            Reply::Cosigned(lines) => return Ok(lines),
            Reply::Info(status, info) => {
                if info.pending_size != end {
                    return Err(format!(
                        "the parent's mirror waits for the checkpoint of size {} (this upload was for {end}); the next sync sends it",
                        info.pending_size
                    ));
                }
                if info.next_entry == from || (status == 202 && info.next_entry < from) {
                    return Err(format!("the parent's mirror answered {status} and stays at entry {}", info.next_entry));
                }
                from = info.next_entry.min(end);
            }
            Reply::Refused(status, why) => return Err(format!("the parent's mirror refused the entries ({status}): {why}")),
        }
    }
    Err(format!("the upload to the parent's mirror took more than {UPLOAD_ROUNDS_MAX} requests"))
}
