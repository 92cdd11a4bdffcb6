#![warn(missing_docs)]
//! Sparse coding with learned iterative hard thresholding (LISTA-style unfolding of IHT).
//!
//! Recover sparse codes `x ∈ Rⁿ` from `y = A x + noise` with a network of `K` layers
//!
//! ```text
//! x_{k+1} = Hardshrink_{λ_k}( x_k + W_kᵀ (y − A x_k) ),   x₀ = 0
//! ```
//!
//! whose weights `W_k` and thresholds `λ_k` are trained (the thresholds through
//! [`burn_hardshrink::LearnedHardshrink`]), and compare it with ISTA, FISTA and IHT run for as
//! many iterations. [`run`] does everything the command line does.
//!
//! ```no_run
//! use sparse_coding::{RunConfig, RunOptions, run};
//!
//! let config = RunConfig { steps: 500, ..RunConfig::default() };
//! let outcome = run(&config, "runs/quick".as_ref(), &RunOptions::default()).unwrap();
//! ```

pub mod baselines;
pub mod config;
pub mod error;
pub mod font;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod problem;
pub mod progress;
pub mod rng;
pub mod rundir;
pub mod train;

pub use config::{Preset, RunConfig};
pub use error::Error;
pub use train::{Outcome, Results, RunOptions, resume, run};
