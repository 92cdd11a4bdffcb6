//! The run directory: held by one process at a time, with every checkpoint file sealed by its
//! checksum, and the choice of the checkpoint a resumed run starts from.
//!
//! The directory's layout is in the example's README.

use crate::config::ExperimentConfig;
use crate::error::Error;
use crate::model::Unfolded;
use burn::module::Module;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Map;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The three records burn-train checkpoints at each epoch.
const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// A run directory, locked by this process for as long as the value lives.
#[derive(Debug)]
pub struct RunDir {
    /// The directory.
    pub path: PathBuf,
    _lock: File,
}

impl RunDir {
    /// Creates `path` for a new run with `config` (any `Config`: the image example's too),
    /// refusing one that already holds a run.
    pub fn create(path: &Path, config: &impl std::fmt::Display) -> Result<Self, Error> {
        let refuse = |reason: String| Error::RunDir(path.to_path_buf(), reason);
        std::fs::create_dir_all(path)
            .map_err(|e| refuse(format!("cannot create it ({e}): pick another `--out`")))?;
        let run = Self::lock(path)?;
        if path.join("config.json").exists() {
            return Err(refuse(format!(
                "holds a run already: continue it with `--resume {}`, or pick another `--out`",
                path.display()
            )));
        }
        write_atomic(&path.join("config.json"), config.to_string().as_bytes())?;
        Ok(run)
    }

    /// Takes the lock of the run in `path`, refusing a folder without a `config.json`.
    pub fn open_locked(path: &Path) -> Result<Self, Error> {
        Self::config_file(path)?;
        Self::lock(path)
    }

    /// The `config.json` of the run in `path`, refusing a folder without one.
    pub fn config_file(path: &Path) -> Result<PathBuf, Error> {
        let file = path.join("config.json");
        if !file.is_file() {
            let reason = "holds no run (no config.json): pass the `--out` of a run";
            return Err(Error::RunDir(path.to_path_buf(), reason.into()));
        }
        Ok(file)
    }

    /// Takes the directory's lock (released by the OS on any exit, a kill included), or names
    /// the process holding it.
    fn lock(path: &Path) -> Result<Self, Error> {
        let lock = path.join("lock");
        let io = |e| Error::Io(lock.clone(), e);
        // Opened without truncating: the holder's process id stays readable until it is ours.
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let reason = format!("is in use by process {}: wait for it to end", holder.trim());
            return Err(Error::RunDir(path.to_path_buf(), reason));
        }
        file.set_len(0)
            .and_then(|()| write!(file, "{}", std::process::id()))
            .map_err(io)?;
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
        .map_err(|e| Error::Io(path.to_path_buf(), e))
}

/// What a seal records beside a checkpoint file: its checksum, and the run it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seal {
    /// SHA-256 of the file, in hex.
    pub sha256: String,
    /// The run's wall time when the file was saved, in seconds.
    pub wall_seconds: f64,
    /// The configuration the run had; a field added since the seal was written reads as its
    /// default, as in `config.json`.
    #[serde(deserialize_with = "config_with_defaults")]
    pub config: ExperimentConfig,
}

fn config_with_defaults<'de, D: Deserializer<'de>>(
    fields: D,
) -> Result<ExperimentConfig, D::Error> {
    let fields = Map::deserialize(fields)?;
    ExperimentConfig::new()
        .merge(fields, None)
        .map_err(serde::de::Error::custom)
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
    /// The launch's checkpoint directory.
    pub dir: PathBuf,
    /// The record: model, optim or scheduler.
    pub name: &'static str,
    /// The run's configuration, recorded in each seal.
    pub config: ExperimentConfig,
    /// The run's clock, for each seal's wall time.
    pub clock: RunClock,
}

