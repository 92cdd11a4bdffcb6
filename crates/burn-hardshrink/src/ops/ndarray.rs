//! Hardshrink on the NdArray backend (f32 and f64).
//!
//! A uniquely owned array whose elements fill one contiguous block (in any axis order) is
//! shrunk in place; anything else is read through a view into a fresh array, so a shared input
//! is never touched.
#![allow(deprecated)] // NdArray is deprecated upstream in favour of Flex, but still supported.

use super::{HardshrinkBackend, LearnedHardshrinkBackend, backend_name};
use crate::HardshrinkError;
use crate::kernels::{
    Band, FeatureLayout, ShrinkElement, ThresholdEstimator, backward_in_place, backward_into,
    backward_one, forward_in_place, forward_into, forward_one, learned_backward_in_place,
    learned_forward_in_place, learned_forward_into,
};
use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::{NdArrayTensor, SharedArray};
use burn::backend::tensor::FloatTensor;

use ndarray::{Array, ArrayViewD, Zip};

impl HardshrinkBackend for NdArray {
    fn hardshrink(x: FloatTensor<Self>, lambd: f64) -> FloatTensor<Self> {
        match x {
            NdArrayTensor::F32(storage) => {
                let band = Band::of::<f32>(lambd);
                let out = if storage.is_unique() {
                    forward_owned(storage.into_owned(), band)
                } else {
                    forward_view(storage.view(), band)
                };
                NdArrayTensor::from(out)
            }
            NdArrayTensor::F64(storage) => {
                let band = Band::of::<f64>(lambd);
                let out = if storage.is_unique() {
                    forward_owned(storage.into_owned(), band)
                } else {
                    forward_view(storage.view(), band)
                };
                NdArrayTensor::from(out)
            }
            other => unsupported(other.dtype()),
        }
    }

    fn hardshrink_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match (output, grad) {
            (NdArrayTensor::F32(output), NdArrayTensor::F32(grad)) => {
                let out = if grad.is_unique() {
                    backward_owned(output.view(), grad.into_owned())
                } else {
                    backward_view(output.view(), grad.view())
                };
                NdArrayTensor::from(out)
            }
            (NdArrayTensor::F64(output), NdArrayTensor::F64(grad)) => {
                let out = if grad.is_unique() {
                    backward_owned(output.view(), grad.into_owned())
                } else {
                    backward_view(output.view(), grad.view())
                };
                NdArrayTensor::from(out)
            }
            (output, grad) if output.dtype() == grad.dtype() => unsupported(output.dtype()),
            (output, grad) => panic!(
                "hardshrink_backward: the output ({:?}) and the gradient ({:?}) must share a \
                 dtype",
                output.dtype(),
                grad.dtype()
            ),
        }
    }
}

fn unsupported(dtype: burn::tensor::DType) -> ! {
    panic!(
        "{}",
        HardshrinkError::UnsupportedDType {
            dtype,
            backend: backend_name::<NdArray>().to_string(),
            supported: "f32 and f64",
        }
    )
}

/// In place when the elements form one block of memory (any axis order), else a fresh array.
fn forward_owned<E: ShrinkElement>(
    mut array: SharedArray<E>,
    band: Band<E::Lane>,
) -> SharedArray<E> {
    if let Band::Identity = band {
        return array;
    }
    // The caller checked uniqueness, so this borrows without copying.
    if let Some(values) = array.as_slice_memory_order_mut() {
        forward_in_place(values, band);
        return array;
    }
    forward_view(array.view(), band)
}

/// A fresh array: one pass over the slice for row-major input, a strided map otherwise.
fn forward_view<E: ShrinkElement>(view: ArrayViewD<'_, E>, band: Band<E::Lane>) -> SharedArray<E> {
    if view.is_standard_layout()
        && let Some(src) = view.as_slice()
    {
        let mut out = vec![E::zeroed(); src.len()];
        forward_into(src, &mut out, band);
        return into_shared(view.shape(), out);
    }
    view.mapv(|x| forward_one(x, band)).into_shared()
}

/// In place on the gradient when it and the output share one block layout, else fresh.
fn backward_owned<E: ShrinkElement>(
    output: ArrayViewD<'_, E>,
    mut grad: SharedArray<E>,
) -> SharedArray<E> {
    if output.strides() == grad.strides()
        && let Some(output_values) = output.as_slice_memory_order()
        && let Some(grad_values) = grad.as_slice_memory_order_mut()
    {
        backward_in_place(grad_values, output_values);
        return grad;
    }
    backward_view(output, grad.view())
}

