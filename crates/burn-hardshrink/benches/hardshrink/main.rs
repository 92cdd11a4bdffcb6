//! Forward and forward+backward at 1K, 64K, 1M and 16M f32 elements on NdArray and Flex:
//! this crate's op against Burn's built-in `hard_shrink` and a plain Rust loop over the same
//! buffer, in one run.
//!
//! `cargo bench -p burn-hardshrink --bench hardshrink`; `HARDSHRINK_BENCH_QUICK=1` keeps only
//! 1K and 64K.
//!
//! With glibc's default malloc, whether a freed 4 MiB buffer is handed back to the kernel (and
//! its pages faulted in again on the next call) depends on how many such buffers a graph frees
//! together, so the 1M forward + backward rows flip between two speeds from run to run. For
//! numbers that compare the ops rather than the allocator's trimming, run it (and PyTorch's
//! script) with
//! `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824`.

#![allow(deprecated)] // NdArray is deprecated upstream; it is still a backend this crate serves.

use burn::tensor::activation::hard_shrink;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use burn_hardshrink::{
    ThresholdEstimator, hardshrink, learned_hardshrink, learned_hardshrink_composed,
};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

mod gpu;
mod threads;

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

/// The plain loops the kernels are measured against: the obvious Rust, one pass, vectorised by
/// the compiler (SSE2 in a default build; `*_avx2` the same loop compiled for AVX2, the honest
/// limit on a machine that has it). The assembly was checked once: packed compares and selects.
mod plain {
    use rayon::prelude::*;

    #[inline(always)]
    pub fn shrink(x: f32, lambd: f32) -> f32 {
        if x >= -lambd && x <= lambd { 0.0 } else { x }
    }

    #[inline(always)]
    pub fn pass(y: f32, g: f32) -> f32 {
        if y != 0.0 { g } else { 0.0 }
    }

    /// Forward in place, on the calling thread.
    pub fn forward_in_place(values: &mut [f32], lambd: f32) {
        for x in values.iter_mut() {
            *x = shrink(*x, lambd);
        }
    }

    /// The same loop compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub fn forward_in_place_avx2(values: &mut [f32], lambd: f32) {
        for x in values.iter_mut() {
            *x = shrink(*x, lambd);
        }
    }

    /// Forward in place, one half per core.
    pub fn forward_in_place_split(values: &mut [f32], lambd: f32) {
        let half = values.len().div_ceil(2).max(1);
        values
            .par_chunks_mut(half)
            .for_each(|part| forward_in_place(part, lambd));
    }

    /// A forward over a buffer in place, with λ.
    pub type InPlace = fn(&mut [f32], f32);

    /// The in-place loops this CPU runs, by benchmark name.
    pub fn in_place_loops() -> Vec<(&'static str, InPlace)> {
        let mut loops: Vec<(&'static str, InPlace)> = vec![
            ("in_place", forward_in_place),
            ("in_place_2_threads", forward_in_place_split),
        ];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: listed only when the CPU has AVX2.
            loops.push(("in_place_avx2", |values, lambd| unsafe {
                forward_in_place_avx2(values, lambd)
            }));
        }
        loops
    }

    /// Forward into a fresh `Vec`, as an op that keeps its input must.
    pub fn forward_fresh(src: &[f32], lambd: f32) -> Vec<f32> {
        src.iter().map(|&x| shrink(x, lambd)).collect()
    }

    /// Forward, then backward into the gradient buffer in place: two passes.
    pub fn forward_backward(x: &[f32], y: &mut [f32], grad: &mut [f32], lambd: f32) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = shrink(x, lambd);
        }
        for (g, &y) in grad.iter_mut().zip(y.iter()) {
            *g = pass(y, *g);
        }
    }
}

fn input(n: usize) -> TensorData {
    Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &Device::flex()).into_data()
}