/// The file of record `name` at `epoch` in the checkpoint directory `dir`, and its seal.
fn paths(dir: &Path, name: &str, epoch: usize) -> (PathBuf, PathBuf) {
    let file = dir.join(format!("{name}-{epoch}.bpk"));
    (file.clone(), file.with_extension("seal.json"))
}

fn sha256(path: &Path) -> std::io::Result<String> {
    Ok(format!("{:x}", Sha256::digest(std::fs::read(path)?)))
}

impl<R: Checkpoint> Checkpointer<R> for SealedCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let (file, seal) = paths(&self.dir, self.name, epoch);
        std::fs::create_dir_all(&self.dir).map_err(CheckpointerError::IOError)?;
        record.save(file.clone())?;
        let sealed = Seal {
            sha256: sha256(&file).map_err(CheckpointerError::IOError)?,
            wall_seconds: self.clock.seconds(),
            config: self.config.clone(),
        };
        let json = serde_json::to_vec_pretty(&sealed).expect("a seal serialises");
        write_atomic(&seal, &json).map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        let (file, seal) = paths(&self.dir, self.name, epoch);
        // The seal first: a file left without one is passed over, never trusted.
        [seal, file]
            .into_iter()
            .filter(|path| path.exists())
            .try_for_each(std::fs::remove_file)
            .map_err(CheckpointerError::IOError)
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        R::load(paths(&self.dir, self.name, epoch).0)
    }
}

/// The seal of the checkpoint of `epoch` in the checkpoint directory `dir` (its last record's),
/// `None` when it has no file, or why it cannot be resumed from.
fn check_epoch(dir: &Path, epoch: usize) -> Result<Option<Seal>, String> {
    let files = RECORDS.map(|name| paths(dir, name, epoch));
    // An epoch without a file was never saved, or deleted as newer ones were.
    if !files.iter().any(|(file, _)| file.exists()) {
        return Ok(None);
    }
    let mut sealed = None;
    for (file, seal) in files {
        let text = std::fs::read_to_string(&seal)
            .map_err(|_| format!("incomplete ({} has no seal)", file.display()))?;
        let seal: Seal = serde_json::from_str(&text)
            .map_err(|e| format!("damaged ({}: {e})", seal.display()))?;
        let sum = sha256(&file).map_err(|e| format!("incomplete ({}: {e})", file.display()))?;
        if sum != seal.sha256 {
            return Err(format!("damaged ({}: checksum mismatch)", file.display()));
        }
        sealed = Some(seal);
    }
    Ok(sealed)
}

/// The newest epoch of launch `launch` (of `epochs`) whose three records match their seals, with
/// its seal. A newer checkpoint passed over as incomplete or damaged is named in one line on
/// stderr, unless `quiet`.
pub fn newest_sealed(launch: &Path, epochs: usize, quiet: bool) -> Option<(usize, Seal)> {
    let dir = launch.join("checkpoint");
    let mut passed_over = None;
    let sealed = (1..=epochs)
        .rev()
        .find_map(|epoch| match check_epoch(&dir, epoch) {
            Ok(seal) => seal.map(|seal| (epoch, seal)),
            Err(why) => {
                passed_over.get_or_insert((epoch, why));
                None
            }
        });
    if let Some((newest, why)) = passed_over.filter(|_| !quiet) {
        let then = match &sealed {
            Some((epoch, _)) => format!("resuming from epoch {epoch}"),
            None => "starting the launch over".into(),
        };
        let launch = launch.display();
        eprintln!("{launch}: the checkpoint of epoch {newest} is {why}; {then}");
    }
    sealed
}

/// The network of epoch `epoch`'s checkpoint in launch `launch`, loaded into `model`.
pub fn load_model(launch: &Path, epoch: usize, model: Unfolded) -> Result<Unfolded, Error> {
    let (file, _) = paths(&launch.join("checkpoint"), "model", epoch);
    model
        .try_load_file(&file)
        .map_err(|e| Error::RunDir(file, format!("cannot be loaded into this run ({e})")))
}
