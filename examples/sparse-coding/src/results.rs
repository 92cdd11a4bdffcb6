//! The run's final scores: `results.json` and the table the command line prints.

use crate::metrics::MethodScores;
use burn_hardshrink::DeviceName;
use serde::{Deserialize, Serialize};

/// Final scores of every method on the test set, as written to `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The unfolded network with learned hard thresholds.
    pub learned_iht: MethodScores,
    /// Its twin with learned soft thresholds (LISTA-CP), trained the same way.
    pub lista_cp: MethodScores,
    /// ISTA with its validated threshold.
    pub ista: MethodScores,
    /// FISTA with its validated threshold.
    pub fista: MethodScores,
    /// IHT with its validated threshold.
    pub iht: MethodScores,
    /// Wall time from the start of training to the results (all invocations of a resumed run;
    /// building the problem, well under a second, is left out), in seconds.
    pub wall_seconds: f64,
    /// Training steps taken.
    pub steps: usize,
    /// Device the run finished on (the first, with several).
    pub device: DeviceName,
}

impl Results {
    /// `(name, scores)` of every method, the model first.
    pub fn methods(&self) -> [(&'static str, &MethodScores); 5] {
        [
            ("learned_iht", &self.learned_iht),
            ("lista_cp", &self.lista_cp),
            ("ista", &self.ista),
            ("fista", &self.fista),
            ("iht", &self.iht),
        ]
    }

    /// A text table: NMSE per layer, then support scores, one column per method.
    pub fn table(&self) -> String {
        let methods = self.methods();
        let mut out = format!("{:<12}", "NMSE (dB)");
        for (name, _) in &methods {
            out += &format!("{name:>13}");
        }
        out += "\n";
        for layer in 0..self.learned_iht.nmse_db.len() {
            out += &format!("{:<12}", format!("layer {}", layer + 1));
            for (_, scores) in &methods {
                out += &format!("{:>13.2}", scores.nmse_db[layer]);
            }
            out += "\n";
        }
        let support = |s: &MethodScores| [s.precision, s.recall, s.f1];
        for (row, label) in ["precision", "recall", "F1"].into_iter().enumerate() {
            out += &format!("{label:<12}");
            for (_, scores) in &methods {
                out += &format!("{:>13.3}", support(scores)[row]);
            }
            out += "\n";
        }
        out += &format!("{:<12}", "failures");
        for (_, scores) in &methods {
            out += &format!("{:>13}", scores.failures.count);
        }
        out += &format!(
            "\n(failures: test samples whose own NMSE is above {} dB)\n",
            crate::metrics::FAILURE_DB
        );
        out
    }
}
