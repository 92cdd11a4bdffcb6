#![warn(missing_docs)]
//! Sparse coding with learned iterative hard thresholding, trained with burn-train.
//!
//! Recover sparse codes `x ∈ Rⁿ` from `y = A x + noise` with an unfolded network of `K` layers
//! whose thresholds `λ_k` are learned through [`burn_hardshrink::LearnedHardshrink`], beside its
//! soft-threshold twin (LISTA-CP) trained the same way, and compare both with ISTA, FISTA and IHT
//! run for as many iterations.
//!
//! - [`config`]: the experiment's configuration and its two presets.
//! - [`problem`]: the dictionary and the samples, each a pure function of its seed and index.
//! - [`model`]: the unfolded networks and their training and validation steps.
//! - [`training`]: the training recipe, as burn-train launches.
//! - [`data`], [`metric`]: burn-train's data loaders and metrics.
//! - [`evaluate`], [`scores`], [`baselines`], [`least_squares`], [`plot`]: what a run measures and
//!   leaves behind.
//! - [`run_dir`]: the run directory, its lock and its sealed checkpoints; [`error`].

pub mod baselines;
pub mod config;
pub mod data;
pub mod error;
pub mod evaluate;
pub mod least_squares;
pub mod metric;
pub mod model;
pub mod plot;
pub mod problem;
pub mod run_dir;
pub mod scores;
pub mod training;
