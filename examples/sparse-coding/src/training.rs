//! Training through burn-train: one `SupervisedTraining` launch with its loaders, metrics,
//! checkpoints, renderer and device strategy.

use crate::checkpoint::{self, CheckpointState, RunClock};
use crate::config::{RunConfig, Stage, Training, schedule};
use crate::data::{StepLoader, validation_loader};
use crate::error::Error;
use crate::metrics::{NmseMetric, SupportF1Metric};
use crate::model::Unfolded;
use crate::problem::{Problem, Samples};
use burn::lr_scheduler::module_lr_scheduler::{ModuleLrScheduler, ModuleLrSchedulerConfig};
use burn::module::{Module, ParamGroup};
use burn::optim::AdamConfig;
use burn::tensor::Device;
use burn::train::checkpoint::{
    CheckpointingAction, CheckpointingStrategy, ComposedCheckpointingStrategy,
    KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::logger::TrainingProgressLogger;
use burn::train::metric::store::{Aggregate, Direction, EventStoreClient, Split};
use burn::train::metric::{LearningRateMetric, LossMetric, Metric, MetricDefinition};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn::train::{
    EarlyStoppingStrategy, ExecutionStrategy, Interrupter, Learner, LearningResult,
    MultiDeviceOptim, SupervisedTraining,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Samples per validation batch.
const VALIDATION_BATCH: usize = 1000;

/// How a launch shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// burn-train's dashboard, which takes the whole terminal.
    Dashboard,
    /// One line per finished epoch, for a file or pipe.
    Lines,
    /// Nothing.
    Silent,
}

/// How a training launch reports and ends.
#[derive(Clone)]
pub struct LaunchOptions {
    /// The launch's name on the dashboard and in progress lines.
    pub label: String,
    /// Where its progress goes.
    pub report: Report,
    /// Stop as a kill would once this many epochs are checkpointed: the next epoch trains,
    /// but its checkpoint is never written (for testing resume).
    pub stop_after_epochs: Option<usize>,
    /// The run's wall time, written beside each checkpoint.
    pub clock: RunClock,
    /// Stops the launch: the dashboard's quit sets it, and so does the run when its other
    /// network stops or fails.
    pub interrupter: Interrupter,
}

/// How a launch ended.
pub enum Trained {
    /// Every epoch ran; the network, out of autodiff.
    Finished(Unfolded),
    /// Stopped before the last epoch: by the dashboard's quit, by the run (the other network
    /// stopped or failed), or by [`LaunchOptions::stop_after_epochs`].
    Stopped,
}

/// Runs one training launch: `stage` of `model` in `dir`, from `start_epoch` epochs done (a
/// checkpoint of that epoch must be there), on the config's devices.
#[allow(clippy::too_many_arguments)]
pub fn train(
    config: &RunConfig,
    stage: &Stage,
    model: Unfolded,
    dir: &Path,
    problem: &Arc<Problem>,
    validation: &Arc<Samples>,
    devices: &[Device],
    start_epoch: Option<usize>,
    options: &LaunchOptions,
) -> Result<Trained, Error> {
    let main = devices[0].clone();
    // A network from an earlier launch (or a fresh one) is on the plain device, out of autodiff.
    let model = Unfolded {
        active: stage.layers,
        ..model.train().fork(&main.clone().autodiff())
    };
    let train_loader = StepLoader::new(
        problem.clone(),
        config.seed,
        config.batch,
        stage.first_step,
        stage.steps,
        config.checkpoint_every,
        start_epoch.unwrap_or(0),
        &main.clone().autodiff(),
    );
    let valid_loader = validation_loader(problem, validation, VALIDATION_BATCH, &main);
    let scheduler = learning_rates(config, stage, &model)?;
    // PyTorch's ε: Burn's default (1e-5) is not small next to these gradients (the loss is an MSE
    // of codes recovered to -30 dB and beyond), and would damp every step.
    let optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let learner = Learner::new(model, optimizer, scheduler);

    let epochs = config.epochs(stage.steps);
    let guard = EpochGuard {
        stop_after: options.stop_after_epochs,
        checkpoints: dir.join("checkpoint"),
        clock: options.clock.clone(),
        state: Arc::default(),
    };
    let keep = ComposedCheckpointingStrategy::builder()
        .add(KeepLastNCheckpoints::new(2))
        .add(MetricCheckpointingStrategy::new(
            &NmseMetric::new(),
            Aggregate::Mean,
            Direction::Lowest,
            Split::Valid,
        ))
        .build();
    let mut training = SupervisedTraining::new(dir, Arc::new(train_loader), valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(NmseMetric::new())
        .metric_valid_numeric(SupportF1Metric::new())
        .with_default_checkpointers()
        .with_checkpointing_strategy(guard.around(keep))
        .with_interrupter(options.interrupter.clone())
        .early_stopping(guard.clone())
        .num_epochs(epochs)
        .label(&options.label)
        // One log per run, installed by the run (burn-train's is per process, per launch).
        .with_application_logger(None);
    if devices.len() > 1 {
        training = training.with_training_strategy(
            ExecutionStrategy::MultiDevice(devices.to_vec(), MultiDeviceOptim::OptimMainDevice)
                .into(),
        );
    }
    // No burn-train summary: it would print the module tree after each of up to 2 × 16
    // launches; the run prints one table of every method at the end.
    if options.report != Report::Dashboard {
        let lines = options.report == Report::Lines;
        training = training.renderer(Box::new(LineRenderer::new(lines)));
    }
    if let Some(epoch) = start_epoch {
        training = training.checkpoint(epoch);
    }

    let LearningResult {
        model,
        renderer,
        error,
        ..
    } = training.launch(learner);
    // Closes the dashboard before anything else is printed.
    drop(renderer);
    if let Some(error) = error {
        return Err(Error::Training(error.to_string()));
    }
    let mut state = guard.state.lock().expect("not poisoned");
    if let Some((epoch, loss)) = state.diverged {
        return Err(Error::Training(format!(
            "the loss diverged in epoch {epoch} (validation loss {loss}): start a new run with a \
             lower `learning_rate` (now {})",
            config.learning_rate
        )));
    }
    if let Some((path, source)) = state.unwritten.take() {
        return Err(Error::Io { path, source });
    }
    // Done only with the last epoch checkpointed. burn-train's `interrupted` cannot tell: its
    // dashboard resets the interrupter as training ends, so a quit from it reads as a finish.
    Ok(if state.checkpointed == Some(epochs) {
        Trained::Finished(model)
    } else {
        Trained::Stopped
    })
}

/// The learning rates of a launch: the config's schedule over the stage's steps; in stage-wise
/// training, the layers before the newest one at `earlier_layers_lr` of it.
fn learning_rates(
    config: &RunConfig,
    stage: &Stage,
    model: &Unfolded,
) -> Result<ModuleLrScheduler, Error> {
    let full = schedule(config.learning_rate, stage.steps);
    let scheduler = if stage.layers == 1 || config.training == Training::EndToEnd {
        ModuleLrSchedulerConfig::new(full.into())
    } else {
        let earlier = schedule(config.learning_rate * config.earlier_layers_lr, stage.steps);
        let newest = ParamGroup::ids_from_module(model.layers[stage.layers - 1].clone());
        ModuleLrSchedulerConfig::new(earlier.into()).with_group(newest, full)
    };
    scheduler.init().map_err(Error::Usage)
}

/// Ends training after an epoch, with no checkpoint of it, when its validation loss is not
/// finite (so a resume never starts from a diverged network) or when it is past `stop_after`
/// (as a kill would, for testing resume); writes the run's wall time beside each checkpoint.
#[derive(Clone)]
struct EpochGuard {
    stop_after: Option<usize>,
    checkpoints: PathBuf,
    clock: RunClock,
    state: Arc<Mutex<GuardState>>,
}

/// What the guard saw, read once the launch is over.
#[derive(Default)]
struct GuardState {
    /// The newest epoch checkpointed.
    checkpointed: Option<usize>,
    /// The epoch whose validation loss was not finite, and that loss.
    diverged: Option<(usize, f64)>,
    /// A wall-time file that could not be written.
    unwritten: Option<(PathBuf, std::io::Error)>,
}

impl EpochGuard {
    fn ends(&self, epoch: usize, store: &EventStoreClient) -> bool {
        let name = LossMetric::new().name();
        let loss = store.find_metric(&name, epoch, Aggregate::Mean, &Split::Valid);
        let mut state = self.state.lock().expect("not poisoned");
        if let Some(loss) = loss.filter(|loss| !loss.is_finite()) {
            state.diverged = Some((epoch, loss));
        }
        state.diverged.is_some()
            || state.unwritten.is_some()
            || self.stop_after.is_some_and(|last| epoch > last)
    }

    /// Follows burn-train's checkpointing `actions` for `epoch` with the wall-time files.
    fn record(&self, epoch: usize, actions: &[CheckpointingAction]) {
        let mut state = self.state.lock().expect("not poisoned");
        for action in actions {
            let written = match *action {
                CheckpointingAction::Save => {
                    state.checkpointed = Some(epoch);
                    let wall_seconds = self.clock.seconds();
                    checkpoint::save_state(
                        &self.checkpoints,
                        CheckpointState {
                            epoch,
                            wall_seconds,
                        },
                    )
                }
                CheckpointingAction::Delete(old) => {
                    checkpoint::delete_state(&self.checkpoints, old)
                }
            };
            if let Err(failure) = written {
                state.unwritten.get_or_insert(failure);
            }
        }
    }

    fn around<S: CheckpointingStrategy + 'static>(&self, inner: S) -> GuardedCheckpointing {
        GuardedCheckpointing {
            guard: self.clone(),
            inner: Box::new(inner),
        }
    }
}

impl EarlyStoppingStrategy for EpochGuard {
    // burn-train asks after the epoch's checkpointing, which the guard has already held back.
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        self.ends(epoch, store)
    }
}

