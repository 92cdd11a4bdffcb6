//! Unfolded networks: learned IHT and its learned soft-threshold twin, with their training and
//! validation steps.
//!
//! ```text
//! x₀ = 0,   x_{k+1} = η_k( x_k + (y − A x_k) W_k + β_k (x_k − x_{k−1}) ),   k = 0 … K−1
//! (samples are rows; x_{−1} = x₀; the momentum β_k only with `momentum`)
//! ```
//!
//! - The weight of layer k is either `γ_k·W`, ALISTA's analytic weight with a learned step size
//!   `γ_k` ([`Weights::Analytic`]), or a free m × n matrix started at `A / L` (LISTA-CP,
//!   [`Weights::Free`]).
//! - The shrinkage `η_k` is Hardshrink with a learned threshold (learned IHT, through
//!   [`LearnedHardshrink`]) or a fixed one, or soft thresholding
//!   `sign(u)·max(|u| − λ_k, 0)` with a learned threshold (the LISTA-CP twin, [`SoftThreshold`]).
//!
//! Every learned threshold is `λ = softplus(θ)`, so no optimiser step makes it negative.

use crate::config::{Estimator, LossPlacement, RunConfig, Weights};
use crate::data::SparseBatch;
use crate::metrics::{RecoveryInput, SupportCounts, host, nmse_db};
use crate::problem::{Operator, Problem, Samples};
use burn::module::{Module, Param};
use burn::tensor::activation::softplus;
use burn::tensor::{Device, Tensor};
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use burn_hardshrink::{
    Hardshrink, HardshrinkConfig, LearnedHardshrink, LearnedHardshrinkConfig, ThresholdEstimator,
    learned_hardshrink,
};

/// Which shrinkage a network's layers end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shrinkage {
    /// Hardshrink: learned IHT (learned thresholds, or the fixed schedule).
    Hard,
    /// Soft thresholding with learned thresholds: the LISTA-CP twin.
    Soft,
}

/// The weight of one layer.
#[derive(Module, Debug)]
pub enum Weight {
    /// The learned step size `γ_k` on the analytic weight, shape `[1]`.
    Analytic(Param<Tensor<1>>),
    /// A free m × n weight.
    Free(Param<Tensor<2>>),
}

/// Soft thresholding with a learned threshold `λ = softplus(θ)`.
#[derive(Module, Debug)]
pub struct SoftThreshold {
    /// θ, shape `[1]`.
    pub raw_lambd: Param<Tensor<1>>,
}

impl SoftThreshold {
    /// λ = softplus(θ).
    pub fn lambd(&self) -> Tensor<1> {
        softplus(self.raw_lambd.val(), 1.0)
    }

    /// `sign(u)·max(|u| − λ, 0)`, as Hardshrink moved λ towards zero.
    ///
    /// Hardshrink keeps `u` outside the band `|u| ≤ λ` and zeroes it inside; the straight-through
    /// estimator hands λ exactly soft thresholding's derivative, `−sign(u)` outside the band, and
    /// the shift `λ·sign` is a constant for autodiff. One kernel forward and backward instead of
    /// five composed ops.
    pub fn forward(&self, u: Tensor<2>) -> Tensor<2> {
        let lambd = self.lambd();
        let kept = learned_hardshrink(u, lambd.clone(), None, ThresholdEstimator::StraightThrough);
        // Off the graph: the shift pays no autodiff dispatch (Burn's autodiff clamp is two mask
        // passes) and enters the subtraction as a constant.
        kept.clone() - sign_times(kept.without_autodiff(), lambd.without_autodiff())
    }
}

/// 2⁻¹⁰⁰, far below the thresholds the networks use (they start at 1e-6 or more; a learned
/// one would have to shrink by 24 orders of magnitude to reach it).
const TINY: f64 = 1.0 / (1u128 << 100) as f64;

