//! The unfolded networks, learned IHT and its soft-threshold twin (LISTA-CP), with their training
//! and validation steps.
//!
//! ```text
//! x₀ = 0,   x_{k+1} = η_k( x_k + (y − A x_k) W_k + β_k (x_k − x_{k−1}) ),   k = 0 … K−1
//! ```
//!
//! Samples are rows. `W_k` is `γ_k·W` (ALISTA's analytic weight with a learned step) or a free
//! matrix started at `A / L` (LISTA-CP); the momentum `β_k` is optional. Learned IHT's `η_k` is
//! [`LearnedHardshrink`] (or a fixed Hardshrink); the twin's is soft thresholding
//! `sign(u)·max(|u| − λ_k, 0)`. Every learned threshold is `λ = softplus(θ)`.

use crate::config::{ExperimentConfig, LossPlacement, Weights};
use crate::data::SparseBatch;
use crate::problem::{Operator, Problem};
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use burn_hardshrink::{
    Hardshrink, HardshrinkConfig, LearnedHardshrink, LearnedHardshrinkConfig, ThresholdEstimator,
    learned_hardshrink,
};

/// The weight of one layer.
#[derive(Module, Debug)]
pub enum Weight {
    /// The learned step `γ_k` on the analytic weight, shape `[1]`.
    Analytic(Param<Tensor<1>>),
    /// A free m × n weight.
    Free(Param<Tensor<2>>),
}

/// The shrinkage of one layer.
#[derive(Module, Debug)]
pub enum Shrink {
    /// Hardshrink with a learned threshold (learned IHT).
    Hard(LearnedHardshrink),
    /// Hardshrink with a fixed threshold (`fixed_thresholds`).
    Fixed(Hardshrink),
    /// Soft thresholding with a learned threshold (the twin): Hardshrink, whose straight-through
    /// estimator is exactly soft thresholding's derivative, moved towards zero by λ.
    Soft(LearnedHardshrink),
}

/// 2⁻¹⁰⁰, far below any threshold the networks use (they start at 1e-6 or more).
const TINY: f64 = 1.0 / (1u128 << 100) as f64;

impl Shrink {
    /// Shrinks the layer's input `u`.
    pub fn forward(&self, u: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Hard(shrink) => shrink.forward(u),
            Self::Fixed(shrink) => shrink.forward(u),
            Self::Soft(shrink) => {
                let lambd = shrink.lambd();
                let kept = learned_hardshrink(u, lambd.clone(), None, shrink.estimator);
                // sign(kept)·λ as clamp(kept, ±2⁻¹⁰⁰)·(λ·2¹⁰⁰): the same numbers (every kept
                // value is 0 or beyond ±λ), and half the time of Flex's `sign`, a libm call per
                // element. Off the graph: a constant for autodiff.
                let shift = kept.clone().without_autodiff().clamp(-TINY, TINY);
                kept - shift * (lambd.without_autodiff() / TINY).unsqueeze::<2>()
            }
        }
    }

    /// The threshold λ in use.
    pub fn threshold(&self) -> f64 {
        match self {
            Self::Hard(shrink) | Self::Soft(shrink) => scalar(shrink.lambd()),
            Self::Fixed(shrink) => shrink.lambd,
        }
    }

    /// The same shrinkage with threshold `lambd` (a fixed one stays as it is).
    pub fn with_threshold(self, lambd: f64) -> Self {
        match self {
            Self::Hard(shrink) => Self::Hard(shrink.with_lambd(lambd)),
            Self::Soft(shrink) => Self::Soft(shrink.with_lambd(lambd)),
            fixed @ Self::Fixed(_) => fixed,
        }
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    t.try_into_vec_as::<f64>().expect("float data")[0]
}

/// One unfolded iteration.
#[derive(Module, Debug)]
pub struct Layer {
    /// `W_k`, or its step on the analytic weight.
    pub weight: Weight,
    /// The momentum `β_k`, shape `[1]`, if the layers have one.
    pub momentum: Option<Param<Tensor<1>>>,
    /// `η_k`.
    pub shrink: Shrink,
}

