//! `gpu-check`: the op on one GPU, from a release bundle that needs no Rust toolchain.
//!
//! `scripts/gpu-check.sh build` bundles this binary with the sparse-coding example;
//! `scripts/gpu-check.sh run` runs it on the machine with the GPU. It checks, then measures:
//!
//! 1. PyTorch's golden values (the fixture the suite checks, compiled in), forward and
//!    backward, and random property cases against the scalar rule, in every dtype the device
//!    holds; the learned-threshold kernels against the CPU's.
//! 2. The fixed op at each size, forward and forward + backward: ours against Burn's built-in
//!    `hard_shrink`, and the forward's achieved bandwidth as a fraction of the card's peak
//!    (`--peak-gbs`; an elementwise `neg` is timed beside it as the copy-like limit).
//! 3. The learned op, forward + backward, and a Linear → learned Hardshrink → Linear training
//!    step: its kernels against the composed tensor ops.
//!
//! Every line of the summary starts with `SUMMARY`. Exit status: 0 when every check passed,
//! 1 when one failed, 2 when the device could not be opened.

mod bench;

use burn::tensor::{DType, Device, Distribution, Tensor, TensorData, bf16, f16};
use burn_hardshrink::{
    DeviceName, ThresholdEstimator, hardshrink, learned_hardshrink, supports_dtype,
};
use clap::Parser;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Deserialize;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(about = "Checks and benchmarks burn-hardshrink on one GPU")]
struct Cli {
    /// The device to check.
    #[arg(long, value_enum, default_value_t = DeviceName::Wgpu)]
    device: DeviceName,
    /// Element counts of the fixed op's benchmarks (f32), as `1M`, `16M`, `256M` or plain numbers.
    #[arg(long, value_delimiter = ',', default_value = "1M,16M,256M", value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Element count of the learned op's benchmark (1024 features per row).
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    learned_size: usize,
    /// The card's peak memory bandwidth in GB/s (an H200's HBM3e: 4800).
    #[arg(long, default_value_t = 4800.0)]
    peak_gbs: f64,
    /// Timed calls per contender (the median is reported).
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Smaller checks and model step (CI's reduced run on a software device).
    #[arg(long)]
    quick: bool,
}

fn parse_size(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.trim().strip_suffix(['M', 'm']) {
        Some(digits) => (digits, 1 << 20),
        None => match text.trim().strip_suffix(['K', 'k']) {
            Some(digits) => (digits, 1 << 10),
            None => (text.trim(), 1),
        },
    };
    match digits.parse::<usize>() {
        Ok(count) if count > 0 && (count * unit).is_multiple_of(1024) => Ok(count * unit),
        _ => Err(format!(
            "`{text}` is not an element count that is a multiple of 1024 (e.g. 1M, 16M, 262144)"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let device = match cli.device.open() {
        Ok(device) => device,
        Err(error) => {
            eprintln!("gpu-check: {error}");
            return ExitCode::from(2);
        }
    };
    println!("device: {} ({:?})", cli.device, device);
    // Said, not passed over: a dtype the device does not hold is not checked below.
    let held = held_dtypes(&device);
    let all = [DType::F32, DType::F16, DType::BF16, DType::F64];
    let missing: Vec<_> = all.iter().filter(|d| !held.contains(d)).collect();
    if !missing.is_empty() {
        println!("SUMMARY not held by this device, so not checked: {missing:?}");
    }
    let mut failures = 0;
    failures += check_fixtures(&device);
    failures += check_properties(&device, if cli.quick { 1 << 12 } else { 1 << 16 });
    failures += check_learned(&device, if cli.quick { 64 } else { 1024 });
    let sync = || device.sync().expect("the device finished its work");
    for &n in &cli.sizes {
        bench::fixed(&device, n, &cli, &sync);
    }
    bench::learned(&device, cli.learned_size, &cli, &sync);
    println!(
        "SUMMARY checks: {}",
        if failures == 0 {
            "all passed".to_string()
        } else {
            format!("{failures} FAILED")
        }
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The dtypes the crate runs on this device.
fn held_dtypes(device: &Device) -> Vec<DType> {
    [DType::F32, DType::F16, DType::BF16, DType::F64]
        .into_iter()
        .filter(|&dtype| supports_dtype(device, dtype))
        .collect()
}

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    dtype: String,
    lambd: serde_json::Value,
    x: Vec<u64>,
    y: Vec<u64>,
    grad_out: Vec<u64>,
    grad_in: Vec<u64>,
}

fn dtype_named(name: &str) -> DType {
    match name {
        "f32" => DType::F32,
        "f64" => DType::F64,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        other => panic!("unknown fixture dtype {other}"),
    }
}

fn lambd_of(value: &serde_json::Value) -> f64 {
    match value {
        serde_json::Value::Number(n) => n.as_f64().expect("a number"),
        serde_json::Value::String(s) => s.parse().expect("inf, -inf or nan"),
        other => panic!("unexpected lambd {other}"),
    }
}

/// A rank-1 tensor of `dtype` holding these bit patterns.
fn from_bits(bits: &[u64], dtype: DType, device: &Device) -> Tensor<1> {
    let n = [bits.len()];
    let data = match dtype {
        DType::F32 => TensorData::new(bits.iter().map(|&b| f32::from_bits(b as u32)).collect(), n),
        DType::F64 => TensorData::new(bits.iter().map(|&b| f64::from_bits(b)).collect(), n),
        DType::F16 => TensorData::new(bits.iter().map(|&b| f16::from_bits(b as u16)).collect(), n),
        DType::BF16 => {
            TensorData::new(bits.iter().map(|&b| bf16::from_bits(b as u16)).collect(), n)
        }
        other => panic!("no float data of {other:?}"),
    };
    // With its dtype: a plain `from_data` converts to the device's default float type.
    Tensor::from_data(data, (device, dtype))
}

/// The bit patterns of a tensor's values.
fn bits_of(tensor: Tensor<1>) -> Vec<u64> {
    let data = tensor.into_data();
    match data.dtype() {
        DType::F32 => data.iter::<f32>().map(|v| v.to_bits() as u64).collect(),
        DType::F64 => data.iter::<f64>().map(f64::to_bits).collect(),
        DType::F16 => data.iter::<f16>().map(|v| v.to_bits() as u64).collect(),
        DType::BF16 => data.iter::<bf16>().map(|v| v.to_bits() as u64).collect(),
        other => panic!("no float data of {other:?}"),
    }
}

/// Whether two bit sequences agree: NaN with any NaN, everything else bit for bit.
fn same_bits(got: &[u64], want: &[u64], dtype: DType) -> bool {
    let is_nan = |bits: u64| match dtype {
        DType::F32 => f32::from_bits(bits as u32).is_nan(),
        DType::F64 => f64::from_bits(bits).is_nan(),
        DType::F16 => f16::from_bits(bits as u16).is_nan(),
        _ => bf16::from_bits(bits as u16).is_nan(),
    };
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(&g, &w)| if is_nan(w) { is_nan(g) } else { g == w })
}

/// The fixture's forward and backward on the device, for every dtype it holds.
fn check_fixtures(device: &Device) -> usize {
    let fixture: Fixture = serde_json::from_str(include_str!("../torch_hardshrink.json"))
        .expect("the compiled-in fixture parses");
    let (mut passed, mut failed) = (0, 0);
    for case in &fixture.cases {
        let dtype = dtype_named(&case.dtype);
        if !supports_dtype(device, dtype) {
            continue;
        }
        let lambd = lambd_of(&case.lambd);
        let ad = device.clone().autodiff();
        let x = from_bits(&case.x, dtype, &ad).require_grad();
        let y = hardshrink(x.clone(), lambd);
        let forward = same_bits(&bits_of(y.clone().inner()), &case.y, dtype);
        let grads = (y * from_bits(&case.grad_out, dtype, &ad)).sum().backward();
        let backward = same_bits(
            &bits_of(x.grad(&grads).expect("x is tracked")),
            &case.grad_in,
            dtype,
        );
        if forward && backward {
            passed += 1;
        } else {
            failed += 1;
            println!("FAILED fixture {dtype:?} λ={lambd}: forward {forward}, backward {backward}");
        }
    }
    println!("SUMMARY fixtures: {passed} cases passed, {failed} failed (PyTorch's golden values)");
    // A device that held no dtype at all checked nothing: that is no pass.
    if passed + failed == 0 {
        println!("FAILED fixtures: the device holds none of the fixture's dtypes");
        failed += 1;
    }
    failed
}

/// Random values with special values mixed in, as f64, rounded to `dtype`.
fn sample(n: usize, dtype: DType, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let data = TensorData::random::<f32, _, _>([n], Distribution::Normal(0.0, 1.0), &mut rng);
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        0.5,
        -0.5,
    ];
    data.iter::<f32>()
        .enumerate()
        .map(|(i, v)| match specials.get(i % 97) {
            Some(&special) => special,
            None => f64::from(v),
        })
        .map(|v| round_to(v, dtype))
        .collect()
}

fn round_to(value: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => value as f32 as f64,
        DType::F16 => f16::from_f64(value).to_f64(),
        DType::BF16 => bf16::from_f64(value).to_f64(),
        _ => value,
    }
}

fn to_bits(value: f64, dtype: DType) -> u64 {
    match dtype {
        DType::F32 => (value as f32).to_bits() as u64,
        DType::F16 => f16::from_f64(value).to_bits() as u64,
        DType::BF16 => bf16::from_f64(value).to_bits() as u64,
        _ => value.to_bits(),
    }
}

/// Random inputs and thresholds in every held dtype: the forward and the backward against the
/// spec's scalar rule (λ rounded to the dtype; the band closed; `+0` in it; NaN passes;
/// a negative or NaN λ the identity).
fn check_properties(device: &Device, n: usize) -> usize {
    let (mut passed, mut failed) = (0, 0);
    for dtype in held_dtypes(device) {
        for (seed, lambd) in [0.5, 0.0, 1e-3, 2.0, f64::INFINITY, -1.0, f64::NAN]
            .into_iter()
            .enumerate()
        {
            let xs = sample(n, dtype, seed as u64);
            let gs = sample(n, dtype, seed as u64 + 100);
            let limit = round_to(lambd, dtype);
            let identity = limit.is_nan() || limit < 0.0;
            let inside = |x: f64| !identity && x >= -limit && x <= limit;
            let want_y: Vec<u64> = xs
                .iter()
                .map(|&x| to_bits(if inside(x) { 0.0 } else { x }, dtype))
                .collect();
            let want_g: Vec<u64> = xs
                .iter()
                .zip(&gs)
                .map(|(&x, &g)| to_bits(if inside(x) { 0.0 } else { g }, dtype))
                .collect();
            let ad = device.clone().autodiff();
            let bits = |values: &[f64]| {
                values
                    .iter()
                    .map(|&v| to_bits(v, dtype))
                    .collect::<Vec<_>>()
            };
            let x = from_bits(&bits(&xs), dtype, &ad).require_grad();
            let y = hardshrink(x.clone(), lambd);
            let forward = same_bits(&bits_of(y.clone().inner()), &want_y, dtype);
            let grads = (y * from_bits(&bits(&gs), dtype, &ad)).sum().backward();
            let backward = same_bits(&bits_of(x.grad(&grads).expect("tracked")), &want_g, dtype);
            if forward && backward {
                passed += 1;
            } else {
                failed += 1;
                println!(
                    "FAILED property {dtype:?} λ={lambd}: forward {forward}, backward {backward}"
                );
            }
        }
    }
    println!(
        "SUMMARY properties: {passed} cases passed, {failed} failed (random inputs, {n} each)"
    );
    failed
}

/// The learned-threshold kernels on the device against Flex's CPU kernels, f32, `rows` rows of
/// 1024 features last and 64 blocks of 16 features in the middle, both estimators: output and
/// input gradient bit for bit, the threshold gradient to float-summation tolerance.
fn check_learned(device: &Device, rows: usize) -> usize {
    let (mut passed, mut failed) = (0, 0);
    let estimators = [
        ThresholdEstimator::StraightThrough,
        ThresholdEstimator::Kernel { bandwidth: 0.2 },
    ];
    for (shape, dim) in [(vec![rows, 1024], 1), (vec![64, 16, rows], 1)] {
        for estimator in estimators {
            let run = |device: &Device| -> (Vec<u64>, Vec<u64>, Vec<f32>) {
                let ad = device.clone().autodiff();
                let n: usize = shape.iter().product();
                let features = shape[dim];
                let values = |seed: u64| {
                    let values: Vec<f32> = sample(n, DType::F32, seed)
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    TensorData::new(values, dims3(&shape))
                };
                let lambd: Vec<f32> = (0..features).map(|f| 0.2 + (f % 9) as f32 * 0.1).collect();
                let x = Tensor::<3>::from_data(values(7), &ad).require_grad();
                let lambd = Tensor::<1>::from_floats(lambd.as_slice(), &ad).require_grad();
                let g = Tensor::<3>::from_data(values(8), &ad);
                let y = learned_hardshrink(
                    x.clone(),
                    lambd.clone(),
                    Some(dim3(&shape, dim)),
                    estimator,
                );
                let out = bits_of(y.clone().inner().flatten(0, 2));
                let grads = (y * g).sum().backward();
                let gx = bits_of(x.grad(&grads).expect("tracked").flatten(0, 2));
                let gl = lambd
                    .grad(&grads)
                    .expect("tracked")
                    .into_data()
                    .try_to_vec::<f32>()
                    .expect("f32");
                (out, gx, gl)
            };
            let (want_y, want_gx, want_gl) = run(&Device::flex());
            let (got_y, got_gx, got_gl) = run(device);
            let close = got_gl.iter().zip(&want_gl).all(|(&g, &w)| {
                g == w || (g - w).abs() <= 1e-4 * w.abs().max(1.0) || g.is_nan() && w.is_nan()
            });
            let exact =
                same_bits(&got_y, &want_y, DType::F32) && same_bits(&got_gx, &want_gx, DType::F32);
            if exact && close {
                passed += 1;
            } else {
                failed += 1;
                println!(
                    "FAILED learned {shape:?} dim {dim} {estimator:?}: output and x-gradient \
                     exact {exact}, λ-gradient close {close}"
                );
            }
        }
    }
    println!(
        "SUMMARY learned: {passed} cases passed, {failed} failed (GPU kernels against the CPU's)"
    );
    failed
}

/// A rank-2 or rank-3 shape as rank 3 (a leading 1).
fn dims3(shape: &[usize]) -> [usize; 3] {
    match shape {
        [a, b] => [1, *a, *b],
        [a, b, c] => [*a, *b, *c],
        _ => unreachable!("rank 2 or 3"),
    }
}

/// `dim` of `shape` in its rank-3 form.
fn dim3(shape: &[usize], dim: usize) -> usize {
    dim + 3 - shape.len()
}
