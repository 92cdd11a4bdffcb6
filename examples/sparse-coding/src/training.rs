//! Training through burn-train: one `SupervisedTraining` launch with its loaders, metrics,
//! checkpoints, renderer and device strategy.

use crate::checkpoint::{AtomicCheckpointer, RunClock};
use crate::config::RunConfig;
use crate::data::{StepLoader, ValidationLoader};
use crate::error::Error;
use crate::metrics::{NmseMetric, SupportF1Metric};
use crate::model::LearnedIht;
use crate::problem::{Problem, Samples};
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
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Samples per validation batch.
const VALIDATION_BATCH: usize = 1000;

/// How a training launch reports and ends.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// No dashboard and no progress lines.
    pub quiet: bool,
    /// Stop as a kill would once this many epochs are checkpointed: the next epoch trains,
    /// but its checkpoint is never written (for testing resume).
    pub stop_after_epochs: Option<usize>,
}

/// How a launch ended.
pub enum Trained {
    /// Every epoch ran; the network, out of autodiff.
    Finished(LearnedIht),
    /// Stopped before the last epoch (by the dashboard's quit, or [`LaunchOptions`]).
    Stopped,
}

/// Trains `model` per `config` in `dir` from `start_epoch` epochs done (a checkpoint of that
/// epoch must be there), on the config's devices.
#[allow(clippy::too_many_arguments)]
pub fn train(
    config: &RunConfig,
    dir: &Path,
    problem: &Arc<Problem>,
    validation: &Arc<Samples>,
    devices: &[Device],
    start_epoch: Option<usize>,
    clock: &RunClock,
    options: &LaunchOptions,
) -> Result<Trained, Error> {
    let main = devices[0].clone();
    let model = LearnedIht::new(
        problem,
        &config.threshold_schedule(),
        config.fixed_thresholds,
        config.bandwidth,
        &main.clone().autodiff(),
    );
    let train_loader = StepLoader::new(
        problem.clone(),
        config.seed,
        config.batch,
        0,
        config.steps,
        config.checkpoint_every,
        start_epoch.unwrap_or(0),
        &main.clone().autodiff(),
    );
    let valid_loader = ValidationLoader::new(problem, validation.clone(), VALIDATION_BATCH, &main);
    let scheduler = config.lr_schedule().init().map_err(Error::Usage)?;
    let learner = Learner::new(model, AdamConfig::new().init(), scheduler);

    let checkpoints = dir.join("checkpoint");
    let divergence = DivergenceGuard::default();
    let keep = ComposedCheckpointingStrategy::builder()
        .add(KeepLastNCheckpoints::new(2))
        .add(MetricCheckpointingStrategy::new(
            &NmseMetric::new(),
            Aggregate::Mean,
            Direction::Lowest,
            Split::Valid,
        ))
        .build();
    let mut training = SupervisedTraining::new(dir, Arc::new(train_loader), Arc::new(valid_loader))
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(NmseMetric::new())
        .metric_valid_numeric(SupportF1Metric::new())
        .with_custom_checkpointers(
            AtomicCheckpointer::new(&checkpoints, "model", Some(clock.clone())),
            AtomicCheckpointer::new(&checkpoints, "optim", None),
            AtomicCheckpointer::new(&checkpoints, "scheduler", None),
        )
        .with_checkpointing_strategy(divergence.guard(keep))
        .early_stopping(divergence.clone())
        .num_epochs(config.epochs())
        .label("learned IHT");
    if devices.len() > 1 {
        training = training.with_training_strategy(
            ExecutionStrategy::MultiDevice(devices.to_vec(), MultiDeviceOptim::OptimMainDevice)
                .into(),
        );
    }
    training = if options.quiet {
        training.renderer(Box::new(QuietRenderer))
    } else {
        training.summary()
    };
    if let Some(epoch) = start_epoch {
        training = training.checkpoint(epoch);
    }
    if let Some(epochs) = options.stop_after_epochs {
        let interrupter = training.interrupter();
        training = training.with_progress_logger(StopAfter {
            epochs,
            interrupter,
        });
    }

    let LearningResult {
        model,
        renderer,
        interrupted,
        error,
    } = training.launch(learner);
    // Closes the dashboard before anything else is printed.
    drop(renderer);
    if let Some(error) = error {
        return Err(Error::Training(error.to_string()));
    }
    if let Some((epoch, loss)) = divergence.diverged() {
        return Err(Error::Training(format!(
            "the loss diverged in epoch {epoch} (validation loss {loss}): start a new run with a \
             lower `learning_rate` (now {})",
            config.learning_rate
        )));
    }
    Ok(match interrupted {
        Some(_) => Trained::Stopped,
        None => Trained::Finished(model),
    })
}

