//! The modules: [`Hardshrink`] (fixed λ) and [`LearnedHardshrink`] (trained λ), with configs.

mod config;
mod hardshrink;
mod learned;

pub use config::HardshrinkConfig;
pub use hardshrink::Hardshrink;
pub use learned::{LearnedHardshrink, LearnedHardshrinkConfig};
