//! The run directory: held by one process at a time, with every checkpoint file sealed by its
//! checksum, and the choice of the checkpoint a resumed run starts from.
//!
//! ```text
//! <run>/config.json          the run's configuration
//! <run>/lock                 held (flock) by the process running or resuming the run
//! <run>/experiment.log       burn-train's log
//! <run>/stage-01 … stage-16  one burn-train launch each (end-to-end/ when trained end to end):
//!     train/, valid/         burn-train's metric logs, per epoch
//!     checkpoint/            <record>-<epoch>.bpk and its seal <record>-<epoch>.seal.json, for
//!                            the records model, optim and scheduler of the newest two epochs
//! <run>/results.json, nmse_per_layer.{png,svg}, training.{png,svg}
//! ```

use crate::config::ExperimentConfig;
use crate::error::Error;
use crate::model::Unfolded;
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The three records burn-train checkpoints at each epoch.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// A run directory, locked by this process for as long as the value lives.
#[derive(Debug)]
pub struct RunDir {
    /// The directory.
    pub path: PathBuf,
    _lock: File,
}

impl RunDir {
    /// Creates `path` for a new run with `config`, refusing one that already holds a run.
    pub fn create(path: &Path, config: &ExperimentConfig) -> Result<Self, Error> {
        let refuse = |reason: String| Error::RunDir(path.to_path_buf(), reason);
        std::fs::create_dir_all(path)
            .map_err(|e| refuse(format!("cannot create it ({e}): pick another `--out`")))?;
        let run = Self::lock(path)?;
        if path.join("config.json").exists() {
            let resume = format!("continue it with `--resume {}`", path.display());
            return Err(refuse(format!(
                "holds a run already: {resume}, or pick another `--out`"
            )));
        }
        write_atomic(&path.join("config.json"), config.to_string().as_bytes())?;
        Ok(run)
    }

    /// Opens the run in `path` to resume it: its lock, and the config it was started with.
    pub fn open(path: &Path) -> Result<(Self, ExperimentConfig), Error> {
        let file = path.join("config.json");
        if !file.is_file() {
            let reason = "holds no run (no config.json): pass the `--out` of a run";
            return Err(Error::RunDir(path.to_path_buf(), reason.into()));
        }
        let run = Self::lock(path)?;
        let config = ExperimentConfig::new().merge_file(&file, None)?;
        Ok((run, config))
    }

    /// Takes the directory's lock (released by the OS on any exit, a kill included), or names
    /// the process holding it.
    fn lock(path: &Path) -> Result<Self, Error> {
        let lock = path.join("lock");
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(Error::io(&lock))?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let reason = format!("is in use by process {}: wait for it to end", holder.trim());
            return Err(Error::RunDir(path.to_path_buf(), reason));
        }
        file.set_len(0)
            .and_then(|()| write!(file, "{}", std::process::id()))
            .map_err(Error::io(&lock))?;
        Ok(Self {
            path: path.to_path_buf(),
            _lock: file,
        })
    }
}

/// Writes `bytes` to `path` whole or not at all: a temporary file renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .inspect_err(|_| drop(std::fs::remove_file(&partial)))
        .map_err(Error::io(path))
}

/// What a seal records beside a checkpoint file: its checksum, and the run it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seal {
    /// SHA-256 of the file, in hex.
    pub sha256: String,
    /// The run's wall time when the file was saved, in seconds.
    pub wall_seconds: f64,
    /// The configuration the run had.
    pub config: ExperimentConfig,
}

/// The run's wall time across invocations: what earlier ones spent, plus this one's.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    started: Instant,
    before: f64,
}

impl RunClock {
    /// A clock that starts now, `before` seconds into the run.
    pub fn new(before: f64) -> Self {
        let started = Instant::now();
        Self { started, before }
    }

    /// Seconds of the run so far.
    pub fn seconds(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }
}

/// A burn-train checkpointer that seals each record file once it is complete: burn-train's own
/// writes the file and nothing more, so a file cut by a kill or changed later cannot be told from
/// a good one.
pub struct SealedCheckpointer {
    dir: PathBuf,
    name: &'static str,
    config: ExperimentConfig,
    clock: RunClock,
}

