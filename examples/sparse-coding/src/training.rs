//! The training recipe, top to bottom.
//!
//! Learned IHT and its soft twin train on the same batches with the same recipe and budget, each
//! in a sequence of burn-train launches:
//!
//! - stage-wise (the default): stage t trains the first t layers for `steps / layers` steps on the
//!   loss of layer t, with a fresh Adam, the earlier layers at `earlier_layers_lr` times the new
//!   layer's rate; end to end: one launch trains every layer for every step;
//! - Adam with PyTorch's ε, at `learning_rate` for 60% of a launch, ×0.2 to 85%, ×0.02 after;
//! - `batch` fresh samples a step; an epoch is `checkpoint_every` steps, with validation and a
//!   sealed checkpoint after it.
//!
//! On the CPU the two networks' launches of a stage run at the same time, a thread each. A resumed
//! run skips the launches whose last checkpoint is sealed and continues each network from its
//! newest sealed checkpoint (weights, Adam's moments and the schedule's place) or its previous
//! launch's network: it ends with the numbers of a run never stopped.

use crate::config::{ExperimentConfig, Training};
use crate::data::StepLoader;
use crate::error::Error;
use crate::metric::{Divergence, EpochLines, Measure, RecoveryMetric};
use crate::model::Unfolded;
use crate::problem::Problem;
use crate::run_dir::{self, RunClock, RunDir, SealedCheckpointer};
use burn::lr_scheduler::LrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::{ModuleLrScheduler, ModuleLrSchedulerConfig};
use burn::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::module::{Module, ParamGroup};
use burn::optim::AdamConfig;
use burn::tensor::Device;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{LearningRateMetric, LossMetric, Metric};
use burn::train::renderer::MetricsRenderer;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::{
    ExecutionStrategy, Interrupter, Learner, LearningResult, MultiDeviceOptim, SupervisedTraining,
};
use std::io::IsTerminal;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// The two networks: their directory in the run's, and whether their thresholds are soft.
pub const NETWORKS: [(&str, bool); 2] = [("learned-iht", false), ("lista-cp", true)];

type Renderer = Box<dyn MetricsRenderer>;

/// How training ended.
pub enum Trained {
    /// Every launch ran: learned IHT and its twin, off autodiff, and the run's clock.
    Finished([Unfolded; 2], RunClock),
    /// Stopped by the user (the dashboard's quit, Ctrl-C, SIGTERM) at its last checkpoint.
    Stopped,
}

/// One burn-train launch of each network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Its directory in a network's, and its name on the dashboard.
    pub name: String,
    /// The leading layers it trains.
    pub layers: usize,
    /// The run's steps it takes.
    pub steps: Range<usize>,
    /// Its epochs (the last may be shorter).
    pub epochs: usize,
}

/// The launches of a run, in order.
pub fn launches(config: &ExperimentConfig) -> Vec<Launch> {
    let launch = |name: String, layers: usize, steps: Range<usize>| Launch {
        epochs: steps.len().div_ceil(config.checkpoint_every),
        name,
        layers,
        steps,
    };
    let (layers, steps) = (config.layers, config.steps);
    match config.training {
        Training::EndToEnd => vec![launch("end-to-end".into(), layers, 0..steps)],
        Training::StageWise => {
            let mut first = 0;
            (0..layers)
                .map(|k| {
                    // The first stages take the remainder of `steps / layers`.
                    let length = steps / layers + usize::from(k < steps % layers);
                    first += length;
                    let name = format!("stage-{:02}", k + 1);
                    launch(name, k + 1, first - length..first)
                })
                .collect()
        }
    }
}

/// What every launch of a run shares.
struct Run<'a> {
    config: &'a ExperimentConfig,
    problem: &'a Arc<Problem>,
    devices: Vec<Device>,
    interrupter: &'a Interrupter,
    clock: RunClock,
}

