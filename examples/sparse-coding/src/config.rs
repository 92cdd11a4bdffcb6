//! The run's configuration: defaults, presets, JSON, and the checks that reject bad values.

use crate::error::Error;
use burn::lr_scheduler::LrSchedulerConfig;
use burn::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn_hardshrink::DeviceName;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::Path;

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
    /// Samples per training step.
    pub batch: usize,
    /// Adam's learning rate before the drops (×0.2 from 60% of each launch's steps, ×0.02
    /// from 85%).
    pub learning_rate: f64,
    /// Seed of the dictionary and the training and validation samples.
    pub seed: u64,
    /// Seed of the test set.
    pub test_seed: u64,
    /// Test samples (every method is scored on the same set).
    pub test_samples: usize,
    /// Validation samples: scored after every epoch, and the baselines choose their
    /// thresholds on them.
    pub validation_samples: usize,
    /// How each layer's weight is parametrised.
    pub weights: Weights,
    /// End to end, or one layer at a time.
    pub training: Training,
    /// Where the training loss looks.
    pub loss: LossPlacement,
    /// A per-sample log-error term in the loss that takes over from the MSE for samples
    /// recovered better than this many dB (so the well-recovered bulk keeps improving instead
    /// of the loss being all the few hardest samples'); `None` for the MSE alone.
    pub log_loss_below_db: Option<f64>,
    /// A learned momentum `β_k·(x_k − x_{k−1})` in every layer.
    pub momentum: bool,
    /// After training, set each network's last threshold to the best value of a grid around it
    /// on the validation set: by support F1 for hard thresholds, by NMSE for the soft twin (the
    /// pseudo-gradient barely moves a small threshold).
    pub calibrate_last_threshold: bool,
    /// The pseudo-gradient of the hard thresholds.
    pub estimator: Estimator,
    /// Width of the kernel estimator's window around each learned threshold.
    pub bandwidth: f64,
    /// Stage-wise training: the learning rate of the layers before the new one, relative to
    /// the new layer's (in (0, 1]).
    pub earlier_layers_lr: f64,
    /// Keep the thresholds at `λ_k = 0.5·0.8^k` instead of learning them (learned IHT only).
    pub fixed_thresholds: bool,
    /// Steps per epoch: validation and a checkpoint after each.
    pub checkpoint_every: usize,
    /// The device to train on.
    pub device: DeviceName,
    /// Train data-parallel on these devices instead (each takes an equal share of every
    /// step's batch, and their gradients are summed); empty for `device` alone.
    pub devices: Vec<DeviceName>,
}

impl Default for RunConfig {
    fn default() -> Self {
        let mut config = Self {
            // Size, budget and recipe: the default preset's, set below.
            m: 0,
            n: 0,
            p: 0.1,
            snr_db: None,
            layers: 16,
            steps: 0,
            batch: 128,
            learning_rate: 1e-2,
            seed: 0,
            test_seed: 1_000_003,
            test_samples: 1000,
            validation_samples: 1000,
            weights: Weights::Analytic,
            training: Training::StageWise,
            loss: LossPlacement::Last,
            log_loss_below_db: None,
            momentum: false,
            calibrate_last_threshold: true,
            estimator: Estimator::Kernel,
            bandwidth: 0.0,
            earlier_layers_lr: 0.1,
            fixed_thresholds: false,
            checkpoint_every: 500,
            device: DeviceName::Cpu,
            devices: Vec::new(),
        };
        Preset::Default.apply(&mut config);
        config
    }
}

/// How each layer's weight `W_k` is parametrised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Weights {
    /// `γ_k·W`: ALISTA's analytic weight, computed from `A`, with a learned step size per layer.
    Analytic,
    /// A free m × n matrix per layer, started at `A / L` (LISTA-CP).
    Free,
}

/// How the layers are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Training {
    /// All layers together, for `steps` steps.
    EndToEnd,
    /// Layer by layer: stage t trains the first t layers (a burn-train launch of its own with a
    /// fresh optimiser, the earlier layers at `earlier_layers_lr`), `steps / layers` steps each.
    StageWise,
}

/// Where the training loss looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LossPlacement {
    /// The MSE of the last (trained) layer.
    Last,
    /// The MSE of every layer, averaged.
    Average,
}

