//! The run's state beside burn-train's checkpoints, and the choice of the checkpoint a resumed
//! run starts from: the newest whose every file is there and reads back. Every file is written
//! whole or not at all (burnpack and [`write_atomic`] rename a finished file into place), but
//! the four files of an epoch are written one by one, so a kill can leave an epoch incomplete.
//!
//! A training directory holds, for each kept epoch `e`:
//!
//! ```text
//! checkpoint/model-<e>.bpk       the network (burnpack)
//! checkpoint/optim-<e>.bpk       Adam's moments
//! checkpoint/scheduler-<e>.bpk   the learning-rate schedule's position
//! checkpoint/state-<e>.json      the run's wall time up to that epoch
//! ```

use crate::error::Error;
use crate::model::Unfolded;
use burn::module::Module;
use burn::store::{ModuleRecord, RecordError};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The three records burn-train checkpoints, by file prefix.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// Writes `bytes` to `path` through a temporary file, `fsync` and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// Wall time of a run across invocations: what earlier invocations spent plus this one's.
#[derive(Debug, Clone)]
pub struct RunClock {
    started: Instant,
    before: f64,
}

impl RunClock {
    /// A clock that starts now, `before` seconds into the run.
    pub fn new(before: f64) -> Self {
        Self {
            started: Instant::now(),
            before,
        }
    }

    /// Seconds of the run so far.
    pub fn seconds(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }
}

/// What a checkpoint records besides burn-train's records.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The epoch the checkpoint closes.
    pub epoch: usize,
    /// Wall time spent on the run up to this checkpoint, in seconds.
    pub wall_seconds: f64,
}

fn record_path(dir: &Path, name: &str, epoch: usize) -> PathBuf {
    dir.join(format!("{name}-{epoch}.bpk"))
}

fn state_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("state-{epoch}.json"))
}

/// Writes the run's state beside the checkpoint of `state.epoch` in `dir` (burn-train writes
/// the records); the error names the file.
pub fn save_state(dir: &Path, state: CheckpointState) -> Result<(), (PathBuf, std::io::Error)> {
    let path = state_path(dir, state.epoch);
    let json = serde_json::to_vec_pretty(&state).expect("a state serialises");
    std::fs::create_dir_all(dir)
        .and_then(|()| write_atomic(&path, &json))
        .map_err(|e| (path, e))
}

/// Removes the run's state of a checkpoint burn-train deletes.
pub fn delete_state(dir: &Path, epoch: usize) -> Result<(), (PathBuf, std::io::Error)> {
    let path = state_path(dir, epoch);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err((path, e)),
        _ => Ok(()),
    }
}

/// The network of epoch `epoch`'s checkpoint in `dir`, loaded into `fresh`.
pub fn load_model(dir: &Path, epoch: usize, fresh: Unfolded) -> Result<Unfolded, Error> {
    let path = record_path(dir, "model", epoch);
    let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::checkpoint(&path, format!("unreadable ({e})")))?;
    fresh
        .try_load_record(record)
        .map_err(|e| Error::checkpoint(&path, format!("does not fit the run ({e})")))
}

/// Reads one record file, as burn-train will when it restores the checkpoint.
fn check_record(path: &Path, name: &str) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let bytes = Bytes::from_bytes_vec(bytes);
    let checked: Result<(), RecordError> = match name {
        "model" => ModuleRecord::from_bytes(bytes).map(drop),
        "optim" => burn::optim::OptimizerRecord::from_bytes(bytes).map(drop),
        _ => burn::lr_scheduler::LrSchedulerRecord::from_bytes(bytes).map(drop),
    };
    checked.map_err(|e| e.to_string())
}

/// Why an epoch's checkpoint cannot be resumed from: its first missing or bad file.
enum Unusable {
    /// Not written yet: the run was stopped while it saved this epoch.
    Missing(PathBuf),
    /// There, but it does not read back.
    Bad(PathBuf, String),
}

impl Unusable {
    fn describe(&self) -> String {
        match self {
            Self::Missing(path) => format!("incomplete ({} is missing)", path.display()),
            Self::Bad(path, reason) => format!("unreadable ({}: {reason})", path.display()),
        }
    }
}

