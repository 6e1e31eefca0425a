//! A small plain-HTTP server beside the agent's pipe in stdio mode: `/metrics`, and the console
//! page (`tollgate console`).

use super::{refuse, HttpError};
use crate::jsonrpc::codes;
use crate::transport::http::{full, ResponseBody};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Where Prometheus metrics are served.
pub const METRICS_PATH: &str = "/metrics";

pub(super) fn metrics_response() -> Response<ResponseBody> {
    let mut r = Response::new(full(crate::metrics::render()));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// Serve `/metrics` alone on `addr` (stdio mode's `--metrics`); returns the bound address.
pub async fn serve_metrics(addr: SocketAddr) -> Result<SocketAddr, HttpError> {
    serve_alone(addr, |req| async move {
        if req.uri().path() == METRICS_PATH {
            metrics_response()
        } else {
            refuse(
                StatusCode::NOT_FOUND,
                codes::INVALID_REQUEST,
                "Not Found: metrics are at /metrics",
            )
        }
    })
    .await
}

/// Serve plain HTTP/1.1 on `addr`, each request answered by `answer`, until the process ends
/// (what stdio mode serves beside the agent's pipe: metrics, the console). Returns the bound
/// address.
pub(super) async fn serve_alone<F, Fut>(
    addr: SocketAddr,
    answer: F,
) -> Result<SocketAddr, HttpError>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<ResponseBody>> + Send + 'static,
{
    let socket = TcpListener::bind(addr)
        .await
        .map_err(|cause| HttpError::Bind { addr, cause })?;
    let bound = socket.local_addr().unwrap_or(addr);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = socket.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let answer = answer.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}
