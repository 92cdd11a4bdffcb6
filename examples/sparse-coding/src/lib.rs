#![warn(missing_docs)]
//! Sparse coding with learned iterative hard thresholding (LISTA-style unfolding of IHT),
//! trained with burn-train.
//!
//! Recover sparse codes `x ∈ Rⁿ` from `y = A x + noise` with a network of `K` layers
//!
//! ```text
//! x_{k+1} = Hardshrink_{λ_k}( x_k + W_kᵀ (y − A x_k) + β_k (x_k − x_{k−1}) ),   x₀ = 0
//! ```
//!
//! (`W_k = γ_k·W` with ALISTA's analytic `W`, or free; the momentum `β_k` optional) whose
//! weights, steps, momenta and thresholds `λ_k` are trained (the thresholds through
//! [`burn_hardshrink::LearnedHardshrink`]), and compare it with its soft-threshold twin
//! (LISTA-CP, the same layers with soft thresholding, trained the same way) and with ISTA, FISTA
//! and IHT run for as many iterations. [`run()`] does everything the command line does.
//!
//! - [`problem`]: the dictionary and the samples, each a pure function of its seed and index.
//! - [`data`]: burn-train's data loaders (fresh samples every step, a fixed validation set).
//! - [`model`]: the unfolded network, with its training and validation steps.
//! - [`metrics`]: NMSE and support scores, on the host and as burn-train metrics.
//! - [`training`]: the burn-train launch; [`checkpoint`]: crash-safe checkpoints and resume.
//! - [`baselines`]: ISTA, FISTA, IHT; [`results`], [`plot`]: what a run leaves behind.
//!
//! ```no_run
//! use sparse_coding::{RunConfig, RunOptions, run};
//!
//! let config = RunConfig { steps: 500, ..RunConfig::default() };
//! let outcome = run(&config, "runs/quick".as_ref(), &RunOptions::default()).unwrap();
//! ```

pub mod baselines;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod problem;
pub mod results;
pub mod run;
pub mod training;

pub use config::{Preset, RunConfig};
pub use error::Error;
pub use results::Results;
pub use run::{Outcome, RunOptions, resume, run};