impl SealedCheckpointer {
    /// The checkpointer of record `name` in the launch directory `launch`.
    pub fn new(
        launch: &Path,
        name: &'static str,
        config: &ExperimentConfig,
        clock: RunClock,
    ) -> Self {
        let dir = launch.join("checkpoint");
        let config = config.clone();
        Self {
            dir,
            name,
            config,
            clock,
        }
    }

    fn paths(&self, epoch: usize) -> (PathBuf, PathBuf) {
        paths(&self.dir, self.name, epoch)
    }
}

fn paths(dir: &Path, name: &str, epoch: usize) -> (PathBuf, PathBuf) {
    let file = dir.join(format!("{name}-{epoch}.bpk"));
    (file.clone(), file.with_extension("seal.json"))
}

fn sha256(path: &Path) -> std::io::Result<String> {
    let digest = Sha256::digest(std::fs::read(path)?);
    Ok(digest.iter().map(|byte| format!("{byte:02x}")).collect())
}

impl<R: Checkpoint> Checkpointer<R> for SealedCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let (file, seal) = self.paths(epoch);
        std::fs::create_dir_all(&self.dir).map_err(CheckpointerError::IOError)?;
        record.save(file.clone())?;
        let seal_json = Seal {
            sha256: sha256(&file).map_err(CheckpointerError::IOError)?,
            wall_seconds: self.clock.seconds(),
            config: self.config.clone(),
        };
        let json = serde_json::to_vec_pretty(&seal_json).expect("a seal serialises");
        write_atomic(&seal, &json).map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        let (file, seal) = self.paths(epoch);
        for path in [seal, file] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(CheckpointerError::IOError(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        R::load(self.paths(epoch).0)
    }
}

/// Why an epoch's checkpoint in a launch cannot be resumed from, if it cannot.
fn check_epoch(dir: &Path, epoch: usize) -> Result<Option<Seal>, String> {
    let mut sealed = None;
    for name in RECORDS {
        let (file, seal) = paths(dir, name, epoch);
        let Ok(text) = std::fs::read_to_string(&seal) else {
            return Err(format!("incomplete ({} has no seal)", file.display()));
        };
        let seal: Seal = serde_json::from_str(&text)
            .map_err(|e| format!("damaged ({}: {e})", seal.display()))?;
        match sha256(&file) {
            Ok(sum) if sum == seal.sha256 => sealed = Some(seal),
            Ok(_) => return Err(format!("damaged ({}: checksum mismatch)", file.display())),
            Err(e) => return Err(format!("incomplete ({}: {e})", file.display())),
        }
    }
    Ok(sealed)
}

/// The newest epoch of launch `launch` (of `epochs`) whose three records match their seals, with
/// its seal; `note` hears, in one line, of a newer checkpoint passed over as incomplete or
/// damaged.
pub fn newest_sealed(launch: &Path, epochs: usize, note: &dyn Fn(String)) -> Option<(usize, Seal)> {
    let dir = launch.join("checkpoint");
    let mut passed_over: Option<(usize, String)> = None;
    for epoch in (1..=epochs).rev() {
        let any = RECORDS
            .iter()
            .any(|name| paths(&dir, name, epoch).0.exists());
        if !any {
            continue;
        }
        match check_epoch(&dir, epoch) {
            Ok(seal) => {
                if let Some((newest, why)) = passed_over {
                    note(format!(
                        "{}: the checkpoint of epoch {newest} is {why}; resuming from epoch {epoch}",
                        launch.display()
                    ));
                }
                return seal.map(|seal| (epoch, seal));
            }
            Err(why) => {
                passed_over.get_or_insert((epoch, why));
            }
        }
    }
    if let Some((newest, why)) = passed_over {
        note(format!(
            "{}: the checkpoint of epoch {newest} is {why}; starting the launch over",
            launch.display()
        ));
    }
    None
}

/// The network of epoch `epoch`'s checkpoint in launch `launch`, loaded into `model`.
pub fn load_model(launch: &Path, epoch: usize, model: Unfolded) -> Result<Unfolded, Error> {
    let (file, _) = paths(&launch.join("checkpoint"), "model", epoch);
    let record = ModuleRecord::load(&file)
        .map_err(|e| Error::RunDir(file.clone(), format!("unreadable checkpoint ({e})")))?;
    model
        .try_load_record(record)
        .map_err(|e| Error::RunDir(file, format!("does not fit the run ({e})")))
}
