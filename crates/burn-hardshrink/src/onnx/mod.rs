//! ONNX in and out, with burn-onnx 0.22.
//!
//! - `onnx-import` (for a build script): [`ShrinkOverride`] makes burn-onnx's generated code
//!   call this crate for ONNX `Shrink`, and [`rewrite_torch_hardshrink`] turns the comparisons
//!   `torch.onnx.export` writes for `nn.Hardshrink` into `Shrink` first.
//! - `onnx-export`: [`export`] runs burn-onnx's exporter with every Hardshrink and
//!   LearnedHardshrink lowered to ONNX.
//!
//! `examples/onnx-port` shows both ways, and PyTorch weights loaded through burn-store.

#[cfg(feature = "onnx-export")]
pub(crate) mod export;
mod graph;
#[cfg(feature = "onnx-import")]
mod import;

#[cfg(feature = "onnx-export")]
pub use export::export;
#[cfg(feature = "onnx-import")]
pub use import::{ShrinkOverride, rewrite_torch_hardshrink};
