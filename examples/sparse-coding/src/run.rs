//! A whole run: the learned IHT network and its learned soft-threshold twin (LISTA-CP), each
//! trained through one burn-train launch per stage, then every method's scores on the test set,
//! `results.json` and the plots.
//!
//! ```text
//! <run>/config.json                        the run's RunConfig
//! <run>/experiment.log                     burn-train's log
//! <run>/<network>/<launch>/                one burn-train launch: network learned-iht or
//!                                          lista-cp, launch end-to-end or stage-01, stage-02, …
//! <run>/<network>/<launch>/train/epoch-<e>/<metric>.log   loss and learning rate per step
//! <run>/<network>/<launch>/valid/epoch-<e>/<metric>.log   validation loss, NMSE, support F1
//! <run>/<network>/<launch>/checkpoint/     the newest two epochs and the best (`checkpoint`);
//!                                          a launch is done once its last epoch's is there
//! <run>/results.json                       final scores of every method
//! <run>/nmse_per_layer.{png,svg}, <run>/training.{png,svg}
//! ```

use crate::baselines::{self, Method};
use crate::checkpoint::{self, RunClock, write_atomic};
use crate::config::{RunConfig, Stage, Training};
use crate::error::Error;
use crate::metrics::{MethodScores, host};
use crate::model::{Shrinkage, Unfolded};
use crate::plot::{self, Chart, Series};
use crate::problem::{Operator, Problem, Samples, Stream};
use crate::results::Results;
use crate::training::{self, LaunchOptions, Trained};
use burn::module::Module;
use burn::tensor::Device;
use burn::train::metric::NumericEntry;
use burn::train::{ApplicationLoggerInstaller, FileApplicationLoggerInstaller};
use burn_hardshrink::DeviceName;
use std::path::Path;
use std::sync::Arc;

/// How to run, beyond the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print only errors: no dashboard, no progress lines, no messages.
    pub quiet: bool,
    /// Stop as a kill would once this many epochs are checkpointed (for testing resume).
    pub stop_after_epochs: Option<usize>,
}

/// What a call to [`run`] or [`resume`] ended with.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The run finished and wrote `results.json`.
    Finished(Box<Results>),
    /// Training stopped before its last epoch; [`resume`] continues it.
    Stopped,
}

