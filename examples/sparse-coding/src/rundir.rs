//! The run directory: config, metrics, checkpoints and results, each written so that a run
//! killed at any moment leaves every file either complete or absent.
//!
//! ```text
//! <run>/config.json              the run's RunConfig
//! <run>/metrics.jsonl            one JSON object per line: training loss, test evaluations
//! <run>/checkpoints/latest       name of the newest complete checkpoint
//! <run>/checkpoints/step-NNNNNNN/{model.bpk, optimizer.bin, state.json}
//! <run>/results.json             final scores of every method
//! <run>/nmse_per_layer.png, <run>/training.png
//! ```

use crate::config::RunConfig;
use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How many checkpoints are kept (the newest ones).
const KEEP_CHECKPOINTS: usize = 2;

/// What a checkpoint records besides the model and optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Training steps completed.
    pub step: usize,
    /// Wall time spent on the run up to this checkpoint, in seconds.
    pub wall_seconds: f64,
}

/// Paths of one complete checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The checkpoint's directory.
    pub dir: PathBuf,
    /// Its recorded state.
    pub state: CheckpointState,
}

impl Checkpoint {
    /// The model record.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join("model.bpk")
    }

    /// The optimizer record.
    pub fn optimizer_path(&self) -> PathBuf {
        self.dir.join("optimizer.bin")
    }
}

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let partial = path.with_extension("partial");
    let mut file = std::fs::File::create(&partial).map_err(Error::io(&partial))?;
    file.write_all(bytes).map_err(Error::io(&partial))?;
    file.sync_all().map_err(Error::io(&partial))?;
    std::fs::rename(&partial, path).map_err(Error::io(path))
}

impl RunDir {
    /// Starts a new run in `root` (created if needed); refuses a directory that already holds
    /// a run.
    pub fn create(root: &Path, config: &RunConfig) -> Result<Self, Error> {
        let dir = Self {
            root: root.to_path_buf(),
        };
        let has_checkpoints = std::fs::read_dir(dir.checkpoints())
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false);
        if dir.config_path().exists() || has_checkpoints {
            return Err(Error::Usage(format!(
                "{} already holds a run: continue it with `--resume {}` or pick a new `--out`",
                root.display(),
                root.display()
            )));
        }
        std::fs::create_dir_all(dir.checkpoints()).map_err(Error::io(dir.checkpoints()))?;
        write_atomic(&dir.config_path(), config.to_json().as_bytes())?;
        // A fresh metrics file (a leftover from a run that never wrote its config is dropped).
        write_atomic(&dir.metrics_path(), b"")?;
        Ok(dir)
    }

    /// Opens an existing run for resuming and reads its config.
    pub fn open(root: &Path) -> Result<(Self, RunConfig), Error> {
        let dir = Self {
            root: root.to_path_buf(),
        };
        let path = dir.config_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::checkpoint(&path, format!("no run config ({e})")))?;
        let config = RunConfig::from_json(&text, &path.display().to_string())?;
        Ok((dir, config))
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// `metrics.jsonl`.
    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `results.json`.
    pub fn results_path(&self) -> PathBuf {
        self.root.join("results.json")
    }

    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Appends one JSON object as a line of `metrics.jsonl`.
    pub fn append_metric(&self, value: &serde_json::Value) -> Result<(), Error> {
        let path = self.metrics_path();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io(&path))?;
        writeln!(file, "{value}").map_err(Error::io(&path))
    }

    /// Every complete line of `metrics.jsonl` (a line cut short by a kill is skipped).
    pub fn read_metrics(&self) -> Result<Vec<serde_json::Value>, Error> {
        let path = self.metrics_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(&path)(e)),
        };
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }

    /// Keeps the metric lines `keep` accepts (the rest is work a resumed run redoes).
    pub fn retain_metrics(&self, keep: impl Fn(&serde_json::Value) -> bool) -> Result<(), Error> {
        let kept: String = self
            .read_metrics()?
            .into_iter()
            .filter(|v| keep(v))
            .map(|v| format!("{v}\n"))
            .collect();
        write_atomic(&self.metrics_path(), kept.as_bytes())
    }

    /// Writes a checkpoint: `write` fills a fresh directory with the model and optimizer, then
    /// the directory is renamed into place and `latest` is pointed at it; older ones beyond
    /// the newest two are removed.
    pub fn save_checkpoint(
        &self,
        state: CheckpointState,
        write: impl FnOnce(&Checkpoint) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let name = format!("step-{:07}", state.step);
        let partial = Checkpoint {
            dir: self.checkpoints().join(format!("{name}.partial")),
            state,
        };
        if partial.dir.exists() {
            std::fs::remove_dir_all(&partial.dir).map_err(Error::io(&partial.dir))?;
        }
        std::fs::create_dir_all(&partial.dir).map_err(Error::io(&partial.dir))?;
        write(&partial)?;
        let state_json = serde_json::to_string_pretty(&state).expect("state serialises");
        write_atomic(&partial.dir.join("state.json"), state_json.as_bytes())?;
        let done = self.checkpoints().join(&name);
        if done.exists() {
            std::fs::remove_dir_all(&done).map_err(Error::io(&done))?;
        }
        std::fs::rename(&partial.dir, &done).map_err(Error::io(&done))?;
        write_atomic(&self.checkpoints().join("latest"), name.as_bytes())?;
        self.prune()
    }

    fn prune(&self) -> Result<(), Error> {
        let dir = self.checkpoints();
        let mut steps: Vec<(u64, String)> = self.checkpoint_names()?;
        steps.sort();
        let stale = steps.len().saturating_sub(KEEP_CHECKPOINTS);
        for (_, name) in &steps[..stale] {
            let path = dir.join(name);
            std::fs::remove_dir_all(&path).map_err(Error::io(&path))?;
        }
        Ok(())
    }

    /// `(step, name)` of every complete checkpoint directory, in no particular order.
    fn checkpoint_names(&self) -> Result<Vec<(u64, String)>, Error> {
        let dir = self.checkpoints();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir)(e)),
        };
        Ok(entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|name| Some((name.strip_prefix("step-")?.parse().ok()?, name)))
            .collect())
    }

    /// The newest complete checkpoint, `None` when the run has none yet; an error when
    /// `latest` points at something missing or unreadable.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        let pointer = self.checkpoints().join("latest");
        let name = match std::fs::read_to_string(&pointer) {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // No pointer and no checkpoint: killed before the first one. A checkpoint
                // without its pointer is a damaged run, not a fresh one.
                if self.checkpoint_names()?.is_empty() {
                    return Ok(None);
                }
                return Err(Error::checkpoint(&pointer, "checkpoint pointer is missing"));
            }
            Err(e) => return Err(Error::checkpoint(&pointer, e)),
        };
        let dir = self.checkpoints().join(name.trim());
        let state_path = dir.join("state.json");
        let text = std::fs::read_to_string(&state_path)
            .map_err(|e| Error::checkpoint(&state_path, format!("checkpoint is missing ({e})")))?;
        let state: CheckpointState = serde_json::from_str(&text)
            .map_err(|e| Error::checkpoint(&state_path, format!("checkpoint is corrupt ({e})")))?;
        let checkpoint = Checkpoint { dir, state };
        for path in [checkpoint.model_path(), checkpoint.optimizer_path()] {
            if !path.is_file() {
                return Err(Error::checkpoint(&path, "checkpoint file is missing"));
            }
        }
        Ok(Some(checkpoint))
    }
}
