use crate::functional::learned_along;
use crate::{HardshrinkError, ThresholdEstimator};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::activation::softplus;
use burn::tensor::{Device, Tensor};

/// Configuration of a [`LearnedHardshrink`].
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_hardshrink::{LearnedHardshrinkConfig, ThresholdEstimator};
///
/// let device = Device::flex().autodiff();
/// // One threshold per feature of the last axis, learned with the JumpReLU-style estimate.
/// let act = LearnedHardshrinkConfig::new()
///     .with_features(Some(3))
///     .with_estimator(ThresholdEstimator::Kernel { bandwidth: 0.1 })
///     .init(&device);
/// let x = Tensor::<2>::from_floats([[0.4, -0.6, 2.0]], &device);
/// let y = act.forward(x);
/// assert_eq!(y.to_data().try_to_vec::<f32>().unwrap(), vec![0.0, -0.6, 2.0]);
/// ```
#[derive(Config, Debug)]
pub struct LearnedHardshrinkConfig {
    /// The initial threshold λ (≥ 0), the same for every feature. Default: 0.5.
    #[config(default = "0.5")]
    pub initial_lambd: f64,
    /// `None` for one threshold; `Some(n)` for one per feature along [`dim`](Self::dim).
    #[config(default = "None")]
    pub features: Option<usize>,
    /// The feature axis, negative counting from the end. Default: -1 (the last, like a bias).
    #[config(default = "-1")]
    pub dim: isize,
    /// The threshold's pseudo-gradient. Default: straight-through.
    #[config(default = "ThresholdEstimator::StraightThrough")]
    pub estimator: ThresholdEstimator,
}

/// Smallest threshold set through the config or [`LearnedHardshrink::with_lambd`]: softplus maps
/// it to a finite parameter with a usable gradient (and f32 still holds it).
const MIN_LAMBD: f64 = 1e-6;

/// θ = softplus⁻¹(λ) = ln(e^λ - 1), written so that a large λ does not overflow; λ is floored at
/// [`MIN_LAMBD`].
fn raw_of(lambd: f64) -> f64 {
    let lambd = lambd.max(MIN_LAMBD);
    lambd + (-(-lambd).exp_m1()).ln()
}

impl LearnedHardshrinkConfig {
    /// Builds the module, or says which field is out of range.
    pub fn try_init(&self, device: &Device) -> Result<LearnedHardshrink, HardshrinkError> {
        if !(self.initial_lambd >= 0.0 && self.initial_lambd.is_finite()) {
            return Err(HardshrinkError::InvalidLambda {
                lambd: self.initial_lambd,
            });
        }
        self.estimator.validate()?;
        if self.features == Some(0) {
            return Err(HardshrinkError::InvalidFeatures);
        }
        // λ = softplus(θ) keeps every threshold > 0 whatever step an optimiser takes on θ.
        let raw = Tensor::<1>::full(
            [self.features.unwrap_or(1)],
            raw_of(self.initial_lambd),
            device,
        );
        Ok(LearnedHardshrink {
            raw_lambd: Param::from_tensor(raw),
            dim: self.dim,
            per_feature: self.features.is_some(),
            estimator: self.estimator,
        })
    }

    /// Builds the module.
    ///
    /// # Panics
    ///
    /// With [`try_init`](Self::try_init)'s error when a field is out of range.
    pub fn init(&self, device: &Device) -> LearnedHardshrink {
        self.try_init(device)
            .unwrap_or_else(|error| panic!("{error}"))
    }
}

/// Hardshrink with a learned threshold: one, or one per feature along an axis.
///
/// ```text
/// y = +0  if -λ[f] <= x <= λ[f]
///   = x   otherwise,          λ = softplus(θ) > 0, θ the trained parameter
/// ```
///
/// The forward is exactly [`hardshrink`](crate::hardshrink) with each feature's λ, and so is the
/// gradient with respect to `x`. The gradient with respect to λ is the configured
/// [`ThresholdEstimator`]'s pseudo-gradient (the exact one is zero almost everywhere), passed on
/// to θ by the chain rule. The reparametrisation is how λ stays positive during training: no
/// clamp to remember after each step. θ is saved with the module; `dim`, `per_feature` and the
/// estimator come from the config the module is built from.
#[derive(Module, Debug)]
pub struct LearnedHardshrink {
    /// The raw parameter θ, `λ = softplus(θ)`; shape `[features]` (or `[1]`).
    pub raw_lambd: Param<Tensor<1>>,
    /// The feature axis (negative counting from the end).
    pub dim: isize,
    /// Whether there is one threshold per feature (else one in all).
    pub per_feature: bool,
    /// The threshold's pseudo-gradient.
    #[module(skip)]
    pub estimator: ThresholdEstimator,
}

impl LearnedHardshrink {
    /// The thresholds λ = softplus(θ), shape `[features]` (or `[1]`); tracked for autodiff.
    pub fn lambd(&self) -> Tensor<1> {
        softplus(self.raw_lambd.val(), 1.0)
    }

    /// The same module with every threshold set to `lambd` (floored at 1e-6, as the config's
    /// initial value is); the parameter keeps its id, so an optimiser's state still applies.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use burn_hardshrink::LearnedHardshrinkConfig;
    ///
    /// let act = LearnedHardshrinkConfig::new().init(&Device::flex()).with_lambd(0.25);
    /// let lambd = act.lambd().into_data().try_to_vec::<f32>().unwrap()[0];
    /// assert!((lambd - 0.25).abs() < 1e-6);
    /// ```
    pub fn with_lambd(self, lambd: f64) -> Self {
        let raw_lambd = self
            .raw_lambd
            .map(|raw| raw.zeros_like().add_scalar(raw_of(lambd)));
        Self { raw_lambd, ..self }
    }

    /// Applies the shrink with the learned thresholds.
    ///
    /// # Panics
    ///
    /// When the feature axis is out of range or its length differs from the thresholds'.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dim = self.per_feature.then_some(self.dim);
        #[cfg(feature = "onnx-export")]
        if crate::onnx::export::active(&x) {
            // Nothing is computed while exporting: the export takes softplus(θ) from θ's values.
            let axis = crate::functional::feature_axis(&x, dim, self.raw_lambd.dims()[0]);
            return crate::onnx::export::learned(x, self.raw_lambd.val(), axis, true);
        }
        learned_along(x, self.lambd(), dim, self.estimator)
    }
}
