//! Unfolded learned iterative hard thresholding.
//!
//! ```text
//! x₀ = 0,   x_{k+1} = Hardshrink_{λ_k}( x_k + W_kᵀ (y − A x_k) ),   k = 0 … K−1
//! ```
//!
//! Each layer has its own `W_k` (m × n, started at `A / L` with `L = ‖A‖₂²`, the step size that
//! keeps the plain iteration stable) and its own threshold `λ_k`, learned through
//! [`LearnedHardshrink`] or held at the fixed schedule. Samples are rows, so in code the layer
//! reads `x + (y − x Aᵀ) W`.

use crate::problem::Problem;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use burn_hardshrink::{
    Hardshrink, HardshrinkConfig, LearnedHardshrink, LearnedHardshrinkConfig, ThresholdEstimator,
};

/// The unfolded network. Exactly one of `learned` and `fixed` holds one threshold per layer.
#[derive(Module, Debug)]
pub struct LearnedIht {
    /// `W_k`, m × n each.
    pub weights: Vec<Param<Tensor<2>>>,
    /// Learned thresholds, one scalar per layer (empty with fixed thresholds).
    pub learned: Vec<LearnedHardshrink>,
    /// Fixed thresholds, one per layer (empty with learned thresholds).
    pub fixed: Vec<Hardshrink>,
}

impl LearnedIht {
    /// A fresh network: every `W_k = A / L`, thresholds at `initial` (one per layer), learned
    /// with the kernel estimator of width `bandwidth` unless `fixed`.
    pub fn new(
        problem: &Problem,
        initial: &[f64],
        fixed: bool,
        bandwidth: f64,
        device: &Device,
    ) -> Self {
        let start = problem.dictionary(device) / problem.lipschitz;
        let weights = initial
            .iter()
            .map(|_| Param::from_tensor(start.clone()))
            .collect();
        let (learned, fixed) = if fixed {
            let layers = initial
                .iter()
                .map(|&lambd| HardshrinkConfig::new().with_lambd(lambd).init())
                .collect();
            (Vec::new(), layers)
        } else {
            let estimator = ThresholdEstimator::Kernel { bandwidth };
            let layers = initial
                .iter()
                .map(|&lambd| {
                    LearnedHardshrinkConfig::new()
                        .with_initial_lambd(lambd)
                        .with_estimator(estimator)
                        .init(device)
                })
                .collect();
            (layers, Vec::new())
        };
        Self {
            weights,
            learned,
            fixed,
        }
    }

    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.weights.len()
    }

    /// Every layer's output `x_1 … x_K` for measurements `y` (rows), given `Aᵀ` (n × m).
    pub fn forward(&self, y: Tensor<2>, dictionary_t: &Tensor<2>) -> Vec<Tensor<2>> {
        let mut outputs: Vec<Tensor<2>> = Vec::with_capacity(self.layers());
        for k in 0..self.layers() {
            let update = match outputs.last() {
                // x₀ = 0: the first layer's residual is y itself.
                None => y.clone().matmul(self.weights[k].val()),
                Some(x) => {
                    let residual = y.clone() - x.clone().matmul(dictionary_t.clone());
                    x.clone() + residual.matmul(self.weights[k].val())
                }
            };
            outputs.push(self.shrink(k, update));
        }
        outputs
    }

    fn shrink(&self, layer: usize, x: Tensor<2>) -> Tensor<2> {
        match self.learned.get(layer) {
            Some(learned) => learned.forward(x),
            None => self.fixed[layer].forward(x),
        }
    }

    /// The thresholds `λ_k` the network uses now.
    pub fn thresholds(&self) -> Vec<f64> {
        if self.learned.is_empty() {
            return self.fixed.iter().map(|h| h.lambd).collect();
        }
        self.learned
            .iter()
            .map(|l| {
                let values = l.lambd().into_data().convert::<f64>();
                values.try_to_vec::<f64>().expect("thresholds are floats")[0]
            })
            .collect()
    }
}

/// The training loss: the mean squared error of every layer's output, averaged over layers.
pub fn layer_averaged_mse(outputs: &[Tensor<2>], target: &Tensor<2>) -> Tensor<1> {
    let total = outputs
        .iter()
        .map(|x| (x.clone() - target.clone()).square().mean())
        .reduce(|a, b| a + b)
        .expect("at least one layer");
    total / outputs.len() as f64
}
