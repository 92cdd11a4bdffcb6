//! The experiment's configuration, with Burn's `Config`; saved as a run's `config.json`.

use crate::error::Error;
use burn::config::Config;
use burn_hardshrink::{DeviceName, ThresholdEstimator};
use serde_json::Value;
use sparse_coding::error::Error as Common;
use std::path::PathBuf;

/// Everything that defines a run. `--config FILE` reads these fields from a JSON object; a
/// field it leaves out keeps its default.
#[derive(Config, Debug, PartialEq)]
pub struct DenoiseConfig {
    /// Side of the square patches, in pixels.
    #[config(default = 8)]
    pub patch: usize,
    /// Atoms of the dictionary: a square number, at least `patch²` (overcomplete).
    #[config(default = 256)]
    pub atoms: usize,
    /// Layers of the unfolded encoder.
    #[config(default = 5)]
    pub layers: usize,
    /// Noise levels (standard deviation, pixel range 0–255): each training crop draws one, and
    /// every method is scored at each.
    #[config(default = "vec![15.0, 25.0, 50.0]")]
    pub sigmas: Vec<f64>,
    /// Side of the square crops a training step denoises whole (all their overlapping patches),
    /// from `patch` to 32.
    #[config(default = 16)]
    pub crop: usize,
    /// Training steps, each a fresh batch of noisy crops.
    #[config(default = 6000)]
    pub steps: usize,
    /// Crops per step.
    #[config(default = 8)]
    pub batch: usize,
    /// Adam's learning rate, ×0.2 after 60% of the steps and ×0.04 after 85%.
    #[config(default = 3e-3)]
    pub learning_rate: f64,
    /// Every layer's threshold at the start, in units of σ.
    #[config(default = 0.4)]
    pub initial_threshold: f64,
    /// The pseudo-gradient of the hard thresholds.
    #[config(default = "ThresholdEstimator::Kernel { bandwidth: 0.2 }")]
    pub estimator: ThresholdEstimator,
    /// Keeps learned IHT's thresholds at `initial_threshold` (an ablation: only its weights and
    /// dictionary learn; the twin's thresholds still learn).
    #[config(default = false)]
    pub fixed_thresholds: bool,
    /// The patch-DCT baseline's threshold, in units of σ.
    #[config(default = 2.7)]
    pub dct_threshold: f64,
    /// Steps per epoch: a validation and a checkpoint after each.
    #[config(default = 500)]
    pub checkpoint_every: usize,
    /// Seed of the training crops and their noise (the networks' start is not random).
    #[config(default = 0)]
    pub seed: u64,
    /// Seed of the test images' noise.
    #[config(default = 1_000_003)]
    pub test_seed: u64,
    /// Training images: a folder of PNG or JPEG files; `None` for the bundled ones.
    pub images: Option<PathBuf>,
    /// Test images, likewise.
    pub test_images: Option<PathBuf>,
    /// Where to train and denoise.
    #[config(default = "DeviceName::Cpu")]
    pub device: DeviceName,
}

impl DenoiseConfig {
    /// Checks every field a run depends on; the error names the field and what it accepts.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field, value: String, accepted: &str| {
            Err(Common::Config(field, value, accepted.into()).into())
        };
        let side = (self.atoms as f64).sqrt().round() as usize;
        if !(2..=32).contains(&self.patch) {
            return bad("patch", self.patch.to_string(), "2 to 32 pixels");
        }
        // The loss's rebuild matrix grows with crop⁴: 32 keeps it near 160 MB.
        if self.crop < self.patch || self.crop > 32 {
            let range = format!("from `patch` = {} to 32 pixels", self.patch);
            return bad("crop", self.crop.to_string(), &range);
        }
        if side * side != self.atoms || side < self.patch {
            let square = format!("a square number ≥ patch² = {}", self.patch * self.patch);
            return bad("atoms", self.atoms.to_string(), &square);
        }
        let positive = [
            ("layers", self.layers as f64),
            ("steps", self.steps as f64),
            ("batch", self.batch as f64),
            ("checkpoint_every", self.checkpoint_every as f64),
            ("learning_rate", self.learning_rate),
            ("initial_threshold", self.initial_threshold),
            ("dct_threshold", self.dct_threshold),
        ];
        for (field, value) in positive {
            if !(value > 0.0 && value.is_finite()) {
                return bad(field, value.to_string(), "a finite number > 0");
            }
        }
        if self.sigmas.is_empty() || self.sigmas.iter().any(|s| !(*s > 0.0 && *s <= 255.0)) {
            let sigmas = format!("{:?}", self.sigmas);
            return bad("sigmas", sigmas, "one or more noise levels in (0, 255]");
        }
        self.estimator.validate().map_err(|e| {
            Common::Config("estimator", format!("{:?}", self.estimator), e.to_string()).into()
        })
    }

    /// Reads a config file: a JSON object of any of the fields.
    pub fn from_file(path: &std::path::Path) -> Result<Self, Error> {
        let fail = |reason: String| Common::ConfigFile(path.to_path_buf(), reason);
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Ok(Self::from_json(&text).map_err(fail)?)
    }

    /// The defaults with the fields of the JSON object `text` set: Burn's `Config` loader
    /// requires every field, and a run's file should outlive a field added later.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let Value::Object(fields) = serde_json::from_str(text).map_err(|e| e.to_string())? else {
            return Err("must be a JSON object of config fields".into());
        };
        let Ok(Value::Object(mut merged)) = serde_json::to_value(Self::new()) else {
            unreachable!("a config serialises to a JSON object")
        };
        for (field, value) in fields {
            if !merged.contains_key(&field) {
                let known: Vec<_> = merged.keys().cloned().collect();
                return Err(format!(
                    "unknown field `{field}` (the fields: {})",
                    known.join(", ")
                ));
            }
            merged.insert(field, value);
        }
        serde_json::from_value(Value::Object(merged)).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_round_trips_and_fills_missing_fields() {
        let config = DenoiseConfig::new().with_steps(7).with_sigmas(vec![10.0]);
        assert_eq!(
            DenoiseConfig::from_json(&config.to_string()).unwrap(),
            config
        );
        let partial = DenoiseConfig::from_json(r#"{"layers": 3}"#).unwrap();
        assert_eq!(partial, DenoiseConfig::new().with_layers(3));
        let unknown = DenoiseConfig::from_json(r#"{"layer": 3}"#).unwrap_err();
        assert!(unknown.starts_with("unknown field `layer`"), "{unknown}");
        assert!(DenoiseConfig::from_json(r#"{"layers": "three"}"#).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let error = |c: DenoiseConfig| c.validate().unwrap_err().to_string();
        assert!(error(DenoiseConfig::new().with_atoms(200)).contains("`atoms`"));
        assert!(error(DenoiseConfig::new().with_atoms(36)).contains("`atoms`"));
        assert!(error(DenoiseConfig::new().with_sigmas(vec![0.0])).contains("`sigmas`"));
        assert!(error(DenoiseConfig::new().with_steps(0)).contains("`steps`"));
        assert!(error(DenoiseConfig::new().with_crop(300)).contains("`crop`"));
        assert!(error(DenoiseConfig::new().with_crop(4)).contains("`crop`"));
        DenoiseConfig::new().validate().unwrap();
    }
}
