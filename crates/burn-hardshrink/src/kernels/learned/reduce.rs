//! The learned backward's threshold gradient: one walk over the buffer that masks the input
//! gradient in place and sums an estimator's term per feature, for both estimators and both
//! layouts.

use super::FeatureLayout;
use crate::kernels::element::{BitLane, PartialSum, ShrinkElement};
use crate::kernels::slice::{
    REDUCTION_PARALLEL_THRESHOLD, STRAIGHT_THROUGH_PARALLEL_THRESHOLD, for_chunks_summing,
    opaque_zero,
};

/// How a walk sums its terms.
struct Plan<'a, B> {
    /// Terms an accumulator takes before it is added into the f64 sum: rows of a row-wise
    /// layout, terms per lane of a run; `None`: the accumulators are f64 and take it all.
    flush: Option<usize>,
    /// Elements from which the walk splits across cores.
    split_from: usize,
    /// Per feature, magnitude bounds outside which every term is zero: a block of a run with no
    /// element inside skips its terms (they would add `+0`).
    windows: Option<&'a [(B, B)]>,
}

/// Elements per block a window is checked on: a block with no element near λ costs a vectorised
/// scan and the mask, nothing else.
const WINDOW_BLOCK: usize = 64;

/// Masks `grad` in place (kept where `|x|` is above its feature's limit, NaN included) and sums
/// `term(feature's numbers, x, g, kept)` per feature in f64, through accumulators of type `A`:
///
/// - along rows (`inner == 1`, thresholds like a bias): an accumulator per feature, carried down
///   the rows of a chunk;
/// - along runs of one feature (`inner > 1`): `L` accumulators per run, which do not wait on each
///   other's adds, the remainder of a block into the first.
///
/// `numbers[f]` is what feature `f`'s terms need, read once per run. Chunks of rows split across
/// cores from `plan.split_from` elements and their sums add up in chunk order: the same bits
/// every run.
fn reduce<E, A, P, T, const L: usize>(
    layout: FeatureLayout,
    input: &[E::Lane],
    grad: &mut [E::Lane],
    limits: &[E::Lane],
    numbers: &[P],
    plan: Plan<'_, E::Lane>,
    term: T,
) -> Vec<f64>
where
    E: ShrinkElement,
    A: PartialSum,
    P: Copy + Sync,
    T: Fn(P, E::Lane, E::Lane, bool) -> A + Copy + Sync,
{
    let (row, inner, flush) = (layout.row(), layout.inner, plan.flush.unwrap_or(usize::MAX));
    for_chunks_summing(
        grad,
        layout.chunk(),
        layout.features,
        plan.split_from,
        // Inlined into the SIMD dispatch, which compiles it for the CPU's vector level.
        #[inline(always)]
        |offset, grad, total| {
            let input = &input[offset..offset + grad.len()];
            let zero = opaque_zero::<E::Lane>();
            if inner == 1 {
                let mut sums = vec![A::ZERO; layout.features];
                let block = row.saturating_mul(flush);
                for (gblock, xblock) in grad.chunks_mut(block).zip(input.chunks(block)) {
                    for (grow, xrow) in gblock.chunks_mut(row).zip(xblock.chunks(row)) {
                        let features = sums.iter_mut().zip(limits).zip(numbers);
                        for ((g, &x), ((sum, &limit), &p)) in
                            grow.iter_mut().zip(xrow).zip(features)
                        {
                            step(sum, g, x, limit, p, zero, term);
                        }
                    }
                    for (t, sum) in total.iter_mut().zip(&mut sums) {
                        *t += sum.to_f64();
                        *sum = A::ZERO;
                    }
                }
                return;
            }
            for (grow, xrow) in grad.chunks_mut(row).zip(input.chunks(row)) {
                let runs = grow.chunks_mut(inner).zip(xrow.chunks(inner));
                for (f, (grun, xrun)) in runs.enumerate() {
                    let window = plan.windows.map(|windows| windows[f]);
                    let feature = (limits[f], numbers[f], window);
                    total[f] += run::<E, A, P, L>(grun, xrun, feature, flush, zero, term);
                }
            }
        },
    )
}