/// Stops training at the first epoch whose validation loss is not finite, and keeps that
/// epoch's checkpoint from being written, so a resume never starts from a diverged network.
#[derive(Clone, Default)]
struct DivergenceGuard {
    diverged: Arc<Mutex<Option<(usize, f64)>>>,
}

impl DivergenceGuard {
    fn check(&self, epoch: usize, store: &EventStoreClient) -> bool {
        let name = LossMetric::new().name();
        let loss = store.find_metric(&name, epoch, Aggregate::Mean, &Split::Valid);
        match loss {
            Some(loss) if !loss.is_finite() => {
                *self.diverged.lock().expect("not poisoned") = Some((epoch, loss));
                true
            }
            _ => false,
        }
    }

    fn diverged(&self) -> Option<(usize, f64)> {
        *self.diverged.lock().expect("not poisoned")
    }

    fn guard<S: CheckpointingStrategy + 'static>(&self, inner: S) -> GuardedCheckpointing {
        GuardedCheckpointing {
            guard: self.clone(),
            inner: Box::new(inner),
        }
    }
}

impl EarlyStoppingStrategy for DivergenceGuard {
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        self.check(epoch, store)
    }
}

/// A checkpointing strategy that saves nothing for a diverged epoch.
struct GuardedCheckpointing {
    guard: DivergenceGuard,
    inner: Box<dyn CheckpointingStrategy>,
}

impl CheckpointingStrategy for GuardedCheckpointing {
    fn checkpointing(
        &mut self,
        epoch: usize,
        store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        if self.guard.check(epoch, store) {
            Vec::new()
        } else {
            self.inner.checkpointing(epoch, store)
        }
    }
}

/// Stops training after `epochs` epochs, before their checkpoint.
struct StopAfter {
    epochs: usize,
    interrupter: Interrupter,
}

impl TrainingProgressLogger for StopAfter {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}

    fn update_epoch(&mut self, epoch: usize) {
        // Called at the end of each epoch, before its checkpoint (burn-train flushes the
        // metrics first, so the stop is seen before the checkpoint is taken).
        if epoch > self.epochs {
            self.interrupter.stop(Some("stop requested for testing"));
        }
    }

    fn start_split(&mut self, _: &str, _: usize) {}
    fn update_split(&mut self, _: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _: String) {}
}

/// The renderer of `--quiet`: shows nothing.
struct QuietRenderer;

impl MetricsRendererTraining for QuietRenderer {
    fn update_train(&mut self, _: MetricState) {}
    fn update_valid(&mut self, _: MetricState) {}
    fn on_train_end(
        &mut self,
        _: Option<burn::train::LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for QuietRenderer {
    fn update_test(&mut self, _: EvaluationName, _: MetricState) {}
}

impl TrainingProgressLogger for QuietRenderer {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
    fn update_epoch(&mut self, _: usize) {}
    fn start_split(&mut self, _: &str, _: usize) {}
    fn update_split(&mut self, _: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _: String) {}
}

impl burn::train::logger::EvaluationProgressLogger for QuietRenderer {
    fn start_global_progress(&mut self, _: usize) {}
    fn start_test(&mut self, _: &str, _: usize) {}
    fn update_test_progress(&mut self, _: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _: String) {}
}

impl MetricsRenderer for QuietRenderer {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _: MetricDefinition) {}
}
