//! Kernels for a threshold per feature (the learnable Hardshrink): one pass forward, one pass
//! backward that also reduces the threshold's gradient per feature.
//!
//! Buffers are row-major and seen as `outer × features × inner`: the feature axis in the
//! middle, everything before it folded into `outer` and everything after into `inner`. A single
//! threshold is `features = 1`.

use super::buffer::filled;
use super::element::{BitLane, ShrinkElement};
use super::slice::{
    PARALLEL_CHUNK, REDUCTION_PARALLEL_THRESHOLD, STRAIGHT_THROUGH_PARALLEL_THRESHOLD, bits,
    bits_mut, for_chunks_of, for_chunks_summing, opaque_zero, shrink,
};
use crate::ThresholdEstimator;
use std::mem::MaybeUninit;

/// A row-major buffer split around its feature axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureLayout {
    /// Product of the dimensions before the feature axis.
    pub outer: usize,
    /// Length of the feature axis (1 for a single threshold).
    pub features: usize,
    /// Product of the dimensions after the feature axis.
    pub inner: usize,
}

impl FeatureLayout {
    /// The layout of `shape` with thresholds along `dim`, or one threshold for `dim = None`.
    pub fn new(shape: &[usize], dim: Option<usize>) -> Self {
        match dim {
            None => Self {
                outer: 1,
                features: 1,
                inner: shape.iter().product(),
            },
            Some(dim) => Self {
                outer: shape[..dim].iter().product(),
                features: shape[dim],
                inner: shape[dim + 1..].iter().product(),
            },
        }
    }

    /// Elements in one `features × inner` row.
    fn row(&self) -> usize {
        self.features * self.inner
    }

    /// Elements per parallel task: whole rows, about [`PARALLEL_CHUNK`] of them.
    fn chunk(&self) -> usize {
        let row = self.row().max(1);
        row * (PARALLEL_CHUNK / row).max(1)
    }
}

/// The comparison limit for each feature's threshold: its magnitude bits, or all bits set for a
/// negative or NaN threshold (which keeps every value: the identity).
fn limits<E: ShrinkElement>(lambd: &[E]) -> Vec<E::Lane> {
    lambd
        .iter()
        .map(|&l| {
            if l.is_nan() || l.is_negative() {
                E::Lane::ALL
            } else {
                l.to_bits().and(E::Lane::MAGNITUDE)
            }
        })
        .collect()
}

/// The forward over rows of `data`, in place.
fn shrink_rows<B: BitLane>(layout: FeatureLayout, limits: &[B], data: &mut [B]) {
    let row = layout.row();
    if row == 0 {
        return;
    }
    for_chunks_of(
        data,
        layout.chunk(),
        #[inline(always)]
        |_, chunk| {
            let zero = opaque_zero();
            for values in chunk.chunks_mut(row) {
                if layout.inner == 1 {
                    // Thresholds vary along the row: zip them in.
                    for (x, &l) in values.iter_mut().zip(limits) {
                        *x = shrink(*x, l).or(zero);
                    }
                } else {
                    // One threshold per contiguous run of `inner` values.
                    for (run, &l) in values.chunks_mut(layout.inner).zip(limits) {
                        for x in run {
                            *x = shrink(*x, l).or(zero);
                        }
                    }
                }
            }
        },
    );
}

/// The forward over rows of `src` into `dst`, writing every element of `dst`.
fn shrink_rows_into<B: BitLane>(
    layout: FeatureLayout,
    limits: &[B],
    src: &[B],
    dst: &mut [MaybeUninit<B>],
) {
    let row = layout.row();
    if row == 0 {
        return;
    }
    for_chunks_of(
        dst,
        layout.chunk(),
        #[inline(always)]
        |offset, chunk| {
            let src = &src[offset..offset + chunk.len()];
            for (out, values) in chunk.chunks_mut(row).zip(src.chunks(row)) {
                if layout.inner == 1 {
                    for ((d, &x), &l) in out.iter_mut().zip(values).zip(limits) {
                        *d = MaybeUninit::new(shrink(x, l));
                    }
                } else {
                    let runs = out
                        .chunks_mut(layout.inner)
                        .zip(values.chunks(layout.inner));
                    for ((out, values), &l) in runs.zip(limits) {
                        for (d, &x) in out.iter_mut().zip(values) {
                            *d = MaybeUninit::new(shrink(x, l));
                        }
                    }
                }
            }
        },
    );
}

