//! The learnable threshold: forward and x-gradient exactly Hardshrink's per feature, the
//! threshold's gradient against a scalar reference of each estimator, positivity under an
//! optimiser, saving and loading, and a small training run that finds the best threshold.

use crate::common::{devices, random, to_bits};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use burn_hardshrink::{
    LearnedHardshrinkConfig, ThresholdEstimator, hardshrink, learned_hardshrink,
};

pub(crate) fn estimators() -> [ThresholdEstimator; 2] {
    [
        ThresholdEstimator::StraightThrough,
        ThresholdEstimator::Kernel { bandwidth: 0.3 },
    ]
}

/// The reference λ-gradient contribution of one element (f64, straight from the formulas).
pub(crate) fn reference_lambd_grad(
    x: f64,
    g: f64,
    lambd: f64,
    estimator: ThresholdEstimator,
) -> f64 {
    let sign = if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    };
    match estimator {
        ThresholdEstimator::StraightThrough => {
            // A NaN threshold is the identity: every value passes.
            if x.abs() > lambd || lambd.is_nan() {
                -sign * g
            } else {
                0.0
            }
        }
        ThresholdEstimator::Kernel { bandwidth } => {
            if (x.abs() - lambd).abs() < bandwidth / 2.0 {
                -sign * lambd / bandwidth * g
            } else {
                0.0
            }
        }
    }
}

