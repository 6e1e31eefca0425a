//! Tollgate's integration and end-to-end tests, one binary (each area a module, one shared
//! support module, [`e2e`]) so that wasmtime, hyper, rusqlite and redis are linked once rather
//! than once per file. Run one area with `cargo test --test suite AREA::` (e.g. `e2e_http::`).

mod e2e;

mod chain;
mod cli_test_scan;
mod cli_wrap;
mod colocation;
mod compat_policies;
mod e2e_approvals;
mod e2e_http;
mod e2e_http_upstream;
mod e2e_pins;
mod e2e_stdio;
mod engine_limits;
mod operations;
mod packs;
mod redis_store;
mod schema;
mod soak;
mod stdio_proxy;
