//! What the example's integration tests share: small configurations, runs of the binary in
//! self-removing scratch directories, and the results of an uninterrupted run.

use sparse_coding::config::{ExperimentConfig, Training};
use sparse_coding::evaluate::Results;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use tempfile::TempDir;

pub const BINARY: &str = env!("CARGO_BIN_EXE_sparse-coding");

/// A configuration that trains in seconds in a debug build: 4 layers end to end, 240 steps in
/// epochs of 40.
pub fn small() -> ExperimentConfig {
    ExperimentConfig::new()
        .with_training(Training::EndToEnd)
        .with_layers(4)
        .with_steps(240)
        .with_batch(64)
        .with_test_samples(300)
        .with_validation_samples(300)
        .with_checkpoint_every(40)
}

/// The same, stage-wise: 4 stages of 60 steps, 2 epochs each.
pub fn stage_wise() -> ExperimentConfig {
    small()
        .with_training(Training::StageWise)
        .with_checkpoint_every(30)
}

/// A fresh directory for one test, removed with everything in it when the value drops (a failed
/// test's too), and the path of a run directory inside it, not yet made.
pub fn scratch(name: &str) -> (TempDir, PathBuf) {
    let prefix = format!("sparse-coding-{name}-");
    let dir = tempfile::Builder::new().prefix(&prefix).tempdir().unwrap();
    let out = dir.path().join("run");
    (dir, out)
}

/// The binary, quiet, on `config` (written to a file beside `out`), with its stderr captured; not
/// started yet.
pub fn command(config: &ExperimentConfig, out: &Path) -> Command {
    let file = out.with_extension("json");
    std::fs::write(&file, config.to_string()).unwrap();
    let mut command = Command::new(BINARY);
    command
        .args(["--quiet", "--config"])
        .arg(&file)
        .arg("--out")
        .arg(out);
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

/// [`command`], started.
pub fn start(config: &ExperimentConfig, out: &Path) -> Child {
    command(config, out).spawn().unwrap()
}

/// Runs `command` to its end: its status and stderr.
pub fn finish(child: Child) -> (ExitStatus, String) {
    let Output { status, stderr, .. } = child.wait_with_output().unwrap();
    (status, String::from_utf8_lossy(&stderr).into_owned())
}

pub fn results(out: &Path) -> Results {
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The results of an uninterrupted run of `config`, run once per test binary.
pub fn uninterrupted(config: &ExperimentConfig) -> Results {
    static RUNS: OnceLock<Mutex<HashMap<String, Results>>> = OnceLock::new();
    let runs = RUNS.get_or_init(Mutex::default);
    let key = config.to_string();
    if let Some(results) = runs.lock().unwrap().get(&key) {
        return results.clone();
    }
    let (_scratch, out) = scratch("whole");
    let (status, stderr) = finish(start(config, &out));
    assert!(status.success(), "{stderr}");
    let whole = results(&out);
    runs.lock().unwrap().insert(key, whole.clone());
    whole
}