/// Runs the experiment `config` describes in a new run directory `out`.
///
/// Refuses a directory that already holds a run; bad config values are reported before
/// anything is written.
pub fn run(config: &RunConfig, out: &Path, options: &RunOptions) -> Result<Outcome, Error> {
    config.validate()?;
    let config_path = out.join("config.json");
    let trained = [Shrinkage::Hard, Shrinkage::Soft]
        .into_iter()
        .any(|shrinkage| out.join(network_dir(shrinkage)).exists());
    if config_path.exists() || trained {
        return Err(Error::Usage(format!(
            "{} already holds a run: continue it with `--resume {}` or pick a new `--out`",
            out.display(),
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| {
        Error::Usage(format!(
            "cannot create the run directory {} ({e}): pick another `--out`",
            out.display()
        ))
    })?;
    write_atomic(&config_path, config.to_json().as_bytes()).map_err(Error::io(&config_path))?;
    execute(out, config, false, options)
}

/// Continues the run in `out` from its newest readable checkpoint, with the run's own config;
/// `device` may move it to another device.
///
/// The result equals that of an uninterrupted run up to float rounding: every batch is a pure
/// function of the seed and the step, and the checkpoint holds the weights, thresholds, Adam's
/// moments and the schedule's position.
pub fn resume(
    out: &Path,
    device: Option<DeviceName>,
    options: &RunOptions,
) -> Result<Outcome, Error> {
    let path = out.join("config.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::checkpoint(&path, format!("no run config ({e})")))?;
    let mut config = RunConfig::from_json(&text, &path)?;
    if let Some(device) = device {
        config.train_on(device);
    }
    config.validate()?;
    execute(out, &config, true, options)
}

/// A trained network's place in the run directory, and its name in tables and charts.
fn network_dir(shrinkage: Shrinkage) -> &'static str {
    match shrinkage {
        Shrinkage::Hard => "learned-iht",
        Shrinkage::Soft => "lista-cp",
    }
}

/// A launch's directory in the run's (`learned-iht/stage-03`), also its dashboard label.
fn launch_dir(config: &RunConfig, shrinkage: Shrinkage, stage: &Stage) -> String {
    let network = network_dir(shrinkage);
    match config.training {
        Training::EndToEnd => format!("{network}/end-to-end"),
        Training::StageWise => format!("{network}/stage-{:02}", stage.index + 1),
    }
}

/// What every launch of a run shares.
struct Invocation<'a> {
    out: &'a Path,
    config: &'a RunConfig,
    options: &'a RunOptions,
    problem: Arc<Problem>,
    validation: Arc<Samples>,
    devices: Vec<Device>,
    /// Started at the first launch this invocation trains, from the run's wall time so far.
    clock: Option<RunClock>,
    /// The run's wall time at the end of the last finished launch.
    last_wall: f64,
    /// Epochs of finished launches, for [`RunOptions::stop_after_epochs`].
    epochs_done: usize,
}

impl Invocation<'_> {
    fn say(&self, text: &str) {
        if !self.options.quiet {
            eprintln!("{text}");
        }
    }

    /// Trains one network through every launch of the plan (skipping those a resumed run
    /// finished); `None` when training stopped early.
    fn train_network(&mut self, shrinkage: Shrinkage) -> Result<Option<Unfolded>, Error> {
        let device = self.devices[0].clone();
        let fresh = || Unfolded::new(&self.problem, self.config, shrinkage, &device);
        let mut model: Option<Unfolded> = None;
        for stage in self.config.stages() {
            let name = launch_dir(self.config, shrinkage, &stage);
            let dir = self.out.join(&name);
            let epochs = self.config.epochs(stage.steps);
            let checkpoints = dir.join("checkpoint");
            let start = checkpoint::latest_readable(&checkpoints, |t| self.say(t))?;
            if let Some(done) = start.filter(|state| state.epoch == epochs) {
                model = Some(checkpoint::load_model(&checkpoints, epochs, fresh())?);
                self.last_wall = done.wall_seconds;
                self.epochs_done += epochs;
                continue;
            }
            if let Some(state) = start {
                self.say(&format!(
                    "resuming {name} after epoch {} of {epochs}",
                    state.epoch
                ));
            }
            let before = start.map_or(self.last_wall, |s| s.wall_seconds);
            let clock = self
                .clock
                .get_or_insert_with(|| RunClock::new(before))
                .clone();
            let launch = LaunchOptions {
                label: name,
                quiet: self.options.quiet,
                stop_after_epochs: self
                    .options
                    .stop_after_epochs
                    .and_then(|n| n.checked_sub(self.epochs_done))
                    .filter(|&n| n < epochs),
            };
            let base = model.take().unwrap_or_else(fresh);
            match training::train(
                self.config,
                &stage,
                base,
                &dir,
                &self.problem,
                &self.validation,
                &self.devices,
                start.map(|s| s.epoch),
                &clock,
                &launch,
            )? {
                Trained::Finished(trained) => {
                    self.last_wall = clock.seconds();
                    self.epochs_done += epochs;
                    model = Some(trained);
                }
                Trained::Stopped => return Ok(None),
            }
        }
        Ok(model)
    }
}

fn execute(
    out: &Path,
    config: &RunConfig,
    resume: bool,
    options: &RunOptions,
) -> Result<Outcome, Error> {
    let devices = config
        .training_devices()
        .into_iter()
        .map(DeviceName::open)
        .collect::<Result<Vec<Device>, _>>()?;
    // burn-train's log of the run (a process has one: later runs in it log there too).
    let _ = FileApplicationLoggerInstaller::new(out.join("experiment.log")).install();
    let problem = Arc::new(Problem::new(config));
    let validation = Arc::new(problem.sample(
        config.seed,
        Stream::Validation,
        0,
        config.validation_samples,
    ));
    let mut invocation = Invocation {
        out,
        config,
        options,
        problem: problem.clone(),
        validation: validation.clone(),
        devices,
        clock: None,
        last_wall: 0.0,
        epochs_done: 0,
    };
    invocation.say(&format!(
        "sparse coding: m = {}, n = {}, p = {}, {} layers, {} steps of {} on {} (L = {:.3}){}",
        config.m,
        config.n,
        config.p,
        config.layers,
        config.steps,
        config.batch,
        config
            .training_devices()
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        problem.lipschitz,
        if resume { ", resumed" } else { "" }
    ));
    let mut trained = Vec::new();
    let mut seconds = Vec::new();
    for shrinkage in [Shrinkage::Hard, Shrinkage::Soft] {
        let start = invocation.last_wall;
        let Some(model) = invocation.train_network(shrinkage)? else {
            return Ok(Outcome::Stopped);
        };
        seconds.push(invocation.last_wall - start);
        trained.push(model);
    }
    // Calibrated once both are trained, so neither network's training time holds it.
    let plain = invocation.devices[0].clone();
    let operator = problem.operator(&plain);
    let networks: Vec<_> = trained
        .into_iter()
        .map(|model| {
            if config.calibrate_last_threshold {
                model.calibrate_last_threshold(&validation, &operator)
            } else {
                (model, None)
            }
        })
        .collect();
    let clock = invocation
        .clock
        .clone()
        .unwrap_or_else(|| RunClock::new(invocation.last_wall));

    let plain = &plain;
    let test = problem.sample(config.test_seed, Stream::Test, 0, config.test_samples);
    let [learned_iht, lista_cp] = [0, 1].map(|i| {
        let (model, trained_last) = &networks[i];
        let scores = score_network(model, &test, &operator, plain);
        MethodScores {
            training_seconds: Some(seconds[i]),
            trained_last_threshold: *trained_last,
            ..scores
        }
    });
    invocation.say("choosing the baselines' thresholds on the validation set");
    let validation_y = validation.measurements(plain);
    let test_y = test.measurements(plain);
    let [ista, fista, iht] = Method::ALL.map(|method| {
        let tau = baselines::choose_threshold(
            method,
            &operator,
            &validation_y,
            &validation.x,
            config.layers,
        );
        let iterates: Vec<Vec<f32>> =
            baselines::iterate(method, &operator, &test_y, tau, config.layers)
                .into_iter()
                .map(host)
                .collect();
        MethodScores::of(&iterates, &test.x, config.n, vec![tau])
    });
    let results = Results {
        learned_iht,
        lista_cp,
        ista,
        fista,
        iht,
        wall_seconds: clock.seconds(),
        steps: config.steps,
        device: config.training_devices()[0],
    };
    let path = out.join("results.json");
    let text = serde_json::to_string_pretty(&results).expect("results serialise");
    write_atomic(&path, text.as_bytes()).map_err(Error::io(&path))?;
    plot_run(out, config, &results)?;
    Ok(Outcome::Finished(Box::new(results)))
}

/// The network's scores on a set of samples, every layer.
fn score_network(
    model: &Unfolded,
    samples: &Samples,
    operator: &Operator,
    device: &Device,
) -> MethodScores {
    let model = model.clone().fork(device);
    let outputs: Vec<Vec<f32>> = model
        .forward(samples.measurements(device), operator)
        .into_iter()
        .map(host)
        .collect();
    MethodScores {
        step_sizes: model.step_sizes(),
        ..MethodScores::of(
            &outputs,
            &samples.x,
            operator.dictionary_t.dims()[0],
            model.thresholds(),
        )
    }
}

/// The numeric entries of one metric's log for one epoch (burn-train's format).
fn read_log(path: &Path) -> Vec<NumericEntry> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| NumericEntry::deserialize(line).ok())
        .collect()
}