/// `sign(kept)·λ` for a Hardshrink output (every entry 0 or beyond ±λ), as
/// `clamp(kept, ±2⁻¹⁰⁰)·(λ·2¹⁰⁰)`: the same numbers for any λ ≥ 2⁻¹⁰⁰, and half the time of
/// `sign` on Flex, which calls libm's `copysignf` per element.
fn sign_times(kept: Tensor<2>, lambd: Tensor<1>) -> Tensor<2> {
    kept.clamp(-TINY, TINY) * (lambd / TINY).unsqueeze::<2>()
}

/// The shrinkage of one layer.
#[derive(Module, Debug)]
pub enum Shrink {
    /// Hardshrink with a learned threshold.
    Hard(LearnedHardshrink),
    /// Hardshrink with a fixed threshold.
    Fixed(Hardshrink),
    /// Soft thresholding with a learned threshold.
    Soft(SoftThreshold),
}

impl Shrink {
    fn forward(&self, u: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Hard(shrink) => shrink.forward(u),
            Self::Fixed(shrink) => shrink.forward(u),
            Self::Soft(shrink) => shrink.forward(u),
        }
    }

    /// The same shrinkage with threshold `lambd` (a fixed one stays as it is).
    fn with_threshold(self, lambd: f64) -> Self {
        let set =
            |raw: Param<Tensor<1>>| raw.map(|t| t.zeros_like().add_scalar(softplus_inverse(lambd)));
        match self {
            Self::Hard(shrink) => Self::Hard(LearnedHardshrink {
                raw_lambd: set(shrink.raw_lambd),
                ..shrink
            }),
            Self::Soft(shrink) => Self::Soft(SoftThreshold {
                raw_lambd: set(shrink.raw_lambd),
            }),
            fixed @ Self::Fixed(_) => fixed,
        }
    }

    /// The threshold λ in use.
    pub fn threshold(&self) -> f64 {
        let learned = match self {
            Self::Hard(shrink) => shrink.lambd(),
            Self::Fixed(shrink) => return shrink.lambd,
            Self::Soft(shrink) => shrink.lambd(),
        };
        scalar(learned)
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("float data")[0]
}

/// One unfolded iteration.
#[derive(Module, Debug)]
pub struct Layer {
    /// `W_k`, or its step size on the analytic weight.
    pub weight: Weight,
    /// The momentum `β_k`, shape `[1]`, if the layers have one.
    pub momentum: Option<Param<Tensor<1>>>,
    /// `η_k`.
    pub shrink: Shrink,
}

/// The training loss: the MSE of the last layer or of every layer averaged, plus, per sample, a
/// weighted `log(‖x̂ − x‖² + δ)`.
///
/// The log term's gradient `w / ‖x̂ − x‖²` outweighs the MSE's `1 / n` once a sample's error is
/// below `w·n`: with `w = 10^(dB/10)·p` that is a per-sample NMSE of `dB` (the mean code energy
/// is `p·n`). Samples still far off are the MSE's; the ones already recovered keep improving.
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
    pub fn of(config: &RunConfig) -> Self {
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
                let total = outputs
                    .iter()
                    .map(of)
                    .reduce(|a, b| a + b)
                    .expect("at least one layer");
                total / outputs.len() as f64
            }
        }
    }
}

/// The unfolded network.
#[derive(Module, Debug)]
pub struct Unfolded {
    /// The layers, in order.
    pub layers: Vec<Layer>,
    /// How many leading layers the training and validation steps run (all but during a stage
    /// of stage-wise training).
    pub active: usize,
    /// The training loss.
    #[module(skip)]
    pub objective: Objective,
}

/// softplus⁻¹(λ) = ln(e^λ − 1), written so that a large λ does not overflow.
fn softplus_inverse(lambd: f64) -> f64 {
    lambd + (-(-lambd).exp_m1()).ln()
}

