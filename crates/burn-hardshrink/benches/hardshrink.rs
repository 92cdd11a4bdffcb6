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

/// Where splitting across cores starts to pay: the in-place kernel over 32K-element chunks on
/// the calling thread against the same chunks on rayon's pool (exactly what the parallel path
/// runs), with the pool warm (criterion's back-to-back calls) and cold (see [`cold_pool`]).
fn parallel_threshold(c: &mut Criterion) {
    let mut group = c.benchmark_group("parallel_threshold");
    for n in THRESHOLD_SIZES {
        let data = input(n).try_to_vec::<f32>().unwrap();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("one_thread", n), |b| {
            b.iter_batched(|| data.clone(), chunks_one_thread, BatchSize::PerIteration)
        });
        group.bench_function(BenchmarkId::new("rayon_chunks", n), |b| {
            b.iter_batched(|| data.clone(), chunks_on_rayon, BatchSize::PerIteration)
        });
    }
    group.finish();
    if filtered_in("parallel_threshold") {
        cold_pool();
        busy_pool();
    }
}

const THRESHOLD_SIZES: [usize; 5] = [1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24];
const CHUNK: usize = 1 << 15;

fn chunks_one_thread(mut values: Vec<f32>) -> Vec<f32> {
    use burn_hardshrink::kernels::{Band, forward_in_place};
    let band = Band::of::<f32>(LAMBD);
    values
        .chunks_mut(CHUNK)
        .for_each(|part| forward_in_place(part, band));
    values
}

fn chunks_on_rayon(mut values: Vec<f32>) -> Vec<f32> {
    use burn_hardshrink::kernels::{Band, forward_in_place};
    use rayon::prelude::*;
    let band = Band::of::<f32>(LAMBD);
    values
        .par_chunks_mut(CHUNK)
        .for_each(|part| forward_in_place(part, band));
    values
}

/// The same two contenders with a cold pool: each call comes after 20 ms idle, when rayon's
/// workers have gone to sleep (as between the layers of a model busy elsewhere). Criterion would
/// sleep once per iteration for thousands of iterations, so this is a plain loop: 60 calls of
/// each, alternating, inputs copied and outputs freed outside the clock; medians printed.
fn cold_pool() {
    println!("parallel_threshold, cold pool (median of 60 calls after 20 ms idle):");
    for n in THRESHOLD_SIZES {
        let data = input(n).try_to_vec::<f32>().unwrap();
        let contenders: [fn(Vec<f32>) -> Vec<f32>; 2] = [chunks_one_thread, chunks_on_rayon];
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..60 {
            for (contender, times) in contenders.iter().zip(&mut times) {
                let values = data.clone();
                std::thread::sleep(Duration::from_millis(20));
                let start = Instant::now();
                let values = black_box(contender(black_box(values)));
                times.push(start.elapsed());
                drop(values);
            }
        }
        let [one, split] = times.map(median);
        println!("  {n:>9} elements: one thread {one:>10.1?}, rayon chunks {split:>10.1?}");
    }
    // The op's forward of a shared input (a pass into a fresh buffer, twice the memory traffic
    // of the in-place pass), cold, on both backends.
    println!("forward of a shared input (a fresh output), cold pool (median of 60 calls):");
    for n in THRESHOLD_SIZES {
        let data = input(n);
        let mut line = format!("  {n:>9} elements:");
        for (backend, device) in devices() {
            let x = Tensor::<1>::from_data(data.clone(), &device);
            let times: Vec<Duration> = (0..60)
                .map(|_| {
                    std::thread::sleep(Duration::from_millis(20));
                    let start = Instant::now();
                    let y = black_box(hardshrink(black_box(x.clone()), LAMBD));
                    let elapsed = start.elapsed();
                    drop(y);
                    elapsed
                })
                .collect();
            line += &format!(" {backend} {:>10.1?}", median(times));
        }
        println!("{line}");
    }
}

/// The same contenders, and the op's shared forward on Flex, while Burn's own work keeps
/// rayon's pool busy: a second thread multiplying 512 x 512 matrices on Flex, whose gemm runs on
/// the same global pool (as a model's matmuls would around the activation). Each size is timed
/// idle and busy, 40 calls of each contender, alternating, medians printed.
fn busy_pool() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    type Contender = (&'static str, Box<dyn Fn(&TensorData) -> Duration>);
    let timed = |f: fn(Vec<f32>) -> Vec<f32>| {
        move |data: &TensorData| {
            let values = data.to_vec::<f32>().unwrap();
            let start = Instant::now();
            let values = black_box(f(black_box(values)));
            let elapsed = start.elapsed();
            drop(values);
            elapsed
        }
    };
    let contenders: Vec<Contender> = vec![
        ("one thread", Box::new(timed(chunks_one_thread))),
        ("rayon chunks", Box::new(timed(chunks_on_rayon))),
        (
            "op, shared input (flex)",
            Box::new(|data: &TensorData| {
                let x = Tensor::<1>::from_data(data.clone(), &Device::flex());
                let start = Instant::now();
                let y = black_box(hardshrink(black_box(x.clone()), LAMBD));
                let elapsed = start.elapsed();
                drop((x, y));
                elapsed
            }),
        ),
    ];
    println!("parallel_threshold, pool idle vs busy with Flex matmuls (median of 40 calls):");
    for n in [1 << 20, 1 << 22, 1 << 24] {
        let data = input(n);
        for busy in [false, true] {
            let stop = Arc::new(AtomicBool::new(false));
            let worker = busy.then(|| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let device = Device::flex();
                    let a = Tensor::<2>::random([512, 512], Distribution::Default, &device);
                    let mut matmuls = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        drop(black_box(a.clone().matmul(a.clone())));
                        matmuls += 1;
                    }
                    matmuls
                })
            });
            std::thread::sleep(Duration::from_millis(50));
            let mut times = vec![Vec::new(); contenders.len()];
            for _ in 0..40 {
                for ((_, time), times) in contenders.iter().zip(&mut times) {
                    times.push(time(&data));
                }
            }
            stop.store(true, Ordering::Relaxed);
            let matmuls = worker.map(|w| w.join().unwrap());
            let mut line = format!("  {n:>9} elements, {}:", if busy { "busy" } else { "idle" });
            for ((name, _), times) in contenders.iter().zip(times) {
                line += &format!(" {name} {:>9.1?};", median(times));
            }
            if let Some(matmuls) = matmuls {
                line += &format!(" ({matmuls} matmuls beside)");
            }
            println!("{line}");
        }
    }
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
    targets = forward, forward_backward, learned, learned_threads, learned_layouts, parallel_threshold, gpu
}
criterion_main!(benches);
