//! Batches for burn-train: fresh training samples every step, a fixed validation set.
//!
//! [`StepLoader`] draws the batch of global step `s` from `(seed, s)` alone, so a run resumed
//! at any epoch draws exactly the batches an uninterrupted run draws; one epoch is
//! `checkpoint_every` steps. [`validation_loader`] serves a fixed set through Burn's own loader.

use crate::problem::{Operator, Problem, Samples, Stream};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder, DataLoaderIterator, Progress};
use burn::data::dataset::{DatasetError, InMemDataset};
use burn::tensor::{Device, Tensor};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Samples with the operator the network applies to them.
#[derive(Debug, Clone)]
pub struct SparseBatch {
    /// Measurements, rows × m.
    pub y: Tensor<2>,
    /// True codes, rows × n.
    pub x: Tensor<2>,
    /// The operators, on the batch's device.
    pub operator: Operator,
    /// The fraction of the step's samples these rows are (1 on one device): the training loss
    /// is scaled by it, so the gradients of a step's shares sum to the whole step's gradient.
    pub share: f64,
}

/// The training batches: step `s` of the run is samples `s·batch .. (s+1)·batch` of the
/// training stream.
///
/// `iter` walks the next epoch of steps: the loader counts the epochs it has served, starting
/// from the epoch it was built at (a resumed run builds it at its checkpoint). On several
/// devices, [`slice`](DataLoader::slice) hands each one the same rows of every step's batch: an
/// epoch's items are numbered row by row (item `i` is row `i / e` of step `i % e`, with `e` the
/// steps of a full epoch, or all of a launch shorter than one), so a contiguous range of items is
/// a range of rows.
#[derive(Clone)]
pub struct StepLoader {
    problem: Arc<Problem>,
    seed: u64,
    /// Samples per step.
    batch: usize,
    /// The global index of this loader's step 0 (earlier training launches took the others).
    first_step: usize,
    /// Steps in all.
    steps: usize,
    /// Steps per epoch.
    epoch_steps: usize,
    /// The rows of every step's batch this loader draws.
    rows: Range<usize>,
    device: Device,
    operator: Operator,
    next_epoch: Arc<AtomicUsize>,
}

impl StepLoader {
    /// Batches of `batch` samples for steps `first_step .. first_step + steps`, in epochs of
    /// `epoch_steps`, starting at epoch `start_epoch` (0-based), on `device`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        problem: Arc<Problem>,
        seed: u64,
        batch: usize,
        first_step: usize,
        steps: usize,
        epoch_steps: usize,
        start_epoch: usize,
        device: &Device,
    ) -> Self {
        Self {
            operator: problem.operator(device),
            problem,
            seed,
            batch,
            first_step,
            steps,
            epoch_steps,
            rows: 0..batch,
            device: device.clone(),
            next_epoch: Arc::new(AtomicUsize::new(start_epoch)),
        }
    }

    /// The samples of global step `step`, this loader's rows (a pure function of the seed and both).
    fn draw(&self, step: usize) -> Samples {
        let first = (step * self.batch + self.rows.start) as u64;
        self.problem
            .sample(self.seed, Stream::Train, first, self.rows.len())
    }

    /// Items per row of the batch: the steps of a full epoch (all of a launch shorter than one).
    fn row_items(&self) -> usize {
        self.epoch_steps.min(self.steps)
    }
}

struct StepIterator<'a> {
    loader: &'a StepLoader,
    /// Steps of this epoch, relative to the loader's step 0.
    steps: Range<usize>,
    next: usize,
}

impl Iterator for StepIterator<'_> {
    type Item = Result<SparseBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.steps.end {
            return None;
        }
        let loader = self.loader;
        let samples = loader.draw(loader.first_step + self.next);
        self.next += 1;
        Some(Ok(SparseBatch {
            y: samples.measurements(&loader.device),
            x: samples.codes(&loader.device),
            operator: loader.operator.clone(),
            share: loader.rows.len() as f64 / loader.batch as f64,
        }))
    }
}

impl DataLoaderIterator<SparseBatch> for StepIterator<'_> {
    fn progress(&self) -> Progress {
        let rows = self.loader.rows.len();
        Progress::new(
            (self.next - self.steps.start) * rows,
            self.steps.len() * rows,
            Some("samples".into()),
        )
    }
}

