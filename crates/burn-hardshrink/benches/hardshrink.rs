//! Forward and forward+backward at 1K, 64K, 1M and 16M f32 elements on NdArray and Flex:
//! this crate's op against Burn's built-in `hard_shrink` and a plain Rust loop over the same
//! buffer, in one run.
//!
//! `cargo bench -p burn-hardshrink --bench hardshrink`; `HARDSHRINK_BENCH_QUICK=1` keeps only
//! 1K and 64K.

#![allow(deprecated)] // NdArray is deprecated upstream; it is still a backend this crate serves.

use burn::tensor::activation::hard_shrink;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use burn_hardshrink::{
    ThresholdEstimator, hardshrink, learned_hardshrink, learned_hardshrink_composed,
};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const LAMBD: f64 = 0.5;

fn sizes() -> Vec<(&'static str, usize)> {
    let all = vec![
        ("1K", 1 << 10),
        ("64K", 1 << 16),
        ("1M", 1 << 20),
        ("16M", 1 << 24),
    ];
    let quick = std::env::var_os("HARDSHRINK_BENCH_QUICK").is_some();
    all.into_iter()
        .filter(|(_, n)| !quick || *n <= 1 << 16)
        .collect()
}

fn devices() -> Vec<(&'static str, Device)> {
    vec![("flex", Device::flex()), ("ndarray", Device::ndarray())]
}

/// The plain loop the kernels are measured against: the obvious Rust, one pass.
fn loop_forward(src: &[f32], dst: &mut [f32], lambd: f32) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = if x >= -lambd && x <= lambd { 0.0 } else { x };
    }
}

fn loop_backward(output: &[f32], grad: &[f32], dst: &mut [f32]) {
    for ((d, &y), &g) in dst.iter_mut().zip(output).zip(grad) {
        *d = if y != 0.0 { g } else { 0.0 };
    }
}

fn input(n: usize) -> TensorData {
    Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &Device::flex()).into_data()
}

fn forward(c: &mut Criterion) {
    for (size, n) in sizes() {
        let data = input(n);
        let mut group = c.benchmark_group(format!("forward/{size}"));
        group.throughput(Throughput::Elements(n as u64));
        for (backend, device) in devices() {
            let x = Tensor::<1>::from_data(data.clone(), &device);
            group.bench_function(BenchmarkId::new("ours_owned", backend), |b| {
                // A fresh, uniquely owned tensor per call (made outside the timing): in place.
                b.iter_batched(
                    || Tensor::<1>::from_data(data.clone(), &device),
                    |x| hardshrink(x, LAMBD),
                    BatchSize::PerIteration,
                )
            });
            group.bench_function(BenchmarkId::new("ours_shared", backend), |b| {
                b.iter(|| hardshrink(black_box(x.clone()), LAMBD))
            });
            group.bench_function(BenchmarkId::new("builtin", backend), |b| {
                b.iter(|| hard_shrink(black_box(x.clone()), LAMBD))
            });
        }
        let src = data.try_to_vec::<f32>().unwrap();
        let mut dst = vec![0.0f32; n];
        group.bench_function(BenchmarkId::new("plain_loop", "rust"), |b| {
            b.iter(|| loop_forward(black_box(&src), black_box(&mut dst), LAMBD as f32))
        });
        group.finish();
    }
}

fn forward_backward(c: &mut Criterion) {
    for (size, n) in sizes() {
        let data = input(n);
        let mut group = c.benchmark_group(format!("forward_backward/{size}"));
        group.throughput(Throughput::Elements(n as u64));
        for (backend, device) in devices() {
            let device = device.autodiff();
            let x = Tensor::<1>::from_data(data.clone(), &device).require_grad();
            group.bench_function(BenchmarkId::new("ours", backend), |b| {
                b.iter(|| {
                    let grads = hardshrink(x.clone(), LAMBD).backward();
                    x.grad(&grads)
                })
            });
            group.bench_function(BenchmarkId::new("builtin", backend), |b| {
                b.iter(|| {
                    let grads = hard_shrink(x.clone(), LAMBD).backward();
                    x.grad(&grads)
                })
            });
        }
        let src = data.try_to_vec::<f32>().unwrap();
        let ones = vec![1.0f32; n];
        let (mut y, mut grad) = (vec![0.0f32; n], vec![0.0f32; n]);
        group.bench_function(BenchmarkId::new("plain_loop", "rust"), |b| {
            b.iter(|| {
                loop_forward(black_box(&src), &mut y, LAMBD as f32);
                loop_backward(&y, black_box(&ones), &mut grad);
                black_box(&grad);
            })
        });
        group.finish();
    }
}

