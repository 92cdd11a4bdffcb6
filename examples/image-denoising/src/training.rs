//! The training recipe, top to bottom.
//!
//! - Learned IHT and its soft twin start from the same overcomplete DCT dictionary and ISTA's
//!   weights, and train on the same batches with the same recipe and budget: one burn-train
//!   launch each, end to end.
//! - Each step: `batch` crops of the training images with fresh noise; the loss is the mean
//!   squared error of the crops rebuilt from their denoised patches.
//! - Adam with PyTorch's ε, at `learning_rate`, ×0.2 after 60% of the steps and ×0.04 after 85%
//!   (the first example's schedule, with a higher last part).
//! - An epoch is `checkpoint_every` steps, with a validation and burn-train's checkpoint after it.
//!
//! On the CPU the two networks train at the same time, a thread each. A resumed run continues
//! each network from its newest checkpoint whose three records load (weights, Adam's moments, the
//! schedule's place), and ends with the numbers of a run never stopped.

use crate::config::DenoiseConfig;
use crate::data::StepLoader;
use crate::error::Error;
use crate::images::Image;
use crate::model::Denoiser;
use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::Device;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{LearningRateMetric, LossMetric, Metric};
use burn::train::renderer::MetricsRenderer;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::{Interrupter, Learner, SupervisedTraining};
use sparse_coding::metric::{Divergence, EpochLines};
use sparse_coding::training::schedule;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

/// The two networks: their directory in the run's, and whether their thresholds are soft.
pub const NETWORKS: [(&str, bool); 2] = [("learned-iht", false), ("learned-ista", true)];

type Renderer = Box<dyn MetricsRenderer>;

/// Trains both networks in the run directory `run`, from their newest checkpoints on; `None`
/// when the user stopped training (the dashboard's quit, Ctrl-C).
pub fn train(
    config: &DenoiseConfig,
    run: &Path,
    images: Arc<Vec<Image>>,
    interrupter: &Interrupter,
    quiet: bool,
) -> Result<Option<[Denoiser; 2]>, Error> {
    let device = config.device.open()?;
    let epochs = config.steps.div_ceil(config.checkpoint_every);
    let dashboard = !quiet && std::io::stdout().is_terminal();
    // The first network shows the dashboard (or a line per epoch); the second prints lines when
    // there is no dashboard.
    let renderer = |index: usize| -> Renderer {
        match (dashboard, index) {
            (true, 0) => Box::new(TuiMetricsRendererWrapper::new(interrupter.clone(), None)),
            _ => Box::new(EpochLines::new(quiet || dashboard)),
        }
    };
    let job = |index: usize| {
        let (name, soft) = NETWORKS[index];
        let dir = run.join(name);
        let start = newest_checkpoint(&dir, epochs);
        let network = Denoiser::init(config, soft, &device);
        let launch = Launch {
            config,
            dir: &dir,
            epochs,
            start,
            images: images.clone(),
            device: &device,
            interrupter,
        };
        launch.run(network, renderer(index), name)
    };
    // Two threads on one CubeCL device have deadlocked in its autotune: on a GPU one after the
    // other.
    let trained: Vec<_> = if config.device.is_cpu() {
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..2).map(|i| scope.spawn(move || job(i))).collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a training thread"))
                .collect()
        })
    } else {
        (0..2).map(job).collect()
    };
    let [hard, soft]: [Option<Denoiser>; 2] = trained
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .try_into()
        .expect("two networks");
    Ok(hard.zip(soft).map(|(hard, soft)| [hard, soft]))
}

/// One network's burn-train launch.
struct Launch<'a> {
    config: &'a DenoiseConfig,
    dir: &'a Path,
    /// Its epochs, the last of them perhaps shorter.
    epochs: usize,
    /// The epoch whose checkpoint it continues from (0 for none).
    start: usize,
    images: Arc<Vec<Image>>,
    device: &'a Device,
    interrupter: &'a Interrupter,
}

impl Launch<'_> {
    /// Trains `network`; `None` when the user stopped it.
    fn run(
        self,
        network: Denoiser,
        renderer: Renderer,
        name: &str,
    ) -> Result<Option<Denoiser>, Error> {
        let config = self.config;
        let scheduler = schedule(config.learning_rate, config.steps, &DROPS)
            .init()
            .expect("a valid schedule: positive rates, increasing milestones");
        // PyTorch's ε: Burn's default (1e-5) damps the steps of the thresholds' small gradients.
        let optimizer = AdamConfig::new().with_epsilon(1e-8).init();
        let autodiff = self.device.clone().autodiff();
        let learner = Learner::new(network.train().fork(&autodiff), optimizer, scheduler);
        let training = StepLoader::training(self.images.clone(), config, self.start, self.device);
        let validation = StepLoader::validation(self.images, config, self.device);
        let divergence = Divergence::on(LossMetric::new().name());
        let mut launch =
            SupervisedTraining::new(self.dir, Arc::new(training), Arc::new(validation))
                .metric_train_numeric(LossMetric::new())
                .metric_train_numeric(LearningRateMetric::new())
                .metric_valid_numeric(LossMetric::new())
                .with_default_checkpointers()
                .with_checkpointing_strategy(KeepLastNCheckpoints::new(2))
                .early_stopping(divergence.clone())
                .with_interrupter(self.interrupter.clone())
                .with_application_logger(None)
                .renderer(renderer)
                .num_epochs(self.epochs)
                .label(name);
        if self.start > 0 {
            launch = launch.checkpoint(self.start);
        }
        let result = launch.launch(learner);
        let failure = match (result.error, divergence.diverged()) {
            (Some(error), _) => Some(error.to_string()),
            (None, Some((epoch, loss))) => Some(format!(
                "{name} diverged in epoch {epoch} (validation loss {loss}): start a new run \
                 with a lower `learning_rate` (now {})",
                config.learning_rate
            )),
            (None, None) => None,
        };
        if let Some(failure) = failure {
            self.interrupter.stop(None);
            return Err(Error::Training(failure));
        }
        // A stop leaves its message: burn-train's dashboard resets its stop flag as a launch ends.
        let stopped = self.interrupter.get_message().is_some();
        Ok((!stopped).then_some(result.model))
    }
}

/// The drops of the learning rate: ×0.2 at 60% of the steps, ×0.04 at 85%.
const DROPS: [(usize, f64); 2] = [(60, 0.2), (85, 0.04)];

/// The newest epoch (of `epochs`) of the launch in `dir` whose model, optimizer and schedule
/// records all load, 0 for none; a newer one that does not load is passed over in one line.
/// burn-train writes each record in a thread of its own: a run killed during a save leaves a
/// file cut short, which burn-train's `checkpoint` would fail on.
fn newest_checkpoint(dir: &Path, epochs: usize) -> usize {
    let file = |name: &str, epoch| dir.join("checkpoint").join(format!("{name}-{epoch}.bpk"));
    for epoch in (1..=epochs).rev() {
        if !file("model", epoch).exists() {
            continue;
        }
        let loads = burn::store::ModuleRecord::load(file("model", epoch)).is_ok()
            && burn::optim::OptimizerRecord::load(file("optim", epoch)).is_ok()
            && burn::lr_scheduler::LrSchedulerRecord::load(file("scheduler", epoch)).is_ok();
        if loads {
            return epoch;
        }
        // Said even when quiet: the run loses an epoch's work here.
        eprintln!(
            "{}: the checkpoint of epoch {epoch} does not load (cut short?); passing it over",
            dir.display()
        );
    }
    0
}
