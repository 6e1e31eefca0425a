//! `/console`: the operator's page, on the listener (beside `/mcp`, behind the same Host and
//! Origin checks) and alone on loopback for `tollgate console`.
//!
//! - `GET /console`: the page itself, embedded in the binary. It holds no data, so it is served
//!   to any request that passes the Host/Origin checks (a browser cannot send a bearer token
//!   when an address is typed); the page sends the token from its URL's `#token=…`.
//! - `GET /console/api/state`: a [`crate::console::Snapshot`] as JSON;
//! - `POST /console/api/approvals/ID/approve` or `/deny`: decide a request (channel `console`),
//!   404 for an unknown id, 409 for one not pending, 403 for a call of the decider's own.
//!
//! The API answers only callers named with `--approver` (each with its own `--auth-token`);
//! `tollgate console` makes a token for the user who started it and prints the address.

use super::alone::serve_alone;
use super::{full, json_response, refuse, refused, Access, HttpError};
use crate::approval::DecideError;
use crate::console::Console;
use crate::jsonrpc::codes;
use crate::transport::http::ResponseBody;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;

/// Where the page is.
pub const PATH: &str = "/console";
const API: &str = "/console/api/";

/// Whether `path` is the console's.
pub fn owns(path: &str) -> bool {
    path == PATH || path.starts_with("/console/")
}

/// Answer one console request, checking access itself: Host and Origin for the page, and
/// a token of an approver for the API.
pub async fn answer(
    console: &Console,
    access: &Access,
    req: &Request<Incoming>,
) -> Response<ResponseBody> {
    let (method, path) = (req.method(), req.uri().path());
    if path == PATH {
        if let Err(refusal) = access.check_site(req.headers()) {
            return refused(refusal);
        }
        return match *method {
            Method::GET | Method::HEAD => page(),
            _ => refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::INVALID_REQUEST,
                "Method Not Allowed",
            ),
        };
    }
    let caller = match access.check(req.headers()) {
        Ok(caller) => caller,
        Err(refusal) => return refused(refusal),
    };
    let Some(caller) = caller.filter(|c| access.approvers.contains(c)) else {
        return refuse(
            StatusCode::FORBIDDEN,
            codes::INVALID_REQUEST,
            "Forbidden: only the callers named with --approver may use the console",
        );
    };
    let rest = path.strip_prefix(API).unwrap_or("");
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (method, parts.as_slice()) {
        (&Method::GET, ["state"]) => {
            let snapshot = console.snapshot().await;
            json_response(
                StatusCode::OK,
                serde_json::to_string(&snapshot).unwrap_or_default(),
            )
        }
        (&Method::POST, ["approvals", id, verb @ ("approve" | "deny")]) => {
            match console.decide(id, *verb == "approve", &caller).await {
                Ok(a) => json_response(
                    StatusCode::OK,
                    serde_json::to_string(&a).unwrap_or_default(),
                ),
                Err(e) => {
                    let status = match e {
                        DecideError::NotFound(_) => StatusCode::NOT_FOUND,
                        DecideError::NotPending { .. } => StatusCode::CONFLICT,
                        DecideError::OwnCall { .. } => StatusCode::FORBIDDEN,
                        DecideError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                    };
                    refuse(status, codes::INVALID_REQUEST, &e.to_string())
                }
            }
        }
        (_, ["state"] | ["approvals", _, "approve" | "deny"]) => {
            refuse(StatusCode::METHOD_NOT_ALLOWED, codes::INVALID_REQUEST, "Method Not Allowed")
        }
        _ => refuse(
            StatusCode::NOT_FOUND,
            codes::INVALID_REQUEST,
            "Not Found: GET /console, GET /console/api/state, POST /console/api/approvals/ID/approve or /deny",
        ),
    }
}

/// The page.
fn page() -> Response<ResponseBody> {
    let mut r = Response::new(full(crate::console::PAGE));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

/// Serve the console alone on `addr` (`tollgate console`): loopback only, for `access`'s
/// tokens. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    console: Console,
    access: Access,
) -> Result<SocketAddr, HttpError> {
    // A loopback address: its Host names are accepted as loopback names.
    let shared = Arc::new((console, access));
    serve_alone(addr, move |req| {
        let shared = shared.clone();
        async move {
            let (console, access) = &*shared;
            if owns(req.uri().path()) {
                answer(console, access, &req).await
            } else {
                refuse(
                    StatusCode::NOT_FOUND,
                    codes::INVALID_REQUEST,
                    "Not Found: the console is at /console",
                )
            }
        }
    })
    .await
}
