//! Whether the suite's GPU tests run here or are reported as ignored (`gpu_probe.rs`).

include!("gpu_probe.rs");

fn main() {
    // Without the package's `wgpu` feature there is no GPU to open, driver or not.
    if std::env::var_os("CARGO_FEATURE_WGPU").is_some() {
        probe_gpu();
    } else {
        println!("cargo::rustc-check-cfg=cfg(gpu_tests)");
    }
}
