//! Errors for bad input: each names the problem and the fix.

use burn::tensor::DType;

/// What can go wrong when building or applying a Hardshrink.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HardshrinkError {
    /// The tensor's dtype cannot be shrunk on its backend.
    #[error(
        "hardshrink: dtype {dtype:?} is not supported on the {backend} backend, which holds {}; \
         cast the tensor first (e.g. `x.cast(DType::F32)`) or move it to a device that holds \
         {dtype:?}",
        list(supported)
    )]
    UnsupportedDType {
        /// The dtype of the tensor that was passed in.
        dtype: DType,
        /// The backend the tensor lives on.
        backend: String,
        /// The float dtypes this backend holds.
        supported: Vec<DType>,
    },
    /// A module threshold that is NaN or negative.
    #[error(
        "the threshold lambd must be a number >= 0 (a fixed Hardshrink also takes +inf, a learned \
         one needs a finite start), got {lambd}; use e.g. \
         `HardshrinkConfig::new().with_lambd(0.5)`, or call the functional \
         `hardshrink(x, lambd)`, which accepts every λ PyTorch accepts"
    )]
    InvalidLambda {
        /// The rejected value.
        lambd: f64,
    },
    /// A kernel estimator's bandwidth that is not a positive number.
    #[error(
        "ThresholdEstimator::Kernel: bandwidth must be a finite number > 0, got {bandwidth}; e.g. \
         `ThresholdEstimator::Kernel {{ bandwidth: 0.1 }}`"
    )]
    InvalidBandwidth {
        /// The rejected value.
        bandwidth: f64,
    },
    /// A per-feature module with zero features.
    #[error(
        "LearnedHardshrinkConfig: features must be None (one threshold) or Some(n) with n >= 1, \
         got Some(0)"
    )]
    InvalidFeatures,
    /// A model the ONNX export cannot write.
    #[error("ONNX export: {reason}")]
    OnnxExport {
        /// What burn-onnx's exporter or the Hardshrink lowering refused, and the fix.
        reason: String,
    },
}

/// `f32, f64 and f16`: dtypes as a reader writes them.
fn list(dtypes: &[DType]) -> String {
    let names: Vec<String> = dtypes
        .iter()
        .map(|dtype| format!("{dtype:?}").to_lowercase())
        .collect();
    match names.split_last() {
        None => "no float dtype".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}