/// The pseudo-gradient of a learned hard threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// The JumpReLU-style rectangle kernel of width `bandwidth` around the jump.
    Kernel,
    /// Soft thresholding's derivative, `−sign(x)` outside the band.
    StraightThrough,
}

/// Named problem sizes, each with the training budget and recipe its measured results used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// m = 64, n = 128, 16 000 steps.
    Default,
    /// m = 250, n = 500 (the LISTA literature's standard benchmark), 4 800 steps, with a
    /// learned momentum and a kernel window of 0.1.
    Large,
}

impl Preset {
    /// The config fields a preset sets.
    pub const FIELDS: [&'static str; 5] = ["m", "n", "steps", "momentum", "bandwidth"];

    /// Refuses a config file (its JSON `text`, read from `origin`) that sets a field the preset
    /// also sets, instead of overriding the file without a word.
    pub fn check_file(self, text: &str, origin: &Path) -> Result<(), Error> {
        let set = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
            .unwrap_or_default();
        match Self::FIELDS
            .into_iter()
            .find(|field| set.contains_key(*field))
        {
            None => Ok(()),
            Some(field) => Err(Error::Usage(format!(
                "{} sets `{field}`, which `--preset {}` also sets: drop one of the two",
                origin.display(),
                self.to_possible_value()
                    .expect("no skipped presets")
                    .get_name()
            ))),
        }
    }

    /// Applies the preset's problem size, step budget and recipe.
    pub fn apply(self, config: &mut RunConfig) {
        // Large: 1 600 steps met the targets on two of three seeds (the third left one test
        // sample unrecovered); 4 800 met them on all three, in under 5 minutes. The momentum is
        // what reaches −70 dB there (without it, seed 0: −48.4 dB); on the default size it costs
        // learned IHT NMSE and support (README's ablation).
        (
            config.m,
            config.n,
            config.steps,
            config.momentum,
            config.bandwidth,
        ) = match self {
            Self::Default => (64, 128, 16_000, false, 0.07),
            Self::Large => (250, 500, 4_800, true, 0.1),
        };
    }
}

impl RunConfig {
    /// Reads a JSON config; the error names the file and the offending field.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self, Error> {
        let fail = |reason: String| Error::ConfigFile {
            path: origin.to_path_buf(),
            reason,
        };
        let mut json = serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(&mut json).map_err(|e| {
            match e.path().to_string().as_str() {
                "." => fail(e.inner().to_string()),
                field => fail(format!("field `{field}`: {}", e.inner())),
            }
        })?;
        json.end().map_err(|e| fail(e.to_string()))?;
        Ok(config)
    }

    /// The config as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    /// Trains on `device` alone (replacing `devices` too).
    pub fn train_on(&mut self, device: DeviceName) {
        self.device = device;
        self.devices.clear();
    }

    /// The devices training runs on: `devices`, or `device` alone.
    pub fn training_devices(&self) -> Vec<DeviceName> {
        if self.devices.is_empty() {
            vec![self.device]
        } else {
            self.devices.clone()
        }
    }

