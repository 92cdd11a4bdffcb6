//! What burn-train shows and logs beside its loss and learning rate: validation NMSE in dB and
//! support F1; the renderer used where there is no terminal for the dashboard; and the stop on a
//! metric that is no longer finite.

use crate::model::Recovery;
use crate::scores::{nmse_db, support};
use burn::tensor::{ExecutionError, Tensor, TensorReadError};
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};
use burn::train::metric::{
    Adaptor, ItemLazy, LossInput, Metric, MetricAttributes, MetricDefinition, MetricMetadata,
    MetricName, Numeric, NumericAttributes, NumericEntry, SerializedEntry,
};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn::train::{EarlyStoppingStrategy, LearnerSummary};
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Instant;

impl ItemLazy for Recovery {
    fn sync(self) -> Result<Self, ExecutionError> {
        // Dispatches the step's buffered work, so the metric thread does not wait on it; the
        // metrics read the tensors on their device, off the autodiff graph.
        self.loss.device().flush()?;
        let detach = |tensor: Tensor<2>| tensor.without_autodiff();
        Ok(Self {
            loss: self.loss.without_autodiff(),
            estimate: self.estimate.map(|(x, target)| (detach(x), detach(target))),
        })
    }
}

impl Adaptor<LossInput> for Recovery {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl Adaptor<Recovery> for Recovery {
    fn adapt(&self) -> Recovery {
        self.clone()
    }
}

/// What a [`RecoveryMetric`] measures of the last layer's estimate in validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// NMSE in dB, `10·log10(Σ‖x̂ − x‖² / Σ‖x‖²)`.
    Nmse,
    /// F1 of the estimated support (`x̂ ≠ 0`) against the true one.
    SupportF1,
}

/// A measure of the validation set's estimate. The set is one batch, so the batch's value is the
/// epoch's: a ratio of sums over the set, not a mean of per-batch ratios. Formatted here:
/// burn-train's `FormatOptions` writes every negative number (every dB value) in scientific
/// notation.
#[derive(Clone)]
pub struct RecoveryMetric {
    measure: Measure,
    value: f64,
}

impl RecoveryMetric {
    /// The metric, with nothing measured.
    pub fn new(measure: Measure) -> Self {
        let value = f64::NAN;
        Self { measure, value }
    }

    fn entry(&self, entry: NumericEntry) -> SerializedEntry {
        let formatted = match self.measure {
            Measure::Nmse => format!("{:.2} dB", self.value),
            Measure::SupportF1 => format!("{:.3}", self.value),
        };
        SerializedEntry::new(formatted, entry.serialize())
    }
}

impl Metric for RecoveryMetric {
    type Input = Recovery;

    fn name(&self) -> MetricName {
        let name = match self.measure {
            Measure::Nmse => "NMSE",
            Measure::SupportF1 => "Support F1",
        };
        Arc::new(name.into())
    }

    fn attributes(&self) -> MetricAttributes {
        let nmse = self.measure == Measure::Nmse;
        NumericAttributes {
            unit: nmse.then(|| "dB".into()),
            higher_is_better: !nmse,
        }
        .into()
    }

    fn update(
        &mut self,
        item: &Recovery,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let (estimate, target) = item.estimate.clone().expect("a validation step's output");
        let estimate = estimate.try_into_vec_as::<f32>()?;
        let target = target.try_into_vec_as::<f32>()?;
        self.value = match self.measure {
            Measure::Nmse => nmse_db(&estimate, &target),
            Measure::SupportF1 => support(&estimate, &target)[2],
        };
        Ok(self.entry(NumericEntry::Value(self.value)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.entry(NumericEntry::Final(self.value)))
    }

    fn clear(&mut self) {
        self.value = f64::NAN;
    }
}

impl Numeric for RecoveryMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(self.value))
    }

    fn running_value(&self) -> Option<NumericEntry> {
        self.value()
    }

    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(self.value)
    }
}

/// The renderer off a terminal: a line per finished epoch (burn-train's plain renderer prints one
/// per batch, 32 000 in the default run), or nothing when quiet.
pub struct EpochLines {
    quiet: bool,
    /// The launch's label and epochs, and when it started; `None` when quiet.
    launch: Option<(String, usize, Instant)>,
}

impl EpochLines {
    /// A renderer that prints, unless `quiet`.
    pub fn new(quiet: bool) -> Self {
        let launch = None;
        Self { quiet, launch }
    }
}

