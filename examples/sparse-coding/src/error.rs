//! One error type for the example; every message is one line that names what is wrong and
//! what would be accepted.

use burn_hardshrink::DeviceError;
use core::fmt;
use std::path::PathBuf;

/// What can stop a run.
#[derive(Debug)]
pub enum Error {
    /// A config field with a value outside what it allows.
    Config {
        /// The field's name, as in `config.json`.
        field: &'static str,
        /// The rejected value, printed.
        value: String,
        /// What the field accepts.
        allowed: String,
    },
    /// A config file that is not valid JSON for [`RunConfig`](crate::RunConfig).
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The parser's explanation (it names the field and the line).
        reason: String,
    },
    /// A device name that cannot be opened.
    Device(DeviceError),
    /// A run directory or checkpoint that is missing, incomplete or unreadable.
    Checkpoint {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Command-line options that cannot go together.
    Usage(String),
    /// Reading or writing a run file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// A bad config value.
    pub fn config(field: &'static str, value: impl fmt::Display, allowed: &str) -> Self {
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
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl fmt::Display) -> Self {
        Self::Checkpoint {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config {
                field,
                value,
                allowed,
            } => write!(f, "invalid `{field}` = {value}: must be {allowed}"),
            Self::ConfigFile { path, reason } => {
                write!(f, "config file {}: {reason}", path.display())
            }
            Self::Device(e) => write!(f, "invalid `device`: {e}"),
            Self::Checkpoint { path, reason } => {
                write!(f, "cannot resume from {}: {reason}", path.display())
            }
            Self::Usage(message) => f.write_str(message),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {}
