//! Kernels for a threshold per feature (the learnable Hardshrink): one pass forward, one pass
//! backward that also reduces the threshold's gradient per feature.
//!
//! Buffers are row-major and seen as `outer × features × inner`: the feature axis in the
//! middle, everything before it folded into `outer` and everything after into `inner`. A single
//! threshold is `features = 1`.

mod forward;
mod reduce;
#[cfg(test)]
mod tests;

use super::buffer::filled;
use super::element::{BitLane, ShrinkElement};
use super::slice::{Band, PARALLEL_CHUNK, bits, bits_mut};
use crate::ThresholdEstimator;
use forward::{shrink_rows, shrink_rows_into};
use std::mem::MaybeUninit;

/// A row-major buffer split around its feature axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureLayout {
    /// Product of the dimensions before the feature axis.
    pub outer: usize,
    /// Length of the feature axis (1 for a single threshold).
    pub features: usize,
    /// Product of the dimensions after the feature axis.
    pub inner: usize,
}

impl FeatureLayout {
    /// The layout of `shape` with thresholds along `dim`, or one threshold for `dim = None`.
    pub fn new(shape: &[usize], dim: Option<usize>) -> Self {
        match dim {
            None => Self {
                outer: 1,
                features: 1,
                inner: shape.iter().product(),
            },
            Some(dim) => Self {
                outer: shape[..dim].iter().product(),
                features: shape[dim],
                inner: shape[dim + 1..].iter().product(),
            },
        }
    }

    /// Elements in one `features × inner` row.
    fn row(&self) -> usize {
        self.features * self.inner
    }

    /// Elements per parallel task: whole rows, about [`PARALLEL_CHUNK`] of them.
    fn chunk(&self) -> usize {
        let row = self.row().max(1);
        row * (PARALLEL_CHUNK / row).max(1)
    }
}

/// The comparison limit for each feature's threshold: its magnitude bits, or all bits set for a
/// negative or NaN threshold (which keeps every value: the identity).
fn limits<E: ShrinkElement>(lambd: &[E]) -> Vec<E::Lane> {
    let limit = |&l| match Band::of_value(l) {
        Band::Identity => E::Lane::ALL,
        Band::Closed(bits) => bits,
    };
    lambd.iter().map(limit).collect()
}

fn check<E>(layout: FeatureLayout, len: usize, lambd: &[E]) {
    assert_eq!(
        len,
        layout.outer * layout.row(),
        "buffer length does not match the layout"
    );
    assert_eq!(lambd.len(), layout.features, "one threshold per feature");
}

/// Forward in place with a threshold per feature.
pub fn learned_forward_in_place<E: ShrinkElement>(
    data: &mut [E],
    lambd: &[E],
    layout: FeatureLayout,
) {
    check(layout, data.len(), lambd);
    shrink_rows(layout, &limits(lambd), bits_mut(data));
}

/// Forward out of place with a threshold per feature: a new buffer.
pub fn learned_forward_new<E: ShrinkElement>(
    src: &[E],
    lambd: &[E],
    layout: FeatureLayout,
) -> Vec<E> {
    check(layout, src.len(), lambd);
    let limits = limits(lambd);
    let fill = |dst: &mut [MaybeUninit<E::Lane>]| shrink_rows_into(layout, &limits, bits(src), dst);
    // SAFETY: a buffer of whole rows (`check`), each written element by element; with no
    // elements in a row there are none in the buffer.
    unsafe { filled(src.len(), fill) }
}

/// The backward with a threshold per feature, from the forward's input `x`.
///
/// Writes the input gradient into `grad` in place (`grad` where `|x| > λ` or `x` is NaN, `+0`
/// elsewhere, exactly Hardshrink's) and returns the threshold gradient per feature, summed in
/// f64: the kernel estimator's term by term, the straight-through one's (each term `±g`, exact
/// in f32) eight terms at a time in [`ShrinkElement::Partial`] first. So an f32 or bf16
/// gradient near its type's largest finite value can overflow a partial sum that f64 alone
/// would have held; the threshold's gradient, rounded back to that type, would overflow too
/// unless the terms cancel.
pub fn learned_backward_in_place<E: ShrinkElement>(
    input: &[E],
    grad: &mut [E],
    lambd: &[E],
    layout: FeatureLayout,
    estimator: ThresholdEstimator,
) -> Vec<f64> {
    check(layout, input.len(), lambd);
    assert_eq!(input.len(), grad.len());
    if layout.row() == 0 || layout.outer == 0 {
        return vec![0.0; layout.features];
    }
    let (limits, input, grad) = (limits(lambd), bits(input), bits_mut(grad));
    match estimator {
        ThresholdEstimator::StraightThrough => {
            reduce::straight_through::<E>(layout, input, grad, &limits)
        }
        ThresholdEstimator::Kernel { bandwidth } => {
            let lambd: Vec<f64> = lambd.iter().map(|l| l.to_f64()).collect();
            reduce::kernel::<E>(layout, input, grad, &limits, &lambd, bandwidth)
        }
    }
}
