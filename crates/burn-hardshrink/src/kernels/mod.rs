//! Backend-independent CPU kernels over contiguous buffers.
//!
//! The NdArray and Flex ops reduce every layout to one of these calls: a contiguous slice in,
//! the same slice or a new vector out (`*_new`: written once, never zeroed first, on huge pages
//! when large), one pass, no per-element branch, at the widest SIMD level the CPU has
//! ([`SimdLevel`]). They are public so that other CPU backends can reuse them.
//!
//! ```
//! use burn_hardshrink::kernels::{Band, forward_in_place};
//!
//! let mut x = [-1.0f32, -0.5, -0.0, 0.25, 0.5, 0.75, f32::NAN];
//! forward_in_place(&mut x, Band::of::<f32>(0.5));
//! assert_eq!(&x[..6], &[-1.0, 0.0, 0.0, 0.0, 0.0, 0.75]);
//! assert!(x[2].is_sign_positive() && x[6].is_nan());
//! ```

mod buffer;
mod element;
mod learned;
mod simd;
mod slice;

pub use element::{BitLane, PartialSum, ShrinkElement};
pub use learned::{
    FeatureLayout, learned_backward_in_place, learned_forward_in_place, learned_forward_new,
};
pub use simd::{SIMD_ENV, SimdLevel};
pub use slice::{
    Band, PARALLEL_THRESHOLD, backward_in_place, backward_new, backward_one, forward_in_place,
    forward_new, forward_one,
};
