//! The run: baselines, training with periodic evaluation and checkpoints, final scores,
//! `results.json` and plots.

use crate::baselines::{self, Method, Operator};
use crate::config::RunConfig;
use crate::error::Error;
use crate::metrics::MethodScores;
use crate::model::{LearnedIht, layer_averaged_mse};
use crate::plot::{Chart, Series, save_row};
use crate::problem::{Problem, Samples, Stream};
use crate::progress::Progress;
use crate::rundir::{CheckpointState, RunDir};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, OptimizerRecord};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// How to run, beyond the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Draw the progress bar and print progress messages on stderr.
    pub progress: bool,
    /// Stop (as if killed) once this many steps are done, without a final checkpoint.
    /// For testing that a resumed run loses only the work since its last checkpoint.
    pub stop_after: Option<usize>,
}

/// Final scores of every method on the test set, as written to `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The unfolded network.
    pub learned_iht: MethodScores,
    /// ISTA with its validated threshold.
    pub ista: MethodScores,
    /// FISTA with its validated threshold.
    pub fista: MethodScores,
    /// IHT with its validated threshold.
    pub iht: MethodScores,
    /// Wall time of the whole run (all sessions of a resumed run), in seconds.
    pub wall_seconds: f64,
    /// Training steps taken.
    pub steps: usize,
    /// Device the run finished on.
    pub device: String,
}

impl Results {
    /// `(name, scores)` of every method, the model first.
    pub fn methods(&self) -> [(&'static str, &MethodScores); 4] {
        [
            ("learned_iht", &self.learned_iht),
            ("ista", &self.ista),
            ("fista", &self.fista),
            ("iht", &self.iht),
        ]
    }

    /// A text table: NMSE per layer, then support scores, one column per method.
    pub fn table(&self) -> String {
        let methods = self.methods();
        let mut out = format!("{:<12}", "NMSE (dB)");
        for (name, _) in &methods {
            out += &format!("{name:>13}");
        }
        out += "\n";
        for layer in 0..self.learned_iht.nmse_db.len() {
            out += &format!("{:<12}", format!("layer {}", layer + 1));
            for (_, scores) in &methods {
                out += &format!("{:>13.2}", scores.nmse_db[layer]);
            }
            out += "\n";
        }
        for (label, pick) in [
            (
                "precision",
                (|s: &MethodScores| s.precision) as fn(&MethodScores) -> f64,
            ),
            ("recall", |s| s.recall),
            ("F1", |s| s.f1),
        ] {
            out += &format!("{label:<12}");
            for (_, scores) in &methods {
                out += &format!("{:>13.3}", pick(scores));
            }
            out += "\n";
        }
        out
    }
}

/// What a call to [`run`] ended with.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The run finished and wrote `results.json`.
    Finished(Box<Results>),
    /// [`RunOptions::stop_after`] stopped it after this many steps.
    Stopped(usize),
}

/// A fixed evaluation set on the device.
struct EvalSet {
    samples: Samples,
    y: Tensor<2>,
}

impl EvalSet {
    fn new(samples: Samples, device: &Device) -> Self {
        let y = samples.measurements(device);
        Self { samples, y }
    }
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float data")
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("float data")[0]
}

/// Scores the network (without gradient tracking) on an evaluation set.
fn evaluate(model: &LearnedIht, set: &EvalSet, dictionary_t: &Tensor<2>) -> MethodScores {
    let model = model.valid();
    let outputs: Vec<Vec<f32>> = model
        .forward(set.y.clone(), dictionary_t)
        .into_iter()
        .map(host)
        .collect();
    MethodScores::of(&outputs, &set.samples.x, model.thresholds())
}

fn scores_json(step: usize, scores: &MethodScores) -> serde_json::Value {
    json!({
        "step": step,
        "test_nmse_db": scores.nmse_db,
        "test_f1": scores.f1,
        "thresholds": scores.thresholds,
    })
}

/// Runs the experiment `config` describes in a new run directory `out`.
///
/// Refuses a directory that already holds a run; bad config values are reported before
/// anything is written.
pub fn run(config: &RunConfig, out: &Path, options: &RunOptions) -> Result<Outcome, Error> {
    config.validate()?;
    let dir = RunDir::create(out, config)?;
    execute(dir, config.clone(), false, options)
}

/// Continues the run in `out` from its newest checkpoint, with the run's own config; `device`
/// may move it to another device.
///
/// The result equals that of an uninterrupted run up to float rounding (exactly, on the same
/// CPU backend): every batch is a pure function of the seed and the step, and the checkpoint
/// holds the weights, thresholds and Adam's moments.
pub fn resume(out: &Path, device: Option<&str>, options: &RunOptions) -> Result<Outcome, Error> {
    let (dir, mut config) = RunDir::open(out)?;
    if let Some(device) = device {
        config.device = device.to_string();
    }
    config.validate()?;
    execute(dir, config, true, options)
}

