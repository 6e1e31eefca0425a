//! The `getrandom` "custom" backend for plugins.
//!
//! Plugins are sandboxed without a source of randomness, yet common crates (hash maps seeded by
//! `ahash`, used by JSON Schema validators among others) ask `getrandom` for seed bytes and panic
//! when it fails. Guest builds set `--cfg getrandom_backend="custom"` and get this deterministic
//! stream instead. It is **not random**: fine for seeding hash tables inside a sandbox that no
//! adversary can probe for timing, wrong for anything secret.

use std::sync::atomic::{AtomicU64, Ordering};

static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

/// Fill `dest` with the next bytes of a splitmix64 stream.
fn fill(dest: &mut [u8]) {
    for chunk in dest.chunks_mut(8) {
        let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// The symbol `getrandom` 0.3 calls under `getrandom_backend = "custom"`.
///
/// # Safety
/// `dest` must be valid for writes of `len` bytes, as getrandom guarantees.
#[no_mangle]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    // SAFETY: getrandom passes a valid, writable buffer of `len` bytes.
    fill(unsafe { std::slice::from_raw_parts_mut(dest, len) });
    Ok(())
}