impl Unfolded {
    /// A fresh network for `problem` with `config`'s weights, loss and thresholds (started at
    /// `0.5·0.8^k`), ending its layers in `shrinkage`.
    pub fn new(
        problem: &Problem,
        config: &RunConfig,
        shrinkage: Shrinkage,
        device: &Device,
    ) -> Self {
        let free_start = problem.dictionary(device) / problem.lipschitz;
        let estimator = match config.estimator {
            Estimator::Kernel => ThresholdEstimator::Kernel {
                bandwidth: config.bandwidth,
            },
            Estimator::StraightThrough => ThresholdEstimator::StraightThrough,
        };
        let layers = config
            .threshold_schedule()
            .into_iter()
            .map(|lambd| Layer {
                weight: match config.weights {
                    Weights::Analytic => {
                        Weight::Analytic(Param::from_tensor(Tensor::ones([1], device)))
                    }
                    Weights::Free => Weight::Free(Param::from_tensor(free_start.clone())),
                },
                momentum: config
                    .momentum
                    .then(|| Param::from_tensor(Tensor::zeros([1], device))),
                shrink: match (shrinkage, config.fixed_thresholds) {
                    (Shrinkage::Hard, true) => {
                        Shrink::Fixed(HardshrinkConfig::new().with_lambd(lambd).init())
                    }
                    (Shrinkage::Hard, false) => Shrink::Hard(
                        LearnedHardshrinkConfig::new()
                            .with_initial_lambd(lambd)
                            .with_estimator(estimator)
                            .init(device),
                    ),
                    (Shrinkage::Soft, _) => Shrink::Soft(SoftThreshold {
                        raw_lambd: Param::from_tensor(Tensor::full(
                            [1],
                            softplus_inverse(lambd),
                            device,
                        )),
                    }),
                },
            })
            .collect::<Vec<_>>();
        Self {
            active: layers.len(),
            layers,
            objective: Objective::of(config),
        }
    }

    /// Every layer's output `x_1 … x_K` for measurements `y` (rows).
    pub fn forward(&self, y: Tensor<2>, operator: &Operator) -> Vec<Tensor<2>> {
        self.forward_layers(y, operator, self.layers.len())
    }

    /// The outputs of the first `count` layers.
    pub fn forward_layers(
        &self,
        y: Tensor<2>,
        operator: &Operator,
        count: usize,
    ) -> Vec<Tensor<2>> {
        let mut outputs: Vec<Tensor<2>> = Vec::with_capacity(count);
        for layer in &self.layers[..count] {
            let update = self.update(layer, &y, operator, &outputs);
            outputs.push(layer.shrink.forward(update));
        }
        outputs
    }

    /// The last layer's input `u_K` (before its shrinkage), for measurements `y`.
    pub fn last_input(&self, y: Tensor<2>, operator: &Operator) -> Tensor<2> {
        let (last, earlier) = self.layers.split_last().expect("at least one layer");
        let outputs = self.forward_layers(y.clone(), operator, earlier.len());
        self.update(last, &y, operator, &outputs)
    }

    /// `x_k + β_k (x_k − x_{k−1}) + (y − A x_k) W_k`, from the outputs so far (`x₀ = 0`).
    fn update(
        &self,
        layer: &Layer,
        y: &Tensor<2>,
        operator: &Operator,
        outputs: &[Tensor<2>],
    ) -> Tensor<2> {
        let x = outputs.last();
        // x₀ = 0: the first layer's residual is y itself.
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
        match &layer.momentum {
            Some(beta) => {
                let change = match outputs.len() {
                    1 => x.clone(),
                    n => x.clone() - outputs[n - 2].clone(),
                };
                update + change * beta.val().unsqueeze::<2>()
            }
            None => update,
        }
    }

