//! Errors for bad input: each names the problem and the fix.

use burn::tensor::DType;
use core::fmt;

/// What can go wrong when building or applying a Hardshrink.
#[derive(Debug, Clone, PartialEq)]
pub enum HardshrinkError {
    /// The tensor's dtype cannot be shrunk on its backend.
    UnsupportedDType {
        /// The dtype of the tensor that was passed in.
        dtype: DType,
        /// The backend the tensor lives on.
        backend: String,
        /// The float dtypes this backend holds.
        supported: &'static str,
    },
    /// A module threshold that is NaN or negative.
    InvalidLambda {
        /// The rejected value.
        lambd: f64,
    },
    /// A kernel estimator's bandwidth that is not a positive number.
    InvalidBandwidth {
        /// The rejected value.
        bandwidth: f64,
    },
    /// A per-feature module with zero features.
    InvalidFeatures,
}

impl fmt::Display for HardshrinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedDType {
                dtype,
                backend,
                supported,
            } => write!(
                f,
                "hardshrink: dtype {dtype:?} is not supported on the {backend} backend, which \
                 holds {supported}; cast the tensor first (e.g. `x.cast(DType::F32)`) or move \
                 it to a device that holds {dtype:?}"
            ),
            Self::InvalidLambda { lambd } => write!(
                f,
                "the threshold lambd must be a number >= 0 (a fixed Hardshrink also takes +inf, a \
                 learned one needs a finite start), got {lambd}; use e.g. \
                 `HardshrinkConfig::new().with_lambd(0.5)`, or call the functional \
                 `hardshrink(x, lambd)`, which accepts every λ PyTorch accepts"
            ),
            Self::InvalidBandwidth { bandwidth } => write!(
                f,
                "ThresholdEstimator::Kernel: bandwidth must be a finite number > 0, got \
                 {bandwidth}; e.g. `ThresholdEstimator::Kernel {{ bandwidth: 0.1 }}`"
            ),
            Self::InvalidFeatures => write!(
                f,
                "LearnedHardshrinkConfig: features must be None (one threshold) or Some(n) with \
                 n >= 1, got Some(0)"
            ),
        }
    }
}

impl std::error::Error for HardshrinkError {}
