//! Timings on the GPU: the fixed op against Burn's built-in with its bandwidth, and the learned
//! op and a training step against the composed tensor ops. Each row is a `SUMMARY` line.

use crate::Cli;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::hard_shrink;
use burn::tensor::{Device, Distribution, Tensor};
use burn_hardshrink::{
    ThresholdEstimator, hardshrink, learned_hardshrink, learned_hardshrink_composed,
};
use std::time::Instant;
/// The median wall time of `call` in milliseconds, the device synchronised inside the clock;
/// its result is dropped after the clock stops.
fn median_ms<T>(iterations: usize, sync: &impl Fn(), mut call: impl FnMut() -> T) -> f64 {
    for _ in 0..3 {
        drop(call());
        sync();
    }
    let mut times: Vec<f64> = (0..iterations.max(1))
        .map(|_| {
            let start = Instant::now();
            let result = call();
            sync();
            let elapsed = start.elapsed().as_secs_f64() * 1e3;
            drop(result);
            elapsed
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn label(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}M", n >> 20)
    } else {
        n.to_string()
    }
}

/// The fixed op at `n` f32 elements (rows of 1024): forward and forward + backward, ours
/// against the built-in, and the forward's bandwidth (one read and one write per element).
pub fn fixed(device: &Device, n: usize, cli: &Cli, sync: &impl Fn()) {
    let shape = [n / 1024, 1024];
    let x = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), device);
    sync();
    let bytes = 2.0 * 4.0 * n as f64;
    let gbs = |ms: f64| bytes / (ms * 1e-3) / 1e9;
    let ours = median_ms(cli.iterations, sync, || hardshrink(x.clone(), 0.5));
    let builtin = median_ms(cli.iterations, sync, || hard_shrink(x.clone(), 0.5));
    let copy = median_ms(cli.iterations, sync, || x.clone().neg());
    let size = label(n);
    println!(
        "SUMMARY forward {size}: ours {ours:.3} ms ({:.0} GB/s, {:.0}% of {:.0} GB/s peak), \
         built-in {builtin:.3} ms ({:.2}x ours), neg {copy:.3} ms ({:.0} GB/s)",
        gbs(ours),
        100.0 * gbs(ours) / cli.peak_gbs,
        cli.peak_gbs,
        builtin / ours,
        gbs(copy),
    );
    let ad = device.clone().autodiff();
    drop(x);
    let leaf = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &ad).require_grad();
    type Op = fn(Tensor<2>, f64) -> Tensor<2>;
    let step = |op: Op| {
        median_ms(cli.iterations, sync, || {
            let grads = op(leaf.clone(), 0.5).sum().backward();
            leaf.grad(&grads)
        })
    };
    let (ours, builtin) = (step(hardshrink), step(hard_shrink));
    println!(
        "SUMMARY forward+backward {size}: ours {ours:.3} ms, built-in {builtin:.3} ms ({:.2}x ours)",
        builtin / ours
    );
}

/// The learned op at `n` f32 elements, 1024 thresholds (straight-through): its kernels against
/// the composed tensor ops, forward + backward, beside the fixed op's.
pub fn learned(device: &Device, n: usize, cli: &Cli, sync: &impl Fn()) {
    let ad = device.clone().autodiff();
    let x =
        Tensor::<2>::random([n / 1024, 1024], Distribution::Normal(0.0, 1.0), &ad).require_grad();
    let lambd = Tensor::<1>::random([1024], Distribution::Uniform(0.3, 0.7), &ad).require_grad();
    type Learned = fn(Tensor<2>, Tensor<1>, Option<usize>, ThresholdEstimator) -> Tensor<2>;
    let step = |op: Learned| {
        median_ms(cli.iterations, sync, || {
            let y = op(
                x.clone(),
                lambd.clone(),
                Some(1),
                ThresholdEstimator::StraightThrough,
            );
            let grads = y.sum().backward();
            (x.grad(&grads), lambd.grad(&grads))
        })
    };
    let kernel = step(learned_hardshrink);
    let composed = step(learned_hardshrink_composed);
    let fixed = median_ms(cli.iterations, sync, || {
        let grads = hardshrink(x.clone(), 0.5).sum().backward();
        x.grad(&grads)
    });
    println!(
        "SUMMARY learned forward+backward {}: kernels {kernel:.3} ms, composed {composed:.3} ms \
         ({:.2}x kernels), fixed op {fixed:.3} ms (kernels {:.2}x fixed)",
        label(n),
        composed / kernel,
        kernel / fixed
    );

    // A training step of Linear → learned Hardshrink → Linear, a batch of 256 (32 when quick)
    // × 1024: where fusion can merge the composed ops with the bias add before them, and the
    // kernels are one opaque operation each way.
    let batch = if cli.quick { 32 } else { 256 };
    let first: Linear = LinearConfig::new(1024, 1024).init(&ad);
    let second: Linear = LinearConfig::new(1024, 1024).init(&ad);
    let x = Tensor::<2>::random([batch, 1024], Distribution::Normal(0.0, 1.0), &ad);
    let model_step = |op: Learned| {
        median_ms(cli.iterations, sync, || {
            let hidden = op(
                first.forward(x.clone()),
                lambd.clone(),
                Some(1),
                ThresholdEstimator::StraightThrough,
            );
            let grads = second.forward(hidden).sum().backward();
            (first.weight.grad(&grads), lambd.grad(&grads))
        })
    };
    let kernel = model_step(learned_hardshrink);
    let composed = model_step(learned_hardshrink_composed);
    println!(
        "SUMMARY learned model step {batch}x1024: kernels {kernel:.3} ms, composed {composed:.3} \
         ms ({:.2}x kernels)",
        composed / kernel
    );
}
