//! The example's one error type. Every message is one line that names what is wrong and what would
//! be accepted; `main` prints it after `error: ` and exits with code 2.

use burn_hardshrink::DeviceError;
use std::path::{Path, PathBuf};

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config field with a value outside what it allows.
    #[error("invalid `{field}` = {value}: must be {allowed}")]
    Config {
        /// The field's name, as in `config.json`.
        field: &'static str,
        /// The rejected value, printed.
        value: String,
        /// What the field accepts.
        allowed: String,
    },
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
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// A bad config value.
    pub fn config(field: &'static str, value: &dyn std::fmt::Display, allowed: &str) -> Self {
        let (value, allowed) = (value.to_string(), allowed.to_string());
        Self::Config {
            field,
            value,
            allowed,
        }
    }

    /// An I/O error on `path`, for `map_err`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
