//! The Burn twin of `Net` in `models/make_models.py`, and its weights from PyTorch.
//!
//! | PyTorch (`state_dict`)       | Burn (`Net`)                                     |
//! |------------------------------|--------------------------------------------------|
//! | `fc1.weight` `[out, in]`     | `fc1.weight` `[in, out]` (burn-store transposes) |
//! | `fc1.bias`, `fc2.*`          | the same names                                   |
//! | `act1` (`nn.Hardshrink(0.5)`) | `act1`, a `Hardshrink` (no weights)              |
//! | `act2.theta`                 | `act2.raw_lambd`: λ = softplus(θ) on both sides  |

use crate::Error;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn_hardshrink::{Hardshrink, HardshrinkConfig, LearnedHardshrink, LearnedHardshrinkConfig};
use burn_store::{ModuleSnapshot, PytorchStore};
use std::path::Path;

/// Linear, Hardshrink, Linear, and a learned threshold per output feature.
#[derive(Module, Debug)]
pub struct Net {
    fc1: Linear,
    act1: Hardshrink,
    fc2: Linear,
    act2: LearnedHardshrink,
}

/// The sizes of [`Net`]; the defaults are those of the PyTorch module.
#[derive(Config, Debug)]
pub struct NetConfig {
    #[config(default = 8)]
    inputs: usize,
    #[config(default = 16)]
    hidden: usize,
    #[config(default = 4)]
    outputs: usize,
}

impl NetConfig {
    /// A network with fresh weights.
    pub fn init(&self, device: &Device) -> Net {
        Net {
            fc1: LinearConfig::new(self.inputs, self.hidden).init(device),
            act1: HardshrinkConfig::new().with_lambd(0.5).init(),
            fc2: LinearConfig::new(self.hidden, self.outputs).init(device),
            act2: LearnedHardshrinkConfig::new()
                .with_features(Some(self.outputs))
                .init(device),
        }
    }
}

impl Net {
    /// `[batch, inputs]` to `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let hidden = self.act1.forward(self.fc1.forward(x));
        self.act2.forward(self.fc2.forward(hidden))
    }

    /// The learned thresholds, λ = softplus(θ).
    pub fn thresholds(&self) -> Tensor<1> {
        self.act2.lambd()
    }

    /// Fills the network from a PyTorch `state_dict` file (`torch.save(net.state_dict(), path)`),
    /// with the mapping in this module's table. Every Burn weight must be found and every
    /// PyTorch tensor used; the error names the first key that is not.
    pub fn load_pytorch(mut self, path: &Path) -> Result<Self, Error> {
        let fail = |reason: String| Error::Load {
            path: path.display().to_string(),
            reason,
        };
        // Partial, so that burn-store reports what is missing as data to name in one line.
        let mut store = PytorchStore::from_file(path)
            .with_key_remapping(r"^act2\.theta$", "act2.raw_lambd")
            .allow_partial(true);
        let result = self
            .load_from(&mut store)
            .map_err(|error| fail(first_line(&error.to_string())))?;
        if let Some(error) = result.errors.first() {
            return Err(fail(first_line(&error.to_string())));
        }
        let unused = result.unused.first();
        let hint = unused.map_or(String::new(), |key| {
            format!(" (the file's `{key}` is unused)")
        });
        if let Some((missing, _)) = result.missing.first() {
            return Err(fail(format!(
                "no PyTorch tensor for the Burn model's `{missing}`{hint}; map the PyTorch key \
                 to it with `PytorchStore::with_key_remapping`"
            )));
        }
        if let Some(key) = unused {
            return Err(fail(format!(
                "PyTorch tensor `{key}` has no place in the Burn model; map it with \
                 `PytorchStore::with_key_remapping` or drop it from the state_dict"
            )));
        }
        Ok(self)
    }
}

/// 32 inputs of the default size, spread over [-2, 2).
pub fn sample_input(device: &Device) -> Tensor<2> {
    let inputs = NetConfig::new().inputs;
    let values = crate::demo::spread(32 * inputs, 2.0);
    Tensor::<1>::from_floats(values.as_slice(), device).reshape([32, inputs])
}

fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches(':')
        .into()
}