/// Forward+backward at 1M f32 elements with a learned threshold per feature (1024 × 1024,
/// features on the last axis): the kernel op, the same model from Burn's primitive ops, and the
/// fixed-λ op for the ratio the issue sets (≤ 1.5×).
fn learned(c: &mut Criterion) {
    let (rows, features) = (1024, 1024);
    let data = input(rows * features);
    let mut group = c.benchmark_group("learned_forward_backward/1M");
    group.throughput(Throughput::Elements((rows * features) as u64));
    for (backend, device) in devices() {
        let device = device.autodiff();
        let x = Tensor::<1>::from_data(data.clone(), &device)
            .reshape([rows, features])
            .require_grad();
        let lambd = Tensor::<1>::full([features], LAMBD, &device).require_grad();
        let estimator = ThresholdEstimator::StraightThrough;
        group.bench_function(BenchmarkId::new("ours_learned", backend), |b| {
            b.iter(|| {
                let y = learned_hardshrink(x.clone(), lambd.clone(), Some(1), estimator);
                let grads = y.backward();
                (x.grad(&grads), lambd.grad(&grads))
            })
        });
        group.bench_function(BenchmarkId::new("primitive_ops", backend), |b| {
            b.iter(|| {
                let y = learned_hardshrink_composed(x.clone(), lambd.clone(), Some(1), estimator);
                let grads = y.backward();
                (x.grad(&grads), lambd.grad(&grads))
            })
        });
        group.bench_function(BenchmarkId::new("ours_fixed", backend), |b| {
            b.iter(|| {
                let grads = hardshrink(x.clone(), LAMBD).backward();
                x.grad(&grads)
            })
        });
    }
    group.finish();
}

