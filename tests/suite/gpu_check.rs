//! The prepared GPU check, `scripts/gpu-check.sh run --reduced`, on the suite's GPU (lavapipe in
//! CI) from a bundle of this build's own binaries: the script and its binary cannot rot.

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
#[cfg_attr(
    not(gpu_tests),
    ignore = "no GPU driver was found when the tests were built"
)]
fn the_gpu_check_script_runs_in_its_reduced_mode() {
    let gpu_check = PathBuf::from(env!("CARGO_BIN_EXE_gpu-check"));
    let bundle = std::env::temp_dir().join(format!("gpu-check-bundle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::copy(&gpu_check, bundle.join("gpu-check")).unwrap();
    // The example's binary sits beside this one when the whole workspace was built (as
    // `cargo test --workspace` does); a build of this package alone has none.
    let example = gpu_check.with_file_name("sparse-coding");
    let mut args = vec!["run", "--reduced", "--device", "wgpu"];
    if example.is_file() {
        std::fs::copy(&example, bundle.join("sparse-coding")).unwrap();
    } else {
        eprintln!("gpu-check: no sparse-coding binary beside {gpu_check:?}; main job left out");
        args.push("--no-main-job");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gpu-check.sh");
    let output = Command::new("bash")
        .arg(&script)
        .args(&args)
        .arg("--bundle")
        .arg(&bundle)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&bundle);
    assert!(
        output.status.success(),
        "gpu-check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let summary = stdout
        .split("== summary")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    for line in [
        "checks: all passed",
        "fixtures: ",
        "properties: ",
        "learned: 4 cases passed, 0 failed",
        "forward 1M: ours",
        "forward+backward 1M: ours",
        "learned forward+backward 1M: kernels",
    ] {
        assert!(
            summary.contains(line),
            "`{line}` missing from the summary:\n{summary}"
        );
    }
    assert!(
        !example.is_file() || summary.contains("main job (reduced: 2 layers, 20 steps): "),
        "the main job's line is missing:\n{summary}"
    );
}
