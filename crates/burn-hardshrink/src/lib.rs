#![warn(missing_docs)]
//! # burn-hardshrink
//!
//! PyTorch's `nn.Hardshrink` for Burn 0.22, exact to the bit:
//!
//! ```text
//! hardshrink(x, λ) = +0  if -λ <= x <= λ
//!                  = x   otherwise          (λ = 0.5 by default)
//! ```
//!
//! - [`hardshrink`] / [`try_hardshrink`]: the functional op, on any tensor and device;
//!   [`supports_dtype`] says which dtypes a device takes.
//! - [`Hardshrink`] / [`HardshrinkConfig`]: the module, a drop-in for Burn's
//!   [`HardShrink`](burn::nn::HardShrink) (`.into()` converts either way).
//! - [`LearnedHardshrink`] / [`LearnedHardshrinkConfig`]: a trainable threshold, one or one
//!   per feature, with a choice of [`ThresholdEstimator`] for its pseudo-gradient.
//! - [`HardshrinkBackend`], [`LearnedHardshrinkBackend`]: the backend extensions with the
//!   forward and backward ops.
//! - [`DeviceName`] / [`device_from_name`]: a device from a name such as `cpu` or `ndarray`, for
//!   command lines and config files.
//!
//! The band is closed and gives `+0`; NaN passes forward and passes its gradient backward; λ is
//! rounded to the tensor's dtype before comparing, and λ < 0 is the identity.
//!
//! ```
//! use burn::prelude::*;
//! use burn::nn::{Linear, LinearConfig};
//! use burn_hardshrink::{Hardshrink, HardshrinkConfig};
//!
//! #[derive(Module, Debug)]
//! struct Net {
//!     hidden: Linear,
//!     act: Hardshrink,
//! }
//!
//! let device = Device::flex(); // or Device::ndarray(), with `.autodiff()` for training
//! let net = Net {
//!     hidden: LinearConfig::new(4, 8).init(&device),
//!     act: HardshrinkConfig::new().init(),
//! };
//! let y = net.act.forward(net.hidden.forward(Tensor::<2>::ones([2, 4], &device)));
//! assert_eq!(y.dims(), [2, 8]);
//! ```
//!
//! ## Features
//!
//! - `flex`, `ndarray` (default): the CPU backends with kernels. Other backends the
//!   application enables get an exact composition of Burn's primitive ops.
//! - `parallel` (default): split large tensors across cores with rayon.

//! - `fusion` (default): Burn's kernel fusion, which Burn's default features turn on for the
//!   GPU; under it the op is written with fusable primitive ops, which fusion merges with their
//!   neighbours. Keep it whenever `burn` has its default features: without it, Burn's fused GPU
//!   backend has no implementation and the build fails. For an unfused GPU backend turn default
//!   features off on both crates; the fixed op runs the same primitive ops there. The
//!   learned-threshold op runs its CubeCL kernels fused or not (one opaque operation each way
//!   under fusion). BENCHMARKS.md, "GPU", has the measurements behind both choices.
//! - `onnx-import`, `onnx-export`: ONNX in (for a build script running burn-onnx) and out; see
//!   the `onnx` module, which they turn on.
//! - `wgpu`, `vulkan`, `metal`, `cuda`: CubeCL kernels for Burn's GPU backend, and
//!   [`device_from_name`] opens those devices.
//!
//! On x86-64 the CPU kernels run at the widest vector level the processor has (AVX-512, AVX2 or
//! the build's SSE2), chosen once at run time, with the same bits at every level;
//! `BURN_HARDSHRINK_SIMD=portable|avx2|avx512` forces a lower one.

#[macro_use]
mod dtype;
mod device;
mod error;
mod estimator;
mod functional;
// Public for the benchmarks and for other CPU backends' crates, not part of the documented API.
#[doc(hidden)]
pub mod kernels;
mod module;
#[cfg(any(feature = "onnx-import", feature = "onnx-export"))]
pub mod onnx;
mod ops;

pub use device::{DeviceError, DeviceName, available_devices, device_from_name};
pub use error::HardshrinkError;
pub use estimator::ThresholdEstimator;
pub use functional::{hardshrink, learned_hardshrink, supports_dtype, try_hardshrink};
#[doc(hidden)]
pub use functional::{hardshrink_composed, learned_hardshrink_composed};
pub use module::{Hardshrink, HardshrinkConfig, LearnedHardshrink, LearnedHardshrinkConfig};
pub use ops::{HardshrinkBackend, LearnedHardshrinkBackend};
