//! The example's one error type. Every message is one line that names what is wrong and what would
//! be accepted; `main` prints it after `error: ` and exits with code 2.

use burn_hardshrink::DeviceError;
use std::path::PathBuf;

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A folder of images that cannot be used, and why.
    #[error("{}: {}", .0.display(), .1)]
    Images(PathBuf, String),
    /// A device that cannot be opened.
    #[error("invalid `device`: {0}")]
    Device(#[from] DeviceError),
    /// What this example shares with the first: a config field out of range, a config file
    /// that cannot be read, a run directory that cannot be used as asked, a failed write.
    #[error(transparent)]
    Common(#[from] sparse_coding::error::Error),
    /// Training stopped on an error (a diverged loss, a failed write).
    #[error("training failed: {0}")]
    Training(String),
}