/// A network's launch to train: its index in [`NETWORKS`], its directory, and the sealed epoch it
/// continues from (0 for none).
type Job = (usize, PathBuf, usize);

/// Trains both networks in `run_dir`, from its newest sealed checkpoints on.
pub fn train(
    config: &ExperimentConfig,
    run_dir: &RunDir,
    problem: &Arc<Problem>,
    interrupter: &Interrupter,
    quiet: bool,
) -> Result<Trained, Error> {
    let devices = config
        .devices
        .iter()
        .map(|d| d.open())
        .collect::<Result<Vec<Device>, _>>()?;
    let mut networks = NETWORKS.map(|(_, soft)| Unfolded::init(problem, config, soft, &devices[0]));
    let mut run = Run {
        config,
        problem,
        devices,
        interrupter,
        clock: RunClock::new(0.0),
    };
    // One dashboard (or line printer) for the run, so that a quit pressed as a launch ends is kept
    // for the next; a second network training beside the first prints lines, or nothing.
    let dashboard = !quiet && std::io::stdout().is_terminal();
    let mut renderer: Option<Renderer> = Some(match dashboard {
        true => Box::new(TuiMetricsRendererWrapper::new(interrupter.clone(), None)),
        false => Box::new(EpochLines::new(quiet)),
    });
    let second = || Box::new(EpochLines::new(quiet || dashboard)) as Renderer;
    for launch in launches(config) {
        // Parameters keep their ids through every record, and Adam's state and the learning-rate
        // groups are keyed by them: a network continues from its newest sealed checkpoint here,
        // or from its previous launch's network.
        let mut jobs = Vec::new();
        for (index, (name, _)) in NETWORKS.iter().enumerate() {
            let dir = run_dir.path.join(name).join(&launch.name);
            let mut start = 0;
            if let Some((epoch, seal)) = run_dir::newest_sealed(&dir, launch.epochs, quiet) {
                // Only the devices may change on resume.
                let made_with = seal.config.with_devices(config.devices.clone());
                if let Some((field, now, then)) = config.first_difference(&made_with) {
                    let reason = format!(
                        "`{field}` is {now} but the run's checkpoints were made with {then}: put \
                         it back"
                    );
                    return Err(Error::RunDir(run_dir.path.join("config.json"), reason));
                }
                run.clock = RunClock::new(run.clock.seconds().max(seal.wall_seconds));
                networks[index] = run_dir::load_model(&dir, epoch, networks[index].clone())?;
                start = epoch;
            }
            if start < launch.epochs {
                jobs.push((index, dir, start));
            }
        }
        if !jobs.is_empty() && interrupter.get_message().is_some() {
            return Ok(Trained::Stopped);
        }
        let (run, launch) = (&run, &launch);
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|job: Job| {
                let network = networks[job.0].clone();
                let shown = renderer.take().unwrap_or_else(second);
                move || {
                    let index = job.0;
                    let (training, learner, divergence) = recipe(run, launch, job, network, shown);
                    outcome(run, launch, index, training.launch(learner), &divergence)
                }
            })
            .collect();
        // On the CPU both networks train at once, a thread each; two threads on one CubeCL device
        // have deadlocked in its autotune, so on a GPU one after the other.
        let outcomes: Vec<_> = if config.devices.iter().all(|d| d.is_cpu()) {
            std::thread::scope(|scope| {
                let running: Vec<_> = tasks.into_iter().map(|task| scope.spawn(task)).collect();
                // main's hook ends the process at a panic, before a join could see it.
                running.into_iter().map(|t| t.join().unwrap()).collect()
            })
        } else {
            tasks.into_iter().map(|task| task()).collect()
        };
        for outcome in outcomes {
            let (index, network, returned) = outcome?;
            renderer.get_or_insert(returned);
            networks[index] = match network {
                Some(network) => network,
                None => return Ok(Trained::Stopped),
            };
        }
    }
    Ok(Trained::Finished(networks, run.clock))
}

