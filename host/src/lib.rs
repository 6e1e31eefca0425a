//! # Tollgate
//!
//! An MCP policy proxy: it sits between an AI agent and an MCP server and sends every
//! `tools/call` through a chain of sandboxed WebAssembly policy plugins before the server sees it.
//!
//! Layers, each using only those below it:
//! - [`proxy`] pumps messages between the agent and the server, intercepting what policy decides;
//! - [`transport`] frames messages (stdio lines, HTTP bodies and SSE, an HTTP client);
//! - [`chain`] turns a `tools/call` into a decision: rules in order, rewrites, refunds;
//! - [`config`] reads policy files into one normalised [`config::Policy`];
//! - [`engine`] runs plugins in wasmtime under limits; [`builtin`] holds the embedded plugins;
//! - [`state`] keeps counters, first-use pins and approval requests; [`jsonrpc`] reads the
//!   JSON-RPC envelope and nothing more;
//! - [`pins`] holds each server's tools to reviewed definitions (the session checks lists);
//! - [`approval`] holds a call for a person's approval of exactly that call (requests kept in
//!   the state store, decided by an operator or asked of the client's user);
//! - [`audit`] and [`metrics`] record what was decided.
//!
//! Beside the data path, for the command line: [`pack`] (third-party plugin packs), [`scan`]
//! (a server's tools), [`replay`] (`tollgate test`), [`reload`] (hot reload), [`wrap`] (MCP
//! clients' configurations) and [`console`] (what the operator's page and `tollgate status`
//! show, read from the decision log and the state store).

pub mod approval;
pub mod audit;
pub mod builtin;
pub mod chain;
pub mod config;
pub mod console;
pub mod engine;
pub mod jsonrpc;
pub mod metrics;
pub mod pack;
pub mod pins;
pub mod proxy;
pub mod reload;
pub mod replay;
pub mod scan;
pub mod state;
pub mod transport;
pub mod wrap;
