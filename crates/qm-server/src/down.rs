//! Down the tree (docs/sites.md): the parent's `POST /down` — a child's request signed with its
//! site key, answered with the parent's entries that concern it and their inclusion proofs — and
//! the child's side, which the sync task and `qm sync` run after their own exchange.

use crate::sites::Parent;
use crate::{auth::now, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use qm_app::down::{Down, DownAnswer};

/// `POST /down`: 200 with the entries as JSON (`qm_app::down::Down`); 400, 403 or 404 with why.
pub(crate) async fn down(State(st): State<AppState>, body: Bytes) -> Response {
    let Some(witness) = st.witness.clone() else {
        return (StatusCode::NOT_FOUND, "this site has no child sites (no --children file)\n").into_response();
    };
    let Ok(request) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "the request is not UTF-8 text\n").into_response();
    };
    let at = now();
    match st.site.call(move |site| site.down_for(&witness.children, &request, at)).await {
        Ok(Ok(DownAnswer::Down(d))) => axum::Json(d).into_response(),
        Ok(Ok(DownAnswer::Refused(status, why))) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("refused: {why}\n")).into_response()
        }
        Ok(Err(e)) | Err(e) => {
            tracing::error!("answering a child's request for what flows down: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, format!("the site could not answer: {e}\n")).into_response()
        }
    }
}

/// The parent's `/down` beside its witness prefix: `…/witness` → `…/down`.
fn down_url(witness_url: &str) -> Result<String, String> {
    let base = witness_url.trim_end_matches('/');
    base.strip_suffix("/witness")
        .map(|b| format!("{b}/down"))
        .ok_or_else(|| format!("the parent's witness URL {witness_url} does not end in /witness, so its /down is not known"))
}

/// The most answers one pull takes (each up to 256 entries).
const ROUNDS_MAX: usize = 100;

/// Asks the parent for what it decided for this site since the last entry taken, until nothing
/// is new; every answer checked and recorded (`Site::take_down`). Returns how many entries were
/// recorded. Nothing to do without the parent's checkpoint key.
pub async fn pull_down(site: &crate::worker::SiteHandle, client: &reqwest::Client, parent: &Parent) -> Result<usize, String> {
    let Some(log_key) = parent.log_key.clone() else { return Ok(0) };
    let origin = log_key.split('+').next().unwrap_or_default().to_string();
    let url = down_url(&parent.url)?;
    let err = |e: qm_app::AppError| e.to_string();
    let mut recorded = 0;
    for _ in 0..ROUNDS_MAX {
        let (o, at) = (origin.clone(), now());
        let request = site.call(move |s| s.down_request(&o, at)).await.map_err(err)?.map_err(err)?;
        let r = client.post(&url).header(header::CONTENT_TYPE, "text/plain").body(request).send().await;
        let r = r.map_err(|e| format!("the parent at {url} cannot be reached: {e}"))?;
        let status = r.status().as_u16();
        if status != 200 {
            let why = r.text().await.unwrap_or_default();
            return Err(format!("the parent refused to say what flows down ({status}): {}", why.trim()));
        }
        let down: Down = r.json().await.map_err(|e| format!("the parent's answer is not what flows down: {e}"))?;
        if down.entries.is_empty() {
            return Ok(recorded);
        }
        let (key, at) = (log_key.clone(), now());
        recorded += site.call(move |s| s.take_down(&down, &key, at)).await.map_err(err)?.map_err(err)?;
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    #[test]
    fn down_sits_beside_the_witness() {
        assert_eq!(super::down_url("https://hq.example/witness/").unwrap(), "https://hq.example/down");
        assert!(super::down_url("https://hq.example/cosign").is_err());
    }
}