/// A checkpointing strategy that saves nothing for an epoch the guard ends training at.
struct GuardedCheckpointing {
    guard: EpochGuard,
    inner: Box<dyn CheckpointingStrategy>,
}

impl CheckpointingStrategy for GuardedCheckpointing {
    fn checkpointing(
        &mut self,
        epoch: usize,
        store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        if self.guard.ends(epoch, store) {
            return Vec::new();
        }
        let actions = self.inner.checkpointing(epoch, store);
        self.guard.record(epoch, &actions);
        actions
    }
}

/// The renderer off the dashboard: one line per finished epoch (burn-train's own plain
/// renderer prints a line per batch), or nothing.
struct LineRenderer {
    lines: bool,
    label: String,
    epoch: usize,
    epochs: usize,
    split: String,
    started: std::time::Instant,
}

impl LineRenderer {
    fn new(lines: bool) -> Self {
        Self {
            lines,
            label: String::new(),
            epoch: 1,
            epochs: 0,
            split: String::new(),
            started: std::time::Instant::now(),
        }
    }
}

impl MetricsRendererTraining for LineRenderer {
    fn update_train(&mut self, _: MetricState) {}
    fn update_valid(&mut self, _: MetricState) {}
    fn on_train_end(
        &mut self,
        _: Option<burn::train::LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for LineRenderer {
    fn update_test(&mut self, _: EvaluationName, _: MetricState) {}
}

impl TrainingProgressLogger for LineRenderer {
    fn start(&mut self, epochs: usize, first: usize, _: Option<usize>, label: Option<&str>) {
        self.label = label.unwrap_or("training").to_string();
        (self.epoch, self.epochs) = (first.max(1), epochs);
        self.started = std::time::Instant::now();
    }
    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
    }
    fn start_split(&mut self, split: &str, _: usize) {
        self.split = split.to_string();
    }
    fn update_split(&mut self, _: usize) {}
    fn end_split(&mut self) {
        // An epoch ends with its validation split.
        if self.lines && self.split == "valid" {
            println!(
                "{}: epoch {}/{} done ({:.1} s)",
                self.label,
                self.epoch.min(self.epochs),
                self.epochs,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
    fn end(&mut self) {}
    fn log_event_training(&mut self, _: String) {}
}

impl burn::train::logger::EvaluationProgressLogger for LineRenderer {
    fn start_global_progress(&mut self, _: usize) {}
    fn start_test(&mut self, _: &str, _: usize) {}
    fn update_test_progress(&mut self, _: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _: String) {}
}

impl MetricsRenderer for LineRenderer {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _: MetricDefinition) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Shrinkage, Weight};

    #[test]
    fn stage_wise_launches_slow_the_earlier_layers() {
        let config = RunConfig {
            layers: 3,
            steps: 30,
            training: Training::StageWise,
            earlier_layers_lr: 0.25,
            learning_rate: 0.01,
            ..RunConfig::default()
        };
        let problem = Problem::new(&config);
        let model = Unfolded::new(&problem, &config, Shrinkage::Hard, &Device::flex());
        let id = |layer: usize| match &model.layers[layer].weight {
            Weight::Analytic(step) => step.id,
            Weight::Free(weight) => weight.id,
        };
        // Stage 2 trains layers 1 and 2: the second at the full rate, the first slowed.
        let stage = config.stages()[1];
        let rates = learning_rates(&config, &stage, &model).unwrap().step();
        assert_eq!(rates.lr_from_param(id(1), None), 0.01);
        assert_eq!(rates.lr_from_param(id(0), None), 0.0025);
        // End to end, every layer at the full rate.
        let end_to_end = RunConfig {
            training: Training::EndToEnd,
            ..config
        };
        let stage = end_to_end.stages()[0];
        let rates = learning_rates(&end_to_end, &stage, &model).unwrap().step();
        assert_eq!(rates.lr_from_param(id(0), None), 0.01);
    }
}
