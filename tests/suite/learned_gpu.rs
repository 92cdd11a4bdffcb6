//! The learned threshold's GPU kernels against its CPU kernels: the same forward and backward
//! on special values, in every dtype the GPU holds and in every layout the kernels route apart.

use crate::common::{
    assert_same_bits, data_bits, from_bits, gpu_device, gpu_holds, narrow_bits, random, to_bits,
    widen,
};
use crate::learned::{estimators, reference_lambd_grad};
use burn::tensor::{DType, Device, Distribution, Tensor};
use burn_hardshrink::{ThresholdEstimator, learned_hardshrink};

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
