// Included by the build scripts of the packages whose tests need a GPU (the suite and the
// sparse-coding example): one place that decides whether they run or are reported as ignored.

/// Sets `cfg(gpu_tests)` where the machine has a GPU driver wgpu can use: a Vulkan driver's
/// manifest on Linux (Mesa's lavapipe, a CPU one, counts) or Metal on macOS.
/// `BURN_HARDSHRINK_GPU_TESTS=1` or `=0` decides instead. A driver installed after the build is seen
/// once the build script runs again (the variable, or `cargo clean`).
fn probe_gpu() {
    println!("cargo::rustc-check-cfg=cfg(gpu_tests)");
    println!("cargo::rerun-if-env-changed=BURN_HARDSHRINK_GPU_TESTS");
    let mut found = cfg!(target_os = "macos");
    for dir in ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"] {
        if let Ok(mut manifests) = std::fs::read_dir(dir) {
            println!("cargo::rerun-if-changed={dir}");
            found |= manifests.next().is_some();
        }
    }
    match std::env::var("BURN_HARDSHRINK_GPU_TESTS").as_deref() {
        Ok("1") => found = true,
        Ok("0") => found = false,
        _ => {}
    }
    if found {
        println!("cargo::rustc-cfg=gpu_tests");
    }
}
