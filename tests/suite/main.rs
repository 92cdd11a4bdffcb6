//! The project's test suite: PyTorch fixtures, gradients, properties and checkpointing.
#![allow(deprecated)] // NdArray is deprecated upstream; this crate still supports and tests it.

mod checkpointing;
mod common;
mod fixtures;
mod gpu_check;
mod gradients;
mod learned;
mod learned_gpu;
mod properties;
mod simd;
#[cfg(feature = "wgpu")]
mod unfused;
