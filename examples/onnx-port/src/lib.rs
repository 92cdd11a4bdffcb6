//! A model with Hardshrink between PyTorch, ONNX and Burn.
//!
//! - [`imported`]: Burn code burn-onnx generated at build time from the ONNX files PyTorch
//!   exported (`build.rs`); each Hardshrink runs burn-hardshrink's kernels.
//! - [`net`]: the Burn twin of a PyTorch network with a trained per-feature threshold, loaded
//!   from PyTorch's `state_dict` through burn-store.
//! - [`demo`]: a small model with both activations, exported to ONNX.

pub mod demo;
pub mod imported;
pub mod net;

/// What the example can get wrong, in one line each.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// burn-store could not read the PyTorch file or fill the model from it.
    #[error("{path}: {reason}")]
    Load {
        /// The PyTorch file.
        path: String,
        /// burn-store's error, on one line.
        reason: String,
    },
    /// The export refused the model.
    #[error(transparent)]
    Export(#[from] burn_hardshrink::HardshrinkError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}