    /// The network with its last threshold set, among `λ_K·2^(i/4)` for i in −8..=12, to the
    /// best one on `samples`, and the threshold it had; a fixed threshold is kept, and `None`
    /// returned for it.
    ///
    /// A hard threshold keeps the values it passes exactly, so the last one only decides the
    /// support: it is picked by support F1 (the lower NMSE on a tie). A soft threshold also
    /// shrinks every value it keeps, trading NMSE for support, so the twin's is picked by NMSE
    /// (the better F1 on a tie), the measure it was trained for.
    pub fn calibrate_last_threshold(
        mut self,
        samples: &Samples,
        operator: &Operator,
    ) -> (Self, Option<f64>) {
        if matches!(
            self.layers.last().map(|l| &l.shrink),
            Some(Shrink::Fixed(_))
        ) {
            return (self, None);
        }
        let device = operator.dictionary.device();
        let input = self.last_input(samples.measurements(&device), operator);
        let last = self.layers.pop().expect("at least one layer");
        let trained = last.shrink.threshold();
        let by_support = !matches!(last.shrink, Shrink::Soft(_));
        let score = |shrink: &Shrink| {
            let estimate = host(shrink.forward(input.clone()));
            let f1 = SupportCounts::of(&estimate, &samples.x).f1();
            let accuracy = -nmse_db(&estimate, &samples.x);
            if by_support {
                (f1, accuracy)
            } else {
                (accuracy, f1)
            }
        };
        let mut best = (score(&last.shrink), trained);
        for i in -8..=12 {
            let candidate = trained * 2f64.powf(i as f64 / 4.0);
            let scored = score(&last.shrink.clone().with_threshold(candidate));
            if scored.partial_cmp(&best.0) == Some(core::cmp::Ordering::Greater) {
                best = (scored, candidate);
            }
        }
        self.layers.push(Layer {
            shrink: last.shrink.with_threshold(best.1),
            ..last
        });
        (self, Some(trained))
    }

    /// The thresholds `λ_k` in use.
    pub fn thresholds(&self) -> Vec<f64> {
        self.layers.iter().map(|l| l.shrink.threshold()).collect()
    }

    /// The step sizes `γ_k` (analytic weights only).
    pub fn step_sizes(&self) -> Vec<f64> {
        self.layers
            .iter()
            .filter_map(|l| match &l.weight {
                Weight::Analytic(gamma) => Some(scalar(gamma.val())),
                Weight::Free(_) => None,
            })
            .collect()
    }