/// Where splitting across cores starts to pay: the in-place kernel over 32K-element chunks on
/// the calling thread against the same chunks on rayon's pool (exactly what the parallel path
/// runs), for sizes around [`burn_hardshrink::kernels::PARALLEL_THRESHOLD`].
fn parallel_threshold(c: &mut Criterion) {
    use burn_hardshrink::kernels::{Band, forward_in_place};
    use rayon::prelude::*;
    let band = Band::of::<f32>(LAMBD);
    let mut group = c.benchmark_group("parallel_threshold");
    for n in [1 << 14, 1 << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 19] {
        let data = input(n).try_to_vec::<f32>().unwrap();
        let mut buffer = data.clone();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("one_thread", n), |b| {
            b.iter(|| {
                black_box(&mut buffer)
                    .chunks_mut(1 << 15)
                    .for_each(|chunk| forward_in_place(chunk, band))
            })
        });
        group.bench_function(BenchmarkId::new("rayon_chunks", n), |b| {
            b.iter(|| {
                black_box(&mut buffer)
                    .par_chunks_mut(1 << 15)
                    .for_each(|chunk| forward_in_place(chunk, band))
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// The GPU (Burn's wgpu backend, fusion on): forward and forward+backward at 1M and 16M, and
/// Linear → Hardshrink → Linear forward and training step, against the built-in and against
/// `hardshrink_composed` (the same primitive ops as ours under fusion, with Burn's autodiff).
///
/// `cargo bench -p burn-hardshrink --features wgpu --bench hardshrink -- gpu`, with
/// `HARDSHRINK_BENCH_256M=1` for 256M elements too. Skipped, with a message, when there is no
/// adapter.
#[cfg(feature = "wgpu")]
fn gpu(c: &mut Criterion) {
    use burn::nn::{Linear, LinearConfig};
    use burn_hardshrink::hardshrink_composed;

    let device = match burn_hardshrink::device_from_name("wgpu") {
        Ok(device) => device,
        Err(error) => {
            eprintln!("GPU benchmarks skipped: {error}");
            return;
        }
    };
    type Op = fn(Tensor<2>, f64) -> Tensor<2>;
    let ops: [(&str, Op); 3] = [
        ("ours", hardshrink),
        ("builtin", hard_shrink),
        ("composed", hardshrink_composed),
    ];
    let sync = |device: &Device| device.sync().expect("the GPU finished its work");
    // 256M (1 GiB per f32 tensor) is for real GPUs: `HARDSHRINK_BENCH_256M=1` adds it.
    let large = std::env::var_os("HARDSHRINK_BENCH_256M").is_some();
    let sizes = [("1M", 1 << 10), ("16M", 1 << 14), ("256M", 1 << 18)];
    for (size, rows) in sizes
        .into_iter()
        .filter(|&(_, rows)| large || rows < 1 << 18)
    {
        let n = rows * 1024;
        let data = Tensor::<2>::random(
            [rows, 1024],
            Distribution::Normal(0.0, 1.0),
            &Device::flex(),
        )
        .into_data();
        let mut group = c.benchmark_group(format!("gpu_forward/{size}"));
        group.throughput(Throughput::Bytes(2 * 4 * n as u64));
        let x = Tensor::<2>::from_data(data.clone(), &device);
        for (name, op) in ops {
            group.bench_function(BenchmarkId::new(name, "wgpu"), |b| {
                b.iter(|| {
                    let y = op(x.clone(), LAMBD);
                    sync(&device);
                    y
                })
            });
        }
        group.finish();

        let mut group = c.benchmark_group(format!("gpu_forward_backward/{size}"));
        group.throughput(Throughput::Elements(n as u64));
        let ad = device.clone().autodiff();
        let x = Tensor::<2>::from_data(data, &ad).require_grad();
        for (name, op) in ops {
            group.bench_function(BenchmarkId::new(name, "wgpu"), |b| {
                b.iter(|| {
                    let grads = op(x.clone(), LAMBD).sum().backward();
                    let g = x.grad(&grads);
                    sync(&device);
                    g
                })
            });
        }
        group.finish();
    }

    // Linear → op → Linear: where fusion can merge the composed op with the bias add before
    // it. Inference (forward only), then a training step.
    let first: Linear = LinearConfig::new(1024, 1024).init(&device);
    let second: Linear = LinearConfig::new(1024, 1024).init(&device);
    let x = Tensor::<2>::random([256, 1024], Distribution::Normal(0.0, 1.0), &device);
    let mut group = c.benchmark_group("gpu_model_forward/256x1024");
    for (name, op) in ops {
        group.bench_function(BenchmarkId::new(name, "wgpu"), |b| {
            b.iter(|| {
                let y = second.forward(op(first.forward(x.clone()), LAMBD));
                sync(&device);
                y
            })
        });
    }
    group.finish();

    let ad = device.clone().autodiff();
    let first: Linear = LinearConfig::new(1024, 1024).init(&ad);
    let second: Linear = LinearConfig::new(1024, 1024).init(&ad);
    let x = Tensor::<2>::random([256, 1024], Distribution::Normal(0.0, 1.0), &ad);
    let mut group = c.benchmark_group("gpu_model_step/256x1024");
    for (name, op) in ops {
        group.bench_function(BenchmarkId::new(name, "wgpu"), |b| {
            b.iter(|| {
                let y = second.forward(op(first.forward(x.clone()), LAMBD));
                let grads = y.sum().backward();
                let g = first.weight.grad(&grads);
                sync(&device);
                g
            })
        });
    }
    group.finish();
}

#[cfg(not(feature = "wgpu"))]
fn gpu(_: &mut Criterion) {}

criterion_group! {
    name = benches;
    config = config();
    targets = forward, forward_backward, learned, parallel_threshold, gpu
}
criterion_main!(benches);