fn check<E>(layout: FeatureLayout, len: usize, lambd: &[E]) {
    assert_eq!(
        len,
        layout.outer * layout.row(),
        "buffer length does not match the layout"
    );
    assert_eq!(lambd.len(), layout.features, "one threshold per feature");
}

/// Forward in place with a threshold per feature.
pub fn learned_forward_in_place<E: ShrinkElement>(
    data: &mut [E],
    lambd: &[E],
    layout: FeatureLayout,
) {
    check(layout, data.len(), lambd);
    shrink_rows(layout, &limits(lambd), bits_mut(data));
}

/// Forward out of place with a threshold per feature: a new buffer.
pub fn learned_forward_new<E: ShrinkElement>(
    src: &[E],
    lambd: &[E],
    layout: FeatureLayout,
) -> Vec<E> {
    check(layout, src.len(), lambd);
    let limits = limits(lambd);
    let fill = |dst: &mut [MaybeUninit<E::Lane>]| shrink_rows_into(layout, &limits, bits(src), dst);
    // SAFETY: a buffer of whole rows (`check`), each written element by element; with no
    // elements in a row there are none in the buffer.
    unsafe { filled(src.len(), fill) }
}

/// The backward with a threshold per feature, from the forward's input `x`.
///
/// Writes the input gradient into `grad` in place (`grad` where `|x| > λ` or `x` is NaN, `+0`
/// elsewhere, exactly Hardshrink's) and returns the threshold gradient per feature, summed in
/// f64: the kernel estimator's term by term, the straight-through one's (each term `±g`, exact
/// in f32) eight terms at a time in [`ShrinkElement::Partial`] first. So an f32 or bf16
/// gradient near its type's largest finite value can overflow a partial sum that f64 alone
/// would have held; the threshold's gradient, rounded back to that type, would overflow too
/// unless the terms cancel.
pub fn learned_backward_in_place<E: ShrinkElement>(
    input: &[E],
    grad: &mut [E],
    lambd: &[E],
    layout: FeatureLayout,
    estimator: ThresholdEstimator,
) -> Vec<f64> {
    check(layout, input.len(), lambd);
    assert_eq!(input.len(), grad.len());
    let limits = limits(lambd);
    let lambd64: Vec<f64> = lambd.iter().map(|l| l.to_f64()).collect();
    if layout.row() == 0 || layout.outer == 0 {
        return vec![0.0; layout.features];
    }
    let (input, grad) = (bits(input), bits_mut(grad));
    // The estimator is fixed for the call: pick the per-element rule once, outside the loops.
    match estimator {
        ThresholdEstimator::StraightThrough => {
            reduce_straight_through::<E>(layout, input, grad, &limits)
        }
        ThresholdEstimator::Kernel { bandwidth } => {
            let half_width = bandwidth / 2.0;
            if layout.inner > 1 {
                // Only elements within ε/2 of λ contribute: find them by their bits, block by
                // block, and do the f64 arithmetic for those alone.
                let windows: Vec<_> = lambd64
                    .iter()
                    .map(|&l| window::<E>(l, half_width))
                    .collect();
                reduce_windows::<E>(layout, input, grad, &limits, &lambd64, &windows, bandwidth)
            } else {
                reduce_rows::<E>(
                    layout,
                    input,
                    grad,
                    &limits,
                    &lambd64,
                    #[inline(always)]
                    |x: f64, g: f64, l: f64| {
                        if (x.abs() - l).abs() < half_width {
                            -sign(x) * (l / bandwidth) * g
                        } else {
                            0.0
                        }
                    },
                )
            }
        }
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

/// Elements per block of the windowed reduction: a block with no element near λ costs a
/// vectorised scan and a vectorised mask, nothing else.
const BLOCK: usize = 64;

/// The kernel estimator's contribution of one element in the windowed reduction:
/// `-sign(x)·(λ/ε)·g` within the window, with sign(x) as a copied sign bit (0 for ±0, so 0·NaN is NaN as in the
/// scalar rule); outside the window the select gives 0, NaN inputs included. Branch-free, so a
/// block of them vectorises.
#[inline(always)]
fn window_term<E: ShrinkElement>(
    x: E::Lane,
    g: E::Lane,
    scale: f64,
    l: f64,
    half_width: f64,
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

/// [`reduce_rows`] for layouts with runs of one feature (`inner > 1`) and a contribution that
/// is zero outside each feature's magnitude `window`: the kernel estimator's.
fn reduce_windows<E: ShrinkElement>(
    layout: FeatureLayout,
    input: &[E::Lane],
    grad: &mut [E::Lane],
    limits: &[E::Lane],
    lambd: &[f64],
    windows: &[(E::Lane, E::Lane)],
    bandwidth: f64,
) -> Vec<f64> {
    let half_width = bandwidth / 2.0;
    reduce_by_row::<E>(
        layout,
        input,
        grad,
        REDUCTION_PARALLEL_THRESHOLD,
        #[inline(always)]
        |grow, xrow, partial, zero| {
            for_each_run(
                layout.inner,
                grow,
                xrow,
                partial,
                #[inline(always)]
                |f, grun, xrun| {
                    let (limit, l, (low, high)) = (limits[f], lambd[f], windows[f]);
                    let scale = l / bandwidth;
                    let mut sums = [0.0f64; LANES];
                    for (gs, xs) in grun.chunks_mut(BLOCK).zip(xrun.chunks(BLOCK)) {
                        let near = xs.iter().fold(
                            false,
                            #[inline(always)]
                            |any, x| any | x.magnitude_within(low, high),
                        );
                        if near {
                            // Branch-free over the whole block, eight independent sums: this
                            // vectorises, where a test per element would not.
                            let mut gl = gs.chunks_exact(LANES);
                            let mut xl = xs.chunks_exact(LANES);
                            for (g8, x8) in (&mut gl).zip(&mut xl) {
                                for lane in 0..LANES {
                                    sums[lane] +=
                                        window_term::<E>(x8[lane], g8[lane], scale, l, half_width);
                                }
                            }
                            for (&g, &x) in gl.remainder().iter().zip(xl.remainder()) {
                                sums[0] += window_term::<E>(x, g, scale, l, half_width);
                            }
                        }
                        for (g, &x) in gs.iter_mut().zip(xs) {
                            *g = g.and(E::Lane::mask(x.magnitude_above(limit))).or(zero);
                        }
                    }
                    sums.iter().sum()
                },
            )
        },
    )
}

/// Terms summed in [`ShrinkElement::Partial`] before the sum moves to f64: rows of a row-wise
/// layout, or elements per lane of a run. Eight keep each partial sum within a few ulps of f32
/// and the widening to one pass in eight. Widening every term to f64 made the backward
/// compute-bound: eight f64 lanes per vector instead of sixteen f32 ones, and twice the bytes
/// of per-feature sums (BENCHMARKS.md, `learned_threads`).
const PARTIAL_TERMS: usize = 8;

/// Partial sums per run in the straight-through reduction: one AVX-512 register of f32.
const PARTIAL_LANES: usize = 16;

/// One element of the straight-through backward: masks its gradient in place (as [`step`])
/// and adds its term to `sum`: `-sign(x)·g` where the forward kept `x`, `0` elsewhere (sign 0
/// for ±0 and NaN, so a kept NaN passes a non-finite gradient on as NaN). Exact in the partial
/// type; selects only, so a row of them vectorises.
#[inline(always)]
fn straight_through_step<E: ShrinkElement>(
    sum: &mut E::Partial,
    g: &mut E::Lane,
    x: E::Lane,
    limit: E::Lane,
    zero: E::Lane,
) {
    use super::element::PartialSum;
    let kept = x.magnitude_above(limit);
    let (xp, gp) = (E::from_bits(x).to_partial(), E::from_bits(*g).to_partial());
    let (none, one) = (E::Partial::ZERO, E::Partial::ONE);
    let unit = if xp > none {
        one
    } else if xp < none {
        -one
    } else {
        none
    };
    *sum = *sum + if kept { -unit * gp } else { none };
    *g = g.and(E::Lane::mask(kept)).or(zero);
}

/// The straight-through backward: masks the gradient in place and sums `-sign(x)·g` over the
/// kept elements per feature, [`PARTIAL_TERMS`] terms at a time in the partial type, then in
/// f64.
fn reduce_straight_through<E: ShrinkElement>(
    layout: FeatureLayout,
    input: &[E::Lane],
    grad: &mut [E::Lane],
    limits: &[E::Lane],
) -> Vec<f64> {
    use super::element::PartialSum;
    if layout.inner == 1 {
        // A threshold per element of the row: one partial sum per feature, carried down a
        // block of rows.
        let row = layout.row();
        return reduce_by_chunk::<E>(
            input,
            grad,
            layout,
            STRAIGHT_THROUGH_PARALLEL_THRESHOLD,
            #[inline(always)]
            |grad, input, total, zero| {
                let mut partial = vec![E::Partial::ZERO; layout.features];
                let block = row * PARTIAL_TERMS;
                for (gblock, xblock) in grad.chunks_mut(block).zip(input.chunks(block)) {
                    for (grow, xrow) in gblock.chunks_mut(row).zip(xblock.chunks(row)) {
                        let features = partial.iter_mut().zip(limits);
                        for ((g, &x), (sum, &limit)) in grow.iter_mut().zip(xrow).zip(features) {
                            straight_through_step::<E>(sum, g, x, limit, zero);
                        }
                    }
                    for (t, sum) in total.iter_mut().zip(&mut partial) {
                        *t += sum.to_f64();
                        *sum = E::Partial::ZERO;
                    }
                }
            },
        );
    }
    reduce_by_row::<E>(
        layout,
        input,
        grad,
        STRAIGHT_THROUGH_PARALLEL_THRESHOLD,
        #[inline(always)]
        |grow, xrow, total, zero| {
            for_each_run(
                layout.inner,
                grow,
                xrow,
                total,
                #[inline(always)]
                |f, grun, xrun| {
                    let limit = limits[f];
                    let mut run_sum = 0.0;
                    let block = PARTIAL_LANES * PARTIAL_TERMS;
                    for (gs, xs) in grun.chunks_mut(block).zip(xrun.chunks(block)) {
                        // Independent lanes: the adds do not wait on each other.
                        let mut lanes = [E::Partial::ZERO; PARTIAL_LANES];
                        let mut gl = gs.chunks_exact_mut(PARTIAL_LANES);
                        let mut xl = xs.chunks_exact(PARTIAL_LANES);
                        for (gv, xv) in (&mut gl).zip(&mut xl) {
                            for ((sum, g), &x) in lanes.iter_mut().zip(gv).zip(xv) {
                                straight_through_step::<E>(sum, g, x, limit, zero);
                            }
                        }
                        let rest = gl.into_remainder().iter_mut().zip(xl.remainder());
                        for (g, &x) in rest {
                            straight_through_step::<E>(&mut lanes[0], g, x, limit, zero);
                        }
                        run_sum += lanes.iter().map(|s| s.to_f64()).sum::<f64>();
                    }
                    run_sum
                },
            )
        },
    )
}

/// Masks the gradient in place and sums `contribution(x, grad, λ)` per feature in f64, for
/// thresholds along the row (`inner == 1`, a bias-like layout): each element has its own
/// feature, so the sums are independent already.
fn reduce_rows<E: ShrinkElement>(
    layout: FeatureLayout,
    input: &[E::Lane],
    grad: &mut [E::Lane],
    limits: &[E::Lane],
    lambd: &[f64],
    contribution: impl Fn(f64, f64, f64) -> f64 + Sync,
) -> Vec<f64> {
    debug_assert_eq!(layout.inner, 1);
    reduce_by_row::<E>(
        layout,
        input,
        grad,
        REDUCTION_PARALLEL_THRESHOLD,
        #[inline(always)]
        |grow, xrow, partial, zero| {
            let features = partial.iter_mut().zip(limits).zip(lambd);
            for ((g, &x), ((sum, &limit), &l)) in grow.iter_mut().zip(xrow).zip(features) {
                *sum += step::<E>(g, x, limit, l, zero, &contribution);
            }
        },
    )
}

/// [`reduce_by_chunk`] row by row: each `features × inner` row of the gradient and the input
/// goes to `row_body` with the chunk's per-feature sums and an [`opaque_zero`] to OR into the
/// masked gradient. No index arithmetic per element. Every threshold-gradient reduction walks
/// this way except the straight-through one along rows, which carries its partial sums down
/// blocks of rows.
fn reduce_by_row<E: ShrinkElement>(
    layout: FeatureLayout,
    input: &[E::Lane],
    grad: &mut [E::Lane],
    split_from: usize,
    row_body: impl Fn(&mut [E::Lane], &[E::Lane], &mut [f64], E::Lane) + Sync,
) -> Vec<f64> {
    let row = layout.row();
    reduce_by_chunk::<E>(
        input,
        grad,
        layout,
        split_from,
        #[inline(always)]
        |grad, input, partial, zero| {
            for (grow, xrow) in grad.chunks_mut(row).zip(input.chunks(row)) {
                row_body(grow, xrow, partial, zero);
            }
        },
    )
}

/// Chunks of whole rows (across cores above the parallel threshold, summed in chunk order),
/// each handed to `body` with the matching input, the chunk's per-feature sums and an
/// [`opaque_zero`].
fn reduce_by_chunk<E: ShrinkElement>(
    input: &[E::Lane],
    grad: &mut [E::Lane],
    layout: FeatureLayout,
    split_from: usize,
    body: impl Fn(&mut [E::Lane], &[E::Lane], &mut [f64], E::Lane) + Sync,
) -> Vec<f64> {
    for_chunks_summing(
        grad,
        layout.chunk(),
        layout.features,
        split_from,
        #[inline(always)]
        |offset, grad, partial| {
            let input = &input[offset..offset + grad.len()];
            body(grad, input, partial, opaque_zero())
        },
    )
}

/// Splits a row into its runs of one feature (`inner` elements each) and adds `run_sum` of
/// each run to its feature's sum.
#[inline(always)]
fn for_each_run<L>(
    inner: usize,
    grow: &mut [L],
    xrow: &[L],
    partial: &mut [f64],
    run_sum: impl Fn(usize, &mut [L], &[L]) -> f64,
) {
    let runs = grow.chunks_mut(inner).zip(xrow.chunks(inner));
    for (f, (grun, xrun)) in runs.enumerate() {
        partial[f] += run_sum(f, grun, xrun);
    }
}

/// Independent partial sums per run in the threshold-gradient reduction.
const LANES: usize = 8;

/// One element of the backward: masks its gradient in place (outside the band, or NaN, whose
/// magnitude bits exceed every threshold's, keeps it) and returns its threshold contribution.
#[inline(always)]
fn step<E: ShrinkElement>(
    g: &mut E::Lane,
    x: E::Lane,
    limit: E::Lane,
    lambd: f64,
    zero: E::Lane,
    contribution: &impl Fn(f64, f64, f64) -> f64,
) -> f64 {
    let kept = x.magnitude_above(limit);
    let value = contribution(E::from_bits(x).to_f64(), E::from_bits(*g).to_f64(), lambd);
    *g = g.and(E::Lane::mask(kept)).or(zero);
    value
}

/// `sign(x)`, with 0 for ±0 and NaN.
#[inline]
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel estimator's threshold gradient and masked gradient, element by element.
    fn reference<E: ShrinkElement>(
        input: &[E],
        grad: &[E],
        lambd: &[f64],
        shape: [usize; 3],
        bandwidth: f64,
    ) -> (Vec<f64>, Vec<E>) {
        let [outer, features, inner] = shape;
        let mut sums = vec![0.0; features];
        let mut masked = grad.to_vec();
        for o in 0..outer {
            for f in 0..features {
                for i in 0..inner {
                    let k = (o * features + f) * inner + i;
                    let (x, g, l) = (input[k].to_f64(), grad[k].to_f64(), lambd[f]);
                    if (x.abs() - l).abs() < bandwidth / 2.0 {
                        sums[f] += -sign(x) * (l / bandwidth) * g;
                    }
                    if !(x.is_nan() || x.abs() > l) {
                        masked[k] = E::from_f64(0.0);
                    }
                }
            }
        }
        (sums, masked)
    }

    fn check<E: ShrinkElement + core::fmt::Debug>() {
        let shape = [3, 2, 150];
        let bandwidth = 0.25;
        let lambd_e = [E::from_f64(0.5), E::from_f64(1.25)];
        let lambd: Vec<f64> = lambd_e.iter().map(|l| l.to_f64()).collect();
        // Values on a grid through both windows, their exact edges, and the special values.
        let n: usize = shape.iter().product();
        let input: Vec<E> = (0..n)
            .map(|k| match k % 97 {
                0 => E::from_f64(f64::NAN),
                1 => E::from_f64(f64::INFINITY),
                2 => E::from_f64(-0.0),
                3 => E::from_f64(0.5 + 0.125),
                4 => E::from_f64(-(1.25 - 0.125)),
                r => E::from_f64((r as f64 - 50.0) / 29.0 * if k % 2 == 0 { 1.0 } else { -1.0 }),
            })
            .collect();
        // Both signs of gradient against both signs of input.
        let grad: Vec<E> = (0..n)
            .map(|k| E::from_f64((k % 7) as f64 / 4.0 - 0.8))
            .collect();
        let (want_sums, want_grad) = reference(&input, &grad, &lambd, shape, bandwidth);
        let mut got_grad = grad.clone();
        let layout = FeatureLayout::new(&shape, Some(1));
        let got_sums = learned_backward_in_place(
            &input,
            &mut got_grad,
            &lambd_e,
            layout,
            ThresholdEstimator::Kernel { bandwidth },
        );
        for (got, want) in got_sums.iter().zip(&want_sums) {
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0) || got.is_nan() && want.is_nan(),
                "{got} vs {want}"
            );
        }
        assert!(
            want_sums.iter().all(|s| *s != 0.0),
            "the windows must hold elements"
        );
        for (k, (got, want)) in got_grad.iter().zip(&want_grad).enumerate() {
            assert!(
                got.to_bits() == want.to_bits(),
                "element {k}: {got:?} vs {want:?}"
            );
        }
    }

    /// The straight-through backward against the rule element by element, summed in f64: the
    /// masked gradient bit for bit, the threshold gradient within the partial sums' rounding
    /// (eight terms in the partial type) and exactly for non-finite sums. Layouts with a
    /// threshold per element of the row and with runs of one feature, block edges not lined up
    /// (rows not a multiple of eight, runs not of 128), thresholds negative, NaN, 0 and large,
    /// and a size that splits across cores.
    fn check_straight_through<E: ShrinkElement + core::fmt::Debug>() {
        let lambd: Vec<E> = [0.5, 0.0, -1.0, f64::NAN, 1.25, 7.0]
            .iter()
            .map(|&l| E::from_f64(l))
            .collect();
        let features = lambd.len();
        // The last just past the split: an odd number of rows, not a multiple of eight.
        let split = STRAIGHT_THROUGH_PARALLEL_THRESHOLD / features + 333;
        for [outer, inner] in [[45, 1], [3, 300], [1, 1], [split, 1]] {
            let n = outer * features * inner;
            let value = |k: usize, salt: usize| {
                let r = (k * 7919 + salt) % 1009;
                E::from_f64(match r {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => -0.0,
                    3 => 0.0,
                    _ => (r as f64 - 504.0) / 126.0,
                })
            };
            let input: Vec<E> = (0..n).map(|k| value(k, 0)).collect();
            // Non-finite gradients only in the small layouts, so the large one checks finite
            // sums across the split.
            let grad: Vec<E> = (0..n)
                .map(|k| match value(k, 503) {
                    g if n > 1 << 16 && !g.to_f64().is_finite() => E::from_f64(1.5),
                    g => g,
                })
                .collect();
            let (mut want, mut magnitude) = (vec![0.0f64; features], vec![0.0f64; features]);
            let mut want_grad = grad.clone();
            for k in 0..n {
                let f = k / inner % features;
                let (x, l) = (input[k].to_f64(), lambd[f].to_f64());
                let kept = l.is_nan() || l < 0.0 || x.is_nan() || x.abs() > l;
                if kept {
                    let term = -sign(x) * grad[k].to_f64();
                    want[f] += term;
                    magnitude[f] += term.abs();
                } else {
                    want_grad[k] = E::from_f64(0.0);
                }
            }
            let mut got_grad = grad.clone();
            let layout = FeatureLayout {
                outer,
                features,
                inner,
            };
            let got = learned_backward_in_place(
                &input,
                &mut got_grad,
                &lambd,
                layout,
                ThresholdEstimator::StraightThrough,
            );
            let case = format!("{outer} × {features} × {inner}");
            for (k, (g, w)) in got_grad.iter().zip(&want_grad).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits(),
                    "{case}, element {k}: {g:?} vs {w:?}"
                );
            }
            // Eight terms per partial sum in f32 (or all of them in f64, where the reference errs
            // as much), then one rounding to f64.
            let unit = if E::DTYPE == burn::tensor::DType::F64 {
                1e-13
            } else {
                1e-6
            };
            for f in 0..features {
                let (g, w) = (got[f], want[f]);
                let close = if w.is_finite() {
                    (g - w).abs() <= unit * magnitude[f]
                } else {
                    g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan()
                };
                assert!(close, "{case}, feature {f}: {g} vs {w}");
            }
            assert!(
                got.iter().any(|s| s.is_finite() && *s != 0.0),
                "{case}: some sums must be finite and nonzero"
            );
        }
    }

    #[test]
    fn straight_through_matches_the_elementwise_rule_in_every_dtype() {
        check_straight_through::<f32>();
        check_straight_through::<f64>();
        check_straight_through::<half::f16>();
        check_straight_through::<half::bf16>();
    }

    /// ±0 inside a window (λ < ε/2) meets a NaN and an infinite gradient: NaN, like the
    /// scalar rule's `-sign(0)·(λ/ε)·g`, in both layouts.
    #[test]
    fn zero_inputs_pass_non_finite_gradients_like_the_scalar_rule() {
        let input = [0.0f32, -0.0, 0.05, 0.3, 0.0, -0.0, 0.05, 0.3];
        let grad = [
            f32::NAN,
            1.0,
            f32::INFINITY,
            1.0,
            1.0,
            f32::INFINITY,
            -2.0,
            1.0,
        ];
        let estimator = ThresholdEstimator::Kernel { bandwidth: 0.25 };
        let lambd = [0.1f32];
        // inner > 1 (the windowed path) and inner = 1 (the per-element path).
        for (shape, dim) in [([2usize, 4], None), ([8, 1], Some(0))] {
            let layout = FeatureLayout::new(&shape, dim);
            let lambd: Vec<f32> = vec![lambd[0]; layout.features];
            let sums =
                learned_backward_in_place(&input, &mut grad.clone(), &lambd, layout, estimator);
            assert!(sums.iter().any(|s| s.is_nan()), "{shape:?}: {sums:?}");
        }
        let finite = [1.0f32, 1.0, -2.0, 1.0, 1.0, 3.0, -2.0, 1.0];
        let sums = learned_backward_in_place(
            &input,
            &mut finite.clone(),
            &lambd,
            FeatureLayout::new(&[2, 4], None),
            estimator,
        );
        // Inside the window with a nonzero sign: the two 0.05s, each -(0.1/0.25)·(-2) = 0.8.
        assert!((sums[0] - 1.6).abs() < 1e-6, "{sums:?}");
    }

    #[test]
    fn kernel_estimator_matches_the_elementwise_rule_in_every_dtype() {
        check::<f32>();
        check::<f64>();
        check::<half::f16>();
        check::<half::bf16>();
    }

    /// The forward into a fresh buffer writes what the in-place one does, element for element,
    /// in both layouts, at a size that splits across cores and takes huge pages.
    #[test]
    fn fresh_forward_matches_the_in_place_forward() {
        let n = crate::kernels::PARALLEL_THRESHOLD + 3 * 1024;
        let src: Vec<f32> = (0..n)
            .map(|k| match k % 101 {
                0 => f32::NAN,
                1 => f32::NEG_INFINITY,
                2 => -0.0,
                r => (r as f32 - 50.0) / 25.0,
            })
            .collect();
        for (shape, dim) in [([n / 1024, 1024, 1], 1), ([n / 1024, 8, 128], 1)] {
            let features = shape[dim];
            let lambd: Vec<f32> = (0..features).map(|f| f as f32 / features as f32).collect();
            let layout = FeatureLayout::new(&shape, Some(dim));
            let fresh = learned_forward_new(&src, &lambd, layout);
            let mut in_place = src.clone();
            learned_forward_in_place(&mut in_place, &lambd, layout);
            assert_eq!(fresh.len(), n);
            assert!(
                fresh
                    .iter()
                    .zip(&in_place)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{shape:?}"
            );
        }
    }
}