/// How a method is named in the charts.
fn label(method: &str) -> &str {
    match method {
        "learned_iht" | "learned-iht" => "learned IHT",
        "lista_cp" | "lista-cp" => "LISTA-CP (soft)",
        "ista" => "ISTA",
        "fista" => "FISTA",
        "iht" => "IHT",
        other => other,
    }
}

/// `nmse_per_layer` (every method) and `training` (loss per step, validation NMSE per epoch).
fn plot_run(out: &Path, config: &RunConfig, results: &Results) -> Result<(), Error> {
    let per_layer = Chart {
        title: "Test NMSE per layer".into(),
        x_label: "layer (iteration for the baselines)".into(),
        y_label: "NMSE (dB)".into(),
        series: results
            .methods()
            .iter()
            .map(|(name, scores)| Series {
                name: label(name).into(),
                points: scores
                    .nmse_db
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| ((k + 1) as f64, v))
                    .collect(),
            })
            .collect(),
    };
    plot::save(&[per_layer], &out.join("nmse_per_layer"), (900, 560))?;

    let mut loss_series = Vec::new();
    let mut nmse_series = Vec::new();
    for shrinkage in [Shrinkage::Hard, Shrinkage::Soft] {
        let (mut per_step, mut nmse) = (Vec::new(), Vec::new());
        for stage in config.stages() {
            let dir = out.join(launch_dir(config, shrinkage, &stage));
            for epoch in 1..=config.epochs(stage.steps) {
                let steps = read_log(&dir.join(format!("train/epoch-{epoch}/Loss.log")));
                // One entry per step, then the epoch's mean.
                per_step.extend(
                    steps
                        .iter()
                        .filter(|entry| !matches!(entry, NumericEntry::Final(_)))
                        .map(NumericEntry::current),
                );
                let valid = read_log(&dir.join(format!("valid/epoch-{epoch}/NMSE.log")));
                if let Some(last) = valid.last() {
                    let step =
                        stage.first_step + (epoch * config.checkpoint_every).min(stage.steps);
                    nmse.push((step as f64, last.current()));
                }
            }
        }
        // The mean of every run of `bucket` entries, about 200 points in all; burn-train logs
        // one entry per device and step.
        let per_device = config.training_devices().len() as f64;
        let bucket = per_step.len().div_ceil(200).max(1);
        let loss = per_step
            .chunks(bucket)
            .enumerate()
            .map(|(i, chunk)| {
                let mean = chunk.iter().sum::<f64>() / chunk.len() as f64;
                let step = (i * bucket + chunk.len()) as f64 / per_device;
                (step, 10.0 * mean.log10())
            })
            .collect();
        let name = label(network_dir(shrinkage));
        loss_series.push(Series {
            name: name.into(),
            points: loss,
        });
        nmse_series.push(Series {
            name: name.into(),
            points: nmse,
        });
    }
    let trained = match config.training {
        Training::EndToEnd => "last layer",
        Training::StageWise => "last trained layer",
    };
    let loss = Chart {
        title: "Training loss (mean over runs of steps)".into(),
        x_label: "step".into(),
        y_label: "loss (dB)".into(),
        series: loss_series,
    };
    let validation = Chart {
        title: format!("Validation NMSE, {trained}"),
        x_label: "step".into(),
        y_label: "NMSE (dB)".into(),
        series: nmse_series,
    };
    plot::save(&[loss, validation], &out.join("training"), (800, 520))
}
