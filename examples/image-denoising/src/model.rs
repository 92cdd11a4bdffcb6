//! The denoiser: a learned dictionary `D` and an unfolded encoder whose layers end in learned
//! thresholds, with its training and validation steps.
//!
//! ```text
//! m = mean(y),   z₀ = 0,   z_{k+1} = σ · η_k( (z_k + (y − m − z_k D) W_k) / σ ),   x̂ = z_K D + m
//! ```
//!
//! Patches are rows of `patch²` pixels; `σ` is each patch's noise level, so every threshold is
//! learned in units of σ and one network serves every noise level. Learned IHT's `η_k` is
//! [`LearnedHardshrink`] with a threshold per atom; its twin's is soft thresholding
//! `sign(u)·max(|u| − λ, 0)` with the same parametrisation `λ = softplus(θ)`.

use crate::config::DenoiseConfig;
use crate::data::NoisyCrops;
use crate::dct::overcomplete_dct;
use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::{Device, ExecutionError, Tensor};
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use burn_hardshrink::{LearnedHardshrink, LearnedHardshrinkConfig};

/// The thresholding that ends a layer: one threshold per atom.
#[derive(Module, Debug)]
pub enum Shrink {
    /// Hard thresholding (learned IHT).
    Hard(LearnedHardshrink),
    /// Soft thresholding (the twin); the module holds its thresholds.
    Soft(LearnedHardshrink),
}

impl Shrink {
    /// Thresholds `u`, in units of σ.
    pub fn forward(&self, u: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Hard(shrink) => shrink.forward(u),
            Self::Soft(shrink) => {
                let lambd = shrink.lambd().unsqueeze::<2>();
                relu(u.clone() - lambd.clone()) - relu(-u - lambd)
            }
        }
    }
}

/// One unfolded iteration.
#[derive(Module, Debug)]
pub struct Layer {
    /// `W_k`, `patch² × atoms`, started at `Dᵀ / L`.
    pub weight: Param<Tensor<2>>,
    /// `η_k`.
    pub shrink: Shrink,
}

/// The dictionary and the encoder, as burn-train trains them.
#[derive(Module, Debug)]
pub struct Denoiser {
    /// `D`, `atoms × patch²`, started at the overcomplete DCT.
    pub dictionary: Param<Tensor<2>>,
    /// The encoder's layers, in order.
    pub layers: Vec<Layer>,
}

impl Denoiser {
    /// The network `config` describes, with hard (learned IHT) or `soft` thresholds.
    pub fn init(config: &DenoiseConfig, soft: bool, device: &Device) -> Self {
        let dictionary = overcomplete_dct(config.patch, config.atoms, device);
        // W_k = Dᵀ / L, L = ‖D‖₂²: ISTA's step, which every layer starts from.
        let weight = dictionary.clone().transpose() / largest_eigenvalue(&dictionary);
        let threshold = LearnedHardshrinkConfig::new()
            .with_initial_lambd(config.initial_threshold)
            .with_features(Some(config.atoms))
            .with_estimator(config.estimator);
        let layer = |_| {
            let shrink = threshold.init(device);
            let shrink = match (soft, config.fixed_thresholds) {
                (true, _) => Shrink::Soft(shrink),
                (false, false) => Shrink::Hard(shrink),
                (false, true) => Shrink::Hard(shrink.no_grad()),
            };
            let weight = Param::from_tensor(weight.clone());
            Layer { weight, shrink }
        };
        Self {
            dictionary: Param::from_tensor(dictionary),
            layers: (0..config.layers).map(layer).collect(),
        }
    }

    /// The clean patches' estimate from `noisy` patches at noise levels `sigma` (`count × 1`).
    pub fn forward(&self, noisy: Tensor<2>, sigma: Tensor<2>) -> Tensor<2> {
        let (code, mean) = self.encode(noisy, sigma);
        code.matmul(self.dictionary.val()) + mean
    }

    /// The code `z_K` (`count × atoms`) of `noisy` patches, and each patch's mean.
    pub fn encode(&self, noisy: Tensor<2>, sigma: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let mean = noisy.clone().mean_dim(1);
        let y = noisy - mean.clone();
        let dictionary = self.dictionary.val();
        let [count, _] = y.dims();
        let atoms = dictionary.dims()[0];
        let mut z = Tensor::<2>::zeros([count, atoms], &y.device());
        for layer in &self.layers {
            let residual = y.clone() - z.clone().matmul(dictionary.clone());
            let u = z + residual.matmul(layer.weight.val());
            z = layer.shrink.forward(u / sigma.clone()) * sigma.clone();
        }
        (z, mean)
    }

    /// The training loss: the mean squared error per pixel of the crops rebuilt from their
    /// denoised patches.
    pub fn loss(&self, batch: &NoisyCrops) -> Tensor<1> {
        let estimate = self.forward(batch.noisy.clone(), batch.sigma.clone());
        let [crops, _] = batch.clean.dims();
        let rebuilt = estimate
            .reshape([crops as i32, -1])
            .matmul(batch.rebuild.clone());
        (rebuilt - batch.clean.clone()).powi_scalar(2).mean()
    }

