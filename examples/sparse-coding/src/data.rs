//! burn-train's data loaders: the batch of step `s` is samples `s·batch .. (s+1)·batch` of a
//! stream, each a pure function of the seed and its index, so a resumed run draws exactly the
//! batches an uninterrupted one draws.

use crate::config::ExperimentConfig;
use crate::problem::{Operator, Problem, Stream};
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Tensor};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;

/// Samples with the operators the networks apply to them.
#[derive(Debug, Clone)]
pub struct SparseBatch {
    /// Measurements, rows × m.
    pub y: Tensor<2>,
    /// True codes, rows × n.
    pub x: Tensor<2>,
    /// The operators, on the batch's device.
    pub operator: Operator,
    /// The share of the step's samples these rows are (1 on one device).
    pub share: f64,
}

/// A data loader of whole steps: the training loader walks a launch's steps an epoch at a time,
/// the validation loader serves the same single step every epoch.
///
/// burn-train's `iter` is told nothing of the epoch (it restarts a data loader from its first
/// item), so the training loader counts the epochs it has served, from the one a resumed launch
/// starts at.
#[derive(Clone)]
pub struct StepLoader {
    problem: Arc<Problem>,
    seed: u64,
    stream: Stream,
    /// Samples per step.
    batch: usize,
    /// The run's steps this loader serves.
    steps: Range<usize>,
    /// Steps per epoch.
    epoch_steps: usize,
    /// The rows of every step's batch this loader draws (a share of them on several devices).
    rows: Range<usize>,
    /// The next epoch to serve (relative to the launch); `None` serves every step each time.
    next_epoch: Option<Arc<AtomicUsize>>,
    /// The operators, on the device the batches are made on.
    operator: Operator,
}

impl StepLoader {
    /// The validation set: one step of `validation_samples`, the same every epoch.
    pub fn validation(problem: &Arc<Problem>, config: &ExperimentConfig, device: &Device) -> Self {
        let batch = config.validation_samples;
        Self {
            problem: problem.clone(),
            seed: config.seed,
            stream: Stream::Validation,
            batch,
            steps: 0..1,
            epoch_steps: 1,
            rows: 0..batch,
            next_epoch: None,
            operator: problem.operator(device),
        }
    }

    /// The training batches of the run's `steps`, from epoch `start_epoch` (0-based) on.
    pub fn training(
        problem: &Arc<Problem>,
        config: &ExperimentConfig,
        steps: Range<usize>,
        start_epoch: usize,
        device: &Device,
    ) -> Self {
        Self {
            stream: Stream::Train,
            batch: config.batch,
            rows: 0..config.batch,
            steps,
            epoch_steps: config.checkpoint_every,
            next_epoch: Some(Arc::new(AtomicUsize::new(start_epoch))),
            ..Self::validation(problem, config, device)
        }
    }

    /// Items per row of the batch: the steps of a full epoch (all of a launch shorter than one).
    fn row_items(&self) -> usize {
        self.epoch_steps.min(self.steps.len())
    }

    /// This loader's rows of step `step`.
    fn batch(&self, step: usize) -> SparseBatch {
        let rows = self.rows.len();
        let first = (step * self.batch + self.rows.start) as u64;
        let samples = self.problem.sample(self.seed, self.stream, first, rows);
        let device = self.operator.dictionary.device();
        SparseBatch {
            y: samples.measurements(&device),
            x: samples.codes(&device),
            operator: self.operator.clone(),
            share: rows as f64 / self.batch as f64,
        }
    }
}

/// The steps of a loader's next epoch: `epoch_steps` at a time through `steps`, the epoch counted
/// in `next_epoch` (a resumed launch starts it at its sealed epoch); without a counter, the first
/// epoch's every time. The image example's loader counts its epochs with it too.
pub fn next_epoch_steps(
    next_epoch: Option<&AtomicUsize>,
    steps: &Range<usize>,
    epoch_steps: usize,
) -> Range<usize> {
    let epoch = next_epoch.map_or(0, |n| n.fetch_add(1, SeqCst));
    let start = (steps.start + epoch * epoch_steps).min(steps.end);
    start..(start + epoch_steps).min(steps.end)
}

