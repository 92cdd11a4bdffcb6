//! Bytes the autodiff graph keeps per element for the activation's backward: this crate's
//! node against Burn's built-in `hard_shrink`, measured with a counting allocator on the CPU
//! and with the device's memory pool (bytes in use, after a sync) on the GPU.
//!
//! `cargo bench -p burn-hardshrink --bench memory` (`--features wgpu` adds the GPU)
//!
//! Two settings, each against the same graph with no activation at all:
//! - `isolated`: `loss = act(h).sum()`; nothing after the activation keeps its output.
//! - `model`: `loss = (act(h) * w).sum()` with `w` trained; the next layer keeps the output for
//!   `w`'s gradient, as a Linear does.

#![allow(deprecated)] // NdArray is deprecated upstream; it is still a backend this crate serves.

use burn::tensor::activation::hard_shrink;
use burn::tensor::{Device, Distribution, Tensor};
use burn_hardshrink::hardshrink;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 1 << 20;

#[derive(Clone, Copy)]
enum Act {
    None,
    Ours,
    Builtin,
}

/// Live bytes: the heap's on the CPU; on the GPU the memory pool's, once queued work has run.
fn live(device: &Device, gpu: bool) -> isize {
    if !gpu {
        return LIVE.load(Ordering::SeqCst);
    }
    device.sync().expect("the GPU finished its work");
    let usage = device
        .memory_pool_usage()
        .expect("a GPU device reports its memory pool");
    usage.bytes_in_use as isize
}

/// Live bytes held after the forward pass, before `backward`, for one graph.
fn retained(device: &Device, gpu: bool, act: Act, model: bool) -> isize {
    let x = Tensor::<1>::random([N], Distribution::Normal(0.0, 1.0), device).require_grad();
    // In the model setting `w` is a trained weight, so its product keeps the activation's output.
    let w = Tensor::<1>::random([N], Distribution::Normal(0.0, 1.0), device);
    let w = if model { w.require_grad() } else { w };
    let before = live(device, gpu);
    let h = x.clone() * 2.0;
    let y = match act {
        Act::None => h,
        Act::Ours => hardshrink(h, 0.5),
        Act::Builtin => hard_shrink(h, 0.5),
    };
    let loss = if model {
        (y * w.clone()).sum()
    } else {
        y.sum()
    };
    let held = live(device, gpu) - before;
    let grads = loss.backward();
    drop(grads);
    held
}

/// The wgpu device when the bench is built with `--features wgpu` and an adapter opens.
fn gpu_device() -> Option<(&'static str, Device, bool)> {
    if !cfg!(feature = "wgpu") {
        return None;
    }
    match burn_hardshrink::device_from_name("wgpu") {
        Ok(device) => Some(("wgpu", device, true)),
        Err(error) => {
            eprintln!("GPU skipped: {error}");
            None
        }
    }
}

fn main() {
    println!(
        "| backend | setting | no activation | ours | built-in | ours − none | built-in − none |"
    );
    println!("|---|---|---|---|---|---|---|");
    let cpus = [
        ("flex", Device::flex(), false),
        ("ndarray", Device::ndarray(), false),
    ];
    for (name, device, gpu) in cpus.into_iter().chain(gpu_device()) {
        let device = device.autodiff();
        for (setting, model) in [("isolated", false), ("model", true)] {
            // Median of five, per element.
            let measure = |act| {
                let mut runs: Vec<f64> = (0..5)
                    .map(|_| retained(&device, gpu, act, model) as f64 / N as f64)
                    .collect();
                runs.sort_by(f64::total_cmp);
                runs[2]
            };
            let (none, ours, builtin) = (
                measure(Act::None),
                measure(Act::Ours),
                measure(Act::Builtin),
            );
            println!(
                "| {name} | {setting} | {none:.2} | {ours:.2} | {builtin:.2} | {:.2} | {:.2} |",
                ours - none,
                builtin - none
            );
        }
    }
}
