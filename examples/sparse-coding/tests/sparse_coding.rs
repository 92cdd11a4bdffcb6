//! The sparse-coding example end to end: a small run learns and beats its ISTA baseline, a run
//! stopped or killed (SIGKILL) and resumed ends where an uninterrupted one does, a damaged
//! checkpoint is passed over, two devices train as one, and every bad input gets its one-line
//! error.

use burn_hardshrink::DeviceName;
use sparse_coding::{Outcome, Results, RunConfig, RunOptions, resume, run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A configuration small enough to train in seconds in a debug build.
fn small() -> RunConfig {
    RunConfig {
        layers: 4,
        steps: 240,
        batch: 64,
        learning_rate: 3e-3,
        test_samples: 300,
        validation_samples: 300,
        checkpoint_every: 40,
        ..RunConfig::default()
    }
}

fn quiet() -> RunOptions {
    RunOptions {
        quiet: true,
        ..RunOptions::default()
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
        Outcome::Stopped => panic!("the run stopped"),
    }
}

/// The last (final) value of a burn-train metric log.
fn logged(dir: &Path, split: &str, epoch: usize, metric: &str) -> f64 {
    let text = std::fs::read_to_string(dir.join(format!("{split}/epoch-{epoch}/{metric}.log")))
        .unwrap_or_else(|e| panic!("{split} epoch {epoch} {metric}: {e}"));
    let last = text.lines().last().unwrap();
    last.split(',').next().unwrap().parse().unwrap()
}

/// Every method's scores agree within `tolerance` dB (NMSE) and `tolerance` (support scores).
fn assert_close(a: &Results, b: &Results, tolerance: f64, what: &str) {
    for ((name, x), (_, y)) in a.methods().iter().zip(b.methods().iter()) {
        for (u, v) in x.nmse_db.iter().zip(&y.nmse_db) {
            assert!((u - v).abs() <= tolerance, "{what}: {name} NMSE {u} vs {v}");
        }
        for (u, v) in [
            (x.precision, y.precision),
            (x.recall, y.recall),
            (x.f1, y.f1),
        ] {
            assert!(
                (u - v).abs() <= tolerance,
                "{what}: {name} support {u} vs {v}"
            );
        }
    }
}

#[test]
fn small_run_learns_and_beats_ista() {
    let out = scratch("learns");
    let config = small();
    let results = finished(run(&config, &out, &quiet()).unwrap());
    let learned = results.learned_iht.final_nmse_db();
    let ista = results.ista.final_nmse_db();
    assert_eq!(results.learned_iht.nmse_db.len(), 4);
    assert!(
        learned < ista - 3.0,
        "learned {learned:.2} dB vs ISTA {ista:.2} dB"
    );
    // Validation NMSE, logged by burn-train every epoch, improves from the first epoch to the
    // last.
    let epochs = config.epochs();
    let (first, last) = (
        logged(&out, "valid", 1, "NMSE"),
        logged(&out, "valid", epochs, "NMSE"),
    );
    assert!(
        last < first - 1.0,
        "validation NMSE {first:.2} -> {last:.2} dB"
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
    assert_eq!(json["steps"], 240);
    assert_eq!(json["device"], "cpu");
    for file in [
        "config.json",
        "nmse_per_layer.png",
        "nmse_per_layer.svg",
        "training.png",
        "training.svg",
        "experiment.log",
        "train/epoch-1/Loss.log",
        "valid/epoch-1/Support_F1.log",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    // The last two epochs' checkpoints are kept, and the best one if it is older.
    for epoch in [epochs - 1, epochs] {
        for record in ["model", "optim", "scheduler"] {
            let file = format!("checkpoint/{record}-{epoch}.bpk");
            assert!(out.join(&file).is_file(), "{file} missing");
        }
    }
    let models = std::fs::read_dir(out.join("checkpoint"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("model-")
        })
        .count();
    assert!(models <= 3, "{models} model checkpoints kept");
    // A second run into the same directory is refused rather than mixed in.
    let err = run(&config, &out, &quiet()).unwrap_err().to_string();
    assert!(
        err.contains("already holds a run") && err.contains("--resume"),
        "{err}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn stopped_runs_resume_to_the_same_result() {
    let config = RunConfig {
        steps: 120,
        ..small()
    };
    let whole = scratch("whole");
    let expected = finished(run(&config, &whole, &quiet()).unwrap());
    // Stopped after 1 epoch (epoch 2 trained, not checkpointed) and after 0 (nothing saved).
    for epochs in [1, 0] {
        let parts = scratch(&format!("parts-{epochs}"));
        let stop = RunOptions {
            stop_after_epochs: Some(epochs),
            ..quiet()
        };
        assert!(matches!(
            run(&config, &parts, &stop).unwrap(),
            Outcome::Stopped
        ));
        assert!(!parts.join("results.json").exists());
        let resumed = finished(resume(&parts, None, &quiet()).unwrap());
        // Same batches, same Adam and schedule state, same CPU kernels: the same numbers.
        assert_close(
            &expected,
            &resumed,
            1e-9,
            &format!("stopped after {epochs}"),
        );
        for epoch in 1..=config.epochs() {
            assert_eq!(
                logged(&whole, "valid", epoch, "NMSE"),
                logged(&parts, "valid", epoch, "NMSE"),
                "validation NMSE of epoch {epoch} after a stop after {epochs}"
            );
        }
        std::fs::remove_dir_all(&parts).unwrap();
    }
    std::fs::remove_dir_all(&whole).unwrap();
}

#[test]
fn a_killed_run_resumes_to_the_same_result() {
    let config = RunConfig {
        steps: 400,
        ..small()
    };
    let whole = scratch("kill-whole");
    let expected = finished(run(&config, &whole, &quiet()).unwrap());

    let binary = env!("CARGO_BIN_EXE_sparse-coding");
    let killed = scratch("killed");
    std::fs::create_dir_all(&killed).unwrap();
    let file = killed.with_extension("json");
    std::fs::write(&file, config.to_json()).unwrap();
    let mut child = Command::new(binary)
        .args(["--quiet", "--config"])
        .arg(&file)
        .arg("--out")
        .arg(&killed)
        .spawn()
        .unwrap();
    // SIGKILL once the second checkpoint is complete: the run is somewhere in epoch 3.
    let started = Instant::now();
    while !killed.join("checkpoint/state-2.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.join("results.json").exists());

    let output = Command::new(binary)
        .arg("--resume")
        .arg(&killed)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    let resumed: Results =
        serde_json::from_str(&std::fs::read_to_string(killed.join("results.json")).unwrap())
            .unwrap();
    assert_close(&expected, &resumed, 1e-9, "killed and resumed");
    assert_eq!(resumed.steps, expected.steps);
    std::fs::remove_dir_all(&killed).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_dir_all(&whole).unwrap();
}

#[test]
fn damaged_checkpoints_are_passed_over_or_named() {
    let err = resume(&scratch("nowhere"), None, &quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no run config"), "{err}");

    let config = RunConfig {
        steps: 160,
        ..small()
    };
    let out = scratch("damaged");
    let stop = RunOptions {
        stop_after_epochs: Some(2),
        ..quiet()
    };
    run(&config, &out, &stop).unwrap();
    // The newest checkpoint (epoch 2) cut short: resume falls back to epoch 1 and says so.
    let newest = out.join("checkpoint/optim-2.bpk");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let binary = env!("CARGO_BIN_EXE_sparse-coding");
    let output = Command::new(binary)
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let notice: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("unreadable"))
        .collect();
    assert_eq!(notice.len(), 1, "{stderr}");
    assert!(
        notice[0].contains("epoch 2")
            && notice[0].contains("optim-2.bpk")
            && notice[0].contains("epoch 1"),
        "{stderr}"
    );
    let whole = scratch("damaged-whole");
    let expected = finished(run(&config, &whole, &quiet()).unwrap());
    let resumed: Results =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_close(
        &expected,
        &resumed,
        1e-9,
        "resumed from the older checkpoint",
    );
    std::fs::remove_dir_all(&whole).unwrap();
    std::fs::remove_dir_all(&out).unwrap();

    // Nothing readable: one line naming every bad file.
    let out = scratch("all-bad");
    run(&config, &out, &stop).unwrap();
    for epoch in [1, 2] {
        std::fs::write(
            out.join(format!("checkpoint/model-{epoch}.bpk")),
            b"not a model",
        )
        .unwrap();
    }
    let err = resume(&out, None, &quiet()).unwrap_err().to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(
        err.contains("model-1.bpk")
            && err.contains("model-2.bpk")
            && err.contains("no checkpoint reads back"),
        "{err}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn two_cpu_devices_train_like_one() {
    let config = RunConfig {
        steps: 120,
        ..small()
    };
    let dirs = [scratch("one-device"), scratch("two-devices")];
    let one = finished(run(&config, &dirs[0], &quiet()).unwrap());
    let two = RunConfig {
        devices: vec![DeviceName::Cpu, DeviceName::Cpu],
        ..config
    };
    let both = finished(run(&two, &dirs[1], &quiet()).unwrap());
    // Each device takes half of every batch and their gradients are summed: the same steps as
    // on one device, up to the order of float additions (measured within 1e-7 dB here).
    assert_close(&one, &both, 1e-4, "two devices");
    for dir in dirs {
        std::fs::remove_dir_all(dir).unwrap();
    }
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
                batch: 63,
                devices: vec![DeviceName::Cpu, DeviceName::Cpu],
                ..small()
            },
            "multiple of the number of devices (2)",
        ),
        #[cfg(not(feature = "wgpu"))]
        (
            RunConfig {
                device: DeviceName::Wgpu,
                ..small()
            },
            "device `wgpu` is not built in",
        ),
    ];
    for (config, needle) in cases {
        let err = run(&config, &out, &quiet()).unwrap_err().to_string();
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(
            !out.exists(),
            "a rejected config must not create the run directory"
        );
    }
}

#[test]
fn command_line_errors_are_one_line_with_exit_code_2() {
    let binary = env!("CARGO_BIN_EXE_sparse-coding");
    let config = scratch("cli").with_extension("json");
    std::fs::write(&config, r#"{"layers": "four"}"#).unwrap();
    let config = config.to_str().unwrap().to_string();
    for (args, needles) in [
        (
            vec!["--preset", "huge"],
            vec!["--preset", "huge", "default, large"],
        ),
        (
            vec!["--device", "quantum"],
            vec!["--device", "quantum", "cpu, flex, ndarray"],
        ),
        (vec!["--layers", "0"], vec!["`layers`"]),
        (vec!["--steps", "many"], vec!["--steps", "many"]),
        (vec!["--config", config.as_str()], vec!["field `layers`"]),
        (vec!["--resume", "/nonexistent/run"], vec!["no run config"]),
    ] {
        let out = Command::new(binary)
            .args(&args)
            .arg("--quiet")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{args:?}: {needle:?} in {stderr}");
        }
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    std::fs::remove_file(&config).unwrap();
}