/// An unfolded network of `K` layers, as burn-train trains it.
#[derive(Module, Debug)]
pub struct Unfolded {
    /// The layers, in order.
    pub layers: Vec<Layer>,
    /// The leading layers the training and validation steps run (fewer during a stage of
    /// stage-wise training).
    #[module(skip)]
    pub active: usize,
    /// The training loss.
    #[module(skip)]
    pub objective: Objective,
}

impl Unfolded {
    /// A fresh network for `problem` with `config`'s recipe: hard thresholds (`soft` false) or
    /// soft, started at `λ_k = 0.5·0.8^k` with steps `γ_k = 1` and momenta `β_k = 0`.
    pub fn init(problem: &Problem, config: &ExperimentConfig, soft: bool, device: &Device) -> Self {
        let free = problem.operator(device).dictionary / problem.lipschitz;
        let layers = (0..config.layers)
            .map(|k| {
                let lambd = 0.5 * 0.8f64.powi(k as i32);
                let learned = |estimator| {
                    let config = LearnedHardshrinkConfig::new().with_initial_lambd(lambd);
                    config.with_estimator(estimator).init(device)
                };
                Layer {
                    weight: match config.weights {
                        Weights::Analytic => {
                            Weight::Analytic(Param::from_tensor(Tensor::ones([1], device)))
                        }
                        Weights::Free => Weight::Free(Param::from_tensor(free.clone())),
                    },
                    momentum: config
                        .momentum
                        .then(|| Param::from_tensor(Tensor::zeros([1], device))),
                    shrink: match (soft, config.fixed_thresholds) {
                        (true, _) => Shrink::Soft(learned(ThresholdEstimator::StraightThrough)),
                        (false, false) => Shrink::Hard(learned(config.estimator)),
                        (false, true) => {
                            Shrink::Fixed(HardshrinkConfig::new().with_lambd(lambd).init())
                        }
                    },
                }
            })
            .collect();
        Self {
            layers,
            active: config.layers,
            objective: Objective::of(config),
        }
    }

    /// The outputs `x_1 … x_count` of the first `count` layers, for measurements `y`.
    pub fn forward(&self, y: Tensor<2>, operator: &Operator, count: usize) -> Vec<Tensor<2>> {
        let mut outputs: Vec<Tensor<2>> = Vec::with_capacity(count);
        for layer in &self.layers[..count] {
            let update = update(layer, &y, operator, &outputs);
            outputs.push(layer.shrink.forward(update));
        }
        outputs
    }

    /// The last layer's input `u_K`, before its shrinkage.
    pub fn last_input(&self, y: Tensor<2>, operator: &Operator) -> Tensor<2> {
        let earlier = self.layers.len() - 1;
        let outputs = self.forward(y.clone(), operator, earlier);
        update(&self.layers[earlier], &y, operator, &outputs)
    }

    /// The thresholds `λ_k` in use.
    pub fn thresholds(&self) -> Vec<f64> {
        self.layers.iter().map(|l| l.shrink.threshold()).collect()
    }

    /// The steps `γ_k` (analytic weights only).
    pub fn step_sizes(&self) -> Vec<f64> {
        self.layers
            .iter()
            .filter_map(|l| match &l.weight {
                Weight::Analytic(gamma) => Some(scalar(gamma.val())),
                Weight::Free(_) => None,
            })
            .collect()
    }
}

/// `x_k + (y − A x_k) W_k + β_k (x_k − x_{k−1})` from the outputs so far (`x₀ = x_{−1} = 0`).
fn update(layer: &Layer, y: &Tensor<2>, operator: &Operator, outputs: &[Tensor<2>]) -> Tensor<2> {
    let x = outputs.last();
    let residual = match x {
        None => y.clone(),
        Some(x) => y.clone() - x.clone().matmul(operator.dictionary_t.clone()),
    };
    let step = match &layer.weight {
        Weight::Analytic(gamma) => {
            residual.matmul(operator.analytic.clone()) * gamma.val().unsqueeze::<2>()
        }
        Weight::Free(weight) => residual.matmul(weight.val()),
    };
    let Some(x) = x else { return step };
    let update = x.clone() + step;
    match (&layer.momentum, outputs.len()) {
        (None, _) => update,
        (Some(beta), 1) => update + x.clone() * beta.val().unsqueeze::<2>(),
        (Some(beta), n) => {
            update + (x.clone() - outputs[n - 2].clone()) * beta.val().unsqueeze::<2>()
        }
    }
}