    /// The loss of the active layers and the last active layer's estimate.
    fn recover(&self, batch: SparseBatch) -> (Tensor<1>, Tensor<2>, Tensor<2>) {
        let outputs = self.forward_layers(batch.y, &batch.operator, self.active);
        let loss = self.objective.loss(&outputs, &batch.x);
        let estimate = outputs.into_iter().last().expect("at least one layer");
        (loss, estimate, batch.x)
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

impl TrainStep for Unfolded {
    type Input = SparseBatch;
    type Output = LossOutput;

    fn step(&self, batch: SparseBatch) -> TrainOutput<LossOutput> {
        let share = batch.share;
        let (loss, _, _) = self.recover(batch);
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

impl InferenceStep for Unfolded {
    type Input = SparseBatch;
    type Output = RecoveryOutput;

    fn step(&self, batch: SparseBatch) -> RecoveryOutput {
        let (loss, estimate, target) = self.recover(batch);
        RecoveryOutput {
            loss,
            estimate,
            target,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Stream;
    use burn::optim::{AdamConfig, GradientsParams};

    fn setup(shrinkage: Shrinkage) -> (Problem, Unfolded, SparseBatch) {
        let config = RunConfig {
            layers: 4,
            ..RunConfig::default()
        };
        let problem = Problem::new(&config);
        let device = Device::flex().autodiff();
        let model = Unfolded::new(&problem, &config, shrinkage, &device);
        let samples = problem.sample(0, Stream::Train, 0, 64);
        let batch = SparseBatch {
            y: samples.measurements(&device),
            x: samples.codes(&device),
            operator: problem.operator(&device),
            share: 1.0,
        };
        (problem, model, batch)
    }

    #[test]
    fn soft_threshold_is_soft_thresholding_with_its_gradient() {
        let (_, model, _) = setup(Shrinkage::Soft);
        let Shrink::Soft(soft) = &model.layers[0].shrink else {
            panic!("a soft layer")
        };
        let lambd = soft.lambd().into_data().try_to_vec::<f32>().unwrap()[0];
        let values = [
            -1.0f32,
            -lambd,
            -0.1 * lambd,
            0.0,
            0.3 * lambd,
            lambd,
            2.5,
            1.5,
            1e30,
            -3e38,
        ];
        let device = Device::flex().autodiff();
        let u = Tensor::<1>::from_floats(values, &device)
            .reshape([1, values.len()])
            .require_grad();
        let y = soft.forward(u.clone());
        let got = y.clone().into_data().try_to_vec::<f32>().unwrap();
        for (v, g) in values.iter().zip(&got) {
            let expected = v.signum() * (v.abs() - lambd).max(0.0);
            assert_eq!(*g, expected, "soft({v})");
        }
        // d/du = 1 outside the band, 0 inside; d/dλ = −sign(u) outside.
        let grads = y.sum().backward();
        let du = u
            .grad(&grads)
            .unwrap()
            .to_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(du, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        let dtheta = soft
            .raw_lambd
            .grad(&grads)
            .unwrap()
            .to_data()
            .try_to_vec::<f32>()
            .unwrap()[0];
        // Five values outside the band, Σ sign = 1, so dy/dλ sums to −1; λ = softplus(θ) and
        // dλ/dθ = sigmoid(θ) = 1 − e^(−λ).
        let expected = -(1.0 - (-lambd).exp());
        assert!((dtheta - expected).abs() < 1e-6, "{dtheta} vs {expected}");
    }

    #[test]
    fn the_twins_thresholds_learn_alone() {
        let (_, model, batch) = setup(Shrinkage::Soft);
        // Only the thresholds train: the weights are frozen.
        let mut model = Unfolded {
            layers: model
                .layers
                .into_iter()
                .map(|layer| Layer {
                    weight: layer.weight.no_grad(),
                    momentum: layer.momentum.map(|beta| beta.set_require_grad(false)),
                    shrink: layer.shrink,
                })
                .collect(),
            ..model
        };
        let loss = |m: &Unfolded| {
            let outputs = m.forward(batch.y.clone(), &batch.operator);
            Objective::of(&RunConfig::default()).loss(&outputs, &batch.x)
        };
        let before = loss(&model).into_scalar::<f64>();
        let thresholds = model.thresholds();
        let mut optim = AdamConfig::new().init();
        for _ in 0..30 {
            let grads = GradientsParams::from_grads(loss(&model).backward(), &model);
            assert_eq!(
                grads.len(),
                4,
                "one gradient per threshold, none for the weights"
            );
            model = optim.step(0.01, model, grads);
        }
        let after = loss(&model).into_scalar::<f64>();
        assert!(after < before * 0.9, "loss {before} -> {after}");
        assert_ne!(model.thresholds(), thresholds);
    }

    #[test]
    fn analytic_layers_are_ista_steps_with_the_analytic_weight() {
        // With γ = 1 and fixed thresholds, layer 1 is Hardshrink(y W).
        let config = RunConfig {
            layers: 2,
            fixed_thresholds: true,
            ..RunConfig::default()
        };
        let problem = Problem::new(&config);
        let device = Device::flex();
        let model = Unfolded::new(&problem, &config, Shrinkage::Hard, &device);
        let samples = problem.sample(0, Stream::Test, 0, 8);
        let operator = problem.operator(&device);
        let outputs = model.forward(samples.measurements(&device), &operator);
        let expected = burn_hardshrink::hardshrink(
            samples
                .measurements(&device)
                .matmul(operator.analytic.clone()),
            0.5,
        );
        assert_eq!(
            outputs[0].clone().into_data().try_to_vec::<f32>().unwrap(),
            expected.into_data().try_to_vec::<f32>().unwrap()
        );
        assert_eq!(model.step_sizes(), [1.0, 1.0]);
        assert_eq!(model.thresholds(), [0.5, 0.4]);
    }
}
