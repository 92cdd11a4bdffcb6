//! One-pass forward and backward over contiguous buffers, split across cores when large, at the
//! widest SIMD level the CPU has.

use super::buffer::filled;
use super::element::{BitLane, ShrinkElement};
use super::simd::dispatch;
use std::mem::MaybeUninit;

/// What a λ does once rounded to the element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band<B> {
    /// λ rounded is negative or NaN: the band is empty and the op is the identity.
    Identity,
    /// λ rounded is ≥ 0: values with `|x| <= λ` become `+0`. Holds the magnitude bits of λ.
    Closed(B),
}

impl<B: BitLane> Band<B> {
    /// The band of `lambd` for element type `E`: λ rounded to `E` (the only rounding of λ; the
    /// composed ops and the GPU read it through the crate's dtype table).
    pub fn of<E: ShrinkElement<Lane = B>>(lambd: f64) -> Self {
        Self::of_value(E::round_lambda(lambd))
    }

    /// The band of a threshold already of the element type (a learned one).
    pub fn of_value<E: ShrinkElement<Lane = B>>(lambd: E) -> Self {
        if lambd.is_nan() || lambd.is_negative() {
            Band::Identity
        } else {
            // `-0.0` (a tiny negative λ rounded) compares equal to `+0.0`: same band.
            Band::Closed(lambd.to_bits().and(B::MAGNITUDE))
        }
    }
}

/// Below this many elements an elementwise pass (forward, backward, the learned forward) runs on
/// the calling thread: these passes are memory-bound, one core nearly saturates a small
/// machine's memory, and on 2 cores splitting broke even only here (BENCHMARKS.md, "Where
/// splitting across cores pays", at AVX2 and at AVX-512).
pub const PARALLEL_THRESHOLD: usize = 1 << 22;

/// The same for the learned backward's kernel-estimator reduction, whose f64 sums are
/// compute-bound: where two cores paid before run-time SIMD (BENCHMARKS.md, "Where splitting
/// across cores pays", the SSE2 measurements).
pub(crate) const REDUCTION_PARALLEL_THRESHOLD: usize = 1 << 18;

/// The same for the straight-through reduction, which sums in f32 first and so pays for a
/// split later (BENCHMARKS.md, "The learned backward's kernel: partial sums in f32").
pub(crate) const STRAIGHT_THROUGH_PARALLEL_THRESHOLD: usize = 1 << 19;

/// Elements per parallel task: large enough to amortise scheduling, small enough to balance.
pub(crate) const PARALLEL_CHUNK: usize = 1 << 15;

/// Zero, opaque to the optimiser. The in-place kernels OR it into what they store: otherwise
/// LLVM sees that `x & mask` stored back over `x` changes only the masked-off elements and, with
/// AVX2, emits a masked store of zeros (`vpmaskmovd`), microcoded on AMD CPUs and several times
/// slower than SSE2 (BENCHMARKS.md, "Earlier: run-time SIMD on a Zen 3 machine").
/// Load it once per chunk, outside the loop.
#[inline(always)]
pub(crate) fn opaque_zero<B: BitLane>() -> B {
    core::hint::black_box(B::ZERO)
}

#[inline(always)]
pub(crate) fn shrink<B: BitLane>(x: B, limit: B) -> B {
    x.and(B::mask(x.magnitude_above(limit)))
}

#[inline(always)]
fn pass_where_nonzero<B: BitLane>(output: B, grad: B) -> B {
    grad.and(B::mask(output.and(B::MAGNITUDE) != B::ZERO))
}

/// The forward on one value, for layouts the slice kernels do not cover.
#[inline]
pub fn forward_one<E: ShrinkElement>(x: E, band: Band<E::Lane>) -> E {
    match band {
        Band::Identity => x,
        Band::Closed(limit) => E::from_bits(shrink(x.to_bits(), limit)),
    }
}

/// The backward on one value (closed band): `grad` where `output != 0`, else `+0`.
#[inline]
pub fn backward_one<E: ShrinkElement>(output: E, grad: E) -> E {
    E::from_bits(pass_where_nonzero(output.to_bits(), grad.to_bits()))
}

pub(crate) fn bits<E: ShrinkElement>(values: &[E]) -> &[E::Lane] {
    bytemuck::cast_slice(values)
}

pub(crate) fn bits_mut<E: ShrinkElement>(values: &mut [E]) -> &mut [E::Lane] {
    bytemuck::cast_slice_mut(values)
}

/// Runs `body(offset, chunk)` over consecutive chunks of `dst`, in parallel above the
/// threshold, at the active SIMD level; `offset` is the chunk's first index, for reading the
/// matching inputs.
fn for_chunks<D: Send>(dst: &mut [D], body: impl Fn(usize, &mut [D]) + Sync) {
    for_chunks_of(dst, PARALLEL_CHUNK, body)
}

