//! The element types the CPU kernels handle, seen through their IEEE bit patterns.
//!
//! Hardshrink only ever compares `|x|` against λ and keeps or zeroes a value, so every kernel can
//! work on the raw bits: clearing the sign bit gives `|x|`, and for non-negative floats (NaN
//! included) the integer order of the bits is the float order. That keeps f16 and bf16 in their
//! own width (no round trip through f32) and gives the compiler plain integer lanes to vectorise.

use burn::tensor::{DType, bf16, f16};

/// A float type the CPU kernels run on, with the unsigned integer type of the same width.
pub trait ShrinkElement: burn::tensor::Element + bytemuck::Pod {
    /// The unsigned integer holding the bit pattern.
    type Lane: BitLane;
    /// The Burn dtype of this element type.
    const DTYPE: DType;

    /// λ rounded to this type (round to nearest, ties to even), as PyTorch does before comparing.
    fn round_lambda(lambd: f64) -> Self;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
    /// Whether the value is strictly below zero (`-0.0` is not).
    fn is_negative(self) -> bool;
    /// The bit pattern.
    fn to_bits(self) -> Self::Lane;
    /// The value of a bit pattern.
    fn from_bits(bits: Self::Lane) -> Self;
    /// The value widened to f64 (exact).
    fn to_f64(self) -> f64;
    /// An f64 rounded to this type (nearest, ties to even).
    fn from_f64(value: f64) -> Self {
        Self::round_lambda(value)
    }
}

/// The integer lanes the kernels compute on.
pub trait BitLane: Copy + Send + Sync + Eq + Ord + 'static + bytemuck::Pod {
    /// Every bit except the sign bit.
    const MAGNITUDE: Self;
    /// Zero.
    const ZERO: Self;
    /// All bits set. As a limit it keeps every value: the identity band.
    const ALL: Self;
    /// All ones where `keep` is true, zero otherwise (no branch).
    fn mask(keep: bool) -> Self;
    /// Whether the magnitude bits of `self` exceed `limit` (a magnitude, sign bit clear).
    ///
    /// Both sides have the sign bit clear, so a signed compare gives the same answer as an
    /// unsigned one; x86 has packed signed compares only, so this keeps the loop vectorised.
    fn magnitude_above(self, limit: Self) -> bool;
    /// Bitwise and.
    fn and(self, other: Self) -> Self;
}

macro_rules! bit_lane {
    ($bits:ty, $signed:ty, $magnitude:expr) => {
        impl BitLane for $bits {
            const MAGNITUDE: Self = $magnitude;
            const ZERO: Self = 0;
            const ALL: Self = <$bits>::MAX;
            #[inline(always)]
            fn mask(keep: bool) -> Self {
                (keep as $bits).wrapping_neg()
            }
            #[inline(always)]
            fn magnitude_above(self, limit: Self) -> bool {
                (self & $magnitude) as $signed > limit as $signed
            }
            #[inline(always)]
            fn and(self, other: Self) -> Self {
                self & other
            }
        }
    };
}

bit_lane!(u16, i16, 0x7fff);
bit_lane!(u32, i32, 0x7fff_ffff);
bit_lane!(u64, i64, 0x7fff_ffff_ffff_ffff);

impl ShrinkElement for f32 {
    type Lane = u32;
    const DTYPE: DType = DType::F32;
    fn round_lambda(lambd: f64) -> Self {
        // `as` rounds to nearest, ties to even, and saturates to ±inf.
        lambd as f32
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn is_negative(self) -> bool {
        self < 0.0
    }
    fn to_bits(self) -> u32 {
        f32::to_bits(self)
    }
    fn from_bits(bits: u32) -> Self {
        f32::from_bits(bits)
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl ShrinkElement for f64 {
    type Lane = u64;
    const DTYPE: DType = DType::F64;
    fn round_lambda(lambd: f64) -> Self {
        lambd
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn is_negative(self) -> bool {
        self < 0.0
    }
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// f16 and bf16: λ is rounded straight from f64 (no intermediate f32, which could round twice).
macro_rules! half_element {
    ($half:ident, $dtype:expr) => {
        impl ShrinkElement for $half {
            type Lane = u16;
            const DTYPE: DType = $dtype;
            fn round_lambda(lambd: f64) -> Self {
                $half::from_f64(lambd)
            }
            fn is_nan(self) -> bool {
                $half::is_nan(self)
            }
            fn is_negative(self) -> bool {
                self.to_f32() < 0.0
            }
            fn to_bits(self) -> u16 {
                $half::to_bits(self)
            }
            fn from_bits(bits: u16) -> Self {
                $half::from_bits(bits)
            }
            fn to_f64(self) -> f64 {
                $half::to_f64(self)
            }
        }
    };
}

half_element!(f16, DType::F16);
half_element!(bf16, DType::BF16);

/// λ rounded to `dtype` and returned as an `f64` (exactly, since every value of the smaller
/// float types is an `f64`), with its sign cleared; `None` when the op is the identity for this
/// dtype (λ rounded is negative or NaN); `Err(())` for a dtype that is not a float this crate
/// handles.
///
/// The rounding is per dtype: `lambd = -1e-300` is the identity on f64, but rounds to `-0.0` on
/// f32, where the band `[-0, 0]` is closed and zeroes `±0`.
#[allow(clippy::result_unit_err)]
pub fn rounded_limit(lambd: f64, dtype: DType) -> Result<Option<f64>, ()> {
    fn limit<E: ShrinkElement>(lambd: f64, widen: impl Fn(E) -> f64) -> Option<f64> {
        let rounded = E::round_lambda(lambd);
        (!rounded.is_nan() && !rounded.is_negative()).then(|| widen(rounded).abs())
    }
    match dtype {
        DType::F64 => Ok(limit::<f64>(lambd, |l| l)),
        DType::F32 | DType::Flex32 => Ok(limit::<f32>(lambd, f64::from)),
        DType::F16 => Ok(limit::<f16>(lambd, f64::from)),
        DType::BF16 => Ok(limit::<bf16>(lambd, f64::from)),
        _ => Err(()),
    }
}
