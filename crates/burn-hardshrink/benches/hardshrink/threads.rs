//! Where splitting one call across cores starts to pay, with the thread pool warm and cold.

use super::{LAMBD, devices, filtered_in, input, median};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use burn_hardshrink::hardshrink;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Where splitting across cores starts to pay: the in-place kernel over 32K-element chunks on
/// the calling thread against the same chunks on rayon's pool (exactly what the parallel path
/// runs), with the pool warm (criterion's back-to-back calls) and cold (see [`cold_pool`]).
pub fn parallel_threshold(c: &mut Criterion) {
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
