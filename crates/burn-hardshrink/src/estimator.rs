//! The threshold's pseudo-gradient: a choice of the learned-threshold op and its module.

use crate::HardshrinkError;

/// How the threshold's pseudo-gradient is estimated (the exact derivative is zero almost
/// everywhere, with a jump at `|x| = λ`).
#[derive(burn::config::Config, Debug, Copy, PartialEq)]
pub enum ThresholdEstimator {
    /// `∂y/∂λ = -sign(x)` where `|x| > λ`, else 0: the derivative of soft thresholding
    /// `sign(x)·max(|x| - λ, 0)`, used as if the forward were soft (it stays hard), as in
    /// learned ISTA (Gregor & LeCun 2010) and its hard-threshold variants.
    StraightThrough,
    /// `∂y/∂λ = -sign(x) · (λ/ε) · 1{ | |x| - λ | < ε/2 }`: a rectangle kernel of width ε
    /// around the jump, the estimate of Rajamanoharan et al. 2024, "Jumping Ahead: Improving
    /// Reconstruction Fidelity with JumpReLU Sparse Autoencoders", applied to both sides.
    Kernel {
        /// The kernel's width ε (> 0).
        bandwidth: f64,
    },
}

impl ThresholdEstimator {
    /// Checks the estimator's parameters: a kernel's bandwidth must be a finite number > 0.
    pub fn validate(self) -> Result<(), HardshrinkError> {
        match self {
            Self::Kernel { bandwidth } if !(bandwidth > 0.0 && bandwidth.is_finite()) => {
                Err(HardshrinkError::InvalidBandwidth { bandwidth })
            }
            _ => Ok(()),
        }
    }
}