    /// Checks every field; the first bad one is returned, named, with what is allowed.
    pub fn validate(&self) -> Result<(), Error> {
        // `field` = `value` is refused unless `ok`, with what the field allows.
        fn ensure(
            ok: bool,
            field: &'static str,
            value: impl Display,
            allowed: &str,
        ) -> Result<(), Error> {
            if ok {
                Ok(())
            } else {
                Err(Error::config(field, value, allowed))
            }
        }
        let in_range = |field, value: f64, range: RangeInclusive<f64>, allowed: &str| {
            ensure(range.contains(&value), field, value, allowed)
        };
        // Upper bounds keep every buffer addressable and every product of sizes in range.
        for (field, value, limit) in [
            ("m", self.m, 1 << 16),
            ("n", self.n, 1 << 16),
            ("layers", self.layers, 1024),
            ("steps", self.steps, u32::MAX as usize),
            ("batch", self.batch, 1 << 20),
            ("test_samples", self.test_samples, 1 << 20),
            ("validation_samples", self.validation_samples, 1 << 20),
            ("checkpoint_every", self.checkpoint_every, u32::MAX as usize),
        ] {
            ensure(value >= 1, field, value, "an integer >= 1")?;
            ensure(value <= limit, field, value, &format!("at most {limit}"))?;
        }
        let n = self.n;
        ensure(
            self.m.saturating_mul(n) <= 1 << 26,
            "m",
            self.m,
            &format!("such that m·n <= 2^26 (n = {n})"),
        )?;
        ensure(
            self.m <= n,
            "m",
            self.m,
            &format!("at most n = {n} (fewer measurements than unknowns)"),
        )?;
        ensure(
            self.p > 0.0 && self.p <= 1.0,
            "p",
            self.p,
            "a probability in (0, 1]",
        )?;
        if let Some(snr) = self.snr_db {
            in_range(
                "snr_db",
                snr,
                -60.0..=200.0,
                "a number of dB in [-60, 200], or none",
            )?;
        }
        if let Some(db) = self.log_loss_below_db {
            in_range(
                "log_loss_below_db",
                db,
                -80.0..=0.0,
                "a number of dB in [-80, 0], or none",
            )?;
        }
        for (field, value) in [
            ("learning_rate", self.learning_rate),
            ("bandwidth", self.bandwidth),
        ] {
            ensure(
                value > 0.0 && value.is_finite(),
                field,
                value,
                "a finite number > 0",
            )?;
        }
        let lr = self.earlier_layers_lr;
        ensure(
            lr > 0.0 && lr <= 1.0,
            "earlier_layers_lr",
            lr,
            "a factor in (0, 1]",
        )?;
        ensure(
            self.training == Training::EndToEnd || self.steps >= self.layers,
            "steps",
            self.steps,
            &format!(
                "at least one per layer for stage-wise training (layers = {})",
                self.layers
            ),
        )?;
        let devices = self.training_devices();
        ensure(
            self.batch.is_multiple_of(devices.len()),
            "batch",
            self.batch,
            &format!(
                "a multiple of the number of devices ({}), so each takes an equal share",
                devices.len()
            ),
        )?;
        for device in devices {
            device.open()?;
        }
        Ok(())
    }

    /// The fixed threshold schedule `λ_k = 0.5·0.8^k` (also the learned thresholds' start).
    pub fn threshold_schedule(&self) -> Vec<f64> {
        (0..self.layers)
            // Floored where f32 would flush it to zero (past about 60 layers).
            .map(|k| (0.5 * 0.8f64.powi(k as i32)).max(1e-6))
            .collect()
    }

    /// The training launches: one for end-to-end training, one per layer for stage-wise.
    pub fn stages(&self) -> Vec<Stage> {
        match self.training {
            Training::EndToEnd => vec![Stage {
                index: 0,
                layers: self.layers,
                first_step: 0,
                steps: self.steps,
            }],
            Training::StageWise => {
                // `steps` split over the stages; the first ones take the remainder.
                let (each, extra) = (self.steps / self.layers, self.steps % self.layers);
                let mut first_step = 0;
                (0..self.layers)
                    .map(|index| {
                        let steps = each + usize::from(index < extra);
                        let stage = Stage {
                            index,
                            layers: index + 1,
                            first_step,
                            steps,
                        };
                        first_step += steps;
                        stage
                    })
                    .collect()
            }
        }
    }

    /// Epochs of `checkpoint_every` steps in a launch of `steps` steps (the last may be shorter).
    pub fn epochs(&self, steps: usize) -> usize {
        steps.div_ceil(self.checkpoint_every)
    }
}

/// One training launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// Its position among the run's launches.
    pub index: usize,
    /// The leading layers it trains.
    pub layers: usize,
    /// The run's step its first step is (its batches follow the earlier launches').
    pub first_step: usize,
    /// Its steps.
    pub steps: usize,
}

