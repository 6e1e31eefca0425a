//! The wasmtime settings that decide whether compiled code fits an engine. The engine applies
//! them at start-up and `build.rs` applies them when it precompiles the built-in plugins, so the
//! code embedded in the binary loads without compiling (wasmtime checks the fit and Tollgate
//! compiles from the component when it does not, e.g. on a CPU without the build machine's
//! features, or with fuel metering on).

/// Apply the settings compiled code depends on. `fuel`: whether plugins may be metered.
pub fn apply(config: &mut wasmtime::Config, fuel: bool) {
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(fuel);
}
