use crate::try_hardshrink;
use burn::module::{Content, DisplaySettings, Module, ModuleDisplay};
use burn::tensor::Tensor;

/// Hardshrink layer, PyTorch's `nn.Hardshrink`:
///
/// ```text
/// Hardshrink(x) = +0  if -λ <= x <= λ
///               = x   otherwise
/// ```
///
/// No parameters; λ is a constant of the module: not trained, and (like Burn's `HardShrink`)
/// not part of its saved record, so a loaded model keeps the λ of the config it was built from.
/// Build it with
/// [`HardshrinkConfig`](crate::HardshrinkConfig), or from Burn's own
/// [`HardShrink`](burn::nn::HardShrink) with `.into()`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_hardshrink::HardshrinkConfig;
///
/// let act = HardshrinkConfig::new().init(); // λ = 0.5
/// let x = Tensor::<2>::from_floats([[-0.7, 0.5], [0.1, 3.0]], &Device::flex());
/// let y = act.forward(x);
/// assert_eq!(y.to_data().try_to_vec::<f32>().unwrap(), vec![-0.7, 0.0, 0.0, 3.0]);
/// assert_eq!(act.to_string(), "Hardshrink {lambd: 0.5}");
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Hardshrink {
    /// The threshold λ: values with `|x| <= λ` become `+0`.
    pub lambd: f64,
}

impl Hardshrink {
    /// Applies Hardshrink element-wise; any shape.
    ///
    /// Moving a tensor in that nothing else holds lets the CPU kernels work in place, with no
    /// allocation; a tensor that is still shared is left untouched and a new one returned.
    ///
    /// # Shapes
    /// - input: `[..., any]`
    /// - output: same as the input
    ///
    /// # Panics
    ///
    /// As [`hardshrink`](crate::hardshrink) does, for a dtype the backend cannot hold.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        try_hardshrink(x, self.lambd).unwrap_or_else(|error| panic!("{error}"))
    }
}

impl ModuleDisplay for Hardshrink {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content.add("lambd", &self.lambd).optional()
    }
}

/// Swap Burn's built-in layer for this one: `let act: Hardshrink = burn_layer.into();`
impl From<burn::nn::HardShrink> for Hardshrink {
    fn from(layer: burn::nn::HardShrink) -> Self {
        Self {
            lambd: layer.lambda,
        }
    }
}

/// And back: `let burn_layer: burn::nn::HardShrink = act.into();`
impl From<Hardshrink> for burn::nn::HardShrink {
    fn from(layer: Hardshrink) -> Self {
        burn::nn::HardShrinkConfig::new()
            .with_lambda(layer.lambd)
            .init()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HardshrinkConfig;
    use burn::tensor::Device;

    #[test]
    fn display_names_the_threshold() {
        let act = HardshrinkConfig::new().with_lambd(0.25).init();
        assert_eq!(format!("{act}"), "Hardshrink {lambd: 0.25}");
    }

    #[test]
    fn converts_to_and_from_burns_layer() {
        let burn_layer = burn::nn::HardShrinkConfig::new().with_lambda(0.3).init();
        let ours: Hardshrink = burn_layer.into();
        assert_eq!(ours.lambd, 0.3);
        let back: burn::nn::HardShrink = ours.into();
        assert_eq!(back.lambda, 0.3);
    }

    #[test]
    fn forward_matches_burns_layer_in_a_model_swap() {
        let device = Device::flex();
        let x = Tensor::<2>::from_floats([[-2.0, -0.4, 0.0, 0.3, 0.9]], &device);
        let burn_layer = burn::nn::HardShrinkConfig::new().with_lambda(0.4).init();
        let expected = burn_layer.forward(x.clone()).into_data();
        let ours: Hardshrink = burn_layer.into();
        assert_eq!(ours.forward(x).into_data(), expected);
    }
}
