//! A whole run: the learned IHT network and its learned soft-threshold twin (LISTA-CP), each
//! trained through one burn-train launch per stage (on the CPU both at once, a thread each), then
//! every method's scores on the test set, `results.json` and the plots.
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
use crate::checkpoint::{self, CheckpointState, RunClock, write_atomic};
use crate::config::{RunConfig, Stage, Training};
use crate::error::Error;
use crate::metrics::{MethodScores, host};
use crate::model::{Shrinkage, Unfolded};
use crate::plot::{self, Chart, Series};
use crate::problem::{Operator, Problem, Samples, Stream};
use crate::results::Results;
use crate::training::{self, LaunchOptions, Report, Trained};
use burn::module::Module;
use burn::tensor::Device;
use burn::train::metric::NumericEntry;
use burn::train::{ApplicationLoggerInstaller, FileApplicationLoggerInstaller, Interrupter};
use burn_hardshrink::DeviceName;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// How to run, beyond the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print only errors: no dashboard, no progress lines, no messages.
    pub quiet: bool,
    /// Stop as a kill would once either network has this many epochs checkpointed (for testing
    /// resume).
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

/// The two networks, in the order they take the dashboard and fill tables.
const NETWORKS: [Shrinkage; 2] = [Shrinkage::Hard, Shrinkage::Soft];

/// What every launch of a run shares.
struct Invocation<'a> {
    out: &'a Path,
    config: &'a RunConfig,
    options: &'a RunOptions,
    problem: Arc<Problem>,
    validation: Arc<Samples>,
    devices: Vec<Device>,
    /// The run's wall time, across invocations.
    clock: RunClock,
    /// Each network's launch in progress, to stop it: a launch has its own interrupter, since
    /// the dashboard resets its launch's (stop and error) as the launch ends.
    launches: [Mutex<Interrupter>; 2],
    /// Set once a network stopped, failed or panicked: the other starts no launch after it.
    halted: AtomicBool,
    /// The network whose launches show burn-train's dashboard, which takes the whole terminal:
    /// learned IHT's, then the twin's once learned IHT is trained.
    dashboard: AtomicUsize,
}

/// Where one network's training stands in the run directory.
struct Position {
    /// Launches finished.
    finished: usize,
    /// The network they trained.
    model: Option<Unfolded>,
    /// The next launch's newest readable checkpoint.
    start: Option<CheckpointState>,
    /// The run's wall time at the newest of these checkpoints.
    wall: f64,
}

/// Halts the run if dropped while its thread panics.
struct HaltOnPanic<'i, 'a>(&'i Invocation<'a>);

impl Drop for HaltOnPanic<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.halt();
        }
    }
}

