//! Hardshrink under `Autodiff<B, C>`: the inner backend's forward plus a custom backward node.
//!
//! What the node keeps:
//! - λ that is not the identity for the tensor's dtype: the forward's output only. `y != 0`
//!   exactly where the gradient passes, so no input copy and no boolean mask are needed, and the
//!   output shares its buffer with the tensor handed to the next layer (which usually keeps it
//!   anyway).
//! - λ negative or NaN (after rounding): nothing; the backward passes the gradient through.
//!
//! The node is compute-bound under both checkpoint strategies. Recomputing `y` from `x` on
//! demand (memory-bound, Balanced's retro-forward) would mean keeping `x` instead of `y`, which
//! saves nothing. Neighbouring memory-bound nodes still retro-forward as usual under Balanced
//! checkpointing: a child that needs `y` checkpoints the same buffer this node keeps.

use super::{HardshrinkBackend, LearnedHardshrinkBackend};
use crate::ThresholdEstimator;
use crate::dtype::ShrinkDType;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata};

/// The backward node. Its state is the forward's output, or `None` for the identity.
#[derive(Debug)]
struct HardshrinkNode;

impl<B: HardshrinkBackend> Backward<B, 1> for HardshrinkNode {
    type State = Option<FloatTensor<B>>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let output = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| match output {
            Some(output) => B::hardshrink_backward(output, grad),
            None => grad,
        });
    }
}

impl<B: HardshrinkBackend, C: CheckpointStrategy> HardshrinkBackend for Autodiff<B, C> {
    fn hardshrink(x: FloatTensor<Self>, lambd: f64) -> FloatTensor<Self> {
        // A dtype the crate cannot handle is reported by the inner backend's forward below.
        let dtype = x.dtype();
        let identity = ShrinkDType::of(dtype).is_some_and(|d| d.limit(lambd).is_none());
        match HardshrinkNode
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let output = B::hardshrink(x.into_primitive(), lambd);
                let state = (!identity).then(|| output.clone());
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::hardshrink(x.into_primitive(), lambd)),
        }
    }
    // `hardshrink_backward` keeps the trait's default body: composed of primitive ops, it is
    // itself differentiable here, should anyone take a second derivative.
}

/// The learned-threshold node: parents `[x, λ]`. It keeps the forward's output for the
/// straight-through estimator (`y` decides both gradients) and the input for the kernel
/// estimator (which looks at values just inside the band, where `y` is zero), plus the
/// thresholds (one per feature: small).
#[derive(Debug)]
struct LearnedNode;

#[derive(Debug, Clone)]
struct LearnedState<B: Backend> {
    saved: FloatTensor<B>,
    lambd: FloatTensor<B>,
    dim: Option<usize>,
    estimator: ThresholdEstimator,
}

impl<B: LearnedHardshrinkBackend> Backward<B, 2> for LearnedNode {
    type State = LearnedState<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let LearnedState {
            saved,
            lambd,
            dim,
            estimator,
        } = ops.state;
        let (grad_x, grad_lambd) =
            B::learned_hardshrink_backward(saved, grad, lambd, dim, estimator);
        let [x, lambd] = ops.parents;
        if let Some(x) = x {
            grads.register::<B>(x.id, grad_x);
        }
        if let Some(lambd) = lambd {
            grads.register::<B>(lambd.id, grad_lambd);
        }
    }
}

impl<B: LearnedHardshrinkBackend, C: CheckpointStrategy> LearnedHardshrinkBackend
    for Autodiff<B, C>
{
    fn learned_hardshrink(
        x: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        estimator: ThresholdEstimator,
    ) -> FloatTensor<Self> {
        match LearnedNode
            .prepare::<C>([x.node(), lambd.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let thresholds = lambd.into_primitive();
                let input = x.into_primitive();
                let keep_input = matches!(estimator, ThresholdEstimator::Kernel { .. });
                let saved_input = keep_input.then(|| input.clone());
                let output = B::learned_hardshrink(input, thresholds.clone(), dim, estimator);
                let state = LearnedState {
                    saved: saved_input.unwrap_or_else(|| output.clone()),
                    lambd: thresholds,
                    dim,
                    estimator,
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::learned_hardshrink(
                x.into_primitive(),
                lambd.into_primitive(),
                dim,
                estimator,
            )),
        }
    }

    fn learned_hardshrink_backward(
        saved: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        estimator: ThresholdEstimator,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        // A first-order op: its outputs are constants for a further backward.
        let (gx, gl) = B::learned_hardshrink_backward(
            saved.into_primitive(),
            grad.into_primitive(),
            lambd.into_primitive(),
            dim,
            estimator,
        );
        (
            <Self as burn::backend::AutodiffBackend>::from_inner(gx),
            <Self as burn::backend::AutodiffBackend>::from_inner(gl),
        )
    }
}
