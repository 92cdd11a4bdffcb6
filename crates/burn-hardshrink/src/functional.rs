//! The functional op: `hardshrink(x, λ)` on any tensor, on any device.

use crate::HardshrinkError;
use crate::kernels::{ThresholdEstimator, rounded_limit};
use crate::ops::{HardshrinkBackend, LearnedHardshrinkBackend};
use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::{DType, Device, Tensor};

/// Applies Hardshrink element-wise, exactly as PyTorch's `torch.nn.functional.hardshrink`.
///
/// ```text
/// hardshrink(x, λ) = +0  if -λ <= x <= λ
///                  = x   otherwise
/// ```
///
/// The band is closed (`|x| == λ` gives `+0`) and gives `+0`, never `-0`; NaN passes; λ is
/// rounded to the tensor's dtype before comparing. A negative or NaN λ is the identity and
/// `λ = +inf` zeroes every non-NaN value. Every λ PyTorch accepts is accepted.
///
/// On NdArray and Flex this runs a one-pass kernel, in place when `x` is moved in, its buffer
/// is not shared and its elements fill the buffer (a contiguous, transposed or, on Flex, flipped
/// or broadcast view); other views get a fresh buffer. With autodiff the backward keeps only the
/// output. Burn's GPU backend runs a CubeCL kernel without fusion and, under fusion (Burn's
/// default), the same composition of Burn's primitive ops that other backends get, which
/// fusion merges with its neighbours.
///
/// # Panics
///
/// With a message naming the dtype and the backend, when the backend cannot hold the dtype;
/// [`try_hardshrink`] returns that error instead.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_hardshrink::hardshrink;
///
/// let x = Tensor::<1>::from_floats([-1.0, -0.5, 0.2, 0.5, 0.7], &Device::flex());
/// let y = hardshrink(x, 0.5);
/// assert_eq!(y.to_data().try_to_vec::<f32>().unwrap(), vec![-1.0, 0.0, 0.0, 0.0, 0.7]);
/// ```
pub fn hardshrink<const D: usize>(x: Tensor<D>, lambd: f64) -> Tensor<D> {
    try_hardshrink(x, lambd).unwrap_or_else(|error| panic!("{error}"))
}

/// [`hardshrink`], returning an error instead of panicking for a dtype the backend cannot hold.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_hardshrink::try_hardshrink;
///
/// let x = Tensor::<2>::from_floats([[2.0, 0.1]], &Device::ndarray());
/// let y = try_hardshrink(x, 0.5).unwrap();
/// assert_eq!(y.to_data().try_to_vec::<f32>().unwrap(), vec![2.0, 0.0]);
/// ```
pub fn try_hardshrink<const D: usize>(
    x: Tensor<D>,
    lambd: f64,
) -> Result<Tensor<D>, HardshrinkError> {
    let device = x.device();
    let route = Route::of(&device);
    check_dtype(x.dtype(), route, &device)?;
    Ok(match route {
        Route::Kernel(_) => Tensor::from_dispatch(<Dispatch as HardshrinkBackend>::hardshrink(
            x.into_dispatch(),
            lambd,
        )),
        Route::Composed => hardshrink_composed(x, lambd),
    })
}

/// The route name of Burn's CubeCL backend (every GPU runtime).
const CUBE: &str = "CubeCL";

/// Where a device's tensors go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// A backend this crate has a kernel for (named, for errors).
    Kernel(&'static str),
    /// Any other backend: Burn's primitive ops.
    Composed,
}

impl Route {
    fn of(device: &Device) -> Self {
        Self::of_dispatch(device.as_dispatch())
    }

    #[allow(unreachable_patterns)] // which arms exist depends on the enabled backends
    fn of_dispatch(device: &DispatchDevice) -> Self {
        match device {
            #[cfg(feature = "ndarray")]
            DispatchDevice::NdArray(_) => Route::Kernel("NdArray"),
            #[cfg(feature = "flex")]
            DispatchDevice::Flex(_) => Route::Kernel("Flex"),
            #[cfg(feature = "cube")]
            DispatchDevice::Cube(_) => Route::Kernel(CUBE),
            DispatchDevice::Autodiff(inner) => Self::of_dispatch(inner),
            _ => Route::Composed,
        }
    }
}

fn check_dtype(dtype: DType, route: Route, device: &Device) -> Result<(), HardshrinkError> {
    let (backend, supported, ok) = match route {
        Route::Kernel("NdArray") => (
            "NdArray".to_string(),
            "f32 and f64",
            matches!(dtype, DType::F32 | DType::F64),
        ),
        Route::Kernel(CUBE) => (
            format!("{CUBE} ({:?})", device.as_dispatch()),
            "f32, f16, f64 and bf16, each where the device supports it",
            matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
                && device.supports_dtype(dtype),
        ),
        Route::Kernel(name) => (
            name.to_string(),
            "f32, f64, f16 and bf16",
            matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16),
        ),
        Route::Composed => (
            format!("{:?}", device.as_dispatch()),
            "f32, f64, f16 and bf16",
            rounded_limit(0.0, dtype).is_ok(),
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(HardshrinkError::UnsupportedDType {
            dtype,
            backend,
            supported,
        })
    }
}

