//! The backend extension: one forward and one backward op, implemented per backend.
//!
//! [`HardshrinkBackend`] is a Burn backend extension. Its default bodies are written with
//! Burn's primitive tensor ops, so any backend can opt in with an empty `impl`; the backends
//! below override them with one-pass kernels:
//!
//! - [`ndarray`](self::ndarray) and [`flex`](self::flex): the CPU kernels of
//!   [`crate::kernels`], in place when the input buffer is uniquely owned.
//! - `cube` (features `wgpu`, `vulkan`, `metal`, `cuda`): CubeCL kernels for every GPU runtime
//!   without fusion. Under Burn's fusion (feature `fusion`, Burn's default) the default bodies
//!   run instead, so that fusion can merge them with their neighbours: forward + backward took
//!   12-30% less time than with one opaque kernel launch on wgpu (BENCHMARKS.md, "GPU"; the
//!   numbers also sit next to the `#[fusion(default)]` attributes below).
//! - [`autodiff`](self::autodiff): a backward node that keeps only the forward's output.

// The `NdArray` selector names a backend Burn deprecates in favour of Flex; it is still supported.
#![allow(deprecated)]

#[cfg(feature = "cube")]
pub mod cube;
#[cfg(feature = "flex")]
pub mod flex;
#[cfg(feature = "ndarray")]
pub mod ndarray;

pub mod autodiff;
mod learned;

pub use learned::LearnedHardshrinkBackend;

use crate::kernels::rounded_limit;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata, backend_extension, get_or_init_device_settings};
use burn::tensor::DType;

/// Hardshrink as a Burn backend extension: the forward and its backward.
///
/// Call it through [`crate::hardshrink`], which routes to the tensor's backend; call the trait
/// directly (`<Dispatch as HardshrinkBackend>::hardshrink(x.into_dispatch(), 0.5)`) to work on
/// primitives.
///
/// Implemented for NdArray and Flex (features `ndarray`, `flex`), for Burn's unfused GPU backend
/// `CubeBackend` (features `wgpu`, `vulkan`, `metal`, `cuda`), for `Fusion` over it with the
/// default bodies (feature `fusion`), and for `Autodiff` over all of them. Another crate can
/// implement it for its own backend. The kernels decide on bit patterns; the default bodies
/// compose Burn's float ops, exact for every float dtype wherever the device compares floats
/// as IEEE 754 says (NaN unordered, subnormals kept): checked against every PyTorch fixture on
/// the CPU and on wgpu through lavapipe.
///
/// ```
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use burn_hardshrink::HardshrinkBackend;
///
/// let x = Tensor::<1>::from_floats([-1.0, 0.25, 2.0], &Device::flex());
/// let y = <Dispatch as HardshrinkBackend>::hardshrink(x.into_dispatch(), 0.5);
/// let y = Tensor::<1>::from_dispatch(y);
/// assert_eq!(y.to_data().try_to_vec::<f32>().unwrap(), vec![-1.0, 0.0, 2.0]);
/// ```
#[backend_extension(
    NdArray: cfg(feature = "ndarray"),
    Flex: cfg(feature = "flex"),
    Cube: cfg(feature = "cube"),
    Fusion: cfg(feature = "fusion"),
    Autodiff,
)]
pub trait HardshrinkBackend: Backend {
    /// `y = x` where `|x| > λ`, `+0` where `-λ <= x <= λ`; NaN passes; λ is rounded to the
    /// tensor's dtype first, and a negative or NaN λ makes the op the identity.
    // Under fusion this default body runs, not the CubeCL kernel: its three primitive ops fuse
    // into one kernel with their neighbours, where the kernel would be an opaque launch and a
    // fusion barrier. Measured on wgpu (lavapipe, BENCHMARKS.md "GPU", two runs), ours /
    // built-in with the opaque kernel: forward+backward 1.17-1.25 (1M) and 1.14-1.19 (16M),
    // forward 1.00-1.01; with this body: 0.94-1.00 and 0.99-1.00, forward 0.97-0.99. The
    // Linear → Hardshrink → Linear step was within noise either way (0.99-1.01).
    #[fusion(default)]
    fn hardshrink(x: FloatTensor<Self>, lambd: f64) -> FloatTensor<Self> {
        let Some(limit) = limit_or_panic::<Self>(lambd, &x) else {
            return x;
        };
        let bool_dtype = get_or_init_device_settings::<Self>(&x.device()).bool_dtype;
        let magnitude = Self::float_abs(x.clone());
        let inside = Self::float_lower_equal_elem(magnitude, limit.into(), bool_dtype);
        Self::float_mask_fill(x, inside, 0f32.into())
    }

    /// The backward from the forward's output, valid for a λ that is not the identity:
    /// `grad_in = grad_out` where `output != 0` (NaN included), `+0` elsewhere.
    ///
    /// For λ ≥ 0 the output is non-zero exactly outside the band, so the output alone decides
    /// the mask and a backward needs neither the input nor a boolean mask.
    // Fusable for the same reason as the forward (see there).
    #[fusion(default)]
    fn hardshrink_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let bool_dtype = get_or_init_device_settings::<Self>(&output.device()).bool_dtype;
        let dead = Self::float_equal_elem(output, 0f32.into(), bool_dtype);
        Self::float_mask_fill(grad, dead, 0f32.into())
    }
}

/// The backend's name for error messages.
pub(crate) fn backend_name<B: Backend>() -> &'static str {
    let name = core::any::type_name::<B>();
    if name.contains("NdArray") {
        "NdArray"
    } else if name.contains("Flex") {
        "Flex"
    } else if name.contains("Cube") {
        "CubeCL"
    } else {
        name
    }
}

/// Panics with the crate's error for a dtype backend `B` cannot shrink, naming the backend and
/// the dtypes it can (`supported`).
pub(crate) fn unsupported_dtype<B: Backend>(dtype: DType, supported: &'static str) -> ! {
    panic!(
        "{}",
        crate::HardshrinkError::UnsupportedDType {
            dtype,
            backend: backend_name::<B>().to_string(),
            supported,
        }
    )
}

/// [`rounded_limit`] for a primitive, panicking with the crate's error for a non-float dtype.
fn limit_or_panic<B: Backend>(lambd: f64, x: &FloatTensor<B>) -> Option<f64> {
    let dtype = x.dtype();
    rounded_limit(lambd, dtype)
        .unwrap_or_else(|()| unsupported_dtype::<B>(dtype, "f32, f64, f16 and bf16"))
}