/// burn-train's launch of `job`'s network through `launch`, with the recipe's optimizer, schedule,
/// loaders, metrics and checkpoints, ready to start; and the stop it watches for divergence.
fn recipe(
    run: &Run,
    launch: &Launch,
    (index, dir, start): Job,
    mut network: Unfolded,
    renderer: Renderer,
) -> (SupervisedTraining<Unfolded>, Learner<Unfolded>, Divergence) {
    let config = run.config;
    let device = &run.devices[0];
    network.active = launch.layers;
    let scheduler = learning_rates(config, launch, &network);
    // PyTorch's ε: Burn's default (1e-5) is not small next to these gradients (an MSE of codes
    // recovered to −30 dB and beyond), and would damp every step.
    let optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let learner = Learner::new(
        network.train().fork(&device.clone().autodiff()),
        optimizer,
        scheduler,
    );
    let loader = StepLoader::training(run.problem, config, launch.steps.clone(), start, device);
    let validation = StepLoader::validation(run.problem, config, device);
    let sealed = |name| SealedCheckpointer {
        dir: dir.join("checkpoint"),
        name,
        config: config.clone(),
        clock: run.clock,
    };
    let divergence = Divergence::on(RecoveryMetric::new(Measure::Nmse).name());
    let mut training = SupervisedTraining::new(&dir, Arc::new(loader), Arc::new(validation))
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(RecoveryMetric::new(Measure::Nmse))
        .metric_valid_numeric(RecoveryMetric::new(Measure::SupportF1))
        .with_custom_checkpointers(sealed("model"), sealed("optim"), sealed("scheduler"))
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(2))
        .early_stopping(divergence.clone())
        .with_interrupter(run.interrupter.clone())
        // The run installs one log for all its launches (burn-train's is one per launch).
        .with_application_logger(None)
        .renderer(renderer)
        .num_epochs(launch.epochs)
        .label(&format!("{}/{}", NETWORKS[index].0, launch.name));
    if run.devices.len() > 1 {
        let strategy =
            ExecutionStrategy::MultiDevice(run.devices.clone(), MultiDeviceOptim::OptimMainDevice);
        training = training.with_training_strategy(strategy.into());
    }
    if start > 0 {
        training = training.checkpoint(start);
    }
    (training, learner, divergence)
}

/// What a launch of network `index` ended with: the network (`None` when the user stopped it)
/// and the renderer it showed, or the fault or divergence that ended it.
fn outcome(
    run: &Run,
    launch: &Launch,
    index: usize,
    result: LearningResult<Unfolded>,
    divergence: &Divergence,
) -> Result<(usize, Option<Unfolded>, Renderer), Error> {
    let config = run.config;
    let failure = match (result.error, divergence.diverged()) {
        (Some(error), _) => Some(error.to_string()),
        (None, Some((epoch, nmse))) => Some(format!(
            "{} diverged in epoch {epoch} of {} (validation NMSE {nmse} dB): start a new run with a \
             lower `learning_rate` (now {})",
            NETWORKS[index].0, launch.name, config.learning_rate
        )),
        (None, None) => None,
    };
    if let Some(failure) = failure {
        run.interrupter.stop(None);
        return Err(Error::Training(failure));
    }
    // A stop leaves its message: burn-train's dashboard resets its stop flag as a launch ends.
    let stopped = run.interrupter.get_message().is_some();
    let network = (!stopped).then_some(result.model);
    Ok((index, network, result.renderer))
}

/// The drops of the learning rate: ×0.2 at 60% of a launch, ×0.02 at 85%.
pub const DROPS: [(usize, f64); 2] = [(60, 0.2), (85, 0.02)];