/// Hardshrink written with Burn's tensor ops (`abs`, `lower_equal_elem`, `mask_fill`): what
/// backends without a kernel run, exact like the kernels (λ is rounded to the dtype first).
///
/// Its gradient is Burn's own (which keeps a boolean mask); [`hardshrink`] on a fused GPU backend
/// runs the same three ops forward but keeps only its output for the backward. The benchmarks
/// compare the two.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_hardshrink::{hardshrink, hardshrink_composed};
///
/// let x = Tensor::<1>::from_floats([-0.7, 0.5, 0.1], &Device::flex());
/// assert_eq!(
///     hardshrink_composed(x.clone(), 0.5).into_data(),
///     hardshrink(x, 0.5).into_data()
/// );
/// ```
pub fn hardshrink_composed<const D: usize>(x: Tensor<D>, lambd: f64) -> Tensor<D> {
    match rounded_limit(lambd, x.dtype()) {
        Ok(Some(limit)) => {
            let inside = x.clone().abs().lower_equal_elem(limit);
            x.mask_fill(inside, 0.0)
        }
        _ => x,
    }
}

/// Hardshrink with a threshold tensor: `lambd[f]` for the elements of feature `f` along `dim`,
/// or one threshold (`lambd` of shape `[1]`, `dim = None`). The forward and the x-gradient are
/// exactly [`hardshrink`]'s with each feature's λ; the gradient reaching `lambd` is the
/// `estimator`'s pseudo-gradient. `lambd` is cast to `x`'s dtype.
///
/// [`LearnedHardshrink`](crate::LearnedHardshrink) wraps this with a trained, positive λ.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_hardshrink::{ThresholdEstimator, learned_hardshrink};
///
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[0.3, 0.3], [-0.9, -0.9]], &device);
/// let lambd = Tensor::<1>::from_floats([0.2, 1.0], &device); // one per column
/// let y = learned_hardshrink(x, lambd, Some(1), ThresholdEstimator::StraightThrough);
/// assert_eq!(y.to_data().try_to_vec::<f32>().unwrap(), vec![0.3, 0.0, -0.9, 0.0]);
/// ```
///
/// # Panics
///
/// When `dim` is out of range, `lambd`'s length is not `x.dims()[dim]` (or 1 for
/// `dim = None`), a kernel bandwidth is not a positive number, or for a dtype the backend cannot
/// hold.
pub fn learned_hardshrink<const D: usize>(
    x: Tensor<D>,
    lambd: Tensor<1>,
    dim: Option<usize>,
    estimator: ThresholdEstimator,
) -> Tensor<D> {
    if let Some(d) = dim {
        assert!(
            d < D,
            "learned_hardshrink: dim {d} is out of range for a rank-{D} input"
        );
    }
    if let Err(error) = estimator.validate() {
        panic!("{error}");
    }
    let features = dim.map_or(1, |d| x.dims()[d]);
    assert_eq!(
        lambd.dims()[0],
        features,
        "learned_hardshrink: {} thresholds for {features} features along {dim:?}",
        lambd.dims()[0]
    );
    let device = x.device();
    let route = Route::of(&device);
    if let Err(error) = check_dtype(x.dtype(), route, &device) {
        panic!("{error}");
    }
    let lambd = lambd.cast(x.dtype());
    match route {
        // The learned op has CPU kernels only; on the GPU it is the composition.
        Route::Kernel(CUBE) | Route::Composed => {
            learned_hardshrink_composed(x, lambd, dim, estimator)
        }
        Route::Kernel(_) => {
            Tensor::from_dispatch(<Dispatch as LearnedHardshrinkBackend>::learned_hardshrink(
                x.into_dispatch(),
                lambd.into_dispatch(),
                dim,
                estimator,
            ))
        }
    }
}

/// [`learned_hardshrink`] written with Burn's tensor ops only: what backends without a kernel
/// run, and the baseline the kernels are benchmarked against.
///
/// The forward is a masked fill (exact); the threshold's pseudo-gradient enters through a term
/// whose value is zero, `coefficient · (λ - detach(λ))`, so autodiff hands λ
/// `Σ coefficient · grad`. `lambd` must already have `x`'s dtype.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_hardshrink::{ThresholdEstimator, learned_hardshrink_composed};
///
/// let device = Device::flex();
/// let x = Tensor::<1>::from_floats([0.3, -2.0], &device);
/// let lambd = Tensor::<1>::from_floats([0.5], &device);
/// let y = learned_hardshrink_composed(x, lambd, None, ThresholdEstimator::StraightThrough);
/// assert_eq!(y.to_data().try_to_vec::<f32>().unwrap(), vec![0.0, -2.0]);
/// ```
pub fn learned_hardshrink_composed<const D: usize>(
    x: Tensor<D>,
    lambd: Tensor<1>,
    dim: Option<usize>,
    estimator: ThresholdEstimator,
) -> Tensor<D> {
    let mut shape = [1usize; D];
    if let Some(dim) = dim {
        shape[dim] = x.dims()[dim];
    }
    let lambd: Tensor<D> = lambd.reshape(shape);
    let fixed = lambd.clone().detach().expand(x.shape());
    let value = x.clone().detach();
    let magnitude = value.clone().abs();
    let inside = x.clone().abs().lower_equal(fixed.clone());
    let y = x.mask_fill(inside, 0.0);
    // -sign(x), zero at ±0 and NaN.
    let unknown = value.clone().is_nan();
    let minus_sign = value.sign().neg().mask_fill(unknown, 0.0);
    let coefficient = match estimator {
        ThresholdEstimator::StraightThrough => {
            let kept = magnitude.clone().greater(fixed);
            minus_sign.mask_fill(kept.bool_not(), 0.0)
        }
        ThresholdEstimator::Kernel { bandwidth } => {
            let window = (magnitude - fixed.clone())
                .abs()
                .lower_elem(bandwidth / 2.0);
            (minus_sign * fixed / bandwidth).mask_fill(window.bool_not(), 0.0)
        }
    };
    // λ - detach(λ) is NaN for an infinite or NaN λ; its value must stay zero.
    let zero = lambd.clone() - lambd.detach();
    let zero = zero.clone().mask_fill(zero.is_nan(), 0.0);
    y + coefficient * zero
}
