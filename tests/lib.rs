//! The workspace's test suite: `suite/` (PyTorch's golden values on every backend, gradients,
//! properties, learned thresholds, gradient checkpointing, the GPU backend without fusion) and
//! `allocation.rs` (in-place forwards allocate nothing), run by `cargo test --workspace`.
//!
//! The library itself holds no code: it carries the READMEs as documentation, so that every Rust
//! block in them compiles and runs as a doctest, exactly as a reader would paste it.

/// The project's README.
#[doc = include_str!("../README.md")]
pub struct Readme;

/// The library crate's README, the front page of its package.
#[doc = include_str!("../crates/burn-hardshrink/README.md")]
pub struct CrateReadme;