/// Checks every file of epoch `epoch`'s checkpoint.
fn check_epoch(dir: &Path, epoch: usize) -> Result<CheckpointState, Unusable> {
    let records = RECORDS.map(|name| (record_path(dir, name, epoch), name));
    let state = state_path(dir, epoch);
    if let Some(missing) = records
        .iter()
        .map(|(path, _)| path)
        .chain([&state])
        .find(|path| !path.exists())
    {
        return Err(Unusable::Missing(missing.clone()));
    }
    for (path, name) in records {
        check_record(&path, name).map_err(|reason| Unusable::Bad(path, reason))?;
    }
    let text =
        std::fs::read_to_string(&state).map_err(|e| Unusable::Bad(state.clone(), e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| Unusable::Bad(state, e.to_string()))
}

/// The epochs `dir` holds any checkpoint file of, newest first.
fn epochs_in(dir: &Path) -> Result<Vec<usize>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir)(e)),
    };
    let mut epochs: Vec<usize> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let stem = name
                .strip_suffix(".bpk")
                .or_else(|| name.strip_suffix(".json"))?;
            let (_, epoch) = stem.rsplit_once('-')?;
            epoch.parse().ok()
        })
        .collect();
    epochs.sort_unstable_by(|a, b| b.cmp(a));
    epochs.dedup();
    Ok(epochs)
}

/// The newest checkpoint in `dir` whose every file is there and reads back, `None` when there
/// is none yet.
///
/// A newer checkpoint that is incomplete (a kill while it was saved) or damaged is passed over
/// and `say` is told in one line. With no usable checkpoint the launch starts over if they are
/// all incomplete (nothing was lost but their epochs); otherwise the error names each bad file.
pub fn latest_readable(dir: &Path, say: impl Fn(&str)) -> Result<Option<CheckpointState>, Error> {
    let mut unusable: Vec<(usize, Unusable)> = Vec::new();
    for epoch in epochs_in(dir)? {
        match check_epoch(dir, epoch) {
            Ok(state) => {
                if let Some((newest, why)) = unusable.first() {
                    say(&format!(
                        "the checkpoint of epoch {newest} is {}; resuming from epoch {epoch}",
                        why.describe()
                    ));
                }
                return Ok(Some(state));
            }
            Err(why) => unusable.push((epoch, why)),
        }
    }
    let bad: Vec<String> = unusable
        .iter()
        .filter_map(|(_, why)| match why {
            Unusable::Bad(path, reason) => Some(format!("{} ({reason})", path.display())),
            Unusable::Missing(_) => None,
        })
        .collect();
    if !bad.is_empty() {
        return Err(Error::checkpoint(
            dir,
            format!("no checkpoint reads back: {}", bad.join("; ")),
        ));
    }
    if let Some((newest, why)) = unusable.first() {
        say(&format!(
            "the checkpoint of epoch {newest} is {}; starting its launch over",
            why.describe()
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_no_partial_file() {
        let dir = std::env::temp_dir().join(format!("atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.bin");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.bin"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn incomplete_checkpoints_start_the_launch_over_and_bad_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("incomplete-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A kill while epoch 1 was saved: its state is written, its records are not.
        save_state(
            &dir,
            CheckpointState {
                epoch: 1,
                wall_seconds: 2.0,
            },
        )
        .unwrap();
        let said = std::cell::RefCell::new(Vec::new());
        let say = |line: &str| said.borrow_mut().push(line.to_owned());
        assert_eq!(latest_readable(&dir, say).unwrap(), None);
        assert_eq!(said.borrow().len(), 1);
        assert!(
            said.borrow()[0].contains("epoch 1") && said.borrow()[0].contains("model-1.bpk"),
            "{:?}",
            said.borrow()
        );

        // A record that is there but damaged is an error, naming it.
        for name in RECORDS {
            std::fs::write(record_path(&dir, name, 1), b"damaged").unwrap();
        }
        let err = latest_readable(&dir, |_| {}).unwrap_err().to_string();
        assert!(err.contains("model-1.bpk") && !err.contains('\n'), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn epochs_are_read_from_file_names_newest_first() {
        let dir = std::env::temp_dir().join(format!("epochs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "model-2.bpk",
            "optim-10.bpk",
            "state-2.json",
            "model-10.bpk.partial",
            "x",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        assert_eq!(epochs_in(&dir).unwrap(), [10, 2]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(epochs_in(&dir).unwrap().is_empty());
    }
}