fn backward_view<E: ShrinkElement>(
    output: ArrayViewD<'_, E>,
    grad: ArrayViewD<'_, E>,
) -> SharedArray<E> {
    assert_eq!(
        output.shape(),
        grad.shape(),
        "hardshrink_backward: the gradient's shape must match the output's"
    );
    if let (Some(output_values), Some(grad_values)) = (output.as_slice(), grad.as_slice()) {
        let mut out = vec![E::zeroed(); grad_values.len()];
        backward_into(output_values, grad_values, &mut out);
        return into_shared(grad.shape(), out);
    }
    Zip::from(&output)
        .and(&grad)
        .map_collect(|&y, &g| backward_one(y, g))
        .into_shared()
}

fn into_shared<E: ShrinkElement>(shape: &[usize], values: Vec<E>) -> SharedArray<E> {
    Array::from_shape_vec(shape, values)
        .expect("a row-major buffer has exactly the shape's element count")
        .into_shared()
}

impl LearnedHardshrinkBackend for NdArray {
    fn learned_hardshrink(
        x: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        _estimator: ThresholdEstimator,
    ) -> FloatTensor<Self> {
        match (x, lambd) {
            (NdArrayTensor::F32(x), NdArrayTensor::F32(lambd)) => NdArrayTensor::from(
                learned_forward(x.into_shared(), &row_major(lambd.view()), dim),
            ),
            (NdArrayTensor::F64(x), NdArrayTensor::F64(lambd)) => NdArrayTensor::from(
                learned_forward(x.into_shared(), &row_major(lambd.view()), dim),
            ),
            (x, lambd) => mismatched(x.dtype(), lambd.dtype()),
        }
    }

    fn learned_hardshrink_backward(
        saved: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        estimator: ThresholdEstimator,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        match (saved, grad, lambd) {
            (NdArrayTensor::F32(saved), NdArrayTensor::F32(grad), NdArrayTensor::F32(lambd)) => {
                let (gx, gl) = learned_backward(
                    saved.view(),
                    grad.into_shared(),
                    lambd.view(),
                    dim,
                    estimator,
                );
                (NdArrayTensor::from(gx), NdArrayTensor::from(gl))
            }
            (NdArrayTensor::F64(saved), NdArrayTensor::F64(grad), NdArrayTensor::F64(lambd)) => {
                let (gx, gl) = learned_backward(
                    saved.view(),
                    grad.into_shared(),
                    lambd.view(),
                    dim,
                    estimator,
                );
                (NdArrayTensor::from(gx), NdArrayTensor::from(gl))
            }
            (saved, _, lambd) => mismatched(saved.dtype(), lambd.dtype()),
        }
    }
}

fn mismatched(x: burn::tensor::DType, other: burn::tensor::DType) -> ! {
    if x != other {
        panic!(
            "learned hardshrink: the thresholds and gradients must have the input's dtype ({x:?}), got {other:?}"
        )
    }
    unsupported(x)
}

/// The values in row-major order (borrowed when the view already is row-major).
fn row_major<E: ShrinkElement>(view: ArrayViewD<'_, E>) -> Vec<E> {
    view.as_standard_layout().iter().copied().collect()
}

/// A uniquely owned row-major array: in place when `array` already is one.
fn unique_row_major<E: ShrinkElement>(array: SharedArray<E>) -> SharedArray<E> {
    if array.is_standard_layout() {
        array
    } else {
        array.as_standard_layout().into_owned().into_shared()
    }
}

fn learned_forward<E: ShrinkElement>(
    x: SharedArray<E>,
    thresholds: &[E],
    dim: Option<usize>,
) -> SharedArray<E> {
    let layout = FeatureLayout::new(x.shape(), dim);
    if x.is_unique() || !x.is_standard_layout() {
        let mut x = unique_row_major(x);
        let values = x.as_slice_mut().expect("row-major and unique");
        learned_forward_in_place(values, thresholds, layout);
        return x;
    }
    let src = x.as_slice().expect("row-major");
    let mut out = vec![E::zeroed(); src.len()];
    learned_forward_into(src, &mut out, thresholds, layout);
    into_shared(x.shape(), out)
}

fn learned_backward<E: ShrinkElement>(
    saved: ArrayViewD<'_, E>,
    grad: SharedArray<E>,
    lambd: ArrayViewD<'_, E>,
    dim: Option<usize>,
    estimator: ThresholdEstimator,
) -> (SharedArray<E>, SharedArray<E>) {
    let layout = FeatureLayout::new(saved.shape(), dim);
    let saved = saved.as_standard_layout();
    let mut grad = unique_row_major(grad);
    let sums = learned_backward_in_place(
        saved.as_slice().expect("row-major"),
        grad.as_slice_mut().expect("row-major and unique"),
        &row_major(lambd.view()),
        layout,
        estimator,
    );
    let grad_lambd = sums.into_iter().map(E::from_f64).collect();
    (grad, into_shared(lambd.shape(), grad_lambd))
}
