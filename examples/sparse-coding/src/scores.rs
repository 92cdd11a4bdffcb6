//! Scores of an estimate against the true codes, on the host in f64: NMSE, support and the
//! samples a method does not recover.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Normalised mean squared error in dB: `10·log10(Σ‖x̂ − x‖² / Σ‖x‖²)` over the whole set.
///
/// `+inf` for a nonzero error against all-zero truth, NaN when the estimate holds NaN.
pub fn nmse_db(estimate: &[f32], truth: &[f32]) -> f64 {
    let (error, energy) = error_and_energy(estimate, truth);
    10.0 * (error / energy).log10()
}

/// `(Σ (x̂ − x)², Σ x²)` in f64.
fn error_and_energy(estimate: &[f32], truth: &[f32]) -> (f64, f64) {
    estimate
        .iter()
        .zip(truth)
        .fold((0.0f64, 0.0f64), |(error, energy), (&e, &t)| {
            let (e, t) = (e as f64, t as f64);
            (error + (e - t) * (e - t), energy + t * t)
        })
}

/// `[precision, recall, F1]` of the estimated support (`x̂ ≠ 0`) against the true one over a whole
/// set: true nonzeros found / nonzeros reported (1 when nothing is reported), found / true
/// nonzeros (1 when there are none), and their harmonic mean (0 when both are 0).
pub fn support(estimate: &[f32], truth: &[f32]) -> [f64; 3] {
    let hits = estimate
        .iter()
        .zip(truth)
        .filter(|&(&e, &t)| e != 0.0 && t != 0.0)
        .count();
    let found_of = |nonzeros: &[f32]| match nonzeros.iter().filter(|&&v| v != 0.0).count() {
        0 => 1.0,
        count => hits as f64 / count as f64,
    };
    let precision = found_of(estimate);
    let recall = found_of(truth);
    let f1 = match precision + recall {
        0.0 => 0.0,
        sum => 2.0 * precision * recall / sum,
    };
    [precision, recall, f1]
}

/// A tensor's values on the host, as f32 (every score here is computed on host copies).
pub fn host(t: Tensor<2>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().expect("float data")
}

/// A sample whose own NMSE is worse than this is counted as not recovered.
pub const FAILURE_DB: f64 = -20.0;

/// The test samples a method does not recover (own NMSE above [`FAILURE_DB`]): with NMSE a ratio
/// of sums over the set, a handful of them can set the number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failures {
    /// The per-sample NMSE above which a sample counts, in dB.
    pub threshold_db: f64,
    /// How many samples are not recovered.
    pub count: usize,
    /// Their support sizes (true nonzeros), ascending.
    pub support_sizes: Vec<usize>,
    /// Their own NMSE in dB, in the same order.
    pub nmse_db: Vec<f64>,
    /// Their share of the set's squared error.
    pub error_share: f64,
    /// The mean support size over the whole set, for comparison.
    pub mean_support_size: f64,
}

impl Failures {
    /// The failures of `estimate` against `truth`, samples of `n` entries each.
    pub fn of(estimate: &[f32], truth: &[f32], n: usize) -> Self {
        let mut failed = Vec::new();
        let mut failed_error = 0.0;
        let mut total_error = 0.0;
        let mut total_support = 0;
        for (e, t) in estimate.chunks(n).zip(truth.chunks(n)) {
            let (error, energy) = error_and_energy(e, t);
            let support = t.iter().filter(|&&v| v != 0.0).count();
            total_error += error;
            total_support += support;
            // An all-zero code's dB is measured against the smallest positive energy: finite
            // (JSON has no infinity), and far above the bar on any error at all.
            let db = 10.0 * (error / energy.max(f64::MIN_POSITIVE)).log10();
            if db > FAILURE_DB {
                failed_error += error;
                failed.push((support, db));
            }
        }
        failed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        Self {
            threshold_db: FAILURE_DB,
            count: failed.len(),
            support_sizes: failed.iter().map(|f| f.0).collect(),
            nmse_db: failed.iter().map(|f| f.1).collect(),
            error_share: if total_error > 0.0 {
                failed_error / total_error
            } else {
                0.0
            },
            mean_support_size: total_support as f64 / (truth.len() / n).max(1) as f64,
        }
    }
}