impl DataLoader<SparseBatch> for StepLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<SparseBatch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let start = (epoch * self.epoch_steps).min(self.steps);
        let end = (start + self.epoch_steps).min(self.steps);
        Box::new(StepIterator {
            loader: self,
            steps: start..end,
            next: start,
        })
    }

    fn num_items(&self) -> usize {
        self.row_items() * self.rows.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<SparseBatch>> {
        Arc::new(Self {
            device: device.clone(),
            operator: self.operator.to_device(device),
            ..self.clone()
        })
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<SparseBatch>> {
        // Items are numbered row by row: whole rows only (the config's checks make the batch a
        // multiple of the number of devices, so burn-train's even split cuts between rows).
        let per_row = self.row_items();
        assert!(
            start.is_multiple_of(per_row) && end.is_multiple_of(per_row),
            "a training loader splits between rows of the batch: items {start}..{end} with \
             {per_row} steps per epoch"
        );
        let rows = self.rows.start + start / per_row..self.rows.start + end / per_row;
        Arc::new(Self {
            rows,
            next_epoch: Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst))),
            ..self.clone()
        })
    }
}

/// One sample of a fixed set: its code and its measurements.
type Row = (Vec<f32>, Vec<f32>);

/// A fixed set of samples through Burn's own data loader, in order, `batch` rows at a time.
pub fn validation_loader(
    problem: &Problem,
    samples: &Samples,
    batch: usize,
    device: &Device,
) -> Arc<dyn DataLoader<SparseBatch>> {
    let rows: Vec<Row> = samples
        .x
        .chunks(problem.n)
        .zip(samples.y.chunks(problem.m))
        .map(|(x, y)| (x.to_vec(), y.to_vec()))
        .collect();
    DataLoaderBuilder::new(RowBatcher {
        operator: problem.operator(device),
    })
    .batch_size(batch)
    .set_device(device.clone())
    .build(InMemDataset::new(rows))
}

/// Joins rows into a batch, with the operators on the batch's device.
struct RowBatcher {
    operator: Operator,
}

impl Batcher<Row, SparseBatch> for RowBatcher {
    fn batch(&self, rows: Vec<Row>, device: &Device) -> SparseBatch {
        let count = rows.len();
        let (x, y): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
        let samples = Samples {
            count,
            x: x.concat(),
            y: y.concat(),
        };
        SparseBatch {
            y: samples.measurements(device),
            x: samples.codes(device),
            operator: self.operator.to_device(device),
            share: 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunConfig;

    fn loader(start_epoch: usize) -> StepLoader {
        let problem = Arc::new(Problem::new(&RunConfig::default()));
        StepLoader::new(problem, 7, 8, 0, 10, 4, start_epoch, &Device::flex())
    }

    fn codes(batches: Box<dyn DataLoaderIterator<SparseBatch> + '_>) -> Vec<Vec<f32>> {
        batches
            .map(|b| b.unwrap().x.into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn epochs_walk_the_steps_and_resume_where_they_stopped() {
        let whole = loader(0);
        let epochs: Vec<_> = (0..3).map(|_| codes(whole.iter())).collect();
        // 10 steps in epochs of 4: 4, 4, 2; then nothing.
        assert_eq!(epochs.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        assert!(codes(whole.iter()).is_empty());
        // A loader built at epoch 1 serves what the first served second.
        assert_eq!(codes(loader(1).iter()), epochs[1]);
        // Step s is samples s·batch .. (s+1)·batch of the stream.
        let problem = Problem::new(&RunConfig::default());
        assert_eq!(epochs[1][0], problem.sample(7, Stream::Train, 32, 8).x);
    }

    #[test]
    fn burn_train_splits_every_step_by_rows() {
        let problem = Arc::new(Problem::new(&RunConfig::default()));
        // 10 steps in epochs of 4, and a launch of 3 steps, shorter than one epoch.
        for steps in [10, 3] {
            let full = StepLoader::new(problem.clone(), 7, 8, 0, steps, 4, 0, &Device::flex());
            let halves = burn::data::dataloader::split::split_dataloader(
                Arc::new(full.clone()),
                &[Device::flex(), Device::flex()],
            );
            let whole = codes(full.iter());
            let parts: Vec<_> = halves.iter().map(|h| codes(h.iter())).collect();
            assert_eq!(whole.len(), steps.min(4));
            for (step, batch) in whole.iter().enumerate() {
                assert_eq!(parts[0][step].len(), 4 * problem.n);
                assert_eq!([&parts[0][step][..], &parts[1][step]].concat(), *batch);
            }
        }
    }
}