impl TrainingProgressLogger for EpochLines {
    fn start(&mut self, epochs: usize, _: usize, _: Option<usize>, label: Option<&str>) {
        if !self.quiet {
            let label = label.unwrap_or("training").to_string();
            self.launch = Some((label, epochs, Instant::now()));
        }
    }
    // Called as an epoch ends, after its validation.
    fn update_epoch(&mut self, epoch: usize) {
        if let Some((label, epochs, started)) = &self.launch {
            let seconds = started.elapsed().as_secs_f64();
            println!("{label}: epoch {epoch}/{epochs} done ({seconds:.1} s)");
        }
    }
    fn start_split(&mut self, _: &str, _: usize) {}
    fn end_split(&mut self) {}
    fn update_split(&mut self, _: usize) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _: String) {}
}

// burn-train's renderer traits have no default methods: the rest of a renderer does nothing here.
impl MetricsRendererTraining for EpochLines {
    fn update_train(&mut self, _: MetricState) {}
    fn update_valid(&mut self, _: MetricState) {}
    // Without the summary burn-train would print here.
    fn on_train_end(&mut self, _: Option<LearnerSummary>) -> Result<(), Box<dyn Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for EpochLines {
    fn update_test(&mut self, _: EvaluationName, _: MetricState) {}
}

impl EvaluationProgressLogger for EpochLines {
    fn start_global_progress(&mut self, _: usize) {}
    fn start_test(&mut self, _: &str, _: usize) {}
    fn update_test_progress(&mut self, _: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _: String) {}
}

impl MetricsRenderer for EpochLines {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _: MetricDefinition) {}
}

/// Ends a launch after an epoch whose validation `metric` is not finite: burn-train's own early
/// stopping waits a number of epochs without improvement, and a NaN would sit them out. The image
/// example stops on it too.
#[derive(Clone)]
pub struct Divergence {
    metric: MetricName,
    diverged: Arc<Mutex<Option<(usize, f64)>>>,
}

impl Divergence {
    /// Watches the validation metric named `metric`.
    pub fn on(metric: MetricName) -> Self {
        let diverged = Arc::default();
        Self { metric, diverged }
    }

    /// The epoch that ended the launch, with the metric's value then; `None` if none did.
    pub fn diverged(&self) -> Option<(usize, f64)> {
        *self.diverged.lock().expect("not poisoned")
    }
}

impl EarlyStoppingStrategy for Divergence {
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        let value = store.find_metric(&self.metric, epoch, Aggregate::Mean, &Split::Valid);
        match value.filter(|v| !v.is_finite()) {
            Some(value) => *self.diverged.lock().expect("not poisoned") = Some((epoch, value)),
            None => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataloader::Progress;
    use burn::tensor::Device;

    #[test]
    fn the_validation_estimate_is_scored_in_db_and_f1() {
        let metadata = MetricMetadata {
            progress: Progress::new(1, 1, None),
            iteration: Some(1),
            lr: None,
        };
        let device = Device::flex();
        let rows = |v: &[f32]| Tensor::<1>::from_floats(v, &device).reshape([2, v.len() / 2]);
        // Error 1 against energy 100 (−20 dB); 3 of 4 true nonzeros found, none false.
        let recovery = Recovery {
            loss: Tensor::<1>::from_floats([0.5], &device),
            estimate: Some((
                rows(&[0.0, 0.0, 9.0, 3.0, 3.0, 0.0]),
                rows(&[1.0, 0.0, 9.0, 3.0, 3.0, 0.0]),
            )),
        };
        let mut nmse = RecoveryMetric::new(Measure::Nmse);
        let mut f1 = RecoveryMetric::new(Measure::SupportF1);
        nmse.update(&recovery, &metadata).unwrap();
        f1.update(&recovery, &metadata).unwrap();
        let entry = nmse.compute().unwrap();
        assert!((nmse.final_value().current() + 20.0).abs() < 1e-9);
        assert!(entry.serialized.ends_with(",final"), "{}", entry.serialized);
        assert_eq!(entry.formatted, "-20.00 dB");
        assert!((f1.final_value().current() - 6.0 / 7.0).abs() < 1e-12);
        nmse.clear();
        assert!(nmse.running_value().unwrap().current().is_nan());
    }
}
