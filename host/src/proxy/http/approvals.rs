//! `/approvals` on the listener: the operator channel of human approval over HTTP, for the
//! callers named with `--approver` (each authenticated by its own `--auth-token`), who never
//! decide a request for a call of their own.
//!
//! - `GET /approvals` (`?pending` for the open ones only): the most recent requests, newest
//!   first, as a JSON array of records;
//! - `GET /approvals/ID`: one request;
//! - `POST /approvals/ID/approve`, `POST /approvals/ID/deny`: decide it as the caller (channel
//!   `http`); 404 for an unknown id, 409 for one that is not pending.

use super::{json_response, refuse, Listener};
use crate::approval::{self, DecideError, State};
use crate::jsonrpc::codes;
use crate::transport::http::ResponseBody;
use hyper::{Method, Response, StatusCode};

/// Where the endpoint is.
pub const PATH: &str = "/approvals";

/// How many requests a listing shows at most.
const LISTED: usize = 200;

/// Whether `path` is the endpoint's.
pub fn owns(path: &str) -> bool {
    path == PATH || path.starts_with("/approvals/")
}

impl Listener {
    /// Answer one request to the endpoint from `caller` (already past the Host/Origin/token
    /// checks).
    pub(super) async fn approvals(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        caller: Option<String>,
    ) -> Response<ResponseBody> {
        let Some(caller) = caller.filter(|c| self.options.access.approvers.contains(c)) else {
            return refuse(
                StatusCode::FORBIDDEN,
                codes::INVALID_REQUEST,
                "Forbidden: only the callers named with --approver may list or decide approval requests",
            );
        };
        let chain = self.chain.get();
        let Some(store) = chain.approval_store() else {
            return refuse(
                StatusCode::NOT_FOUND,
                codes::INVALID_REQUEST,
                "Not Found: this state store keeps no approval requests",
            );
        };
        let rest = path.strip_prefix(PATH).unwrap_or("").trim_matches('/');
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        let now = crate::state::now_ms();
        match (method, parts.as_slice()) {
            (&Method::GET, []) => match approval::list(store, LISTED).await {
                Ok(all) => {
                    let pending = query.is_some_and(|q| q.split('&').any(|p| p == "pending"));
                    let shown: Vec<_> = all
                        .into_iter()
                        .filter(|a| !pending || (a.state == State::Pending && now < a.expires_ms))
                        .collect();
                    json_response(
                        StatusCode::OK,
                        serde_json::to_string(&shown).unwrap_or_default(),
                    )
                }
                Err(e) => refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::INTERNAL_ERROR,
                    &e.to_string(),
                ),
            },
            (&Method::GET, [id]) => match approval::get(store, id).await {
                Ok(Some(a)) => json_response(
                    StatusCode::OK,
                    serde_json::to_string(&a).unwrap_or_default(),
                ),
                Ok(None) => refuse(
                    StatusCode::NOT_FOUND,
                    codes::INVALID_REQUEST,
                    &DecideError::NotFound(id.to_string()).to_string(),
                ),
                Err(e) => refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::INTERNAL_ERROR,
                    &e.to_string(),
                ),
            },
            (&Method::POST, [id, verb @ ("approve" | "deny")]) => {
                let approve = *verb == "approve";
                match approval::decide(store, id, approve, &caller, "http", now).await {
                    Ok(a) => {
                        tracing::info!(id = %a.id, by = %caller, approve, "approval request decided over HTTP");
                        json_response(
                            StatusCode::OK,
                            serde_json::to_string(&a).unwrap_or_default(),
                        )
                    }
                    Err(e @ DecideError::NotFound(_)) => refuse(
                        StatusCode::NOT_FOUND,
                        codes::INVALID_REQUEST,
                        &e.to_string(),
                    ),
                    Err(e @ DecideError::NotPending { .. }) => {
                        refuse(StatusCode::CONFLICT, codes::INVALID_REQUEST, &e.to_string())
                    }
                    Err(e @ DecideError::OwnCall { .. }) => refuse(
                        StatusCode::FORBIDDEN,
                        codes::INVALID_REQUEST,
                        &format!("Forbidden: {e}"),
                    ),
                    Err(e @ DecideError::Store(_)) => refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        codes::INTERNAL_ERROR,
                        &e.to_string(),
                    ),
                }
            }
            (_, [] | [_] | [_, "approve" | "deny"]) => refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::INVALID_REQUEST,
                "Method Not Allowed",
            ),
            _ => refuse(
                StatusCode::NOT_FOUND,
                codes::INVALID_REQUEST,
                "Not Found: GET /approvals, GET /approvals/ID, POST /approvals/ID/approve or /deny",
            ),
        }
    }
}
