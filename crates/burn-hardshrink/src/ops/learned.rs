//! The learnable-threshold op as a sibling backend extension: a threshold per feature,
//! forward and backward (with the threshold's pseudo-gradient reduced per feature).

use crate::ThresholdEstimator;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};

/// Hardshrink with a threshold tensor, for [`LearnedHardshrink`](crate::LearnedHardshrink).
///
/// `lambd` has shape `[features]` with `features == x.shape[dim]` (thresholds broadcast along
/// `dim` like a bias), or shape `[1]` with `dim = None` (one threshold). It must have `x`'s
/// dtype. Implemented for NdArray, Flex, Burn's `Cube` backend (every GPU runtime), `Fusion` over
/// it (an opaque op in the fusion stream) and `Autodiff` over all of them.
// Under fusion the opaque kernels run rather than the fusable composition of tensor ops
// (`learned_hardshrink_composed`): faster forward + backward, the same in a model step
// (BENCHMARKS.md, "The learned threshold on the GPU: kernels or composition").
// Generates `impl LearnedHardshrinkBackend for burn::backend::Dispatch`, routing as
// `HardshrinkBackend`'s does (the same list, checked against the backend table by a test).
#[backend_extension(
    NdArray: cfg(feature = "ndarray"),
    Flex: cfg(feature = "flex"),
    Cube: cfg(feature = "cube"),
    Fusion: cfg(feature = "fusion"),
    Autodiff,
)]
pub trait LearnedHardshrinkBackend: Backend {
    /// `y = x` where `|x| > λ[f]`, `+0` where `-λ[f] <= x <= λ[f]`, `f` the element's feature.
    ///
    /// `estimator` does not change the output; under autodiff it picks the threshold's
    /// pseudo-gradient and so what the backward node keeps.
    #[fusion(dtype = x, shape = x)]
    fn learned_hardshrink(
        x: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        estimator: ThresholdEstimator,
    ) -> FloatTensor<Self>;

    /// The backward: `(grad_x, grad_lambd)`.
    ///
    /// `saved` is the forward's input, or its output for
    /// [`ThresholdEstimator::StraightThrough`] (which needs only the output: `y != 0` exactly
    /// where `|x| > λ`, with `x`'s sign). `grad_x` is exactly Hardshrink's; `grad_lambd` has
    /// `lambd`'s shape and sums the estimator's pseudo-gradient over each feature.
    #[fusion(meta = |_saved, grad, lambd, _dim, _estimator| (grad.clone(), lambd.clone()))]
    fn learned_hardshrink_backward(
        saved: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        estimator: ThresholdEstimator,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}
