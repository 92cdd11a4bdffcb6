//! The example's one error type. Every message is one line that names what is wrong and what would
//! be accepted; `main` prints it after `error: ` and exits with code 2.

use burn_hardshrink::DeviceError;
use std::path::PathBuf;

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config field, its rejected value, and what the field accepts.
    #[error("invalid `{0}` = {1}: must be {2}")]
    Config(&'static str, String, String),
    /// A config file that cannot be read, or is not a JSON object of config fields.
    #[error("config file {}: {}", .0.display(), .1)]
    ConfigFile(PathBuf, String),
    /// A device that cannot be opened.
    #[error("invalid `devices`: {0}")]
    Device(#[from] DeviceError),
    /// A run directory that cannot be used as asked: in use, not a run, or changed.
    #[error("{}: {}", .0.display(), .1)]
    RunDir(PathBuf, String),
    /// Training stopped on an error (a diverged loss, a failed write).
    #[error("training failed: {0}")]
    Training(String),
    /// Reading or writing a file failed.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, std::io::Error),
}
