//! After training: each network's last threshold set on the validation set, every method scored
//! on the test set, `results.json` and the table the command line prints.

use crate::baselines::{Method, choose_threshold, iterate};
use crate::config::ExperimentConfig;
use crate::error::Error;
use crate::least_squares;
use crate::model::{Layer, Shrink, Unfolded};
use crate::problem::{Operator, Problem, Samples, Stream};
use crate::run_dir::RunClock;
use crate::scores::{FAILURE_DB, MethodScores, host, nmse_db, support};
use burn_hardshrink::DeviceName;
use serde::{Deserialize, Serialize};

/// Every method's scores on the test set: `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The unfolded network with learned hard thresholds.
    pub learned_iht: MethodScores,
    /// Its twin with learned soft thresholds (LISTA-CP), trained beside it.
    pub lista_cp: MethodScores,
    /// ISTA with its validated threshold.
    pub ista: MethodScores,
    /// FISTA with its validated threshold.
    pub fista: MethodScores,
    /// IHT with its validated threshold.
    pub iht: MethodScores,
    /// The run's wall time, from its start to its results, over every invocation up to its newest
    /// checkpoint; in seconds.
    pub wall_seconds: f64,
    /// Training steps taken.
    pub steps: usize,
    /// The device the run trained on (the first, with several).
    pub device: DeviceName,
}

impl Results {
    /// Scores the trained networks (learned IHT, then its twin) and the baselines; `clock` is the
    /// run's, read as scoring starts (the networks' `training_seconds`) and as it ends.
    pub fn of(
        config: &ExperimentConfig,
        problem: &Problem,
        [hard, soft]: [Unfolded; 2],
        clock: RunClock,
    ) -> Result<Self, Error> {
        let training_seconds = clock.seconds();
        let device = config.devices[0].open()?;
        let operator = problem.operator(&device);
        let layers = config.layers;
        let validation = problem.sample(
            config.seed,
            Stream::Validation,
            0,
            config.validation_samples,
        );
        let test = problem.sample(config.test_seed, Stream::Test, 0, config.test_samples);
        let test_y = test.measurements(&device);
        // A hard threshold keeps what it passes exactly, so the last one only decides the
        // support: picked by F1. A soft one also shrinks what it keeps: picked by NMSE, the
        // measure the twin trades its support against.
        let network = |network: Unfolded, by_support: bool| {
            let (network, trained_last) = match config.calibrate_last_threshold {
                true => calibrate(network, &validation, &operator, by_support),
                false => (network, None),
            };
            let outputs = network.forward(test_y.clone(), &operator, layers);
            let outputs: Vec<_> = outputs.into_iter().map(host).collect();
            let last = outputs.last().expect("at least one layer");
            let refit = least_squares::refit(problem, &test.y, last);
            MethodScores {
                refit_nmse_db: Some(nmse_db(&refit, &test.x)),
                step_sizes: network.step_sizes(),
                trained_last_threshold: trained_last,
                training_seconds: Some(training_seconds),
                ..MethodScores::of(&outputs, &test.x, config.n, network.thresholds())
            }
        };
        let validation_y = validation.measurements(&device);
        let baseline = |method| {
            let tau = choose_threshold(method, &operator, &validation_y, &validation.x, layers);
            let iterates = iterate(method, &operator, &test_y, tau, layers);
            let iterates: Vec<_> = iterates.into_iter().map(host).collect();
            MethodScores::of(&iterates, &test.x, config.n, vec![tau])
        };
        Ok(Self {
            learned_iht: network(hard, true),
            lista_cp: network(soft, false),
            ista: baseline(Method::Ista),
            fista: baseline(Method::Fista),
            iht: baseline(Method::Iht),
            wall_seconds: clock.seconds(),
            steps: config.steps,
            device: config.devices[0],
        })
    }

    /// `(name, scores)` of every method, the networks first.
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
        let row = |label: &str, cell: &dyn Fn(&str, &MethodScores) -> String| {
            let cells: String = methods
                .iter()
                .map(|(name, s)| format!("{:>13}", cell(name, s)))
                .collect();
            format!("{label:<12}{cells}\n")
        };
        let mut out = row("NMSE (dB)", &|name, _| name.to_string());
        for layer in 0..self.learned_iht.nmse_db.len() {
            let label = format!("layer {}", layer + 1);
            out += &row(&label, &|_, s| format!("{:.2}", s.nmse_db[layer]));
        }
        out += &row("precision", &|_, s| format!("{:.3}", s.precision));
        out += &row("recall", &|_, s| format!("{:.3}", s.recall));
        out += &row("F1", &|_, s| format!("{:.3}", s.f1));
        out += &row("failures", &|_, s| s.failures.count.to_string());
        let refit =
            |_: &str, s: &MethodScores| s.refit_nmse_db.map_or("-".into(), |v| format!("{v:.2}"));
        out += &row("LS on supp.", &refit);
        out + &format!(
            "(failures: test samples whose own NMSE is above {FAILURE_DB} dB; LS on supp.: the \
             last layer's support refit by least squares, NMSE in dB)\n"
        )
    }
}

/// `network` with its last threshold set to the best of `λ_K·2^(i/4)`, i in −8..=12, on
/// `samples` (by support F1 then NMSE, or the other way round), and the threshold it had; a fixed
/// threshold is kept.
fn calibrate(
    mut network: Unfolded,
    samples: &Samples,
    operator: &Operator,
    by_support: bool,
) -> (Unfolded, Option<f64>) {
    let last = network.layers.last().expect("at least one layer");
    if matches!(last.shrink, Shrink::Fixed(_)) {
        return (network, None);
    }
    let y = samples.measurements(&operator.dictionary.device());
    let input = network.last_input(y, operator);
    let last = network.layers.pop().expect("at least one layer");
    let score = |shrink: &Shrink| {
        let estimate = host(shrink.forward(input.clone()));
        let [_, _, f1] = support(&estimate, &samples.x);
        let accuracy = -nmse_db(&estimate, &samples.x);
        if by_support {
            (f1, accuracy)
        } else {
            (accuracy, f1)
        }
    };
    let trained = last.shrink.threshold();
    let mut best = (score(&last.shrink), trained);
    for candidate in (-8..=12).map(|i| trained * 2f64.powf(i as f64 / 4.0)) {
        let scored = score(&last.shrink.clone().with_threshold(candidate));
        if scored > best.0 {
            best = (scored, candidate);
        }
    }
    let shrink = last.shrink.with_threshold(best.1);
    network.layers.push(Layer { shrink, ..last });
    (network, Some(trained))
}
