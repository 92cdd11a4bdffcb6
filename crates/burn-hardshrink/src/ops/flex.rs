//! Hardshrink on the Flex backend (f32, f64, f16, bf16).
//!
//! Flex tensors are an `Arc`'d buffer plus a strided layout. An elementwise op can run over the
//! buffer in storage order and keep the layout, whatever the strides: that is one pass for
//! contiguous, transposed, flipped and broadcast views alike. A view that uses a small part of a
//! large buffer (a narrow slice) is first compacted, so the pass never costs more than the view.

use super::{HardshrinkBackend, KernelBackend, LearnedHardshrinkBackend};
use crate::ThresholdEstimator;
use crate::kernels::{
    Band, FeatureLayout, ShrinkElement, backward_in_place, backward_new, forward_in_place,
    forward_new, learned_backward_in_place, learned_forward_in_place, learned_forward_new,
};
use burn::backend::Flex;
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::tensor::Bytes;

impl HardshrinkBackend for Flex {
    fn hardshrink(x: FloatTensor<Self>, lambd: f64) -> FloatTensor<Self> {
        with_dtype!(KernelBackend::Flex.dtype(x.dtype()), |E| forward::<E>(
            x, lambd
        ))
    }

    fn hardshrink_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        assert_eq!(
            output.dtype(),
            grad.dtype(),
            "hardshrink_backward: the output and the gradient must share a dtype"
        );
        assert_eq!(
            output.layout().shape(),
            grad.layout().shape(),
            "hardshrink_backward: the gradient's shape must match the output's"
        );
        with_dtype!(KernelBackend::Flex.dtype(grad.dtype()), |E| backward::<E>(
            output, grad
        ))
    }
}

fn forward<E: ShrinkElement>(mut x: FlexTensor, lambd: f64) -> FlexTensor {
    let band = Band::of::<E>(lambd);
    // Nothing to change; an empty view may also point past the end of an empty buffer.
    if band == Band::Identity || x.layout().num_elements() == 0 {
        return x;
    }
    let span = match span::<E>(&x) {
        Some(span) => span,
        None => {
            x = compact(x);
            Span::Range(0, x.layout().num_elements())
        }
    };
    let (start, end) = match span {
        Span::Range(start, end) => (start, end),
        Span::Buffer => (0, x.storage::<E>().len()),
    };
    if let Some(values) = x.try_storage_mut::<E>() {
        forward_in_place(&mut values[start..end], band);
        return x;
    }
    let out = forward_new(&x.storage::<E>()[start..end], band);
    let layout = match span {
        Span::Range(..) => Layout::contiguous(x.layout().shape().clone()),
        Span::Buffer => x.layout().clone(),
    };
    FlexTensor::new(Bytes::from_elems(out), layout, E::DTYPE)
}

/// Which part of the buffer a pass must cover to produce the view.
enum Span {
    /// The view is the contiguous range `start..end`, in row-major order.
    Range(usize, usize),
    /// Map the whole buffer and keep the layout (the view reads most or all of it).
    Buffer,
}

/// How to cover `tensor`'s view, or `None` when the buffer is much larger than the view.
fn span<E: ShrinkElement>(tensor: &FlexTensor) -> Option<Span> {
    let layout = tensor.layout();
    if let Some((start, end)) = layout.contiguous_offsets() {
        return Some(Span::Range(start, end));
    }
    let used = layout.num_elements();
    let buffer = tensor.storage::<E>().len();
    // A third of waste is cheaper than the gather that would avoid it.
    (buffer <= used + used / 2).then_some(Span::Buffer)
}

/// Copies the view into a fresh row-major buffer (Flex's own strided copy).
fn compact(tensor: FlexTensor) -> FlexTensor {
    let compacted = tensor.to_contiguous();
    drop(tensor);
    compacted
}

fn backward<E: ShrinkElement>(mut output: FlexTensor, mut grad: FlexTensor) -> FlexTensor {
    if grad.layout().num_elements() == 0 {
        return grad;
    }
    // Pair the two buffers directly when they share a layout, or when both are row-major
    // ranges; otherwise bring both to row-major first.
    let paired = match (span::<E>(&output), span::<E>(&grad)) {
        (Some(Span::Range(ys, ye)), Some(Span::Range(gs, ge))) => Some(((ys, ye), (gs, ge))),
        (Some(Span::Buffer), Some(Span::Buffer))
            if output.layout() == grad.layout()
                && output.storage::<E>().len() == grad.storage::<E>().len() =>
        {
            let len = grad.storage::<E>().len();
            Some(((0, len), (0, len)))
        }
        _ => None,
    };
    let ((ys, ye), (gs, ge)) = match paired {
        Some(ranges) => ranges,
        None => {
            output = compact(output);
            grad = compact(grad);
            let n = grad.layout().num_elements();
            ((0, n), (0, n))
        }
    };
    let keeps_layout = gs == 0 && ge == grad.storage::<E>().len();
    if let Some(values) = grad.try_storage_mut::<E>() {
        backward_in_place(&mut values[gs..ge], &output.storage::<E>()[ys..ye]);
        return grad;
    }
    let out = backward_new(&output.storage::<E>()[ys..ye], &grad.storage::<E>()[gs..ge]);
    let layout = if keeps_layout {
        grad.layout().clone()
    } else {
        Layout::contiguous(grad.layout().shape().clone())
    };
    FlexTensor::new(Bytes::from_elems(out), layout, E::DTYPE)
}