/// `rate`, then `rate × factor` from each drop's percentage of `steps` on, as Burn's sequential
/// schedule of constant parts (its milestones: each part's first step).
pub fn schedule(rate: f64, steps: usize, drops: &[(usize, f64)]) -> SequentialLrSchedulerConfig {
    let mut parts = vec![LrSchedulerConfig::Constant(rate)];
    let mut milestones: Vec<usize> = Vec::new();
    for &(percent, factor) in drops {
        let start = (percent * steps).div_ceil(100);
        // Burn's milestones must increase: a part of a short launch that would start where the
        // previous one does is left out.
        if start > milestones.last().copied().unwrap_or(0) {
            milestones.push(start);
            parts.push(LrSchedulerConfig::Constant(rate * factor));
        }
    }
    SequentialLrSchedulerConfig::new(parts, milestones)
}

/// The schedule over the launch's steps; stage-wise, the layers before the newest at
/// `earlier_layers_lr` of it.
fn learning_rates(
    config: &ExperimentConfig,
    launch: &Launch,
    network: &Unfolded,
) -> ModuleLrScheduler {
    let steps = launch.steps.len();
    let full = schedule(config.learning_rate, steps, &DROPS);
    let scheduler = if launch.layers == 1 || config.training == Training::EndToEnd {
        ModuleLrSchedulerConfig::new(full.into())
    } else {
        let earlier = schedule(
            config.learning_rate * config.earlier_layers_lr,
            steps,
            &DROPS,
        );
        let newest = ParamGroup::ids_from_module(network.layers[launch.layers - 1].clone());
        ModuleLrSchedulerConfig::new(earlier.into()).with_group(newest, full)
    };
    scheduler
        .init()
        .expect("a valid schedule: positive rates, increasing milestones")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Weight;

    #[test]
    fn stage_wise_launches_split_the_steps() {
        let config = ExperimentConfig::new()
            .with_layers(4)
            .with_steps(10)
            .with_checkpoint_every(2);
        let split: Vec<_> = launches(&config)
            .into_iter()
            .map(|l| (l.layers, l.steps, l.epochs))
            .collect();
        assert_eq!(
            split,
            [(1, 0..3, 2), (2, 3..6, 2), (3, 6..8, 1), (4, 8..10, 1)]
        );
        let end_to_end = launches(&config.with_training(Training::EndToEnd));
        assert_eq!((end_to_end.len(), end_to_end[0].steps.clone()), (1, 0..10));
    }

    #[test]
    fn learning_rate_drops_at_60_and_85_percent() {
        let mut scheduler = schedule(1e-3, 100, &DROPS).init().unwrap();
        let rates: Vec<f64> = (0..100).map(|_| scheduler.step().base()).collect();
        assert_eq!(
            (rates[59], rates[60], rates[84]),
            (1e-3, 1e-3 * 0.2, 1e-3 * 0.2)
        );
        assert_eq!((rates[85], rates[99]), (1e-3 * 0.02, 1e-3 * 0.02));
        // Launches too short for three parts still get a valid schedule.
        for steps in 1..5 {
            schedule(1e-3, steps, &DROPS).init().unwrap();
        }
    }

    #[test]
    fn stage_wise_launches_slow_the_earlier_layers() {
        let config = ExperimentConfig::new()
            .with_layers(3)
            .with_steps(30)
            .with_earlier_layers_lr(0.25);
        let problem = Problem::new(&config);
        let network = Unfolded::init(&problem, &config, false, &Device::flex());
        let id = |layer: usize| match &network.layers[layer].weight {
            Weight::Analytic(step) => step.id,
            Weight::Free(weight) => weight.id,
        };
        // Stage 2 trains layers 1 and 2: the second at the full rate, the first slowed.
        let rates = learning_rates(&config, &launches(&config)[1], &network).step();
        assert_eq!(rates.lr_from_param(id(1), None), 0.01);
        assert_eq!(rates.lr_from_param(id(0), None), 0.0025);
        // End to end, every layer at the full rate.
        let end_to_end = config.with_training(Training::EndToEnd);
        let rates = learning_rates(&end_to_end, &launches(&end_to_end)[0], &network).step();
        assert_eq!(rates.lr_from_param(id(0), None), 0.01);
    }
}
