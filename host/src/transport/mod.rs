//! Framing and byte streams: newline-delimited JSON-RPC over stdio, HTTP bodies and SSE.

pub mod http;
pub mod http_client;
pub mod lines;
pub mod stdio;