/// Checks one configuration: `dims` of the leaf, the view's swapped axes, the feature axis.
fn check_gradients(
    device: &Device,
    dims: &[usize],
    swap: Option<(usize, usize)>,
    dim: Option<usize>,
) {
    let n: usize = dims.iter().product();
    // Random inputs and upstream gradients, seeded so a failure reproduces.
    let normal = |seed: u64, std: f64| -> Vec<f32> {
        random([n], Distribution::Normal(0.0, std), seed)
            .try_to_vec::<f32>()
            .unwrap()
    };
    let values = normal(n as u64, 1.0);
    let upstream = normal(7, 2.0);
    macro_rules! run {
        ($d:literal) => {{
            let shape: [usize; $d] = dims.try_into().unwrap();
            let ad = device.clone().autodiff();
            let leaf = || Tensor::<$d>::from_data(TensorData::new(values.clone(), shape), &ad).require_grad();
            let view = |base: &Tensor<$d>| match swap { Some((a, b)) => base.clone().swap_dims(a, b), None => base.clone() };
            let view_dims = view(&leaf()).dims();
            let features = dim.map_or(1, |d| view_dims[d]);
            let lambd_values: Vec<f32> = (0..features).map(|f| 0.2 + 0.35 * f as f32).collect();
            let g = Tensor::<$d>::from_data(TensorData::new(upstream.clone(), view_dims), &ad);
            for estimator in estimators() {
                // A fresh graph per backward (Burn consumes the tape).
                let base = leaf();
                let x = view(&base);
                let lambd = Tensor::<1>::from_floats(lambd_values.as_slice(), &ad).require_grad();
                let y = learned_hardshrink(x.clone(), lambd.clone(), dim, estimator);
                // Forward: exactly hardshrink with each feature's λ.
                let xs = x.clone().into_data().try_to_vec::<f32>().unwrap();
                let ys = y.clone().into_data().try_to_vec::<f32>().unwrap();
                let inner: usize = dim.map_or(1, |d| view_dims[d + 1..].iter().product());
                let gs = g.clone().into_data().try_to_vec::<f32>().unwrap();
                let mut want_lambd = vec![0.0f64; features];
                let mut want_x = vec![0.0f32; n];
                for i in 0..n {
                    let f = if dim.is_some() { (i / inner) % features } else { 0 };
                    let l = lambd_values[f];
                    let expect = if xs[i] >= -l && xs[i] <= l { 0.0 } else { xs[i] };
                    assert_eq!(ys[i].to_bits(), expect.to_bits(), "forward at {i}");
                    want_x[i] = if xs[i] >= -l && xs[i] <= l { 0.0 } else { gs[i] };
                    want_lambd[f] += reference_lambd_grad(xs[i] as f64, gs[i] as f64, l as f64, estimator);
                }
                let grads = (y * g.clone()).sum().backward();
                let gx = base.grad(&grads).unwrap();
                let gx = match swap { Some((a, b)) => gx.swap_dims(a, b), None => gx };
                assert_eq!(gx.into_data().try_to_vec::<f32>().unwrap(), want_x, "x-gradient, {estimator:?}");
                let gl = lambd.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
                for (f, (&got, &want)) in gl.iter().zip(&want_lambd).enumerate() {
                    assert!(
                        (got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "λ-gradient of feature {f}: {got} vs {want} ({estimator:?}, dims {dims:?}, dim {dim:?})"
                    );
                }
            }
        }};
    }
    match dims.len() {
        2 => run!(2),
        3 => run!(3),
        4 => run!(4),
        r => unreachable!("rank {r}"),
    }
}

#[test]
fn gradients_follow_the_reference_for_each_estimator() {
    for (_, device) in devices() {
        check_gradients(&device, &[5, 7], None, Some(1));
        check_gradients(&device, &[5, 7], None, None);
        check_gradients(&device, &[5, 7], Some((0, 1)), Some(1));
        check_gradients(&device, &[3, 4, 6], None, Some(1));
        check_gradients(&device, &[3, 4, 6], Some((0, 2)), Some(0));
        check_gradients(&device, &[2, 3, 4, 5], Some((1, 3)), Some(2));
        check_gradients(&device, &[2, 3, 4, 5], None, None);
    }
}

#[test]
fn module_forward_is_hardshrink_per_feature_bit_for_bit() {
    for (_, device) in devices() {
        let act = LearnedHardshrinkConfig::new()
            .with_features(Some(4))
            .with_dim(1)
            .init(&device);
        let x = Tensor::<3>::from_data(
            random([3, 4, 5], Distribution::Normal(0.0, 1.0), 5),
            &device,
        );
        let y = act.forward(x.clone());
        let lambd = act.lambd().into_data().try_to_vec::<f32>().unwrap();
        for (f, &l) in lambd.iter().enumerate() {
            let xf = x.clone().slice([0..3, f..f + 1, 0..5]);
            let yf = y.clone().slice([0..3, f..f + 1, 0..5]);
            assert_eq!(
                to_bits(yf),
                to_bits(hardshrink(xf, l as f64)),
                "feature {f}"
            );
        }
    }
}

#[test]
fn thresholds_stay_positive_under_a_step_that_would_push_them_negative() {
    for (_, device) in devices() {
        let device = device.autodiff();
        let act = LearnedHardshrinkConfig::new()
            .with_initial_lambd(0.01)
            .with_features(Some(3))
            .init(&device);
        let before = act.lambd().into_data().try_to_vec::<f32>().unwrap();
        // d(loss)/dλ = 1e3: a plain gradient step of lr 1 on λ itself would give λ ≈ -1000.
        let loss = act.lambd().sum() * 1000.0;
        let grads = GradientsParams::from_grads(loss.backward(), &act);
        let mut optim = AdamConfig::new().init();
        let act = optim.step(1.0, act, grads);
        let after = act.lambd().into_data().try_to_vec::<f32>().unwrap();
        for (b, a) in before.iter().zip(&after) {
            assert!(*a > 0.0 && a < b, "λ went from {b} to {a}");
        }
    }
}

#[test]
fn saves_and_loads_through_burns_records() {
    let device = Device::flex();
    let act = LearnedHardshrinkConfig::new()
        .with_initial_lambd(0.3)
        .with_features(Some(5))
        .init(&device);
    let raw = act.raw_lambd.val() + Tensor::<1>::from_floats([0.0, 0.1, 0.2, 0.3, 0.4], &device);
    let act = burn_hardshrink::LearnedHardshrink {
        raw_lambd: burn::module::Param::from_tensor(raw),
        ..act
    };
    let want = to_bits(act.lambd());
    let dir = std::env::temp_dir().join(format!("learned-hardshrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("act.bpk");
    act.clone().save_file(&file).unwrap();
    let fresh = LearnedHardshrinkConfig::new()
        .with_features(Some(5))
        .init(&device);
    assert_ne!(to_bits(fresh.lambd()), want);
    let loaded = fresh.load_file(&file);
    assert_eq!(to_bits(loaded.lambd()), want);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Sparse signals in Gaussian noise: the mean squared error of hard thresholding as a function
/// of λ has one minimum, found here by a grid search on the same data.
#[test]
fn training_moves_the_threshold_to_the_best_one_and_lowers_the_loss() {
    let device = Device::flex().autodiff();
    let n = 20_000;
    let sample =
        |distribution, seed| Tensor::<1>::from_data(random([n], distribution, seed), &device);
    let support = sample(Distribution::Bernoulli(0.2), 21);
    let clean = sample(Distribution::Normal(0.0, 2.0), 22) * support;
    let noisy = clean.clone() + sample(Distribution::Normal(0.0, 0.5), 23);
    let mse = |lambd: f64| -> f64 {
        (hardshrink(noisy.clone(), lambd) - clean.clone())
            .powi_scalar(2)
            .mean()
            .into_scalar::<f32>() as f64
    };
    let best = (1..200)
        .map(|i| i as f64 * 0.01)
        .min_by(|a, b| mse(*a).total_cmp(&mse(*b)))
        .unwrap();

    let start = 0.1;
    let mut act = LearnedHardshrinkConfig::new()
        .with_initial_lambd(start)
        .with_estimator(ThresholdEstimator::Kernel { bandwidth: 0.2 })
        .init(&device);
    let mut optim = AdamConfig::new().init();
    let loss_of = |act: &burn_hardshrink::LearnedHardshrink| {
        (act.forward(noisy.clone()) - clean.clone())
            .powi_scalar(2)
            .mean()
    };
    let first = loss_of(&act).into_scalar::<f32>();
    for _ in 0..300 {
        let loss = loss_of(&act);
        let grads = GradientsParams::from_grads(loss.backward(), &act);
        act = optim.step(1e-2, act, grads);
    }
    let last = loss_of(&act).into_scalar::<f32>();
    let lambd = act.lambd().into_scalar::<f32>() as f64;
    assert!(last < first, "loss {first} -> {last}");
    assert!(
        (lambd - best).abs() < 0.5 * (start - best).abs(),
        "λ {start} -> {lambd}, best {best}"
    );
}

#[test]
fn a_large_initial_threshold_stays_finite() {
    let act = LearnedHardshrinkConfig::new()
        .with_initial_lambd(1000.0)
        .init(&Device::flex());
    let lambd = act.lambd().into_scalar::<f32>();
    assert!((lambd - 1000.0).abs() < 1e-2, "λ = {lambd}");
}

#[test]
fn the_composed_path_handles_infinite_and_nan_thresholds() {
    use burn_hardshrink::learned_hardshrink_composed;
    let device = Device::flex().autodiff();
    let x = Tensor::<1>::from_floats([-3.0, 0.5, 2.0], &device);
    for estimator in estimators() {
        let inf = Tensor::<1>::from_floats([f32::INFINITY], &device);
        let y = learned_hardshrink_composed(x.clone(), inf, None, estimator);
        assert_eq!(
            to_bits(y),
            vec![0; 3],
            "λ = inf zeroes everything, {estimator:?}"
        );
        let nan = Tensor::<1>::from_floats([f32::NAN], &device);
        let y = learned_hardshrink_composed(x.clone(), nan, None, estimator);
        assert_eq!(
            to_bits(y),
            to_bits(x.clone()),
            "λ = NaN is the identity, {estimator:?}"
        );
    }
}
