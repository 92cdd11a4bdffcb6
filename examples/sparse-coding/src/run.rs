//! A whole run: training, then every method's scores on the test set, `results.json` and the
//! plots.
//!
//! ```text
//! <run>/config.json                  the run's RunConfig
//! <run>/experiment.log               burn-train's log
//! <run>/train/epoch-<e>/<metric>.log burn-train's metric logs: loss and learning rate per step
//! <run>/valid/epoch-<e>/<metric>.log loss, NMSE and support F1 of the validation set per epoch
//! <run>/checkpoint/                  the newest two epochs and the best (see `checkpoint`)
//! <run>/results.json                 final scores of every method
//! <run>/nmse_per_layer.{png,svg}, <run>/training.{png,svg}
//! ```

use crate::baselines::{self, Method, Operator};
use crate::checkpoint::{self, RunClock, write_atomic};
use crate::config::RunConfig;
use crate::error::Error;
use crate::metrics::MethodScores;
use crate::model::LearnedIht;
use crate::plot::{self, Chart, Series};
use crate::problem::{Problem, Samples, Stream};
use crate::results::Results;
use crate::training::{self, LaunchOptions, Trained};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn::train::metric::NumericEntry;
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
    if config_path.exists() || out.join("checkpoint").exists() {
        return Err(Error::Usage(format!(
            "{} already holds a run: continue it with `--resume {}` or pick a new `--out`",
            out.display(),
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
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
        config.device = device;
        config.devices.clear();
    }
    config.validate()?;
    execute(out, &config, true, options)
}

fn execute(
    out: &Path,
    config: &RunConfig,
    resume: bool,
    options: &RunOptions,
) -> Result<Outcome, Error> {
    let say = |text: &str| {
        if !options.quiet {
            eprintln!("{text}");
        }
    };
    let devices = config
        .training_devices()
        .into_iter()
        .map(DeviceName::open)
        .collect::<Result<Vec<Device>, _>>()?;
    let start = if resume {
        let found = checkpoint::latest_readable(&out.join("checkpoint"), say)?;
        match found {
            Some(state) => say(&format!(
                "resuming {} after epoch {} of {}",
                out.display(),
                state.epoch,
                config.epochs()
            )),
            None => say(&format!(
                "{} has no checkpoint yet: starting from the first epoch",
                out.display()
            )),
        }
        found
    } else {
        None
    };
    let clock = RunClock::new(start.map_or(0.0, |s| s.wall_seconds));

    let problem = Arc::new(Problem::new(config));
    say(&format!(
        "sparse coding: m = {}, n = {}, p = {}, {} layers, {} steps of {} on {} (L = {:.3})",
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
        problem.lipschitz
    ));
    let validation = Arc::new(problem.sample(
        config.seed,
        Stream::Validation,
        0,
        config.validation_samples,
    ));
    let launch = LaunchOptions {
        quiet: options.quiet,
        stop_after_epochs: options.stop_after_epochs,
    };
    let model = match training::train(
        config,
        out,
        &problem,
        &validation,
        &devices,
        start.map(|s| s.epoch),
        &clock,
        &launch,
    )? {
        Trained::Finished(model) => model,
        Trained::Stopped => return Ok(Outcome::Stopped),
    };

    let plain = &devices[0];
    let test = problem.sample(config.test_seed, Stream::Test, 0, config.test_samples);
    let operator = Operator {
        dictionary: problem.dictionary(plain),
        dictionary_t: problem.dictionary_t(plain),
        lipschitz: problem.lipschitz,
    };
    let learned_iht = score_network(&model, &test, &operator, plain);
    say("choosing the baselines' thresholds on the validation set");
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
        MethodScores::of(&iterates, &test.x, vec![tau])
    });
    let results = Results {
        learned_iht,
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

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float data")
}

/// The network's scores on a set of samples, every layer.
fn score_network(
    model: &LearnedIht,
    samples: &Samples,
    operator: &Operator,
    device: &Device,
) -> MethodScores {
    let model = model.clone().fork(device);
    let outputs: Vec<Vec<f32>> = model
        .forward(samples.measurements(device), &operator.dictionary_t)
        .into_iter()
        .map(host)
        .collect();
    MethodScores::of(&outputs, &samples.x, model.thresholds())
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
        "learned_iht" => "learned IHT",
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
        integer_x: true,
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

    let mut per_step = Vec::new();
    let mut nmse = Vec::new();
    for epoch in 1..=config.epochs() {
        let steps = read_log(&out.join(format!("train/epoch-{epoch}/Loss.log")));
        // One entry per step, then the epoch's mean.
        per_step.extend(
            steps
                .iter()
                .filter(|entry| !matches!(entry, NumericEntry::Final(_)))
                .map(NumericEntry::current),
        );
        if let Some(last) = read_log(&out.join(format!("valid/epoch-{epoch}/NMSE.log"))).last() {
            let step = (epoch * config.checkpoint_every).min(config.steps);
            nmse.push((step as f64, last.current()));
        }
    }
    // The mean of every run of `bucket` steps, about 200 points in all.
    let bucket = per_step.len().div_ceil(200).max(1);
    let loss = per_step
        .chunks(bucket)
        .enumerate()
        .map(|(i, chunk)| {
            let mean = chunk.iter().sum::<f64>() / chunk.len() as f64;
            ((i * bucket + chunk.len()) as f64, 10.0 * mean.log10())
        })
        .collect();
    let loss = Chart {
        title: "Training loss".into(),
        x_label: "step".into(),
        y_label: "loss (dB)".into(),
        integer_x: true,
        series: vec![Series {
            name: format!("mean of {bucket} steps"),
            points: loss,
        }],
    };
    let validation = Chart {
        title: "Validation NMSE, last layer".into(),
        x_label: "step".into(),
        y_label: "NMSE (dB)".into(),
        integer_x: true,
        series: vec![Series {
            name: "learned IHT".into(),
            points: nmse,
        }],
    };
    plot::save(&[loss, validation], &out.join("training"), (800, 520))
}
