//! Moving a uniquely owned tensor into `Hardshrink::forward` allocates no new buffer; a shared
//! input gets a fresh one and is left as it was.
//!
//! A counting global allocator measures the bytes allocated during each call. Its own test
//! binary keeps other tests' allocations out of the count.

#![allow(deprecated)] // NdArray is deprecated upstream; this crate still supports and tests it.

use burn::tensor::{DType, Device, Int, Tensor};
use burn_hardshrink::HardshrinkConfig;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.load(Ordering::SeqCst);
    let out = f();
    (out, ALLOCATED.load(Ordering::SeqCst) - before)
}

#[test]
fn owned_input_is_shrunk_in_place_and_shared_input_is_copied() {
    let n = 1 << 20;
    let act = HardshrinkConfig::new().init();
    for device in [Device::flex(), Device::ndarray()] {
        for dtype in [DType::F32, DType::F64] {
            let bytes = n * dtype.size();
            let make = || {
                Tensor::<1, Int>::arange(0..n as i64, &device)
                    .float()
                    .cast(dtype)
                    .div_scalar(n as f64 / 2.0)
                    .sub_scalar(1.0)
            };

            let x = make();
            x.to_data(); // settle any lazy work before measuring
            let (y, owned) = allocated_during(|| act.forward(x));
            assert!(
                owned < bytes / 100,
                "{device:?} {dtype:?}: moved-in input allocated {owned} bytes (buffer {bytes})"
            );
            let values = y.into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
            assert_eq!(values[n / 2], 0.0);
            assert_eq!(values[0], -1.0);

            let x = make();
            x.to_data();
            let before = x.to_data();
            let (y, shared) = allocated_during(|| act.forward(x.clone()));
            assert!(
                shared >= bytes,
                "{device:?} {dtype:?}: shared input allocated only {shared} bytes"
            );
            assert_eq!(x.into_data(), before, "the caller's tensor changed");
            drop(y);
        }
    }
}
