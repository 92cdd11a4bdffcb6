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
    /// The float that holds every value of this type exactly, at the width of this type or of
    /// f32, whichever is wider: the straight-through threshold gradient is summed in it over
    /// a few rows before f64 takes over.
    type Partial: PartialSum;

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
    /// The value in its [`Partial`](ShrinkElement::Partial) type (exact).
    fn to_partial(self) -> Self::Partial;
    /// An f64 rounded to this type (nearest, ties to even).
    fn from_f64(value: f64) -> Self {
        Self::round_lambda(value)
    }
}

/// The float arithmetic of a short partial sum (f32 or f64).
pub trait PartialSum:
    Copy
    + Send
    + Sync
    + PartialOrd
    + 'static
    + core::ops::Add<Output = Self>
    + core::ops::Mul<Output = Self>
    + core::ops::Neg<Output = Self>
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Its Burn dtype.
    const DTYPE: DType;
    /// The value widened to f64 (exact).
    fn to_f64(self) -> f64;
}

impl PartialSum for f32 {
    const DTYPE: DType = DType::F32;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl PartialSum for f64 {
    const DTYPE: DType = DType::F64;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
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
    /// Whether the magnitude bits of `self` exceed `limit`, both read as signed integers.
    ///
    /// The magnitude has its sign bit clear, so for a magnitude `limit` this is the float order;
    /// `limit = ALL` reads as -1 and keeps every value (the identity band), which the learned
    /// kernels rely on. x86 has packed signed compares only, so this keeps loops vectorised.
    fn magnitude_above(self, limit: Self) -> bool;
    /// Whether the magnitude bits of `self` lie in `[low, high]` (magnitudes, compared as
    /// signed integers like [`magnitude_above`](Self::magnitude_above)); never when `low > high`.
    fn magnitude_within(self, low: Self, high: Self) -> bool;
    /// Bitwise and.
    fn and(self, other: Self) -> Self;
    /// Bitwise or.
    fn or(self, other: Self) -> Self;
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
            fn magnitude_within(self, low: Self, high: Self) -> bool {
                let magnitude = (self & $magnitude) as $signed;
                (magnitude >= low as $signed) & (magnitude <= high as $signed)
            }
            #[inline(always)]
            fn and(self, other: Self) -> Self {
                self & other
            }
            #[inline(always)]
            fn or(self, other: Self) -> Self {
                self | other
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
    type Partial = f32;
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
    fn to_partial(self) -> f32 {
        self
    }
}

impl ShrinkElement for f64 {
    type Lane = u64;
    const DTYPE: DType = DType::F64;
    type Partial = f64;
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
    fn to_partial(self) -> f64 {
        self
    }
}

/// f16 and bf16. λ is rounded straight from f64: through f32 it could round twice, and
/// `half`'s own conversion drops the low 32 mantissa bits first, so it can turn a value just
/// above a halfway point into a tie. `$overflow` is the smallest magnitude that rounds to inf.
macro_rules! half_element {
    ($half:ident, $dtype:expr, $overflow:expr) => {
        impl ShrinkElement for $half {
            type Lane = u16;
            const DTYPE: DType = $dtype;
            type Partial = f32;
            fn round_lambda(lambd: f64) -> Self {
                if lambd.is_nan() {
                    return $half::NAN;
                }
                let magnitude = lambd.abs();
                let rounded = if magnitude >= $overflow {
                    $half::INFINITY.to_bits()
                } else {
                    // `from_f64` is within one unit of the answer: pick the nearest of its
                    // neighbours exactly (the differences are exact in f64), ties to even.
                    let guess = $half::from_f64(magnitude).to_bits();
                    let finite = $half::INFINITY.to_bits();
                    [guess.wrapping_sub(1), guess, guess + 1]
                        .into_iter()
                        .filter(|&bits| bits < finite)
                        .min_by(|&a, &b| {
                            let distance =
                                |bits| (magnitude - $half::from_bits(bits).to_f64()).abs();
                            distance(a)
                                .total_cmp(&distance(b))
                                .then((a & 1).cmp(&(b & 1)))
                        })
                        .expect("the guess or a neighbour is finite")
                };
                let sign = if lambd.is_sign_negative() { 0x8000 } else { 0 };
                $half::from_bits(rounded | sign)
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
            fn to_partial(self) -> f32 {
                $half::to_f32(self)
            }
        }
    };
}

// Half-way between the largest finite value and the next power of two.
half_element!(f16, DType::F16, 65520.0);
half_element!(bf16, DType::BF16, 2f64.powi(128) - 2f64.powi(119));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_lambda_to_nearest_even_straight_from_f64() {
        // Just above the halfway point between 1 and the next f16/bf16: rounds up. Rounding
        // through f32 (or truncating the low mantissa bits) would make it a tie and round down.
        let above_half_f16 = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!(
            f16::round_lambda(above_half_f16),
            f16::from_f64(1.0 + 2f64.powi(-10))
        );
        let above_half_bf16 = 1.0 + 2f64.powi(-8) + 2f64.powi(-40);
        assert_eq!(
            bf16::round_lambda(above_half_bf16),
            bf16::from_f64(1.0 + 2f64.powi(-7))
        );
        // Exact ties go to the even neighbour.
        assert_eq!(
            f16::round_lambda(1.0 + 2f64.powi(-11)).to_bits(),
            f16::ONE.to_bits()
        );
        assert_eq!(
            f16::round_lambda(1.0 + 3.0 * 2f64.powi(-11)),
            f16::from_f64(1.0 + 2f64.powi(-9))
        );
        // Overflow, signs, NaN.
        assert_eq!(f16::round_lambda(65519.99), f16::MAX);
        assert_eq!(f16::round_lambda(65520.0), f16::INFINITY);
        let bf16_overflow = 2f64.powi(128) - 2f64.powi(119);
        assert_eq!(bf16::round_lambda(bf16_overflow), bf16::INFINITY);
        assert_eq!(
            bf16::round_lambda(bf16_overflow - 2f64.powi(100)),
            bf16::MAX
        );
        assert_eq!(f16::round_lambda(-1e-300).to_bits(), 0x8000);
        assert!(bf16::round_lambda(f64::NAN).is_nan());
        assert_eq!(f32::round_lambda(0.1), 0.1f32);
    }
}