/// `rate` for the first 60% of `steps`, `0.2·rate` to 85%, `0.02·rate` after: a Burn sequential
/// schedule of constant parts whose milestones are the first step of each part.
pub fn schedule(rate: f64, steps: usize) -> SequentialLrSchedulerConfig {
    // The first step index s with s / steps >= the fraction.
    let from = |percent: usize| (percent * steps).div_ceil(100);
    let mut parts = vec![LrSchedulerConfig::Constant(rate)];
    let mut milestones = Vec::new();
    for (percent, factor) in [(60, 0.2), (85, 0.02)] {
        let start = from(percent);
        // A part that would start where the previous one does (a run of a step or two) is
        // skipped: Burn's milestones must increase strictly.
        if start > milestones.last().copied().unwrap_or(0) {
            milestones.push(start);
            parts.push(LrSchedulerConfig::Constant(rate * factor));
        }
    }
    SequentialLrSchedulerConfig::new(parts, milestones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let config = RunConfig::default();
        config.validate().unwrap();
        let here = Path::new("x");
        assert_eq!(
            RunConfig::from_json(&config.to_json(), here).unwrap(),
            config
        );
        // Missing fields take their defaults.
        let partial = RunConfig::from_json(r#"{"layers": 4}"#, here).unwrap();
        assert_eq!(partial.layers, 4);
        assert_eq!(partial.n, 128);
    }

    #[test]
    fn learning_rate_drops_at_60_and_85_percent() {
        let mut scheduler = schedule(1e-3, 100).init().unwrap();
        let rates: Vec<f64> = (0..100).map(|_| scheduler.step().base()).collect();
        assert_eq!(rates[59], 1e-3);
        assert_eq!(rates[60], 1e-3 * 0.2);
        assert_eq!(rates[84], 1e-3 * 0.2);
        assert_eq!(rates[85], 1e-3 * 0.02);
        assert_eq!(rates[99], 1e-3 * 0.02);
        // Runs too short for three parts still get a valid schedule.
        for steps in 1..5 {
            schedule(1e-3, steps).init().unwrap();
        }
    }

    #[test]
    fn config_file_errors_name_the_field() {
        let file = Path::new("c.json");
        let err = RunConfig::from_json(r#"{"layers": -1}"#, file)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("field `layers`") && err.contains("c.json"),
            "{err}"
        );
        let err = RunConfig::from_json(r#"{"device": "tpu"}"#, file)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("field `device`") && err.contains("tpu"),
            "{err}"
        );
        let err = RunConfig::from_json(r#"{"colour": 1}"#, file)
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
        let err = RunConfig::from_json("{", file).unwrap_err().to_string();
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
        let uneven = RunConfig {
            batch: 127,
            devices: vec![DeviceName::Cpu, DeviceName::Cpu],
            ..RunConfig::default()
        };
        let err = uneven.validate().unwrap_err().to_string();
        assert!(err.contains("`batch`") && err.contains("(2)"), "{err}");
    }

    #[test]
    fn stages_split_the_steps() {
        let config = RunConfig {
            layers: 4,
            steps: 10,
            training: Training::StageWise,
            ..RunConfig::default()
        };
        let stages = config.stages();
        assert_eq!(
            stages
                .iter()
                .map(|s| (s.layers, s.first_step, s.steps))
                .collect::<Vec<_>>(),
            [(1, 0, 3), (2, 3, 3), (3, 6, 2), (4, 8, 2)]
        );
        let end_to_end = RunConfig {
            training: Training::EndToEnd,
            ..config
        };
        assert_eq!(end_to_end.stages().len(), 1);
        assert_eq!(end_to_end.stages()[0].steps, 10);
    }

    #[test]
    fn presets_set_only_their_fields() {
        let default = serde_json::to_value(RunConfig::default()).unwrap();
        let mut large = RunConfig::default();
        Preset::Large.apply(&mut large);
        let large = serde_json::to_value(large).unwrap();
        let mut changed: Vec<&str> = default
            .as_object()
            .unwrap()
            .iter()
            .filter(|(field, value)| large[field.as_str()] != **value)
            .map(|(field, _)| field.as_str())
            .collect();
        let mut fields = Preset::FIELDS;
        changed.sort_unstable();
        fields.sort_unstable();
        assert_eq!(changed, fields);
        let origin = Path::new("run.json");
        assert!(Preset::Large.check_file(r#"{"seed": 3}"#, origin).is_ok());
        let error = Preset::Large
            .check_file(r#"{"seed": 3, "momentum": false}"#, origin)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`momentum`") && error.contains("--preset large"),
            "{error}"
        );
    }

    #[test]
    fn presets_set_the_problem_size_and_budget() {
        let mut config = RunConfig::default();
        assert_eq!((config.m, config.n, config.steps), (64, 128, 16_000));
        assert!(!config.momentum);
        Preset::Large.apply(&mut config);
        assert_eq!((config.m, config.n, config.steps), (250, 500, 4_800));
        assert!(config.momentum);
    }
}