/// The training loss: the MSE of the last layer or of every layer averaged, plus, per sample, a
/// weighted `log(‖x̂ − x‖² + δ)`.
///
/// The log term's gradient `w / ‖x̂ − x‖²` outweighs the MSE's `1 / n` once a sample's error is
/// below `w·n`: with `w = 10^(dB/10)·p` that is a per-sample NMSE of `dB` (the mean code energy is
/// `p·n`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// Which layers the loss looks at.
    pub placement: LossPlacement,
    /// `w` (0 for the MSE alone).
    pub log_weight: f64,
    /// `δ`, 80 dB under the mean code energy.
    pub log_floor: f64,
}

impl Objective {
    /// The objective `config` asks for.
    pub fn of(config: &ExperimentConfig) -> Self {
        Self {
            placement: config.loss,
            log_weight: config
                .log_loss_below_db
                .map_or(0.0, |db| 10f64.powf(db / 10.0) * config.p),
            log_floor: config.p * config.n as f64 * 1e-8,
        }
    }

    /// The loss of a network's outputs against the true codes.
    pub fn loss(&self, outputs: &[Tensor<2>], target: &Tensor<2>) -> Tensor<1> {
        let of = |x: &Tensor<2>| {
            let error = (x.clone() - target.clone()).square();
            let mse = error.clone().mean();
            if self.log_weight == 0.0 {
                return mse;
            }
            let per_sample = error.sum_dim(1).add_scalar(self.log_floor).log().mean();
            mse + per_sample * self.log_weight
        };
        match self.placement {
            LossPlacement::Last => of(outputs.last().expect("at least one layer")),
            LossPlacement::Average => {
                let total = outputs.iter().map(of).reduce(|a, b| a + b);
                total.expect("at least one layer") / outputs.len() as f64
            }
        }
    }
}

/// What a training or validation step hands burn-train's metrics.
#[derive(Clone)]
pub struct Recovery {
    /// The loss of the step's batch.
    pub loss: Tensor<1>,
    /// In validation: the last active layer's estimate and the true codes.
    pub estimate: Option<(Tensor<2>, Tensor<2>)>,
}

impl TrainStep for Unfolded {
    type Input = SparseBatch;
    type Output = Recovery;

    fn step(&self, batch: SparseBatch) -> TrainOutput<Recovery> {
        let outputs = self.forward(batch.y, &batch.operator, self.active);
        let loss = self.objective.loss(&outputs, &batch.x);
        // On several devices each holds a share of the step's samples: scaled by it, the shares'
        // gradients sum to the whole batch's.
        let grads = match batch.share {
            1.0 => loss.backward(),
            share => (loss.clone() * share).backward(),
        };
        TrainOutput::new(
            self,
            grads,
            Recovery {
                loss,
                estimate: None,
            },
        )
    }
}

impl InferenceStep for Unfolded {
    type Input = SparseBatch;
    type Output = Recovery;