/// One method's scores on the test set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodScores {
    /// NMSE in dB after each layer (or iteration).
    pub nmse_db: Vec<f64>,
    /// Support precision at the last layer.
    pub precision: f64,
    /// Support recall at the last layer.
    pub recall: f64,
    /// Support F1 at the last layer.
    pub f1: f64,
    /// The threshold(s) used: one per layer for a network, one for a baseline.
    pub thresholds: Vec<f64>,
    /// A network's learned step sizes `γ_k` (analytic weights only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_sizes: Vec<f64>,
    /// The samples the last layer does not recover.
    pub failures: Failures,
    /// A network's last layer refit by least squares on its support: its NMSE in dB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_nmse_db: Option<f64>,
    /// A network's last threshold as trained, before it was set on the validation set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_last_threshold: Option<f64>,
    /// The run's wall time when the network was trained (all invocations of a resumed run), in
    /// seconds: on the CPU both networks train at once, from the run's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_seconds: Option<f64>,
}

impl MethodScores {
    /// Scores every layer's (or iteration's) estimate, samples of `n` entries, against the truth.
    pub fn of(estimates: &[Vec<f32>], truth: &[f32], n: usize, thresholds: Vec<f64>) -> Self {
        let last = estimates.last().expect("at least one layer");
        let [precision, recall, f1] = support(last, truth);
        Self {
            nmse_db: estimates.iter().map(|x| nmse_db(x, truth)).collect(),
            precision,
            recall,
            f1,
            thresholds,
            failures: Failures::of(last, truth, n),
            ..Self::default()
        }
    }

    /// NMSE of the last layer.
    pub fn final_nmse_db(&self) -> f64 {
        *self.nmse_db.last().expect("at least one layer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmse_of_known_errors() {
        let truth = [1.0, -2.0, 0.0, 2.0];
        assert_eq!(nmse_db(&truth, &truth), f64::NEG_INFINITY);
        // Error energy 0.9 against signal energy 9: -10 dB.
        let estimate = [1.0, -2.0, 0.0, 2.0 + 0.9f32.sqrt()];
        assert!((nmse_db(&estimate, &truth) + 10.0).abs() < 1e-6);
        // The zero estimate is 0 dB.
        assert_eq!(nmse_db(&[0.0; 4], &truth), 0.0);
    }

    #[test]
    fn failures_are_the_samples_above_minus_20_db() {
        // Three samples of two entries: recovered (-40 dB), failed (0 dB), failed (-10 dB).
        let truth = [1.0, 0.0, 2.0, 1.0, 0.0, 3.0];
        let estimate = [1.01, 0.0, 0.0, 0.0, 0.0, 2.1];
        let f = Failures::of(&estimate, &truth, 2);
        assert_eq!(f.count, 2);
        assert_eq!(f.support_sizes, [1, 2]);
        assert!((f.nmse_db[0] - 10.0 * (0.81f64 / 9.0).log10()).abs() < 1e-5);
        assert_eq!(f.nmse_db[1], 0.0);
        let errors = [0.01f64.powi(2), 5.0, 0.9f64.powi(2)];
        let share = (errors[1] + errors[2]) / errors.iter().sum::<f64>();
        assert!((f.error_share - share).abs() < 1e-6, "{}", f.error_share);
        assert!((f.mean_support_size - 4.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn support_scores() {
        let truth = [1.0, 0.0, 2.0, 0.0, 3.0];
        let [precision, recall, f1] = support(&[0.5, 0.1, 0.0, 0.0, 3.0], &truth);
        assert_eq!((precision, recall), (2.0 / 3.0, 2.0 / 3.0));
        assert!((f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(support(&[0.0; 5], &truth), [1.0, 0.0, 0.0]);
    }
}
