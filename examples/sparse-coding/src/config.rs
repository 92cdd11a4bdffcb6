//! The run's configuration: defaults, presets, JSON, and the checks that reject bad values.

use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Everything that defines a run. Saved as `config.json` in the run directory; `--config FILE`
/// reads the same format (missing fields take their defaults, unknown fields are an error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Measurements per signal (rows of `A`).
    pub m: usize,
    /// Code length (columns of `A`); `m <= n`.
    pub n: usize,
    /// Probability that a code entry is nonzero, in (0, 1].
    pub p: f64,
    /// Measurement SNR in dB; `None` is noiseless.
    pub snr_db: Option<f64>,
    /// Unfolded iterations (layers) of the model, and iterations of each baseline.
    pub layers: usize,
    /// Training steps (one fresh batch each).
    pub steps: usize,
    /// Samples per training batch.
    pub batch: usize,
    /// Adam's learning rate before the drops (×0.2 from 60% of the steps, ×0.02 from 85%).
    pub learning_rate: f64,
    /// Seed of the dictionary and the training and validation samples.
    pub seed: u64,
    /// Seed of the test set.
    pub test_seed: u64,
    /// Test samples (every method is scored on the same set).
    pub test_samples: usize,
    /// Validation samples the baselines choose their thresholds on.
    pub validation_samples: usize,
    /// Keep the thresholds at `λ_k = 0.5·0.8^k` instead of learning them.
    pub fixed_thresholds: bool,
    /// Width of the kernel estimator's window around each learned threshold.
    pub bandwidth: f64,
    /// Evaluate on the test set every this many steps.
    pub eval_every: usize,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Record the training loss every this many steps.
    pub log_every: usize,
    /// Device name: `cpu`, `flex`, `ndarray` (and GPU names where built in).
    pub device: String,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            m: 64,
            n: 128,
            p: 0.1,
            snr_db: None,
            layers: 16,
            steps: 12_000,
            batch: 128,
            learning_rate: 1e-3,
            seed: 0,
            test_seed: 1_000_003,
            test_samples: 1000,
            validation_samples: 1000,
            fixed_thresholds: false,
            bandwidth: 0.1,
            eval_every: 1000,
            checkpoint_every: 500,
            log_every: 50,
            device: "cpu".into(),
        }
    }
}

/// Named problem sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// m = 64, n = 128.
    Default,
    /// m = 250, n = 500, the size of the LISTA literature's standard benchmark.
    Large,
}

impl Preset {
    /// The names `--preset` accepts.
    pub const NAMES: [&'static str; 2] = ["default", "large"];

    /// Parses a preset name.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "default" => Ok(Self::Default),
            "large" => Ok(Self::Large),
            other => Err(Error::config("preset", other, "one of default, large")),
        }
    }

    /// Applies the preset's problem size.
    pub fn apply(self, config: &mut RunConfig) {
        (config.m, config.n) = match self {
            Self::Default => (64, 128),
            Self::Large => (250, 500),
        };
    }
}

impl RunConfig {
    /// Reads a JSON config; the error names the file and the offending field.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, Error> {
        let fail = |reason: String| Error::ConfigFile {
            path: origin.into(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| fail(e.to_string()))?;
        // serde's type errors give a line and column but not the field: try the fields one at a
        // time first, so a bad value is reported by name.
        if let Some(fields) = value.as_object() {
            for (name, field) in fields {
                let alone = serde_json::json!({ name.as_str(): field });
                if let Err(e) = serde_json::from_value::<Self>(alone) {
                    return Err(fail(format!("field `{name}`: {e}")));
                }
            }
        }
        serde_json::from_value(value).map_err(|e| fail(e.to_string()))
    }

