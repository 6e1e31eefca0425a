//! # Tollgate
//!
//! An MCP policy proxy: it sits between an AI agent and an MCP server and sends every
//! `tools/call` through a chain of sandboxed WebAssembly policy plugins before the server sees it.
//!
//! Layers, top to bottom: a module uses only modules on lower lines, never one on its own line
//! or above (`layers.rs`, a unit test, holds the imports to this list):
//! 1. [`proxy`] pumps messages between the agent and the server, intercepting what policy decides;
//! 2. [`console`] (what the operator's page and `tollgate status` show), [`reload`] (hot reload),
//!    [`replay`] (`tollgate test`) and [`scan`] (a server's tools);
//! 3. [`wrap`] edits MCP clients' configurations;
//! 4. [`chain`] turns a `tools/call` into a decision: rules in order, rewrites, refunds;
//! 5. [`config`] reads policy files (and their includes) into one normalised [`config::Policy`];
//! 6. [`pack`] opens and verifies plugin and policy packs, local or from OCI registries;
//! 7. [`engine`] runs plugins in wasmtime under limits;
//! 8. [`builtin`] holds the embedded plugins;
//! 9. [`audit`] records what was decided;
//! 10. [`approval`] holds a call for a person's approval of exactly that call;
//! 11. [`pins`] holds each server's tools to reviewed definitions;
//! 12. [`transport`] frames messages (stdio lines, HTTP bodies and SSE) and links to the MCP
//!     server, a child process or a remote URL ([`transport::server`]);
//! 13. [`state`] keeps counters, first-use pins and approval requests; [`jsonrpc`] reads the
//!     JSON-RPC envelope and nothing more; [`metrics`] counts.

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

#[cfg(test)]
mod layers;