/// One element: its term added to `sum` (from the gradient as it came), its gradient masked.
#[inline(always)]
fn step<B: BitLane, A: PartialSum, P>(
    sum: &mut A,
    g: &mut B,
    x: B,
    limit: B,
    numbers: P,
    zero: B,
    term: impl Fn(P, B, B, bool) -> A,
) {
    let kept = x.magnitude_above(limit);
    *sum = *sum + term(numbers, x, *g, kept);
    *g = g.and(B::mask(kept)).or(zero);
}

/// What one feature's run needs: its limit, its numbers and its window.
type Feature<B, P> = (B, P, Option<(B, B)>);

/// One run of a feature (its limit, numbers and window): each element's term added into one of
/// `L` accumulators, `flush` terms per accumulator at most before they move to f64, and its
/// gradient masked. Without a window term and mask go together, one pass; with one, a block's
/// terms only where an element lies inside it, then the block's mask (the skip pays from
/// 1M elements: BENCHMARKS.md, "The learned backward's reduction: one walk").
#[inline(always)]
fn run<E: ShrinkElement, A: PartialSum, P: Copy, const L: usize>(
    grun: &mut [E::Lane],
    xrun: &[E::Lane],
    (limit, numbers, window): Feature<E::Lane, P>,
    flush: usize,
    zero: E::Lane,
    term: impl Fn(P, E::Lane, E::Lane, bool) -> A + Copy,
) -> f64 {
    let mut total = 0.0;
    let block = L.saturating_mul(flush);
    for (gs, xs) in grun.chunks_mut(block).zip(xrun.chunks(block)) {
        let mut sums = [A::ZERO; L];
        let Some((low, high)) = window else {
            // Each term where its gradient is masked: one pass.
            let mut gl = gs.chunks_exact_mut(L);
            let mut xl = xs.chunks_exact(L);
            for (gv, xv) in (&mut gl).zip(&mut xl) {
                for ((sum, g), &x) in sums.iter_mut().zip(gv).zip(xv) {
                    step(sum, g, x, limit, numbers, zero, term);
                }
            }
            for (g, &x) in gl.into_remainder().iter_mut().zip(xl.remainder()) {
                step(&mut sums[0], g, x, limit, numbers, zero, term);
            }
            total += sums.iter().map(|s| s.to_f64()).sum::<f64>();
            continue;
        };
        // With a window, the terms of a block that has an element inside it, then the mask.
        for (gsub, xsub) in gs.chunks_mut(WINDOW_BLOCK).zip(xs.chunks(WINDOW_BLOCK)) {
            let near = xsub
                .iter()
                .fold(false, |any, x| any | x.magnitude_within(low, high));
            if near {
                let mut gl = gsub.chunks_exact(L);
                let mut xl = xsub.chunks_exact(L);
                for (gv, xv) in (&mut gl).zip(&mut xl) {
                    for ((sum, &g), &x) in sums.iter_mut().zip(gv).zip(xv) {
                        *sum = *sum + term(numbers, x, g, x.magnitude_above(limit));
                    }
                }
                for (&g, &x) in gl.remainder().iter().zip(xl.remainder()) {
                    sums[0] = sums[0] + term(numbers, x, g, x.magnitude_above(limit));
                }
            }
            for (g, &x) in gsub.iter_mut().zip(xsub) {
                *g = g.and(E::Lane::mask(x.magnitude_above(limit))).or(zero);
            }
        }
        total += sums.iter().map(|s| s.to_f64()).sum::<f64>();
    }
    total
}

/// Terms summed in [`ShrinkElement::Partial`] before the sum moves to f64, in the
/// straight-through reduction. Eight keep each partial sum within a few ulps of f32 and the
/// widening to one pass in eight; widening every term to f64 made the backward compute-bound
/// (BENCHMARKS.md, "The learned backward's kernel: partial sums in f32").
const PARTIAL_TERMS: usize = 8;

