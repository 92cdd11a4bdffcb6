//! The learnable threshold: forward and x-gradient exactly Hardshrink's per feature, the
//! threshold's gradient against a scalar reference of each estimator, positivity under an
//! optimiser, saving and loading, and a small training run that finds the best threshold.

use crate::common::{
    assert_same_bits, data_bits, devices, from_bits, gpu_device, gpu_holds, narrow_bits, random,
    to_bits, widen,
};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use burn_hardshrink::{
    LearnedHardshrinkConfig, ThresholdEstimator, hardshrink, learned_hardshrink,
};

fn estimators() -> [ThresholdEstimator; 2] {
    [
        ThresholdEstimator::StraightThrough,
        ThresholdEstimator::Kernel { bandwidth: 0.3 },
    ]
}

/// The reference λ-gradient contribution of one element (f64, straight from the formulas).
fn reference_lambd_grad(x: f64, g: f64, lambd: f64, estimator: ThresholdEstimator) -> f64 {
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

/// One learned-threshold forward and backward through the kernel route: the output's bits, the
/// input gradient's bits, the threshold gradient (widened to f64), and the output of a forward
/// whose input is moved in (the in-place path).
struct LearnedRun {
    output: Vec<u64>,
    moved: Vec<u64>,
    grad_x: Vec<u64>,
    grad_lambd: Vec<f64>,
    /// The threshold gradient summed on the host in f64 from the scalar rule, then rounded to
    /// the dtype as the kernels round their sums.
    reference: Vec<f64>,
}

/// `n` values drawn at `seed` with special values mixed in (turned into `dtype`'s bits on the
/// host, so every device gets the same values).
fn special_values(n: usize, seed: u64, lambd: &[f32]) -> Vec<f32> {
    let values = random([n], Distribution::Normal(0.0, 1.0), seed)
        .try_to_vec::<f32>()
        .unwrap();
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match i % 53 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => 0.0,
            4 => -0.0,
            // Exactly on a band's edge, of either sign (rounded to the dtype alike).
            5 => lambd[i % lambd.len()],
            6 => -lambd[i % lambd.len()],
            _ => v,
        })
        .collect()
}

fn learned_run<const D: usize>(
    device: &Device,
    dtype: DType,
    shape: [usize; D],
    swap: Option<(usize, usize)>,
    dim: Option<usize>,
    lambd: &[f32],
    estimator: ThresholdEstimator,
) -> LearnedRun {
    let n: usize = shape.iter().product();
    let bits = |values: &[f32]| -> Vec<u64> {
        values
            .iter()
            .map(|&v| narrow_bits(v as f64, dtype))
            .collect()
    };
    let ad = device.clone().autodiff();
    let values = bits(&special_values(n, n as u64 + 3, lambd));
    let leaf = from_bits(&values, shape, dtype, &ad).require_grad();
    let view = |t: Tensor<D>| match swap {
        Some((a, b)) => t.swap_dims(a, b),
        None => t,
    };
    let x = view(leaf.clone());
    let upstream = random([n], Distribution::Normal(0.0, 2.0), 11)
        .try_to_vec::<f32>()
        .unwrap();
    let g = from_bits(&bits(&upstream), x.dims(), dtype, &ad);
    let thresholds = from_bits(&bits(lambd), [lambd.len()], dtype, &ad).require_grad();
    let widened = |tensor: Tensor<D>| -> Vec<f64> {
        to_bits(tensor)
            .into_iter()
            .map(|bits| widen(bits, dtype))
            .collect()
    };
    let (xs, gs) = (widened(x.clone()), widened(g.clone()));
    let ls: Vec<f64> = data_bits(thresholds.to_data())
        .into_iter()
        .map(|bits| widen(bits, dtype))
        .collect();
    let inner: usize = dim.map_or(n, |d| x.dims()[d + 1..].iter().product());
    let mut reference = vec![0.0; ls.len()];
    for (i, (&x, &g)) in xs.iter().zip(&gs).enumerate() {
        let f = (i / inner) % ls.len();
        reference[f] += reference_lambd_grad(x, g, ls[f], estimator);
    }
    let reference = reference
        .into_iter()
        .map(|sum| widen(narrow_bits(sum, dtype), dtype))
        .collect();
    let y = learned_hardshrink(x.clone(), thresholds.clone(), dim, estimator);
    let output = to_bits(y.clone());
    let grads = (y * g).sum().backward();
    let grad_x = to_bits(view(leaf.grad(&grads).unwrap()));
    let grad_lambd = thresholds.grad(&grads).unwrap().into_data();
    let grad_lambd = data_bits(grad_lambd)
        .into_iter()
        .map(|bits| widen(bits, dtype))
        .collect();
    // The same forward with the input moved in, its buffer unshared.
    let moved = view(from_bits(&values, shape, dtype, device));
    let lambd = from_bits(&bits(lambd), [lambd.len()], dtype, device);
    let moved = to_bits(learned_hardshrink(moved, lambd, dim, estimator));
    LearnedRun {
        output,
        moved,
        grad_x,
        grad_lambd,
        reference,
    }
}