    /// Every layer's thresholds, in units of σ: `layers × atoms`.
    pub fn thresholds(&self) -> Vec<Vec<f32>> {
        let values = |shrink: &LearnedHardshrink| {
            shrink
                .lambd()
                .try_into_vec_as::<f32>()
                .expect("float thresholds")
        };
        let layer = |l: &Layer| match &l.shrink {
            Shrink::Hard(shrink) | Shrink::Soft(shrink) => values(shrink),
        };
        self.layers.iter().map(layer).collect()
    }
}

/// The largest eigenvalue of `DᵀD` (`‖D‖₂²`), by power iteration.
fn largest_eigenvalue(dictionary: &Tensor<2>) -> f64 {
    let gram = dictionary.clone().transpose().matmul(dictionary.clone());
    let size = gram.dims()[0];
    // Not the constant vector: it is an eigenvector of the overcomplete DCT's Gram matrix.
    let start: Vec<f32> = (0..size).map(|i| 1.0 + (i % 7) as f32).collect();
    let mut v = Tensor::<1>::from_floats(start.as_slice(), &gram.device()).reshape([size, 1]);
    let mut value = 0.0;
    for _ in 0..100 {
        let next = gram.clone().matmul(v);
        value = next
            .clone()
            .powi_scalar(2)
            .sum()
            .sqrt()
            .into_scalar::<f64>();
        v = next / value;
    }
    value
}

/// A step's output: its loss, which burn-train logs (the pictures show it as PSNR).
#[derive(Debug, Clone)]
pub struct Denoised {
    /// The mean squared error per pixel, shape `[1]`.
    pub loss: Tensor<1>,
}

impl ItemLazy for Denoised {
    fn sync(self) -> Result<Self, ExecutionError> {
        let loss = self.loss.without_autodiff();
        Ok(Self { loss })
    }
}

impl Adaptor<LossInput> for Denoised {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl TrainStep for Denoiser {
    type Input = NoisyCrops;
    type Output = Denoised;

    fn step(&self, batch: NoisyCrops) -> TrainOutput<Denoised> {
        let loss = self.loss(&batch);
        TrainOutput::new(self, loss.backward(), Denoised { loss })
    }
}

impl InferenceStep for Denoiser {
    type Input = NoisyCrops;
    type Output = Denoised;

    fn step(&self, batch: NoisyCrops) -> Denoised {
        let loss = self.loss(&batch);
        Denoised { loss }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams};

    #[test]
    fn the_soft_twin_shrinks_towards_zero_and_the_hard_one_keeps() {
        let device = Device::flex();
        let shrink = LearnedHardshrinkConfig::new()
            .with_initial_lambd(1.0)
            .with_features(Some(4));
        let u = Tensor::<2>::from_floats([[-3.0, -0.5, 0.9, 2.5]], &device);
        let soft = Shrink::Soft(shrink.init(&device)).forward(u.clone());
        let hard = Shrink::Hard(shrink.init(&device)).forward(u);
        let values = |t: Tensor<2>| t.try_into_vec_as::<f32>().unwrap();
        let close = |a: Vec<f32>, b: [f32; 4]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(values(soft), [-2.0, 0.0, 0.0, 1.5]));
        assert!(close(values(hard), [-3.0, 0.0, 0.0, 2.5]));
        // ISTA's step: DᵀD of 256 unit atoms of 64 pixels has trace 256, so its largest
        // eigenvalue is at least 4 (the constant vector's is 1).
        let network = Denoiser::init(&DenoiseConfig::new(), false, &device);
        let largest = largest_eigenvalue(&network.dictionary.val());
        assert!(largest >= 4.0 - 1e-3, "{largest}");
    }

    #[test]
    fn a_few_steps_lower_the_loss_and_learn_thresholds() {
        let device = Device::flex().autodiff();
        let config = DenoiseConfig::new().with_layers(3);
        let images = std::sync::Arc::new(crate::images::Image::bundled(false));
        let rebuild = crate::data::rebuild_matrix(config.crop, config.patch, &device);
        let batch = NoisyCrops::draw(&images, &config, 0, 8, &rebuild);
        for soft in [false, true] {
            let mut network = Denoiser::init(&config, soft, &device);
            let before = network.thresholds();
            let first = network.loss(&batch).into_scalar::<f64>();
            let mut optimizer = AdamConfig::new().init();
            for _ in 0..30 {
                let grads = GradientsParams::from_grads(network.loss(&batch).backward(), &network);
                network = optimizer.step(3e-3, network, grads);
            }
            let last = network.loss(&batch).into_scalar::<f64>();
            assert!(last < 0.8 * first, "soft = {soft}: {first} → {last}");
            assert_ne!(network.thresholds(), before, "soft = {soft}");
        }
    }
}