/// The straight-through estimator: `-sign(x)·g` where the forward kept `x`, `0` elsewhere (sign
/// 0 for ±0 and NaN, so a kept NaN passes a non-finite gradient on as NaN). Each term is exact in
/// the partial type, where it is summed [`PARTIAL_TERMS`] at a time, sixteen lanes to a run (one
/// AVX-512 register of f32).
pub(super) fn straight_through<E: ShrinkElement>(
    layout: FeatureLayout,
    input: &[E::Lane],
    grad: &mut [E::Lane],
    limits: &[E::Lane],
) -> Vec<f64> {
    let plan = Plan {
        flush: Some(PARTIAL_TERMS),
        split_from: STRAIGHT_THROUGH_PARALLEL_THRESHOLD,
        windows: None,
    };
    let numbers = vec![(); layout.features];
    let term = straight_through_term::<E>;
    reduce::<E, E::Partial, (), _, 16>(layout, input, grad, limits, &numbers, plan, term)
}

/// The kernel estimator: `-sign(x)·(λ/ε)·g` where `| |x| − λ | < ε/2`, `0` elsewhere (NaN
/// included; sign 0 for ±0, so `0·NaN` is NaN as in the scalar rule), summed in f64 in eight
/// lanes. Only the elements near λ contribute: a run's blocks with none skip their terms.
pub(super) fn kernel<E: ShrinkElement>(
    layout: FeatureLayout,
    input: &[E::Lane],
    grad: &mut [E::Lane],
    limits: &[E::Lane],
    lambd: &[f64],
    bandwidth: f64,
) -> Vec<f64> {
    let half_width = bandwidth / 2.0;
    let windows: Vec<_> = lambd.iter().map(|&l| window::<E>(l, half_width)).collect();
    let numbers: Vec<_> = lambd
        .iter()
        .map(|&l| (l, l / bandwidth, half_width))
        .collect();
    let plan = Plan {
        flush: None,
        split_from: REDUCTION_PARALLEL_THRESHOLD,
        windows: Some(&windows),
    };
    let term = kernel_term::<E>;
    reduce::<E, f64, _, _, 8>(layout, input, grad, limits, &numbers, plan, term)
}

/// A straight-through term: `-sign(x)·g` where kept, in the partial type. Selects only.
#[inline(always)]
fn straight_through_term<E: ShrinkElement>(
    _: (),
    x: E::Lane,
    g: E::Lane,
    kept: bool,
) -> E::Partial {
    let (xp, gp) = (E::from_bits(x).to_partial(), E::from_bits(g).to_partial());
    let (none, one) = (E::Partial::ZERO, E::Partial::ONE);
    let unit = if xp > none {
        one
    } else if xp < none {
        -one
    } else {
        none
    };
    if kept { -unit * gp } else { none }
}

/// A kernel-estimator term for a feature's `(λ, λ/ε, ε/2)`. Branch-free, so a block of them
/// vectorises.
#[inline(always)]
fn kernel_term<E: ShrinkElement>(
    (l, scale, half_width): (f64, f64, f64),
    x: E::Lane,
    g: E::Lane,
    _: bool,
) -> f64 {
    let (x, g) = (E::from_bits(x).to_f64(), E::from_bits(g).to_f64());
    let unit = if x == 0.0 { 0.0 } else { 1f64.copysign(x) };
    let term = (-unit * scale) * g;
    if (x.abs() - l).abs() < half_width {
        term
    } else {
        0.0
    }
}

/// Magnitude bounds `[low, high]` that hold every `|x|` with `| |x| − λ | < half_width`, and a
/// little more (the exact test runs on what they let through). Empty for a NaN λ or band.
fn window<E: ShrinkElement>(lambd: f64, half_width: f64) -> (E::Lane, E::Lane) {
    let (low, high) = (lambd - half_width, lambd + half_width);
    if high.is_nan() || high < 0.0 {
        return (E::Lane::MAGNITUDE, E::Lane::ZERO);
    }
    // Widened by 1/64 so that rounding to E (8 significant bits at the least, for bf16) can
    // only widen the window further.
    let magnitude = |v: f64| E::from_f64(v).to_bits().and(E::Lane::MAGNITUDE);
    let low = if low > 0.0 {
        magnitude(low * (1.0 - 1.0 / 64.0))
    } else {
        E::Lane::ZERO
    };
    (low, magnitude(high * (1.0 + 1.0 / 64.0)))
}
