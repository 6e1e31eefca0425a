//! Framing and byte streams — newline-delimited JSON-RPC over stdio, HTTP bodies and SSE — and
//! the link to the MCP server (a child process, or a remote server over Streamable HTTP).

pub mod http;
pub mod lines;
pub mod remote;
pub mod server;
pub mod sse;
pub mod stdio;