impl LearnedHardshrinkBackend for Flex {
    fn learned_hardshrink(
        x: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        _estimator: ThresholdEstimator,
    ) -> FloatTensor<Self> {
        same_dtype(&x, &lambd);
        let dtype = KernelBackend::Flex.dtype(x.dtype());
        with_dtype!(dtype, |E| learned_forward::<E>(x, &lambd, dim))
    }

    fn learned_hardshrink_backward(
        saved: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        estimator: ThresholdEstimator,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        same_dtype(&saved, &lambd);
        same_dtype(&saved, &grad);
        let dtype = KernelBackend::Flex.dtype(saved.dtype());
        with_dtype!(dtype, |E| learned_backward::<E>(
            saved, grad, &lambd, dim, estimator
        ))
    }
}

fn same_dtype(a: &FlexTensor, b: &FlexTensor) {
    assert_eq!(
        a.dtype(),
        b.dtype(),
        "learned hardshrink: the thresholds and gradients must have the input's dtype"
    );
}

/// The values of a (small) tensor in row-major order.
fn row_major_values<E: ShrinkElement>(tensor: &FlexTensor) -> Vec<E> {
    let contiguous = tensor.to_contiguous();
    contiguous
        .as_slice::<E>()
        .expect("a contiguous tensor has a slice")
        .to_vec()
}

/// A uniquely owned, row-major tensor with `tensor`'s values: itself when it already is one.
fn unique_row_major<E: ShrinkElement>(tensor: FlexTensor) -> FlexTensor {
    if tensor.is_unique() && tensor.layout().contiguous_offsets().is_some() {
        return tensor;
    }
    let values = match tensor.layout().contiguous_offsets() {
        Some((start, end)) => tensor.storage::<E>()[start..end].to_vec(),
        None => row_major_values::<E>(&tensor),
    };
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(tensor.layout().shape().clone()),
        E::DTYPE,
    )
}

fn learned_forward<E: ShrinkElement>(
    mut x: FlexTensor,
    lambd: &FlexTensor,
    dim: Option<usize>,
) -> FlexTensor {
    let thresholds = row_major_values::<E>(lambd);
    let layout = FeatureLayout::new(x.layout().shape(), dim);
    if x.layout().num_elements() == 0 {
        return x;
    }
    if x.layout().contiguous_offsets().is_none() {
        x = compact(x);
    }
    let (start, end) = x.layout().contiguous_offsets().expect("row-major");
    if let Some(values) = x.try_storage_mut::<E>() {
        learned_forward_in_place(&mut values[start..end], &thresholds, layout);
        return x;
    }
    let out = learned_forward_new(&x.storage::<E>()[start..end], &thresholds, layout);
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(x.layout().shape().clone()),
        E::DTYPE,
    )
}

fn learned_backward<E: ShrinkElement>(
    saved: FlexTensor,
    grad: FlexTensor,
    lambd: &FlexTensor,
    dim: Option<usize>,
    estimator: ThresholdEstimator,
) -> (FlexTensor, FlexTensor) {
    let thresholds = row_major_values::<E>(lambd);
    let layout = FeatureLayout::new(saved.layout().shape(), dim);
    if saved.layout().num_elements() == 0 {
        let zeros = vec![E::zeroed(); thresholds.len()];
        let shape = lambd.layout().shape().clone();
        let grad_lambd = FlexTensor::new(
            Bytes::from_elems(zeros),
            Layout::contiguous(shape),
            E::DTYPE,
        );
        return (grad, grad_lambd);
    }
    let saved = if saved.layout().contiguous_offsets().is_some() {
        saved
    } else {
        compact(saved)
    };
    let (start, end) = saved.layout().contiguous_offsets().expect("row-major");
    let mut grad = unique_row_major::<E>(grad);
    let (gs, ge) = grad.layout().contiguous_offsets().expect("row-major");
    let sums = learned_backward_in_place(
        &saved.storage::<E>()[start..end],
        &mut grad.try_storage_mut::<E>().expect("unique")[gs..ge],
        &thresholds,
        layout,
        estimator,
    );
    let grad_lambd: Vec<E> = sums.into_iter().map(E::from_f64).collect();
    let grad_lambd = FlexTensor::new(
        Bytes::from_elems(grad_lambd),
        Layout::contiguous(lambd.layout().shape().clone()),
        E::DTYPE,
    );
    (grad, grad_lambd)
}
