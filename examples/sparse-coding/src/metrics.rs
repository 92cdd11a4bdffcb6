//! Scores of an estimate against the true codes, computed on the host in f64.

use serde::{Deserialize, Serialize};

/// Normalised mean squared error in dB: `10·log10(Σ‖x̂ − x‖² / Σ‖x‖²)` over the whole set.
///
/// `+inf` for a nonzero error against all-zero truth, NaN when the estimate holds NaN.
pub fn nmse_db(estimate: &[f32], truth: &[f32]) -> f64 {
    assert_eq!(
        estimate.len(),
        truth.len(),
        "estimate and truth differ in size"
    );
    let (error, energy) =
        estimate
            .iter()
            .zip(truth)
            .fold((0.0f64, 0.0f64), |(error, energy), (&e, &t)| {
                let (e, t) = (e as f64, t as f64);
                (error + (e - t) * (e - t), energy + t * t)
            });
    10.0 * (error / energy).log10()
}

/// How well the estimate's support (`x̂ ≠ 0`) matches the true support (`x ≠ 0`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SupportScores {
    /// True nonzeros found / nonzeros reported (1 when nothing is reported).
    pub precision: f64,
    /// True nonzeros found / true nonzeros (1 when there are none).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
}

/// Support precision, recall and F1 over the whole set.
pub fn support_scores(estimate: &[f32], truth: &[f32]) -> SupportScores {
    assert_eq!(
        estimate.len(),
        truth.len(),
        "estimate and truth differ in size"
    );
    let (mut hits, mut reported, mut actual) = (0usize, 0usize, 0usize);
    for (&e, &t) in estimate.iter().zip(truth) {
        let (e, t) = (e != 0.0, t != 0.0);
        hits += (e && t) as usize;
        reported += e as usize;
        actual += t as usize;
    }
    let ratio = |num: usize, den: usize| {
        if den == 0 {
            1.0
        } else {
            num as f64 / den as f64
        }
    };
    let precision = ratio(hits, reported);
    let recall = ratio(hits, actual);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    SupportScores {
        precision,
        recall,
        f1,
    }
}

/// One method's scores on the test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScores {
    /// NMSE in dB after each layer (or iteration).
    pub nmse_db: Vec<f64>,
    /// Support precision at the last layer.
    pub precision: f64,
    /// Support recall at the last layer.
    pub recall: f64,
    /// Support F1 at the last layer.
    pub f1: f64,
    /// The threshold(s) used: one per layer for the model, one for a baseline.
    pub thresholds: Vec<f64>,
}

impl MethodScores {
    /// Scores every iterate (host copies, one per layer) against the truth.
    pub fn of(iterates: &[Vec<f32>], truth: &[f32], thresholds: Vec<f64>) -> Self {
        let nmse_db = iterates.iter().map(|x| nmse_db(x, truth)).collect();
        let last = iterates.last().expect("at least one iterate");
        let support = support_scores(last, truth);
        Self {
            nmse_db,
            precision: support.precision,
            recall: support.recall,
            f1: support.f1,
            thresholds,
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
    fn support_counts() {
        let truth = [1.0, 0.0, 2.0, 0.0, 3.0];
        let estimate = [0.5, 0.1, 0.0, 0.0, 3.0];
        let s = support_scores(&estimate, &truth);
        assert_eq!(s.precision, 2.0 / 3.0);
        assert_eq!(s.recall, 2.0 / 3.0);
        assert!((s.f1 - 2.0 / 3.0).abs() < 1e-12);
        let none = support_scores(&[0.0; 5], &truth);
        assert_eq!((none.precision, none.recall, none.f1), (1.0, 0.0, 0.0));
    }
}
