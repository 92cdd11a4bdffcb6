//! The CPU kernels at every SIMD level this machine has: the PyTorch fixtures, the property
//! tests and the learned op again, in a child process per level below the best one (the rest
//! of the suite runs at the best), forced through `BURN_HARDSHRINK_SIMD`.

use burn_hardshrink::kernels::{SIMD_ENV, SimdLevel};
use std::process::Command;

/// What the children run; `simd::` holds the check that the forced level is the one in force.
const FILTERS: [&str; 4] = ["fixtures::", "properties::", "learned::", "simd::"];

#[test]
fn every_lower_simd_level_matches_pytorch_and_the_reference_rule() {
    if std::env::var_os(SIMD_ENV).is_some() {
        return; // a child: its checks are the filtered tests themselves
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let lower = SimdLevel::ALL
        .into_iter()
        .filter(|level| level.detected() && *level < SimdLevel::best());
    for level in lower {
        let output = Command::new(&exe)
            .env(SIMD_ENV, level.name())
            .args(FILTERS)
            .args(["--test-threads=2"])
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let tail = |text: &str| text.lines().rev().take(40).collect::<Vec<_>>().join("\n");
        assert!(
            output.status.success(),
            "at {}: {}\n{}",
            level.name(),
            tail(&stdout),
            tail(&String::from_utf8_lossy(&output.stderr))
        );
        // The filters matched: the fixtures and properties ran, not an empty selection.
        let passed = stdout
            .lines()
            .find_map(|line| line.strip_prefix("test result: ok. "))
            .and_then(|rest| rest.split(' ').next()?.parse::<usize>().ok())
            .unwrap_or(0);
        assert!(passed >= 10, "at {}: only {passed} tests ran", level.name());
    }
}

#[test]
fn the_kernels_run_at_the_forced_or_the_best_level() {
    match std::env::var(SIMD_ENV) {
        Ok(name) => assert_eq!(SimdLevel::active().name(), name),
        Err(_) => assert_eq!(SimdLevel::active(), SimdLevel::best()),
    }
}
