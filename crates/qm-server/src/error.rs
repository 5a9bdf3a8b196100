//! One error type at the protocol boundary: an HTTP status, a stable code and the CLI's message, as JSON.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use qm_app::AppError;
use qm_core::Rejection;
use qm_store::StoreError;
use serde::Serialize;

/// An error as the API returns it: `{"error": {"code": ..., "message": ...}}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `code` is stable (a rule code such as `custody.one_account`, or `not_found`, `usage`, …);
/// `message` is exactly what the CLI prints.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_string(), message: message.into() }
    }
    pub fn usage(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "usage", format!("usage: {message}"))
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "auth.required", message)
    }
    pub fn forbidden(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("not found: {what} {id}"))
    }
}

/// The CLI's classification, as HTTP: refused 409 (403 for a denial of authority: `permission.*`, `token.scope`), bad credentials 401,
/// not found 404, invalid input 422, the database unreachable 503, anything else 500.
pub fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::Rejected(r) if r.is_denial() => StatusCode::FORBIDDEN,
        AppError::Rejected(Rejection::Refused { .. }) => StatusCode::CONFLICT,
        AppError::BadCredentials { .. } => StatusCode::UNAUTHORIZED,
        AppError::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
        // Lost the race to another writer even after validating once more: try again.
        AppError::Store(StoreError::Conflict { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Rejected(Rejection::NotFound { .. }) | AppError::Store(StoreError::Missing(_)) => StatusCode::NOT_FOUND,
        AppError::Rejected(Rejection::Invalid(_)) | AppError::Usage(_) | AppError::Import { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::ImportRefused { code: "not_found", .. } => StatusCode::NOT_FOUND,
        AppError::ImportRefused { code: "invalid", .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::ImportRefused { .. } => StatusCode::CONFLICT,
        AppError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        let status = status_of(&e);
        match status {
            // Internal and database messages stay in the log; the client gets a request id to quote.
            StatusCode::INTERNAL_SERVER_ERROR => {
                let request = uuid::Uuid::now_v7();
                tracing::error!(%request, code = e.code(), "{e}");
                ApiError {
                    status,
                    code: "internal".into(),
                    message: format!(
                        "internal error (request {request}); the server's log has the details. Retry with the same idempotency key: a write is recorded at most once"
                    ),
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                let request = uuid::Uuid::now_v7();
                tracing::warn!(%request, code = e.code(), "{e}");
                let (code, why) = match &e {
                    AppError::Store(StoreError::Conflict { .. }) => ("store.conflict", "another writer appended at the same moment"),
                    _ => ("store.unavailable", "the database is unavailable"),
                };
                ApiError {
                    status,
                    code: code.into(),
                    message: format!(
                        "{why}; nothing was recorded by this request (request {request}); retry with the same idempotency key"
                    ),
                }
            }
            _ => ApiError { status, code: e.code().to_string(), message: e.to_string() },
        }
    }
}

/// A response body as JSON; a value that cannot be written as JSON is an internal error (500 with a
/// request id), never a 200 with `null`.
pub fn to_json<T: Serialize>(v: T) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(v).map_err(|e| AppError::Internal(format!("writing the response as JSON: {e}")))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message } };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Every error under `/api` is our JSON, whoever made it: axum's extractors (a query, a path or a
/// form that does not parse: plain-text 400s), the body limit (413), an unknown route (404) or
/// method (405). A handler's own `ApiError` is JSON already and passes untouched.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let path = req.uri().path().chars().take(200).collect::<String>();
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let text =
        axum::body::to_bytes(res.into_body(), 16 * 1024).await.map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
    let e = match status {
        StatusCode::NOT_FOUND => ApiError::new(status, "not_found", format!("not found: no API route {path}")),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(status, "method", format!("usage: {path} does not take this method")),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "limit.body", "refused: the request body is larger than the server's limit (rule limit.body)")
        }
        s if s.is_client_error() => ApiError::usage(if text.is_empty() { s.to_string() } else { text }),
        s => ApiError::new(s, "internal", "internal error; the server's log has the details"),
    };
    e.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_cli() {
        let refused = AppError::Rejected(Rejection::Refused { rule: "custody.one_account", message: "x".into() });
        assert_eq!(status_of(&refused), StatusCode::CONFLICT);
        let denied = AppError::Rejected(Rejection::Refused { rule: "permission.role", message: "x".into() });
        assert_eq!(status_of(&denied), StatusCode::FORBIDDEN);
        assert_eq!(status_of(&AppError::Rejected(Rejection::NotFound { what: "serial", id: "X".into() })), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&AppError::Usage("x".into())), StatusCode::UNPROCESSABLE_ENTITY);
        let e = ApiError::from(refused);
        assert_eq!(e.message, "refused: x (rule custody.one_account)");
        // A lost race is retryable, with a stable code; internal and database messages stay in the log.
        let lost = ApiError::from(AppError::Store(StoreError::Conflict { seq: 7 }));
        assert_eq!((lost.status, lost.code.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "store.conflict"));
        let db = ApiError::from(AppError::Store(StoreError::Backend("relation \"tiles\" does not exist".into())));
        assert_eq!((db.status, db.code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        assert!(!db.message.contains("tiles") && db.message.contains("request "), "{}", db.message);
        let internal = ApiError::from(AppError::Internal("encoding entry 9: boom".into()));
        assert!(!internal.message.contains("boom"), "{}", internal.message);
        let gone = ApiError::from(AppError::Store(StoreError::Unavailable("connection refused to 10.0.0.5:5432".into())));
        assert_eq!(gone.code, "store.unavailable");
        assert!(!gone.message.contains("10.0.0.5"), "{}", gone.message);
    }
}