    fn step(&self, batch: SparseBatch) -> Recovery {
        let mut outputs = self.forward(batch.y, &batch.operator, self.active);
        let loss = self.objective.loss(&outputs, &batch.x);
        let estimate = outputs.pop().expect("at least one layer");
        Recovery {
            loss,
            estimate: Some((estimate, batch.x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Stream;
    use burn::optim::{AdamConfig, GradientsParams};

    /// A 4-layer twin with autodiff, a batch of measurements and codes, and the operators.
    fn twin() -> (Unfolded, Tensor<2>, Tensor<2>, Operator) {
        let config = ExperimentConfig::new().with_layers(4);
        let problem = Problem::new(&config);
        let device = Device::flex().autodiff();
        let samples = problem.sample(0, Stream::Train, 0, 64);
        let model = Unfolded::init(&problem, &config, true, &device);
        let y = samples.measurements(&device);
        let x = samples.codes(&device);
        (model, y, x, problem.operator(&device))
    }

    #[test]
    fn soft_threshold_is_soft_thresholding_with_its_gradient() {
        let (model, _, _, _) = twin();
        let shrink = &model.layers[0].shrink;
        let lambd = shrink.threshold() as f32;
        // Inside the band, on its edges, beyond it, and far beyond.
        let band = [-1.0, -0.1, 0.0, 0.3, 1.0].map(|f| f * lambd);
        let values: Vec<f32> = [-1.0]
            .into_iter()
            .chain(band)
            .chain([2.5, 1.5, 1e30, -3e38])
            .collect();
        let device = Device::flex().autodiff();
        let u = Tensor::<1>::from_floats(values.as_slice(), &device)
            .reshape([1, values.len()])
            .require_grad();
        let y = shrink.forward(u.clone());
        let got = y.clone().try_into_vec_as::<f32>().unwrap();
        for (v, g) in values.iter().zip(&got) {
            assert_eq!(*g, v.signum() * (v.abs() - lambd).max(0.0), "soft({v})");
        }
        // d/du = 1 outside the band, 0 inside; d/dλ = −sign(u) outside.
        let grads = y.sum().backward();
        let du = u.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
        assert_eq!(du, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        let Shrink::Soft(learned) = shrink else {
            panic!("a soft layer")
        };
        let dtheta = scalar(learned.raw_lambd.grad(&grads).unwrap()) as f32;
        // Five values outside the band, Σ sign = 1, so dy/dλ sums to −1; dλ/dθ = 1 − e^(−λ).
        let expected = -(1.0 - (-lambd).exp());
        assert!((dtheta - expected).abs() < 1e-6, "{dtheta} vs {expected}");
    }

    #[test]
    fn the_twins_thresholds_learn_alone() {
        let (mut model, y, x, operator) = twin();
        // Only the thresholds train: the steps are frozen.
        for layer in &mut model.layers {
            layer.weight = layer.weight.clone().no_grad();
        }
        let objective = Objective::of(&ExperimentConfig::new());
        let loss = |m: &Unfolded| objective.loss(&m.forward(y.clone(), &operator, 4), &x);
        let before = loss(&model).into_scalar::<f64>();
        let thresholds = model.thresholds();
        let mut optim = AdamConfig::new().init();
        for _ in 0..30 {
            let grads = GradientsParams::from_grads(loss(&model).backward(), &model);
            // One gradient per threshold, none for the steps.
            assert_eq!(grads.len(), 4);
            model = optim.step(0.01, model, grads);
        }
        let after = loss(&model).into_scalar::<f64>();
        assert!(after < before * 0.9, "loss {before} -> {after}");
        assert_ne!(model.thresholds(), thresholds);
    }

    #[test]
    fn analytic_layers_start_as_iht_steps_with_the_analytic_weight() {
        // With γ = 1 and fixed thresholds, layer 1 is Hardshrink(y W).
        let config = ExperimentConfig::new()
            .with_layers(2)
            .with_fixed_thresholds(true);
        let problem = Problem::new(&config);
        let device = Device::flex();
        let model = Unfolded::init(&problem, &config, false, &device);
        let y = problem.sample(0, Stream::Test, 0, 8).measurements(&device);
        let operator = problem.operator(&device);
        let outputs = model.forward(y.clone(), &operator, 2);
        let expected = burn_hardshrink::hardshrink(y.matmul(operator.analytic.clone()), 0.5);
        assert_eq!(outputs[0].to_data(), expected.to_data());
        assert_eq!(model.step_sizes(), [1.0; 2]);
        assert_eq!(model.thresholds(), [0.5, 0.4]);
    }
}
