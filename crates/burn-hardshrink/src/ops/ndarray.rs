//! Hardshrink on the NdArray backend (f32 and f64).
//!
//! A uniquely owned array whose elements fill one contiguous block (in any axis order) is
//! shrunk in place; anything else is read through a view into a fresh array, so a shared input
//! is never touched. The same holds for the backward, on the gradient.
#![allow(deprecated)] // NdArray is deprecated upstream in favour of Flex, but still supported.

use super::{HardshrinkBackend, KernelBackend, LearnedHardshrinkBackend};
use crate::ThresholdEstimator;
use crate::kernels::{
    Band, FeatureLayout, ShrinkElement, backward_in_place, backward_new, backward_one,
    forward_in_place, forward_new, forward_one, learned_backward_in_place,
    learned_forward_in_place, learned_forward_new,
};
use burn::backend::NdArray;
use burn::backend::TensorMetadata;
use burn::backend::ndarray::{NdArrayTensor, SharedArray};
use burn::backend::tensor::FloatTensor;

use burn::tensor::DType;
use ndarray::{Array, ArrayViewD, Zip};

/// f32 and f64 as NdArray stores them. burn-ndarray keeps its storage type private, so the
/// variant is taken apart here, once per element type, and everything else is generic.
trait NdFloat: ShrinkElement {
    /// The array when the tensor is this type and its buffer is uniquely owned (mutable in
    /// place), else the tensor back.
    fn unique(tensor: NdArrayTensor) -> Result<SharedArray<Self>, NdArrayTensor>;
    /// A read-only view of a tensor of this type.
    fn view(tensor: &NdArrayTensor) -> ArrayViewD<'_, Self>;
    /// The array, owned (a copy only when the buffer is borrowed).
    fn owned(tensor: NdArrayTensor) -> SharedArray<Self>;
    /// Wraps an array as a tensor.
    fn wrap(array: SharedArray<Self>) -> NdArrayTensor;
}

macro_rules! nd_float {
    ($elem:ty, $variant:ident) => {
        impl NdFloat for $elem {
            fn unique(tensor: NdArrayTensor) -> Result<SharedArray<Self>, NdArrayTensor> {
                match tensor {
                    NdArrayTensor::$variant(storage) if storage.is_unique() => {
                        Ok(storage.into_owned())
                    }
                    other => Err(other),
                }
            }
            fn view(tensor: &NdArrayTensor) -> ArrayViewD<'_, Self> {
                match tensor {
                    NdArrayTensor::$variant(storage) => storage.view(),
                    other => mismatched(<$elem as ShrinkElement>::DTYPE, other.dtype()),
                }
            }
            fn owned(tensor: NdArrayTensor) -> SharedArray<Self> {
                match tensor {
                    NdArrayTensor::$variant(storage) => storage.into_owned(),
                    other => mismatched(<$elem as ShrinkElement>::DTYPE, other.dtype()),
                }
            }
            fn wrap(array: SharedArray<Self>) -> NdArrayTensor {
                NdArrayTensor::from(array)
            }
        }
    };
}

nd_float!(f32, F32);
nd_float!(f64, F64);

/// The dtype dispatch of the NdArray kernels: f32 and f64, the element types [`NdFloat`] covers
/// (the backend's row of the dtype table refuses the others first).
macro_rules! nd_dtype {
    ($dtype:expr, |$E:ident| $body:expr) => {
        with_dtype!(KernelBackend::NdArray.dtype($dtype), [F32, F64], |$E| $body)
    };
}

impl HardshrinkBackend for NdArray {
    fn hardshrink(x: FloatTensor<Self>, lambd: f64) -> FloatTensor<Self> {
        nd_dtype!(x.dtype(), |E| forward::<E>(x, lambd))
    }

    fn hardshrink_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        nd_dtype!(grad.dtype(), |E| backward::<E>(&output, grad))
    }
}

fn forward<E: NdFloat>(x: NdArrayTensor, lambd: f64) -> NdArrayTensor {
    let band = Band::of::<E>(lambd);
    // A uniquely owned array whose elements form one block (any axis order) is shrunk in
    // place; anything else is read through a view into a fresh array.
    let (owned, shared);
    let view = match E::unique(x) {
        Ok(array) if band == Band::Identity => return E::wrap(array),
        Ok(mut array) => {
            // Unique, so this borrows without copying.
            if let Some(values) = array.as_slice_memory_order_mut() {
                forward_in_place(values, band);
                return E::wrap(array);
            }
            owned = array;
            owned.view()
        }
        Err(tensor) => {
            shared = tensor;
            E::view(&shared)
        }
    };
    E::wrap(
        if view.is_standard_layout()
            && let Some(src) = view.as_slice()
        {
            into_shared(view.shape(), forward_new(src, band))
        } else {
            view.mapv(|x| forward_one(x, band)).into_shared()
        },
    )
}

fn backward<E: NdFloat>(output: &NdArrayTensor, grad: NdArrayTensor) -> NdArrayTensor {
    let output = E::view(output);
    E::wrap(match E::unique(grad) {
        Ok(grad) => backward_owned(output, grad),
        Err(shared) => backward_view(output, E::view(&shared)),
    })
}

impl LearnedHardshrinkBackend for NdArray {
    fn learned_hardshrink(
        x: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        _estimator: ThresholdEstimator,
    ) -> FloatTensor<Self> {
        nd_dtype!(x.dtype(), |E| learned_forward::<E>(x, &lambd, dim))
    }

    fn learned_hardshrink_backward(
        saved: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        estimator: ThresholdEstimator,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        nd_dtype!(saved.dtype(), |E| learned_backward::<E>(
            &saved, grad, &lambd, dim, estimator
        ))
    }
}

fn mismatched(expected: DType, got: DType) -> ! {
    panic!(
        "hardshrink: every tensor of one call must share a dtype: expected {expected:?}, got \
         {got:?}"
    )
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
        return into_shared(grad.shape(), backward_new(output_values, grad_values));
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

fn learned_forward<E: NdFloat>(
    x: NdArrayTensor,
    lambd: &NdArrayTensor,
    dim: Option<usize>,
) -> NdArrayTensor {
    let thresholds = row_major(E::view(lambd));
    let x = E::owned(x);
    let layout = FeatureLayout::new(x.shape(), dim);
    if x.is_unique() || !x.is_standard_layout() {
        let mut x = unique_row_major(x);
        let values = x.as_slice_mut().expect("row-major and unique");
        learned_forward_in_place(values, &thresholds, layout);
        return E::wrap(x);
    }
    let src = x.as_slice().expect("row-major");
    E::wrap(into_shared(
        x.shape(),
        learned_forward_new(src, &thresholds, layout),
    ))
}

fn learned_backward<E: NdFloat>(
    saved: &NdArrayTensor,
    grad: NdArrayTensor,
    lambd: &NdArrayTensor,
    dim: Option<usize>,
    estimator: ThresholdEstimator,
) -> (NdArrayTensor, NdArrayTensor) {
    let saved = E::view(saved);
    let lambd = E::view(lambd);
    let layout = FeatureLayout::new(saved.shape(), dim);
    let saved = saved.as_standard_layout();
    let mut grad = unique_row_major(E::owned(grad));
    let sums = learned_backward_in_place(
        saved.as_slice().expect("row-major"),
        grad.as_slice_mut()
            .expect("row-major, made unique on write"),
        &row_major(lambd.view()),
        layout,
        estimator,
    );
    let grad_lambd = sums.into_iter().map(E::from_f64).collect();
    (
        E::wrap(grad),
        E::wrap(into_shared(lambd.shape(), grad_lambd)),
    )
}
