//! The learned kernels against their elementwise rules.
use super::*;
use crate::kernels::slice::STRAIGHT_THROUGH_PARALLEL_THRESHOLD;

/// `sign(x)`, with 0 for ±0 and NaN.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

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
        let sums = learned_backward_in_place(&input, &mut grad.clone(), &lambd, layout, estimator);
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
