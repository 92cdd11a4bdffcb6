//! Unfolded learned iterative hard thresholding, and its training and validation steps.
//!
//! ```text
//! x₀ = 0,   x_{k+1} = Hardshrink_{λ_k}( x_k + W_kᵀ (y − A x_k) ),   k = 0 … K−1
//! ```
//!
//! Each layer has its own `W_k` (m × n, started at `A / L` with `L = ‖A‖₂²`, the step size that
//! keeps the plain iteration stable) and its own threshold `λ_k`, learned through
//! [`LearnedHardshrink`] or held at the fixed schedule. Samples are rows, so in code the layer
//! reads `x + (y − x Aᵀ) W`.

use crate::data::SparseBatch;
use crate::metrics::RecoveryInput;
use crate::problem::Problem;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
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

    /// The loss and last-layer estimate for a batch.
    fn recover(&self, batch: SparseBatch) -> RecoveryOutput {
        let outputs = self.forward(batch.y, &batch.dictionary_t);
        let loss = layer_averaged_mse(&outputs, &batch.x);
        let estimate = outputs.into_iter().last().expect("at least one layer");
        RecoveryOutput {
            loss,
            estimate,
            target: batch.x,
        }
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

/// What a validation step hands to burn-train's metrics: the loss, the last layer's estimate and
/// the truth.
pub struct RecoveryOutput {
    /// The loss of the batch.
    pub loss: Tensor<1>,
    /// The last layer's estimate, rows × n.
    pub estimate: Tensor<2>,
    /// The true codes, rows × n.
    pub target: Tensor<2>,
}

impl ItemLazy for RecoveryOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        // The metrics read from the tensors on their device, off the autodiff graph.
        self.loss.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
            estimate: self.estimate.without_autodiff(),
            target: self.target.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for RecoveryOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl Adaptor<RecoveryInput> for RecoveryOutput {
    fn adapt(&self) -> RecoveryInput {
        RecoveryInput {
            estimate: self.estimate.clone(),
            target: self.target.clone(),
        }
    }
}

/// What a training step hands to burn-train's metrics: the loss alone (the training metrics
/// need nothing else, and every tensor handed over is one more the metric thread frees).
pub struct LossOutput {
    /// The loss of the batch.
    pub loss: Tensor<1>,
}

impl ItemLazy for LossOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.loss.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for LossOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl TrainStep for LearnedIht {
    type Input = SparseBatch;
    type Output = LossOutput;

    fn step(&self, batch: SparseBatch) -> TrainOutput<LossOutput> {
        let share = batch.share;
        let outputs = self.forward(batch.y, &batch.dictionary_t);
        let loss = layer_averaged_mse(&outputs, &batch.x);
        // On several devices each holds a share of the step's samples: scaled by it, their
        // gradients sum to the gradient of the whole batch's loss.
        let grads = if share == 1.0 {
            loss.clone()
        } else {
            loss.clone() * share
        }
        .backward();
        TrainOutput::new(self, grads, LossOutput { loss })
    }
}

impl InferenceStep for LearnedIht {
    type Input = SparseBatch;
    type Output = RecoveryOutput;

    fn step(&self, batch: SparseBatch) -> RecoveryOutput {
        self.recover(batch)
    }
}