fn execute(
    dir: RunDir,
    config: RunConfig,
    resume: bool,
    options: &RunOptions,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let plain = burn_hardshrink::device_from_name(&config.device).map_err(Error::Device)?;
    let device = plain.clone().autodiff();
    let say = |text: &str| {
        if options.progress {
            eprintln!("{text}");
        }
    };

    let problem = Problem::new(&config);
    let operator = Operator {
        dictionary: problem.dictionary(&plain),
        dictionary_t: problem.dictionary_t(&plain),
        lipschitz: problem.lipschitz,
    };
    let dictionary_t = problem.dictionary_t(&device);
    let test = EvalSet::new(
        problem.sample(config.test_seed, Stream::Test, 0, config.test_samples),
        &plain,
    );
    let validation = EvalSet::new(
        problem.sample(
            config.seed,
            Stream::Validation,
            0,
            config.validation_samples,
        ),
        &plain,
    );

    // The network, its optimizer and the step to start from.
    let mut model = LearnedIht::new(
        &problem,
        &config.threshold_schedule(),
        config.fixed_thresholds,
        config.bandwidth,
        &device,
    );
    let mut optim = AdamConfig::new().init();
    let mut first_step = 0;
    let mut wall_before = 0.0;
    if resume {
        match dir.latest_checkpoint()? {
            Some(checkpoint) => {
                model = model.try_load_file(checkpoint.model_path()).map_err(|e| {
                    Error::checkpoint(checkpoint.model_path(), format!("unreadable model ({e})"))
                })?;
                let record = OptimizerRecord::load(checkpoint.optimizer_path()).map_err(|e| {
                    Error::checkpoint(
                        checkpoint.optimizer_path(),
                        format!("unreadable optimizer state ({e})"),
                    )
                })?;
                optim = optim.load_record(record);
                first_step = checkpoint.state.step;
                wall_before = checkpoint.state.wall_seconds;
                say(&format!(
                    "resuming {} from step {first_step} of {}",
                    dir.root().display(),
                    config.steps
                ));
            }
            None => say(&format!(
                "{} has no checkpoint yet: starting from step 0",
                dir.root().display()
            )),
        }
        // Keep what the checkpoint covers. The evaluations at step 0 and at the last step are
        // written outside the loop, so they are dropped here and written again.
        let steps = config.steps as u64;
        dir.retain_metrics(|line| {
            let step = line["step"].as_u64().unwrap_or(u64::MAX);
            let first = first_step as u64;
            let boundary_eval = line["loss"].is_null() && (step == 0 || step == steps);
            step < first || (step == first && !boundary_eval)
        })?;
    }
    let wall = |started: &Instant| wall_before + started.elapsed().as_secs_f64();

    say(&format!(
        "sparse coding: m = {}, n = {}, p = {}, {} layers, {} steps of {} on `{}` (L = {:.3})",
        config.m,
        config.n,
        config.p,
        config.layers,
        config.steps,
        config.batch,
        config.device,
        problem.lipschitz
    ));
    if first_step == 0 {
        let scores = evaluate(&model, &test, &operator.dictionary_t);
        dir.append_metric(&scores_json(0, &scores))?;
    }

    // Batches are drawn on a second thread while the device trains on the previous one.
    let (sender, batches) = std::sync::mpsc::sync_channel::<Samples>(4);
    {
        let (problem, seed, size) = (problem.clone(), config.seed, config.batch);
        let steps = first_step..config.steps;
        std::thread::spawn(move || {
            for step in steps {
                // The receiver is gone when training stopped early; so is the need for batches.
                if sender
                    .send(problem.sample(seed, Stream::Train, step as u64, size))
                    .is_err()
                {
                    break;
                }
            }
        });
    }

    let mut progress = Progress::new(first_step, config.steps, options.progress);
    let mut last_loss = None;
    for step in first_step..config.steps {
        let batch = batches
            .recv()
            .expect("the batch thread draws every step's batch");
        let outputs = model.forward(batch.measurements(&device), &dictionary_t);
        let loss = layer_averaged_mse(&outputs, &batch.codes(&device));
        let done = step + 1;
        let log_now = done % config.log_every == 0 || done == config.steps;
        let checkpoint_now = done % config.checkpoint_every == 0 || done == config.steps;
        // Read on checkpoint steps too, so a diverged model is never saved.
        let loss_value = (log_now || checkpoint_now).then(|| scalar(loss.clone()));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(config.learning_rate_at(step), model, grads);

        if let Some(value) = loss_value {
            if !value.is_finite() {
                return Err(Error::Usage(format!(
                    "training diverged at step {done} (loss {value}): start a new run with a \
                     lower `learning_rate` (now {})",
                    config.learning_rate
                )));
            }
            last_loss = Some(value);
            if log_now {
                dir.append_metric(&json!({
                    "step": done,
                    "loss": value,
                    "learning_rate": config.learning_rate_at(step),
                }))?;
            }
        }
        if done % config.eval_every == 0 && done != config.steps {
            let scores = evaluate(&model, &test, &operator.dictionary_t);
            dir.append_metric(&scores_json(done, &scores))?;
            progress.message(&format!(
                "step {done}: test NMSE {:.2} dB, F1 {:.3}",
                scores.final_nmse_db(),
                scores.f1
            ));
        }
        if checkpoint_now {
            let state = CheckpointState {
                step: done,
                wall_seconds: wall(&started),
            };
            dir.save_checkpoint(state, |c| {
                model
                    .clone()
                    .save_file(c.model_path())
                    .map_err(|e| Error::checkpoint(c.model_path(), e))?;
                optim
                    .to_record()
                    .save(c.optimizer_path())
                    .map_err(|e| Error::checkpoint(c.optimizer_path(), e))
            })?;
        }
        progress.update(done, last_loss);
        if options.stop_after == Some(done) && done != config.steps {
            progress.finish();
            return Ok(Outcome::Stopped(done));
        }
    }
    progress.finish();

    let learned_iht = evaluate(&model, &test, &operator.dictionary_t);
    dir.append_metric(&scores_json(config.steps, &learned_iht))?;
    say("choosing the baselines' thresholds on the validation set");
    let mut baseline_scores = Vec::new();
    for method in Method::ALL {
        let tau = baselines::choose_threshold(
            method,
            &operator,
            &validation.y,
            &validation.samples.x,
            config.layers,
        );
        let iterates: Vec<Vec<f32>> =
            baselines::iterate(method, &operator, &test.y, tau, config.layers)
                .into_iter()
                .map(host)
                .collect();
        baseline_scores.push(MethodScores::of(&iterates, &test.samples.x, vec![tau]));
    }
    let [ista, fista, iht]: [MethodScores; 3] =
        baseline_scores.try_into().expect("three baselines");
    let results = Results {
        learned_iht,
        ista,
        fista,
        iht,
        wall_seconds: wall(&started),
        steps: config.steps,
        device: config.device.clone(),
    };
    let text = serde_json::to_string_pretty(&results).expect("results serialise");
    crate::rundir::write_atomic(&dir.results_path(), text.as_bytes())?;
    plot_run(&dir, &results)?;
    Ok(Outcome::Finished(Box::new(results)))
}