/// Every contender is timed through `iter_batched` with one call per batch: inputs are made and
/// outputs freed outside the clock, for ours, the built-in and the plain loops alike.
fn forward(c: &mut Criterion) {
    let lambd = LAMBD as f32;
    for (size, n) in sizes() {
        let data = input(n);
        let mut group = c.benchmark_group(format!("forward/{size}"));
        group.throughput(Throughput::Elements(n as u64));
        for (backend, device) in devices() {
            let x = Tensor::<1>::from_data(data.clone(), &device);
            group.bench_function(BenchmarkId::new("ours_owned", backend), |b| {
                // A fresh, uniquely owned tensor per call: in place.
                b.iter_batched(
                    || Tensor::<1>::from_data(data.clone(), &device),
                    |x| hardshrink(x, LAMBD),
                    BatchSize::PerIteration,
                )
            });
            group.bench_function(BenchmarkId::new("ours_shared", backend), |b| {
                b.iter_batched(
                    || x.clone(),
                    |x| hardshrink(x, LAMBD),
                    BatchSize::PerIteration,
                )
            });
            group.bench_function(BenchmarkId::new("builtin", backend), |b| {
                b.iter_batched(
                    || x.clone(),
                    |x| hard_shrink(x, LAMBD),
                    BatchSize::PerIteration,
                )
            });
        }
        let src = data.try_to_vec::<f32>().unwrap();
        for (name, run) in plain::in_place_loops() {
            group.bench_function(BenchmarkId::new("plain_loop", name), |b| {
                b.iter_batched(
                    || src.clone(),
                    |mut v| {
                        run(&mut v, lambd);
                        v
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        group.bench_function(BenchmarkId::new("plain_loop", "fresh_vec"), |b| {
            b.iter_batched(
                || (),
                |()| plain::forward_fresh(&src, lambd),
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

/// `(act(x) * g).sum().backward()` and `x`'s gradient, against the same graph with no
/// activation (`(x * g).sum()`: Burn's own cost), the built-in and the plain two passes. The
/// gradients are returned, so they are freed outside the clock.
fn forward_backward(c: &mut Criterion) {
    type Act = fn(Tensor<1>, f64) -> Tensor<1>;
    let contenders: [(&str, Act); 3] = [
        ("ours", hardshrink),
        ("builtin", hard_shrink),
        ("no_activation", |x, _| x),
    ];
    for (size, n) in sizes() {
        let data = input(n);
        let upstream = input(n);
        let mut group = c.benchmark_group(format!("forward_backward/{size}"));
        group.throughput(Throughput::Elements(n as u64));
        for (backend, device) in devices() {
            let device = device.autodiff();
            let x = Tensor::<1>::from_data(data.clone(), &device).require_grad();
            let g = Tensor::<1>::from_data(upstream.clone(), &device);
            for (name, act) in contenders {
                group.bench_function(BenchmarkId::new(name, backend), |b| {
                    b.iter_batched(
                        || (x.clone(), g.clone()),
                        |(x_in, g)| {
                            let grads = (act(x_in, LAMBD) * g).sum().backward();
                            (x.grad(&grads), grads)
                        },
                        BatchSize::PerIteration,
                    )
                });
            }
        }
        let src = data.try_to_vec::<f32>().unwrap();
        let grad = upstream.try_to_vec::<f32>().unwrap();
        group.bench_function(BenchmarkId::new("plain_loop", "two_passes"), |b| {
            b.iter_batched(
                || (vec![0.0f32; n], grad.clone()),
                |(mut y, mut g)| {
                    plain::forward_backward(&src, &mut y, &mut g, LAMBD as f32);
                    (y, g)
                },
                BatchSize::PerIteration,
            )
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
        type Op = fn(Tensor<2>, Tensor<1>) -> Tensor<2>;
        let ops: [(&str, Op); 3] = [
            ("ours_learned", |x, l| {
                learned_hardshrink(x, l, Some(1), ThresholdEstimator::StraightThrough)
            }),
            ("primitive_ops", |x, l| {
                learned_hardshrink_composed(x, l, Some(1), ThresholdEstimator::StraightThrough)
            }),
            ("ours_fixed", |x, _| hardshrink(x, LAMBD)),
        ];
        for (name, op) in ops {
            group.bench_function(BenchmarkId::new(name, backend), |b| {
                b.iter_batched(
                    || (x.clone(), lambd.clone()),
                    |(x_in, l_in)| {
                        let grads = op(x_in, l_in).sum().backward();
                        (x.grad(&grads), lambd.grad(&grads), grads)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

/// The learned backward's kernel alone (straight-through, features on the last axis:
/// `rows × 1024`) against the fixed op's backward kernel over the same gradient: as the kernel
/// runs it (split across rayon's pool from 512K elements) and in blocks of 128 rows on
/// the calling thread. Warm here; [`cold_learned`] repeats it with the pool asleep.
fn learned_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("learned_threads");
    for n in LEARNED_SIZES {
        let x = input(n).try_to_vec::<f32>().unwrap();
        let g = input(n).try_to_vec::<f32>().unwrap();
        group.throughput(Throughput::Elements(n as u64));
        for (name, contender) in learned_contenders() {
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_batched(|| g.clone(), |g| contender(&x, g), BatchSize::PerIteration)
            });
        }
    }
    group.finish();
    if filtered_in("learned_threads") {
        cold_learned();
    }
}

const LEARNED_SIZES: [usize; 5] = [1 << 16, 1 << 18, 1 << 19, 1 << 20, 1 << 22];

/// The learned backward's kernel alone, f32, warm, in each layout and estimator its reduction
/// serves: thresholds along the row (`rows × 1024`, features last), runs of one feature
/// (`64 × 16 × 1024`, features in the middle) and one threshold for the whole buffer (the
/// sparse-coding example's layers: 128 × 128 there), straight-through and the kernel estimator
/// (window 0.07, the example's).
fn learned_layouts(c: &mut Criterion) {
    use burn_hardshrink::kernels::{FeatureLayout, learned_backward_in_place};
    let mut group = c.benchmark_group("learned_layouts");
    let layouts: [(&str, [usize; 3]); 4] = [
        ("rows_1M", [1024, 1024, 1]),
        ("runs_1M", [64, 16, 1024]),
        ("single_16K", [1, 1, 128 * 128]),
        ("single_1M", [1, 1, 1 << 20]),
    ];
    let estimators = [
        ("straight_through", ThresholdEstimator::StraightThrough),
        ("kernel", ThresholdEstimator::Kernel { bandwidth: 0.07 }),
    ];
    for (name, [outer, features, inner]) in layouts {
        let n = outer * features * inner;
        let (x, g) = (
            input(n).try_to_vec::<f32>().unwrap(),
            input(n).try_to_vec::<f32>().unwrap(),
        );
        let layout = FeatureLayout {
            outer,
            features,
            inner,
        };
        let lambd = vec![LAMBD as f32; features];
        group.throughput(Throughput::Elements(n as u64));
        for (estimator_name, estimator) in estimators {
            group.bench_function(BenchmarkId::new(estimator_name, name), |b| {
                b.iter_batched(
                    || g.clone(),
                    |mut g| {
                        let sums = learned_backward_in_place(&x, &mut g, &lambd, layout, estimator);
                        (g, sums)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

/// A backward over `(x, g)` that hands the gradient back for dropping outside the clock.
type LearnedContender = fn(&[f32], Vec<f32>) -> (Vec<f32>, Vec<f64>);

fn learned_contenders() -> [(&'static str, LearnedContender); 3] {
    use burn_hardshrink::kernels::{FeatureLayout, backward_in_place, learned_backward_in_place};
    fn learned(x: &[f32], g: &mut [f32]) -> Vec<f64> {
        let layout = FeatureLayout::new(&[x.len() / 1024, 1024], Some(1));
        let lambd = [LAMBD as f32; 1024];
        learned_backward_in_place(x, g, &lambd, layout, ThresholdEstimator::StraightThrough)
    }
    [
        ("fixed", |x, mut g| {
            backward_in_place(&mut g, x);
            (g, Vec::new())
        }),
        ("learned_pool", |x, mut g| {
            let sums = learned(x, &mut g);
            (g, sums)
        }),
        ("learned_one_thread", |x, mut g| {
            // Blocks of 128 rows, each below the split threshold, one after another on the
            // calling thread (where the gradient's copy sits in cache, as for `fixed`).
            let block = 128 * 1024;
            let mut sums = vec![0.0; 1024];
            for (x, g) in x.chunks(block).zip(g.chunks_mut(block)) {
                let part = learned(x, g);
                sums.iter_mut().zip(part).for_each(|(s, p)| *s += p);
            }
            (g, sums)
        }),
    ]
}

/// [`learned_threads`] with each call after 20 ms idle (rayon's workers asleep): 40 calls of
/// each contender, alternating, gradients copied and freed outside the clock; medians printed.
fn cold_learned() {
    println!("learned_threads, cold pool (median of 40 calls after 20 ms idle):");
    for n in LEARNED_SIZES {
        let x = input(n).try_to_vec::<f32>().unwrap();
        let g = input(n).try_to_vec::<f32>().unwrap();
        let contenders = learned_contenders();
        let mut times = vec![Vec::new(); contenders.len()];
        for _ in 0..40 {
            for ((_, contender), times) in contenders.iter().zip(&mut times) {
                let g = g.clone();
                std::thread::sleep(Duration::from_millis(20));
                let start = Instant::now();
                let out = black_box(contender(&x, black_box(g)));
                times.push(start.elapsed());
                drop(out);
            }
        }
        let mut line = format!("  {n:>9} elements:");
        for ((name, _), times) in contenders.iter().zip(times) {
            line += &format!(" {name} {:>10.1?}", median(times));
        }
        println!("{line}");
    }
}

/// Whether criterion's name filter (if any) selects `group`: the plain-loop measurements run
/// outside criterion, which would not filter them.
fn filtered_in(group: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| group.contains(f.as_str()))
}

/// The middle of the plain loops' timings.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = forward, forward_backward, learned, learned_threads, learned_layouts, threads::parallel_threshold, gpu::gpu
}
criterion_main!(benches);
