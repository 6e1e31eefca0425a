//! Framing and byte streams: newline-delimited JSON-RPC over stdio.

pub mod lines;
pub mod stdio;