/// An epoch's steps, served one by one.
struct StepIterator<'a> {
    loader: &'a StepLoader,
    /// The epoch's steps still to serve, of `total`.
    steps: Range<usize>,
    total: usize,
}

impl Iterator for StepIterator<'_> {
    type Item = Result<SparseBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.steps.next().map(|step| Ok(self.loader.batch(step)))
    }
}

impl DataLoaderIterator<SparseBatch> for StepIterator<'_> {
    fn progress(&self) -> Progress {
        let rows = self.loader.rows.len();
        let done = self.total - self.steps.len();
        Progress::new(done * rows, self.total * rows, Some("samples".into()))
    }
}

impl DataLoader<SparseBatch> for StepLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<SparseBatch> + 'a> {
        let steps = next_epoch_steps(self.next_epoch.as_deref(), &self.steps, self.epoch_steps);
        let total = steps.len();
        Box::new(StepIterator {
            loader: self,
            steps,
            total,
        })
    }

    fn num_items(&self) -> usize {
        self.row_items() * self.rows.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<SparseBatch>> {
        let operator = self.problem.operator(device);
        Arc::new(Self {
            operator,
            ..self.clone()
        })
    }

    /// On several devices burn-train splits an epoch's training items evenly (validation runs on
    /// the first device): they are numbered row by row (item `i` is row `i / e` of step `i % e`,
    /// `e` the steps of the epoch), so each device draws the same rows of every step. The config
    /// makes the batch a multiple of the devices, so the split falls between rows.
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<SparseBatch>> {
        let per_row = self.row_items();
        let rows = self.rows.start + start / per_row..self.rows.start + end / per_row;
        // Each slice counts its own epochs, from where this loader is.
        let copy = |next: &Arc<AtomicUsize>| Arc::new(AtomicUsize::new(next.load(SeqCst)));
        let next_epoch = self.next_epoch.as_ref().map(copy);
        Arc::new(Self {
            rows,
            next_epoch,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loader(steps: usize, start_epoch: usize) -> StepLoader {
        let config = ExperimentConfig::new()
            .with_seed(7)
            .with_batch(8)
            .with_checkpoint_every(4);
        let problem = Arc::new(Problem::new(&config));
        StepLoader::training(
            &problem,
            &config,
            20..20 + steps,
            start_epoch,
            &Device::flex(),
        )
    }

    fn codes(batches: Box<dyn DataLoaderIterator<SparseBatch> + '_>) -> Vec<Vec<f32>> {
        batches
            .map(|b| b.unwrap().x.try_into_vec_as::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn epochs_walk_the_steps_and_resume_where_they_stopped() {
        let whole = loader(10, 0);
        let epochs: Vec<_> = (0..3).map(|_| codes(whole.iter())).collect();
        // 10 steps in epochs of 4: 4, 4, 2; then nothing.
        assert_eq!(epochs.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        assert!(codes(whole.iter()).is_empty());
        // A loader built at epoch 1 serves what the first served second.
        assert_eq!(codes(loader(10, 1).iter()), epochs[1]);
        // Step s is samples s·batch .. (s+1)·batch of the stream: epoch 1 starts at step 24.
        let problem = Problem::new(&ExperimentConfig::new());
        assert_eq!(epochs[1][0], problem.sample(7, Stream::Train, 24 * 8, 8).x);
    }

    #[test]
    fn burn_train_splits_every_step_by_rows() {
        // 10 steps in epochs of 4, and a launch of 3 steps, shorter than one epoch.
        for steps in [10, 3] {
            let full = loader(steps, 0);
            let devices = [Device::flex(), Device::flex()];
            let halves =
                burn::data::dataloader::split::split_dataloader(Arc::new(full.clone()), &devices);
            let whole = codes(full.iter());
            let parts: Vec<_> = halves.iter().map(|h| codes(h.iter())).collect();
            assert_eq!(whole.len(), steps.min(4));
            for (step, batch) in whole.iter().enumerate() {
                assert_eq!(parts[0][step].len(), 4 * 128);
                assert_eq!([&parts[0][step][..], &parts[1][step]].concat(), *batch);
            }
        }
    }
}