/// [`for_chunks`] with chunks of `chunk` elements (the last may be shorter).
pub(crate) fn for_chunks_of<D: Send>(
    dst: &mut [D],
    chunk: usize,
    body: impl Fn(usize, &mut [D]) + Sync,
) {
    #[cfg(feature = "parallel")]
    if dst.len() >= PARALLEL_THRESHOLD && dst.len() > chunk {
        use rayon::prelude::*;
        dst.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(index, part)| {
                dispatch(
                    #[inline(always)]
                    || body(index * chunk, part),
                )
            });
        return;
    }
    // Without `parallel` the chunk size has no use: one call covers the slice.
    #[cfg(not(feature = "parallel"))]
    let _ = chunk;
    dispatch(
        #[inline(always)]
        || body(0, dst),
    )
}

/// Runs `body(offset, chunk, partial)` over chunks of `dst`, in parallel from `split_from`
/// elements and at the active SIMD level, and returns the element-wise sum of the
/// `width`-long partial sums the calls produced.
pub(crate) fn for_chunks_summing<D: Send>(
    dst: &mut [D],
    chunk: usize,
    width: usize,
    split_from: usize,
    body: impl Fn(usize, &mut [D], &mut [f64]) + Sync,
) -> Vec<f64> {
    #[cfg(feature = "parallel")]
    if dst.len() >= split_from && dst.len() > chunk {
        use rayon::prelude::*;
        return dst
            .par_chunks_mut(chunk)
            .enumerate()
            .map(|(index, part)| {
                let mut partial = vec![0.0; width];
                dispatch(
                    #[inline(always)]
                    || body(index * chunk, part, &mut partial),
                );
                partial
            })
            // Summed in chunk order, not in rayon's stealing order: the same bits every run.
            .collect::<Vec<_>>()
            .into_iter()
            .fold(vec![0.0; width], |mut total, partial| {
                total.iter_mut().zip(&partial).for_each(|(t, p)| *t += p);
                total
            });
    }
    #[cfg(not(feature = "parallel"))]
    let _ = (chunk, split_from);
    let mut total = vec![0.0; width];
    dispatch(
        #[inline(always)]
        || body(0, dst, &mut total),
    );
    total
}

/// Forward in place: `x <- hardshrink(x)`. Does nothing for an identity band.
pub fn forward_in_place<E: ShrinkElement>(data: &mut [E], band: Band<E::Lane>) {
    let Band::Closed(limit) = band else { return };
    for_chunks(
        bits_mut(data),
        #[inline(always)]
        |_, chunk| {
            let zero = opaque_zero();
            for x in chunk.iter_mut() {
                *x = shrink(*x, limit).or(zero);
            }
        },
    );
}

/// Forward out of place: a new buffer holding `hardshrink(src)`.
pub fn forward_new<E: ShrinkElement>(src: &[E], band: Band<E::Lane>) -> Vec<E> {
    let Band::Closed(limit) = band else {
        return src.to_vec();
    };
    let src = bits(src);
    let fill = |dst: &mut [MaybeUninit<E::Lane>]| {
        for_chunks(
            dst,
            #[inline(always)]
            |offset, dst| {
                let src = &src[offset..offset + dst.len()];
                for (d, &x) in dst.iter_mut().zip(src) {
                    *d = MaybeUninit::new(shrink(x, limit));
                }
            },
        )
    };
    // SAFETY: the chunks cover the buffer and each loop writes every element of its chunk.
    unsafe { filled(src.len(), fill) }
}

/// Backward in place over the gradient: `grad <- grad where output != 0, else +0`.
///
/// Valid for a closed band only: there the forward output is non-zero exactly outside the band
/// (a NaN output counts as non-zero, so NaN inputs pass their gradient).
pub fn backward_in_place<E: ShrinkElement>(grad: &mut [E], output: &[E]) {
    assert_eq!(grad.len(), output.len());
    let output = bits(output);
    for_chunks(
        bits_mut(grad),
        #[inline(always)]
        |offset, grad| {
            let output = &output[offset..offset + grad.len()];
            let zero = opaque_zero();
            for (g, &y) in grad.iter_mut().zip(output) {
                *g = pass_where_nonzero(y, *g).or(zero);
            }
        },
    );
}

/// Backward out of place: a new buffer holding `grad where output != 0, else +0`.
pub fn backward_new<E: ShrinkElement>(output: &[E], grad: &[E]) -> Vec<E> {
    assert_eq!(output.len(), grad.len());
    let (output, grad) = (bits(output), bits(grad));
    let fill = |dst: &mut [MaybeUninit<E::Lane>]| {
        for_chunks(
            dst,
            #[inline(always)]
            |offset, dst| {
                let end = offset + dst.len();
                for ((d, &y), &g) in dst
                    .iter_mut()
                    .zip(&output[offset..end])
                    .zip(&grad[offset..end])
                {
                    *d = MaybeUninit::new(pass_where_nonzero(y, g));
                }
            },
        )
    };
    // SAFETY: the chunks cover the buffer and each loop writes every element of its chunk.
    unsafe { filled(grad.len(), fill) }
}
