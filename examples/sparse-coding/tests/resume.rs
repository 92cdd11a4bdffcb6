//! Stops and resumes, through the binary: a run killed (SIGKILL) or stopped (SIGINT, SIGTERM) and
//! resumed ends with the numbers of a run never stopped; a damaged checkpoint is passed over; a run
//! directory holds one process, and an edited config is refused.

mod common;

use common::{finish, results, scratch, small, stage_wise, start, uninterrupted};
use sparse_coding::evaluate::Results;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Resumes the run in `out`, quiet or not: its status and stderr.
fn resume(out: &Path, quiet: bool) -> (ExitStatus, String) {
    let mut command = Command::new(common::BINARY);
    command
        .args(quiet.then_some("--quiet"))
        .arg("--resume")
        .arg(out);
    finish(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Every score of every method is the same (timings aside).
fn assert_same(a: &Results, b: &Results, what: &str) {
    for ((name, x), (_, y)) in a.methods().iter().zip(b.methods()) {
        assert_eq!(x.nmse_db, y.nmse_db, "{what}: {name} NMSE");
        assert_eq!(
            (x.precision, x.recall, x.f1),
            (y.precision, y.recall, y.f1),
            "{what}: {name}"
        );
        assert_eq!(x.thresholds, y.thresholds, "{what}: {name} thresholds");
        assert_eq!(x.failures, y.failures, "{what}: {name} failures");
    }
}

/// Waits until `path` exists, while `child` runs.
fn wait_for(child: &mut Child, path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {}",
            path.display()
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A checkpoint file of launch `launch` of learned IHT.
fn checkpoint(out: &Path, launch: &str, file: &str) -> PathBuf {
    out.join("learned-iht")
        .join(launch)
        .join("checkpoint")
        .join(file)
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: a plain system call on a process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

#[test]
fn killed_runs_resume_to_the_same_result() {
    // SIGKILL once the end-to-end launch's second checkpoint is sealed (the run is in epoch 3),
    // once stage 3 has its first, and while the very first is being written.
    for (config, launch, file) in [
        (small(), "end-to-end", "scheduler-2.seal.json"),
        (stage_wise(), "stage-03", "model-1.seal.json"),
        (stage_wise(), "stage-01", "optim-1.bpk"),
    ] {
        let (_scratch, out) = scratch("killed");
        let mut child = start(&config, &out);
        wait_for(&mut child, &checkpoint(&out, launch, file));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!out.join("results.json").exists());
        let (status, stderr) = resume(&out, true);
        assert!(status.success(), "{stderr}");
        assert_same(
            &uninterrupted(&config),
            &results(&out),
            &format!("killed at {launch}/{file}"),
        );
    }
}

#[test]
fn signals_stop_at_the_last_checkpoint_and_damage_is_passed_over() {
    let config = small();
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let (_scratch, out) = scratch(&format!("signal-{sig}"));
        let mut child = start(&config, &out);
        wait_for(
            &mut child,
            &checkpoint(&out, "end-to-end", "scheduler-3.seal.json"),
        );
        signal(&child, sig);
        let (status, stderr) = finish(child);
        assert_eq!(status.code(), Some(code), "{stderr}");
        assert!(
            stderr.contains("--resume") && !stderr.contains("panicked"),
            "{stderr}"
        );
        // One byte of the newest model changed: resume passes over it, says so in one line,
        // and still ends where the uninterrupted run does.
        let newest = (3..=6)
            .rev()
            .find(|e| checkpoint(&out, "end-to-end", &format!("model-{e}.seal.json")).exists());
        let model = checkpoint(
            &out,
            "end-to-end",
            &format!("model-{}.bpk", newest.unwrap()),
        );
        let mut bytes = std::fs::read(&model).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&model, bytes).unwrap();
        let (status, stderr) = resume(&out, false);
        assert!(status.success(), "{stderr}");
        let note: Vec<_> = stderr.lines().filter(|l| l.contains("checksum")).collect();
        assert_eq!(note.len(), 1, "{stderr}");
        assert!(
            note[0].contains("damaged") && note[0].contains("resuming from epoch"),
            "{stderr}"
        );
        assert_same(
            &uninterrupted(&config),
            &results(&out),
            "stopped, damaged and resumed",
        );
        // A finished run is not run again.
        let (status, _) = resume(&out, true);
        assert!(status.success());
    }
}

#[test]
fn a_run_directory_holds_one_process_and_its_config() {
    let config = stage_wise();
    let (_scratch, out) = scratch("locked");
    let mut child = start(&config, &out);
    wait_for(
        &mut child,
        &checkpoint(&out, "stage-01", "model-1.seal.json"),
    );
    // A second process is refused while the first holds the directory.
    let (status, stderr) = resume(&out, true);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by process {}", child.id())),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    signal(&child, libc::SIGINT);
    assert_eq!(finish(child).0.code(), Some(130));
    // A config changed since its checkpoints were made is named, and refused.
    let file = out.join("config.json");
    let original = std::fs::read_to_string(&file).unwrap();
    for (field, edited) in [("seed", "\"seed\": 3"), ("layers", "\"layers\": 3")] {
        let from = if field == "seed" {
            "\"seed\": 0"
        } else {
            "\"layers\": 4"
        };
        std::fs::write(&file, original.replace(from, edited)).unwrap();
        let (status, stderr) = resume(&out, true);
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("`{field}`")) && stderr.contains("put it back"),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    std::fs::write(&file, original).unwrap();
    let (status, stderr) = resume(&out, true);
    assert!(status.success(), "{stderr}");
    assert_same(
        &uninterrupted(&config),
        &results(&out),
        "resumed after the edits",
    );
}