impl Invocation<'_> {
    fn say(&self, text: &str) {
        if !self.options.quiet {
            eprintln!("{text}");
        }
    }

    fn fresh(&self, shrinkage: Shrinkage) -> Unfolded {
        Unfolded::new(&self.problem, self.config, shrinkage, &self.devices[0])
    }

    /// Finds where `shrinkage`'s training stands: the launches a resumed run skips, and the
    /// checkpoint the next one starts from.
    fn locate(&self, shrinkage: Shrinkage) -> Result<Position, Error> {
        let mut position = Position {
            finished: 0,
            model: None,
            start: None,
            wall: 0.0,
        };
        let mut finished_last = None;
        for stage in self.config.stages() {
            let name = launch_dir(self.config, shrinkage, &stage);
            let checkpoints = self.out.join(&name).join("checkpoint");
            let epochs = self.config.epochs(stage.steps);
            let Some(state) = checkpoint::latest_readable(&checkpoints, |t| self.say(t))? else {
                break;
            };
            position.wall = state.wall_seconds;
            if state.epoch < epochs {
                self.say(&format!(
                    "resuming {name} after epoch {} of {epochs}",
                    state.epoch
                ));
                position.start = Some(state);
                break;
            }
            finished_last = Some((checkpoints, epochs));
            position.finished += 1;
        }
        // The next launch starts from the last finished one's network alone.
        if let Some((checkpoints, epochs)) = finished_last {
            let fresh = self.fresh(shrinkage);
            position.model = Some(checkpoint::load_model(&checkpoints, epochs, fresh)?);
        }
        Ok(position)
    }

    /// How network `index`'s next launch shows its progress.
    fn report(&self, index: usize) -> Report {
        if self.options.quiet {
            Report::Silent
        } else if !std::io::stdout().is_terminal() {
            Report::Lines
        } else if self.dashboard.load(Ordering::SeqCst) == index {
            Report::Dashboard
        } else {
            Report::Silent
        }
    }

    /// Stops both networks: the launches in progress, and any the other would start.
    fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        for launch in &self.launches {
            launch
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .stop(None);
        }
    }

    /// Trains network `index` from `position` through the rest of its launches: the network and
    /// the run's wall time when it was done, or `None` when training stopped early.
    fn train_network(
        &self,
        index: usize,
        position: Position,
    ) -> Result<Option<(Unfolded, f64)>, Error> {
        // A panic here (the dashboard's kill is one) stops the other network too.
        let _halt_on_panic = HaltOnPanic(self);
        let trained = self.train_launches(index, position);
        match &trained {
            // Not over the other network's dashboard; before this one's passes on.
            Ok(Some((_, wall))) if self.report(index) != Report::Silent => self.say(&format!(
                "{} trained ({wall:.1} s into the run)",
                label(network_dir(NETWORKS[index]))
            )),
            Ok(Some(_)) => {}
            _ => self.halt(),
        }
        // Only the network showing the dashboard passes it on.
        let _ =
            self.dashboard
                .compare_exchange(index, index + 1, Ordering::SeqCst, Ordering::SeqCst);
        trained
    }

    fn train_launches(
        &self,
        index: usize,
        position: Position,
    ) -> Result<Option<(Unfolded, f64)>, Error> {
        let shrinkage = NETWORKS[index];
        let stages = self.config.stages();
        let Position {
            finished,
            mut model,
            mut start,
            mut wall,
        } = position;
        for (done, stage) in stages.iter().enumerate().skip(finished) {
            let interrupter = Interrupter::new();
            *self.launches[index]
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = interrupter.clone();
            // After the swap: a halt from now on stops this launch's interrupter.
            if self.halted.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let name = launch_dir(self.config, shrinkage, stage);
            let epochs_before: usize = stages[..done]
                .iter()
                .map(|s| self.config.epochs(s.steps))
                .sum();
            let launch = LaunchOptions {
                report: self.report(index),
                stop_after_epochs: self
                    .options
                    .stop_after_epochs
                    .and_then(|n| n.checked_sub(epochs_before))
                    .filter(|&n| n < self.config.epochs(stage.steps)),
                clock: self.clock.clone(),
                interrupter,
                label: name.clone(),
            };
            let base = model.take().unwrap_or_else(|| self.fresh(shrinkage));
            match training::train(
                self.config,
                stage,
                base,
                &self.out.join(&name),
                &self.problem,
                &self.validation,
                &self.devices,
                start.take().map(|s| s.epoch),
                &launch,
            )? {
                Trained::Finished(trained) => {
                    wall = self.clock.seconds();
                    model = Some(trained);
                }
                Trained::Stopped => return Ok(None),
            }
        }
        Ok(model.map(|model| (model, wall)))
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
        clock: RunClock::new(0.0),
        launches: Default::default(),
        halted: AtomicBool::new(false),
        dashboard: AtomicUsize::new(0),
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
    let [hard, soft] = [
        invocation.locate(NETWORKS[0])?,
        invocation.locate(NETWORKS[1])?,
    ];
    // The run's time so far: up to its newest checkpoint (what a kill lost after it is not
    // counted).
    invocation.clock = RunClock::new(hard.wall.max(soft.wall));
    let invocation = &invocation;
    // On the CPU the networks train at the same time, one thread each: a network's small
    // steps keep one core busy. On a GPU one after the other: two threads driving one CubeCL
    // device have deadlocked in its autotune (lavapipe).
    let on_cpu = config
        .training_devices()
        .iter()
        .all(|device| device.is_cpu());
    let (hard, soft) = if on_cpu {
        std::thread::scope(|scope| {
            let twin = scope.spawn(move || invocation.train_network(1, soft));
            let hard = invocation.train_network(0, hard);
            let soft = twin
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (hard, soft)
        })
    } else {
        (
            invocation.train_network(0, hard),
            invocation.train_network(1, soft),
        )
    };
    let (Some(hard), Some(soft)) = (hard?, soft?) else {
        return Ok(Outcome::Stopped);
    };
    // Calibrated once both are trained, so neither network's training time holds it.
    let plain = invocation.devices[0].clone();
    let operator = problem.operator(&plain);
    let networks: Vec<_> = [hard, soft]
        .into_iter()
        .map(|(model, wall)| {
            let (model, trained_last) = if config.calibrate_last_threshold {
                model.calibrate_last_threshold(&validation, &operator)
            } else {
                (model, None)
            };
            (model, trained_last, wall)
        })
        .collect();

    let plain = &plain;
    let test = problem.sample(config.test_seed, Stream::Test, 0, config.test_samples);
    let [learned_iht, lista_cp] = [0, 1].map(|i| {
        let (model, trained_last, wall) = &networks[i];
        let scores = score_network(model, &test, &operator, plain);
        MethodScores {
            training_seconds: Some(*wall),
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
        wall_seconds: invocation.clock.seconds(),
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
