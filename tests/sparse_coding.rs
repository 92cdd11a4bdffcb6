//! The sparse-coding example end to end: a small run learns and beats its ISTA baseline, a
//! killed and resumed run ends where an uninterrupted one does, and every bad input gets its
//! one-line error.

use sparse_coding::{Outcome, Results, RunConfig, RunOptions, resume, run};
use std::path::PathBuf;

/// A configuration small enough to train in seconds in a debug build.
fn small() -> RunConfig {
    RunConfig {
        layers: 4,
        steps: 240,
        batch: 64,
        learning_rate: 3e-3,
        test_samples: 300,
        validation_samples: 300,
        eval_every: 100,
        checkpoint_every: 50,
        log_every: 10,
        ..RunConfig::default()
    }
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sparse-coding-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn finished(outcome: Outcome) -> Results {
    match outcome {
        Outcome::Finished(results) => *results,
        Outcome::Stopped(step) => panic!("run stopped at step {step}"),
    }
}

#[test]
fn small_run_learns_and_beats_ista() {
    let out = scratch("learns");
    let results = finished(run(&small(), &out, &RunOptions::default()).unwrap());
    let learned = results.learned_iht.nmse_db.last().copied().unwrap();
    let ista = results.ista.nmse_db.last().copied().unwrap();
    assert_eq!(results.learned_iht.nmse_db.len(), 4);
    assert!(
        learned < ista - 3.0,
        "learned {learned:.2} dB vs ISTA {ista:.2} dB"
    );
    // The network improves on its untrained start (the first evaluation, at step 0).
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    let start = first["test_nmse_db"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(
        learned < start - 1.0,
        "trained {learned:.2} dB vs untrained {start:.2} dB"
    );

    // results.json holds every method by name, and the run wrote its files.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for name in ["learned_iht", "ista", "fista", "iht"] {
        assert_eq!(json[name]["nmse_db"].as_array().unwrap().len(), 4, "{name}");
        for key in ["precision", "recall", "f1"] {
            let v = json[name][key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{name}.{key} = {v}");
        }
    }
    assert!(json["wall_seconds"].as_f64().unwrap() > 0.0);
    for file in [
        "config.json",
        "nmse_per_layer.png",
        "training.png",
        "checkpoints/latest",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    // A second run into the same directory is refused rather than mixed in.
    let err = run(&small(), &out, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already holds a run") && err.contains("--resume"),
        "{err}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn resumed_run_ends_like_an_uninterrupted_one() {
    let config = RunConfig {
        steps: 120,
        eval_every: 40,
        ..small()
    };
    let whole = scratch("whole");
    let expected = finished(run(&config, &whole, &RunOptions::default()).unwrap());

    // The metrics log has each step once, as if the run had never stopped.
    let steps = |dir: &PathBuf| -> Vec<u64> {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["step"].as_u64())
            .collect()
    };
    // Killed at step 75 (the checkpoint at 50 survives, steps 51-75 are redone) and at step 30
    // (before the first checkpoint: the run starts over).
    for stop_at in [75, 30] {
        let parts = scratch(&format!("parts-{stop_at}"));
        let stop = RunOptions {
            stop_after: Some(stop_at),
            ..RunOptions::default()
        };
        assert!(
            matches!(run(&config, &parts, &stop).unwrap(), Outcome::Stopped(s) if s == stop_at)
        );
        assert!(!parts.join("results.json").exists());
        let resumed = finished(resume(&parts, None, &RunOptions::default()).unwrap());
        // Same batches, same Adam state, same CPU kernels: the same numbers, exactly.
        for ((name, a), (_, b)) in expected.methods().iter().zip(resumed.methods().iter()) {
            assert_eq!(a, b, "{name} after a stop at {stop_at}");
        }
        assert_eq!(
            steps(&whole),
            steps(&parts),
            "metrics after a stop at {stop_at}"
        );
        std::fs::remove_dir_all(&parts).unwrap();
    }
    std::fs::remove_dir_all(&whole).unwrap();
}

#[test]
fn bad_configurations_name_the_field() {
    let out = scratch("bad");
    let cases: Vec<(RunConfig, &str)> = vec![
        (RunConfig { p: 0.0, ..small() }, "`p`"),
        (RunConfig { p: 1.5, ..small() }, "(0, 1]"),
        (
            RunConfig {
                layers: 0,
                ..small()
            },
            "`layers`",
        ),
        (
            RunConfig {
                batch: 0,
                ..small()
            },
            "`batch`",
        ),
        (
            RunConfig {
                learning_rate: 0.0,
                ..small()
            },
            "`learning_rate`",
        ),
        (
            RunConfig {
                learning_rate: -1e-3,
                ..small()
            },
            "`learning_rate`",
        ),
        (
            RunConfig {
                m: 200,
                n: 100,
                ..small()
            },
            "at most n = 100",
        ),
        (
            RunConfig {
                device: "tpu".into(),
                ..small()
            },
            "unknown device `tpu`",
        ),
    ];
    for (config, needle) in cases {
        let err = run(&config, &out, &RunOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(
            !out.exists(),
            "a rejected config must not create the run directory"
        );
    }
}

#[test]
fn missing_or_corrupt_checkpoints_are_reported() {
    let err = resume(&scratch("nowhere"), None, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no run config"), "{err}");

    let out = scratch("corrupt");
    let config = RunConfig {
        steps: 60,
        ..small()
    };
    let stop = RunOptions {
        stop_after: Some(55),
        ..RunOptions::default()
    };
    run(&config, &out, &stop).unwrap();
    let checkpoint = out.join("checkpoints/step-0000050");
    std::fs::write(checkpoint.join("model.bpk"), b"not a model").unwrap();
    let err = resume(&out, None, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unreadable model"), "{err}");

    std::fs::remove_file(checkpoint.join("optimizer.bin")).unwrap();
    let err = resume(&out, None, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("optimizer.bin") && err.contains("missing"),
        "{err}"
    );

    std::fs::write(out.join("checkpoints/latest"), b"step-0009999").unwrap();
    let err = resume(&out, None, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("checkpoint is missing"), "{err}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn command_line_errors_are_one_line_with_exit_code_2() {
    let binary = env!("CARGO_BIN_EXE_sparse-coding");
    for (args, needle) in [
        (vec!["--preset", "huge"], "`preset`"),
        (vec!["--device", "quantum"], "unknown device `quantum`"),
        (vec!["--layers", "0"], "`layers`"),
    ] {
        let out = std::process::Command::new(binary)
            .args(&args)
            .arg("--quiet")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}
