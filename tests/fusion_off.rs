//! The crate builds with Burn's kernel fusion off.
//!
//! This workspace's own build has fusion on (Burn's default features, unified across the
//! workspace), so the `fusion-off-check` package, which turns default features off on Burn and
//! on this crate, is type-checked on its own here: a full second build of the GPU stack would
//! not fit CI's time. The unfused kernels themselves run in the suite (`suite/unfused.rs`, on
//! `CubeBackend` directly), and the package runs them end to end with
//! `cargo run --locked -p fusion-off-check --features wgpu`.

#![cfg(feature = "wgpu")]

use std::path::Path;
use std::process::Command;

#[test]
fn builds_with_fusion_off() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&workspace)
        .args(["check", "--locked", "--quiet", "-p", "fusion-off-check"])
        .args(["--features", "wgpu", "--message-format", "short"])
        .output()
        .expect("cargo could be started");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "burn-hardshrink does not build with fusion off:\n{stderr}"
    );
    // A clean build: a compiler warning here is a cfg combination the workspace build never sees.
    assert!(
        !stderr.contains(": warning:"),
        "warnings with fusion off:\n{stderr}"
    );
}
