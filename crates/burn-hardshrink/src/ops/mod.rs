//! The backend extensions: the fixed op's forward and backward ([`HardshrinkBackend`]) and the
//! learned-threshold op's ([`LearnedHardshrinkBackend`], in `learned`), implemented per backend.
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
//!   numbers also sit next to the `#[fusion(default)]` attributes below). The learned-threshold
//!   kernels (`cube/learned.rs`) run fused or not: under fusion they are one opaque operation
//!   each way, which measured faster than the fusable composition (see the
//!   `LearnedHardshrinkBackend` trait).
//! - [`autodiff`](self::autodiff): a backward node that keeps only the forward's output.

// The `NdArray` selector names a backend Burn deprecates in favour of Flex; it is still supported.
#![allow(deprecated)]

/// `per_dtype!(dtype, [F32, F64], |E| body, fallback)`: `body` with the type `E` bound to the
/// element type of `dtype` among the listed ones, `fallback(dtype)` for any other. The CPU
/// forwards write their body inside it, so that from `Hardshrink::forward` the data is four
/// calls away: `try_hardshrink`, the `Dispatch` impl `#[backend_extension]` generates, the
/// backend's impl, the slice kernel.
#[cfg(any(feature = "flex", feature = "ndarray"))]
macro_rules! per_dtype {
    ($dtype:expr, [$($variant:ident),+], |$E:ident| $body:expr, $fallback:expr) => {
        match $dtype {
            $(burn::tensor::DType::$variant => {
                type $E = per_dtype!(@type $variant);
                $body
            })+
            other => $fallback(other),
        }
    };
    (@type F32) => { f32 };
    (@type F64) => { f64 };
    (@type F16) => { burn::tensor::f16 };
    (@type BF16) => { burn::tensor::bf16 };
}

#[cfg(feature = "cube")]
mod cube;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "ndarray")]
mod ndarray;

mod autodiff;
mod learned;

pub use learned::LearnedHardshrinkBackend;

use crate::kernels::rounded_limit;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Backend, DispatchDevice, TensorMetadata, backend_extension, get_or_init_device_settings,
};
use burn::tensor::{DType, Device};

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
        composed::<Self>(x, lambd)
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

/// The float dtypes the op is defined on: what the composed ops (any backend) take.
pub(crate) const FLOATS: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::BF16];

/// A backend with this crate's kernels: the route [`crate::hardshrink`] takes, and the one table
/// of the dtypes each backend's kernels take, which every check and error reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KernelBackend {
    /// Burn's NdArray CPU backend.
    #[cfg(feature = "ndarray")]
    NdArray,
    /// Burn's Flex CPU backend.
    #[cfg(feature = "flex")]
    Flex,
    /// Burn's CubeCL backend, every GPU runtime.
    #[cfg(feature = "cube")]
    Cube,
}

impl KernelBackend {
    /// The backend a device's tensors live on, when it is one with kernels here (`None`: the
    /// composed ops).
    #[allow(unreachable_patterns)] // which arms exist depends on the enabled backends
    pub(crate) fn of(device: &DispatchDevice) -> Option<Self> {
        match device {
            #[cfg(feature = "ndarray")]
            DispatchDevice::NdArray(_) => Some(Self::NdArray),
            #[cfg(feature = "flex")]
            DispatchDevice::Flex(_) => Some(Self::Flex),
            #[cfg(feature = "cube")]
            DispatchDevice::Cube(_) => Some(Self::Cube),
            DispatchDevice::Autodiff(inner) => Self::of(inner),
            _ => None,
        }
    }

    /// The backend's name in errors.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "ndarray")]
            Self::NdArray => "NdArray",
            #[cfg(feature = "flex")]
            Self::Flex => "Flex",
            #[cfg(feature = "cube")]
            Self::Cube => "CubeCL",
        }
    }

    /// The dtypes its kernels take.
    pub(crate) const fn dtypes(self) -> &'static [DType] {
        match self {
            #[cfg(feature = "ndarray")]
            Self::NdArray => &[DType::F32, DType::F64],
            #[cfg(feature = "flex")]
            Self::Flex => FLOATS,
            #[cfg(feature = "cube")]
            Self::Cube => FLOATS,
        }
    }

    /// The dtypes its kernels take on `device`: [`dtypes`](Self::dtypes), and on a GPU only
    /// those the device supports.
    pub(crate) fn held(self, device: &Device) -> Vec<DType> {
        let on_device = |dtype: DType| {
            #[cfg(feature = "cube")]
            if self == Self::Cube {
                return device.supports_dtype(dtype);
            }
            #[cfg(not(feature = "cube"))]
            let _ = (device, dtype);
            true
        };
        self.dtypes()
            .iter()
            .copied()
            .filter(|&dtype| on_device(dtype))
            .collect()
    }

    /// Panics with the crate's error for a dtype its kernels do not take.
    pub(crate) fn unsupported(self, dtype: DType) -> ! {
        unsupported(dtype, self.name().to_string(), self.dtypes().to_vec())
    }
}

/// Panics with the crate's error for `dtype` on `backend`, which holds `supported`.
pub(crate) fn unsupported(dtype: DType, backend: String, supported: Vec<DType>) -> ! {
    panic!(
        "{}",
        crate::HardshrinkError::UnsupportedDType {
            dtype,
            backend,
            supported,
        }
    )
}

/// The forward as Burn's primitive ops, on any backend: the default body, and what
/// [`crate::hardshrink`] runs on a backend without kernels (through `Dispatch`).
pub(crate) fn composed<B: Backend>(x: FloatTensor<B>, lambd: f64) -> FloatTensor<B> {
    let Some(limit) = limit_or_panic::<B>(lambd, &x) else {
        return x;
    };
    let bool_dtype = get_or_init_device_settings::<B>(&x.device()).bool_dtype;
    let magnitude = B::float_abs(x.clone());
    let inside = B::float_lower_equal_elem(magnitude, limit.into(), bool_dtype);
    B::float_mask_fill(x, inside, 0f32.into())
}

/// λ's limit for a primitive of any backend (the default bodies), panicking with the crate's
/// error for a dtype outside [`FLOATS`].
fn limit_or_panic<B: Backend>(lambd: f64, x: &FloatTensor<B>) -> Option<f64> {
    let dtype = x.dtype();
    if !FLOATS.contains(&dtype) {
        unsupported(
            dtype,
            core::any::type_name::<B>().to_string(),
            FLOATS.to_vec(),
        );
    }
    rounded_limit(lambd, dtype)
}