    /// The config as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    /// Checks every field; the first bad one is returned, named, with what is allowed.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = |field: &'static str, value: usize| {
            if value == 0 {
                Err(Error::config(field, value, "an integer >= 1"))
            } else {
                Ok(())
            }
        };
        let at_most = |field: &'static str, value: usize, limit: usize| {
            if value > limit {
                Err(Error::config(field, value, &format!("at most {limit}")))
            } else {
                Ok(())
            }
        };
        positive("m", self.m)?;
        positive("n", self.n)?;
        // Bounds that keep every buffer addressable and every product of sizes in range.
        at_most("n", self.n, 1 << 16)?;
        at_most("layers", self.layers, 1024)?;
        at_most("batch", self.batch, 1 << 20)?;
        at_most("test_samples", self.test_samples, 1 << 20)?;
        at_most("validation_samples", self.validation_samples, 1 << 20)?;
        if self.m * self.n > 1 << 26 {
            return Err(Error::config(
                "m",
                self.m,
                &format!("such that m·n <= 2^26 (n = {})", self.n),
            ));
        }
        if self.m > self.n {
            return Err(Error::config(
                "m",
                self.m,
                &format!("at most n = {} (fewer measurements than unknowns)", self.n),
            ));
        }
        if !(self.p > 0.0 && self.p <= 1.0) {
            return Err(Error::config("p", self.p, "a probability in (0, 1]"));
        }
        if let Some(snr) = self.snr_db
            && !(-60.0..=200.0).contains(&snr)
        {
            return Err(Error::config(
                "snr_db",
                snr,
                "a number of dB in [-60, 200], or none",
            ));
        }
        positive("layers", self.layers)?;
        positive("steps", self.steps)?;
        positive("batch", self.batch)?;
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::config(
                "learning_rate",
                self.learning_rate,
                "a finite number > 0",
            ));
        }
        positive("test_samples", self.test_samples)?;
        positive("validation_samples", self.validation_samples)?;
        if !(self.bandwidth > 0.0 && self.bandwidth.is_finite()) {
            return Err(Error::config(
                "bandwidth",
                self.bandwidth,
                "a finite number > 0",
            ));
        }
        positive("eval_every", self.eval_every)?;
        positive("checkpoint_every", self.checkpoint_every)?;
        positive("log_every", self.log_every)?;
        burn_hardshrink::device_from_name(&self.device).map_err(Error::Device)?;
        Ok(())
    }

    /// The learning rate at `step`: the base rate, ×0.2 from 60% of the steps, ×0.02 from 85%.
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        let progress = step as f64 / self.steps as f64;
        let factor = if progress < 0.6 {
            1.0
        } else if progress < 0.85 {
            0.2
        } else {
            0.02
        };
        self.learning_rate * factor
    }

    /// The fixed threshold schedule `λ_k = 0.5·0.8^k` (also the learned thresholds' start).
    pub fn threshold_schedule(&self) -> Vec<f64> {
        (0..self.layers)
            .map(|k| 0.5 * 0.8f64.powi(k as i32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let config = RunConfig::default();
        config.validate().unwrap();
        assert_eq!(
            RunConfig::from_json(&config.to_json(), "x").unwrap(),
            config
        );
        // Missing fields take their defaults.
        let partial = RunConfig::from_json(r#"{"layers": 4}"#, "x").unwrap();
        assert_eq!(partial.layers, 4);
        assert_eq!(partial.n, 128);
    }

    #[test]
    fn learning_rate_drops_at_60_and_85_percent() {
        let config = RunConfig {
            steps: 100,
            ..RunConfig::default()
        };
        assert_eq!(config.learning_rate_at(59), 1e-3);
        assert_eq!(config.learning_rate_at(60), 1e-3 * 0.2);
        assert_eq!(config.learning_rate_at(84), 1e-3 * 0.2);
        assert_eq!(config.learning_rate_at(85), 1e-3 * 0.02);
    }

    #[test]
    fn config_file_errors_name_the_field() {
        let err = RunConfig::from_json(r#"{"layers": -1}"#, "c.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("field `layers`") && err.contains("c.json"),
            "{err}"
        );
        let err = RunConfig::from_json(r#"{"colour": 1}"#, "c.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
        let err = RunConfig::from_json("{", "c.json").unwrap_err().to_string();
        assert!(err.contains("c.json"), "{err}");
    }

    #[test]
    fn sizes_beyond_the_bounds_are_rejected() {
        let huge = RunConfig {
            m: 1 << 16,
            n: 1 << 16,
            ..RunConfig::default()
        };
        assert!(huge.validate().unwrap_err().to_string().contains("m·n"));
        let loud = RunConfig {
            snr_db: Some(-1000.0),
            ..RunConfig::default()
        };
        assert!(
            loud.validate()
                .unwrap_err()
                .to_string()
                .contains("`snr_db`")
        );
    }

    #[test]
    fn presets_set_the_problem_size() {
        let mut config = RunConfig::default();
        Preset::from_name("large").unwrap().apply(&mut config);
        assert_eq!((config.m, config.n), (250, 500));
        let err = Preset::from_name("huge").unwrap_err().to_string();
        assert!(
            err.contains("preset") && err.contains("default, large"),
            "{err}"
        );
    }
}
