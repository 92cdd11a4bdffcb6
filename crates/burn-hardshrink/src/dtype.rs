//! The dtypes the op is defined on, and λ rounded to each: the one table every backend, check
//! and error reads.

use crate::kernels::{Band, ShrinkElement};
use burn::tensor::DType;

/// A float dtype the op takes.
///
/// `DType::Flex32` is not one: it stores f32 but lets a device compute at reduced precision, so
/// the composed ops (what a fused GPU backend runs) could not promise PyTorch's bits with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShrinkDType {
    F32,
    F64,
    F16,
    BF16,
}

/// Binds `E` to the element type of a [`ShrinkDType`] and evaluates `body`: the one place a dtype
/// becomes a type. `with_dtype!(d, [F32, F64], |E| body)` covers a backend that holds only some
/// (its dtype table has already refused the others).
macro_rules! with_dtype {
    ($dtype:expr, |$E:ident| $body:expr) => {
        with_dtype!($dtype, [F32, F64, F16, BF16], |$E| $body)
    };
    ($dtype:expr, [$($variant:ident),+], |$E:ident| $body:expr) => {
        match $dtype {
            $($crate::dtype::ShrinkDType::$variant => {
                type $E = with_dtype!(@type $variant);
                $body
            })+
            #[allow(unreachable_patterns)]
            other => unreachable!("{other:?} passed its backend's dtype table"),
        }
    };
    (@type F32) => { f32 };
    (@type F64) => { f64 };
    (@type F16) => { ::burn::tensor::f16 };
    (@type BF16) => { ::burn::tensor::bf16 };
}

impl ShrinkDType {
    /// Every dtype the op takes.
    pub(crate) const ALL: [Self; 4] = [Self::F32, Self::F64, Self::F16, Self::BF16];

    /// The dtype, when the op takes it.
    pub(crate) const fn of(dtype: DType) -> Option<Self> {
        match dtype {
            DType::F32 => Some(Self::F32),
            DType::F64 => Some(Self::F64),
            DType::F16 => Some(Self::F16),
            DType::BF16 => Some(Self::BF16),
            _ => None,
        }
    }

    /// Burn's dtype.
    pub(crate) const fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F64 => DType::F64,
            Self::F16 => DType::F16,
            Self::BF16 => DType::BF16,
        }
    }

    /// λ rounded to this dtype, as every kernel and the composed ops compare with it; `None` when
    /// the op is the identity (λ rounded is negative or NaN).
    pub(crate) fn limit(self, lambd: f64) -> Option<Limit> {
        with_dtype!(self, |E| Limit::of::<E>(lambd))
    }

    /// The dtype the GPU sums a threshold's gradient in: f64 for f64, else f32 (the CPU kernels'
    /// partial sums, [`ShrinkElement::Partial`]).
    #[cfg(feature = "cube")]
    pub(crate) fn partial(self) -> DType {
        use crate::kernels::PartialSum;
        with_dtype!(self, |E| {
            <<E as ShrinkElement>::Partial as PartialSum>::DTYPE
        })
    }
}

/// The float dtypes the op takes, as Burn's dtypes.
pub(crate) const FLOATS: [DType; 4] = {
    let mut all = [DType::F32; 4];
    let mut i = 0;
    while i < all.len() {
        all[i] = ShrinkDType::ALL[i].dtype();
        i += 1;
    }
    all
};

/// λ rounded to a dtype: the magnitude bits of the rounded value (widened to `u64`) and the value
/// itself (exact in f64).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limit {
    pub(crate) bits: u64,
    pub(crate) value: f64,
}

impl Limit {
    fn of<E: ShrinkElement>(lambd: f64) -> Option<Self>
    where
        E::Lane: Into<u64>,
    {
        match Band::of::<E>(lambd) {
            Band::Identity => None,
            Band::Closed(bits) => Some(Self {
                bits: bits.into(),
                value: E::from_bits(bits).to_f64(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex32_is_refused_and_the_table_names_each_element_type() {
        assert_eq!(ShrinkDType::of(DType::Flex32), None);
        assert!(!FLOATS.contains(&DType::Flex32));
        for dtype in ShrinkDType::ALL {
            assert_eq!(ShrinkDType::of(dtype.dtype()), Some(dtype));
            assert_eq!(
                with_dtype!(dtype, |E| <E as ShrinkElement>::DTYPE),
                dtype.dtype()
            );
        }
    }

    #[test]
    fn limits_are_lambda_rounded_with_the_identity_for_negative_and_nan() {
        let f32_limit = ShrinkDType::F32.limit(0.1).unwrap();
        assert_eq!(f32_limit.value, f64::from(0.1f32));
        assert_eq!(f32_limit.bits, u64::from(0.1f32.to_bits()));
        assert_eq!(ShrinkDType::F64.limit(-1e-300), None);
        // On f32 the tiny negative λ rounds to -0: the closed band [-0, 0].
        assert_eq!(ShrinkDType::F32.limit(-1e-300).unwrap().bits, 0);
        assert_eq!(ShrinkDType::F16.limit(f64::NAN), None);
        assert_eq!(
            ShrinkDType::BF16.limit(f64::INFINITY).unwrap().value,
            f64::INFINITY
        );
    }
}
