//! Links the release binary with link/hot-text.ld on Linux: the functions the bridge runs while starting and idling
//! placed together, so that an idle bridge keeps about 4 MiB less of its code resident (link/hot_text.py says why
//! and how the script is made).
//!
//! Only where the script is known to work: a Linux target, a release-like profile, and the toolchain's own linker
//! (GNU ld and LLD both take the script's `INSERT`). A linker set in the configuration (mold, for one) or
//! `HOT_TEXT_LD=0` leaves the script out; the binary is then the same apart from where its functions lie.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=link/hot-text.ld");
    println!("cargo:rerun-if-env-changed=HOT_TEXT_LD");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let wanted = var("HOT_TEXT_LD") != "0";
    let linux = var("CARGO_CFG_TARGET_OS") == "linux";
    let release = var("PROFILE") == "release";
    // A linker of the user's choosing, through the configuration or the flags, may not take linker scripts.
    let own_linker = env::var_os("RUSTC_LINKER").is_none()
        && !var("CARGO_ENCODED_RUSTFLAGS").split('\u{1f}').any(|f| f.contains("linker") || f.contains("fuse-ld"));
    if wanted && linux && release && own_linker {
        let script = format!("{}/link/hot-text.ld", var("CARGO_MANIFEST_DIR"));
        println!("cargo:rustc-link-arg-bin=otlp-bridge=-Wl,-T,{script}");
    }
}