/// `nmse_per_layer.png` (every method) and `training.png` (loss and test NMSE over steps).
fn plot_run(dir: &RunDir, results: &Results) -> Result<(), Error> {
    let per_layer = Chart {
        title: "Test NMSE per layer / iteration".into(),
        x_label: "layer / iteration".into(),
        y_label: "NMSE (dB)".into(),
        series: results
            .methods()
            .iter()
            .map(|(name, scores)| Series {
                name: name.replace('_', "-"),
                points: scores
                    .nmse_db
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| ((k + 1) as f64, v))
                    .collect(),
            })
            .collect(),
    };
    per_layer.save_png(&dir.root().join("nmse_per_layer.png"), 900, 560)?;

    let metrics = dir.read_metrics()?;
    let points = |key: &str, f: &dyn Fn(&serde_json::Value) -> Option<f64>| -> Vec<(f64, f64)> {
        metrics
            .iter()
            .filter(|m| !m[key].is_null())
            .filter_map(|m| Some((m["step"].as_f64()?, f(&m[key])?)))
            .collect()
    };
    let loss = Chart {
        title: "Training loss".into(),
        x_label: "step".into(),
        y_label: "loss (dB)".into(),
        series: vec![Series {
            name: "layer-averaged MSE".into(),
            points: points("loss", &|v| v.as_f64().map(|l| 10.0 * l.log10())),
        }],
    };
    let test = Chart {
        title: "Test NMSE, last layer".into(),
        x_label: "step".into(),
        y_label: "NMSE (dB)".into(),
        series: vec![Series {
            name: "learned-iht".into(),
            points: points("test_nmse_db", &|v| v.as_array()?.last()?.as_f64()),
        }],
    };
    save_row(&[loss, test], &dir.root().join("training.png"), 800, 520)
}
