//! One error type for the example; every message is one line that names what is wrong and
//! what would be accepted.

use burn_hardshrink::DeviceError;
use std::path::PathBuf;

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
    /// A config file that is not valid JSON for [`RunConfig`](crate::RunConfig).
    #[error("config file {}: {reason}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The parser's explanation (it names the field and the line).
        reason: String,
    },
    /// A device name that cannot be opened.
    #[error("invalid `device`: {0}")]
    Device(#[from] DeviceError),
    /// A run directory or checkpoint that is missing, incomplete or unreadable.
    #[error("cannot resume from {}: {reason}", path.display())]
    Checkpoint {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Options that cannot go together, or a run that cannot go on.
    #[error("{0}")]
    Usage(String),
    /// Training stopped on an error (a diverged loss, a device failure).
    #[error("training failed: {0}")]
    Training(String),
    /// Reading or writing a run file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Drawing a chart failed.
    #[error("cannot draw {}: {reason}", path.display())]
    Plot {
        /// The chart's file.
        path: PathBuf,
        /// What the plotting library reported.
        reason: String,
    },
}

impl Error {
    /// A bad config value.
    pub fn config(field: &'static str, value: impl std::fmt::Display, allowed: &str) -> Self {
        Self::Config {
            field,
            value: value.to_string(),
            allowed: allowed.to_string(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    /// A bad checkpoint or run directory.
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Self::Checkpoint {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