/// The GPU kernels (forward, and backward with the threshold gradient reduced on the device)
/// against the CPU kernels on Flex, in every dtype the GPU holds: the output and the input
/// gradient bit for bit, the threshold gradient to float-summation tolerance (the GPU sums in
/// f32, the CPU in f64). Layouts cover features last (vectors of thresholds), runs of one
/// feature (a shared threshold), one threshold, a strided view, and enough elements for
/// several partial sums per feature; thresholds include 0, -0, a negative one (the identity),
/// +inf and NaN.
#[test]
#[cfg_attr(
    not(gpu_tests),
    ignore = "no GPU driver was found when the tests were built"
)]
fn gpu_kernels_match_the_cpu_kernels() {
    let gpu = gpu_device();
    let cpu = Device::flex();
    let dtypes: Vec<DType> = [DType::F32, DType::F16, DType::F64, DType::BF16]
        .into_iter()
        .filter(|&dtype| gpu_holds(dtype))
        .collect();
    let thresholds = |features: usize| -> Vec<f32> {
        (0..features)
            .map(|f| match f % 11 {
                0 => 0.0,
                1 => -0.0,
                2 => -1.0,
                3 => f32::INFINITY,
                4 => f32::NAN,
                r => 0.1 * r as f32,
            })
            .collect()
    };
    for &dtype in &dtypes {
        for estimator in estimators() {
            macro_rules! compare {
                ($shape:expr, $swap:expr, $dim:expr, $features:expr) => {{
                    let lambd = thresholds($features);
                    let what = format!(
                        "{dtype:?} {:?} swap {:?} dim {:?} {estimator:?}",
                        $shape, $swap, $dim
                    );
                    let want = learned_run(&cpu, dtype, $shape, $swap, $dim, &lambd, estimator);
                    let got = learned_run(&gpu, dtype, $shape, $swap, $dim, &lambd, estimator);
                    assert_same_bits(
                        &got.output,
                        &want.output,
                        dtype,
                        &format!("forward, {what}"),
                    );
                    assert_same_bits(
                        &got.moved,
                        &want.output,
                        dtype,
                        &format!("forward in place, {what}"),
                    );
                    assert_same_bits(
                        &want.moved,
                        &want.output,
                        dtype,
                        &format!("CPU forward in place, {what}"),
                    );
                    assert_same_bits(
                        &got.grad_x,
                        &want.grad_x,
                        dtype,
                        &format!("x-gradient, {what}"),
                    );
                    check_summed(
                        &want.grad_lambd,
                        &want.reference,
                        dtype,
                        &format!("CPU against the f64 rule, {what}"),
                    );
                    check_summed(
                        &got.grad_lambd,
                        &want.grad_lambd,
                        dtype,
                        &format!("GPU against the CPU, {what}"),
                    );
                }};
            }
            compare!([64, 300], NO_SWAP, Some(1), 300);
            compare!([64, 301], NO_SWAP, Some(1), 301);
            compare!([4, 16, 1000], NO_SWAP, Some(1), 16);
            compare!([3, 5, 7], NO_SWAP, Some(1), 5);
            compare!([5, 7, 3], Some((0, 2)), Some(0), 3);
            compare!([65539], NO_SWAP, None::<usize>, 1);
            compare!([4096, 64], NO_SWAP, Some(1), 64);
            compare!([64, 2, 4096], NO_SWAP, Some(1), 2);
        }
    }
}

/// No transposed view: the tensor as laid out.
const NO_SWAP: Option<(usize, usize)> = None;

/// Threshold gradients summed in f32 against f64 sums of the same terms: equal to a few f32
/// rounding steps of the magnitudes involved, or to one rounding step of the dtype (the sum is
/// rounded to it last). NaN matches NaN, and infinities must match exactly.
fn check_summed(got: &[f64], want: &[f64], dtype: DType, what: &str) {
    let epsilon = match dtype {
        DType::F64 => f64::EPSILON,
        DType::F32 => f32::EPSILON as f64,
        DType::F16 => 1.0 / 1024.0,
        _ => 1.0 / 128.0,
    };
    assert_eq!(got.len(), want.len(), "{what}: λ-gradient length");
    for (f, (&got, &want)) in got.iter().zip(want).enumerate() {
        let close = if want.is_nan() {
            got.is_nan()
        } else if want.is_infinite() {
            got == want
        } else {
            (got - want).abs() <= 1e-4 * want.abs().max(1.0) + epsilon * want.abs()
        };
        assert!(close, "{what}: λ-gradient of feature {f}: {got} vs {want}");
    }
}
