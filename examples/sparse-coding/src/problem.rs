//! The synthetic sparse-coding problem: `y = A x + noise` with a fixed random dictionary `A`.
//!
//! Every random number comes from a ChaCha8 generator keyed by `(seed, stream, index)`: the
//! dictionary, each training sample, each validation and test sample has its own key, so any
//! sample can be drawn alone, in any order, on any thread, and a resumed run draws exactly the
//! batches an uninterrupted one draws.

use crate::config::ExperimentConfig;
use crate::least_squares::{cholesky, solve};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Random streams, so the dictionary, training batches, validation and test sets never share
/// numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// The dictionary `A`.
    Dictionary = 1,
    /// Training samples, indexed by `step · batch + row`.
    Train = 2,
    /// The validation set (scored every epoch; the baselines pick their thresholds on it).
    Validation = 3,
    /// The test set (drawn from the test seed).
    Test = 4,
}

/// The generator of one `(seed, stream, index)` key. Its ChaCha stream 0 draws the code and
/// stream 1 the noise, so a noisy and a noiseless set share their codes.
fn generator(seed: u64, stream: Stream, index: u64, noise: bool) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(stream as u64).to_le_bytes());
    key[16..24].copy_from_slice(&index.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(u64::from(noise));
    rng
}

/// The dictionary and the signal model.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Measurements per signal.
    pub m: usize,
    /// Code length (dictionary atoms).
    pub n: usize,
    /// Probability that a code entry is nonzero.
    pub p: f64,
    /// `density_spread`: training codes' nonzero probability is `p·(1 ± spread)`.
    pub density_spread: f64,
    /// Standard deviation of the measurement noise (0 when noiseless).
    pub noise_std: f64,
    /// `A`, m × n, row-major: entries N(0, 1/m), columns scaled to unit norm.
    pub a: Vec<f32>,
    /// `L = ‖A‖₂²`, the largest eigenvalue of `AᵀA`.
    pub lipschitz: f64,
    /// ALISTA's analytic weight `W`, m × n row-major: `diag(WᵀA) = 1` with `‖WᵀA‖_F` least.
    pub analytic: Vec<f32>,
}

/// A set of codes and their measurements, one sample per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// Number of samples.
    pub count: usize,
    /// Codes, count × n.
    pub x: Vec<f32>,
    /// Measurements, count × m.
    pub y: Vec<f32>,
}

impl Problem {
    /// Draws the dictionary from the run's seed.
    pub fn new(config: &ExperimentConfig) -> Self {
        let (m, n) = (config.m, config.n);
        let mut rng = generator(config.seed, Stream::Dictionary, 0, false);
        let std = 1.0 / (m as f64).sqrt();
        let mut a: Vec<f64> = (0..m * n)
            .map(|_| rng.sample::<f64, _>(StandardNormal) * std)
            .collect();
        for col in 0..n {
            let norm = (0..m).map(|r| a[r * n + col].powi(2)).sum::<f64>().sqrt();
            for r in 0..m {
                a[r * n + col] /= norm;
            }
        }
        let lipschitz = spectral_norm_squared(&a, m, n);
        let analytic = analytic_weight(&a, m, n)
            .iter()
            .map(|&v| v as f32)
            .collect();
        // Noise of variance p·n/m·10^(−SNR/10) (Borgerding et al. 2017's convention).
        let noise_std = match config.snr_db {
            Some(snr) => (config.p * n as f64 / m as f64 * 10f64.powf(-snr / 10.0)).sqrt(),
            None => 0.0,
        };
        Self {
            m,
            n,
            p: config.p,
            density_spread: config.density_spread,
            noise_std,
            a: a.iter().map(|&v| v as f32).collect(),
            lipschitz,
            analytic,
        }
    }

    /// Samples `first .. first + count` of a stream, each a pure function of
    /// `(seed, stream, index)`.
    ///
    /// Codes have Bernoulli(p) support with N(0, 1) values; measurements are `A x` plus noise.
    pub fn sample(&self, seed: u64, stream: Stream, first: u64, count: usize) -> Samples {
        let (m, n) = (self.m, self.n);
        let mut x = vec![0f32; count * n];
        let mut y = vec![0f32; count * m];
        let mut clean = vec![0f64; m];
        for (s, (code, measured)) in x.chunks_mut(n).zip(y.chunks_mut(m)).enumerate() {
            let index = first + s as u64;
            let mut rng = generator(seed, stream, index, false);
            // A spread of 0 draws nothing here: the samples of a config without the field (a run
            // started before it existed) are drawn the same, and resume the same.
            let p = match stream {
                Stream::Train if self.density_spread > 0.0 => {
                    self.p * (1.0 + self.density_spread * (2.0 * rng.random::<f64>() - 1.0))
                }
                _ => self.p,
            };
            for v in code.iter_mut() {
                if rng.random::<f64>() < p {
                    *v = rng.sample::<f64, _>(StandardNormal) as f32;
                }
            }
            // y = A x summed over the support only (about p·n columns), in f64.
            clean.fill(0.0);
            for (col, &value) in code.iter().enumerate().filter(|(_, v)| **v != 0.0) {
                for (acc, &a) in clean.iter_mut().zip(self.a[col..].iter().step_by(n)) {
                    *acc += a as f64 * value as f64;
                }
            }
            let mut noise = (self.noise_std > 0.0).then(|| generator(seed, stream, index, true));
            for (out, &clean) in measured.iter_mut().zip(&clean) {
                let w = noise.as_mut().map_or(0.0, |rng| {
                    rng.sample::<f64, _>(StandardNormal) * self.noise_std
                });
                *out = (clean + w) as f32;
            }
        }
        Samples { count, x, y }
    }
}

/// The operators a network or a solver applies, on one device.
#[derive(Debug, Clone)]
pub struct Operator {
    /// `A`, m × n.
    pub dictionary: Tensor<2>,
    /// `Aᵀ`, n × m, laid out contiguously (a transposed view would be copied by every product it
    /// enters).
    pub dictionary_t: Tensor<2>,
    /// ALISTA's analytic weight `W`, m × n.
    pub analytic: Tensor<2>,
    /// `L = ‖A‖₂²`.
    pub lipschitz: f64,
}

impl Problem {
    /// The operators on `device`.
    pub fn operator(&self, device: &Device) -> Operator {
        let (m, n) = (self.m, self.n);
        let tensor =
            |values, shape: [usize; 2]| Tensor::from_data(TensorData::new(values, shape), device);
        let transposed = (0..n * m).map(|i| self.a[(i % m) * n + i / m]).collect();
        Operator {
            dictionary: tensor(self.a.clone(), [m, n]),
            dictionary_t: tensor(transposed, [n, m]),
            analytic: tensor(self.analytic.clone(), [m, n]),
            lipschitz: self.lipschitz,
        }
    }
}

impl Samples {
    /// The codes as a count × n tensor.
    pub fn codes(&self, device: &Device) -> Tensor<2> {
        self.rows(&self.x, device)
    }

    /// The measurements as a count × m tensor.
    pub fn measurements(&self, device: &Device) -> Tensor<2> {
        self.rows(&self.y, device)
    }

    fn rows(&self, values: &[f32], device: &Device) -> Tensor<2> {
        let shape = [self.count, values.len() / self.count.max(1)];
        Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
    }
}

/// ALISTA's analytic weight in its Frobenius form (Liu et al. 2019): the `W` (m × n) with
/// `diag(WᵀA) = 1` that minimises `‖WᵀA‖_F`, column by column
/// `w_i = (AAᵀ)⁻¹ a_i / (a_iᵀ (AAᵀ)⁻¹ a_i)`, in f64 through a Cholesky factorisation of `AAᵀ`
/// (positive definite: `A` has full row rank almost surely, since m ≤ n).
fn analytic_weight(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    // G = AAᵀ, m × m.
    let mut g = vec![0f64; m * m];
    for i in 0..m {
        for j in 0..=i {
            let dot: f64 = (0..n).map(|c| a[i * n + c] * a[j * n + c]).sum();
            g[i * m + j] = dot;
            g[j * m + i] = dot;
        }
    }
    assert!(cholesky(&mut g, m), "AAᵀ is positive definite");
    let mut w = vec![0f64; m * n];
    for col in 0..n {
        let column = solve(&g, m, |i| a[i * n + col]);
        // Scaled so that a_iᵀ w_i = 1.
        let scale: f64 = (0..m).map(|i| a[i * n + col] * column[i]).sum();
        for i in 0..m {
            w[i * n + col] = column[i] / scale;
        }
    }
    w
}

/// `‖A‖₂²` by power iteration on `AᵀA`, in f64, from a fixed start.
fn spectral_norm_squared(a: &[f64], m: usize, n: usize) -> f64 {
    let mut v = vec![1.0 / (n as f64).sqrt(); n];
    let mut estimate = 0.0;
    for _ in 0..1000 {
        let av: Vec<f64> = (0..m)
            .map(|r| (0..n).map(|c| a[r * n + c] * v[c]).sum())
            .collect();
        let mut w: Vec<f64> = (0..n)
            .map(|c| (0..m).map(|r| a[r * n + c] * av[r]).sum())
            .collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        w.iter_mut().for_each(|x| *x /= norm);
        let converged = (norm - estimate).abs() <= 1e-12 * norm;
        estimate = norm;
        v = w;
        if converged {
            break;
        }
    }
    estimate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_has_unit_columns_and_its_spectral_norm() {
        let problem = Problem::new(&ExperimentConfig::new());
        let (m, n) = (problem.m, problem.n);
        for c in 0..n {
            let norm: f64 = (0..m).map(|r| (problem.a[r * n + c] as f64).powi(2)).sum();
            assert!(
                (norm - 1.0).abs() < 1e-5,
                "column {c} has squared norm {norm}"
            );
        }
        // ‖A‖₂² lies between the largest squared column norm (1) and the Frobenius bound (n).
        assert!(problem.lipschitz > 1.0 && problem.lipschitz < n as f64);
        // And no code stretches further than √L.
        let x = problem.sample(3, Stream::Test, 0, 50);
        for s in 0..50 {
            let code = &x.x[s * n..(s + 1) * n];
            let y = &x.y[s * m..(s + 1) * m];
            let code_norm: f64 = code.iter().map(|&v| (v as f64).powi(2)).sum();
            let y_norm: f64 = y.iter().map(|&v| (v as f64).powi(2)).sum();
            assert!(y_norm <= problem.lipschitz * code_norm * (1.0 + 1e-5) + 1e-9);
        }
    }

    #[test]
    fn analytic_weight_has_unit_diagonal_and_is_optimal() {
        let problem = Problem::new(&ExperimentConfig::new().with_m(12).with_n(20));
        let (m, n) = (problem.m, problem.n);
        let (a, w) = (&problem.a, &problem.analytic);
        let col = |v: &[f32], c: usize| (0..m).map(|r| v[r * n + c] as f64).collect::<Vec<_>>();
        let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
        for c in 0..n {
            let (ac, wc) = (col(a, c), col(w, c));
            assert!((dot(&ac, &wc) - 1.0).abs() < 1e-5, "column {c}");
            // Optimality: AAᵀ w_i is parallel to a_i (the constraint's normal).
            let aat_w: Vec<f64> = (0..m)
                .map(|r| {
                    let row: Vec<f64> = (0..n).map(|k| a[r * n + k] as f64).collect();
                    (0..n).map(|k| row[k] * dot(&col(a, k), &wc)).sum::<f64>()
                })
                .collect();
            let scale = dot(&aat_w, &ac) / dot(&ac, &ac);
            for r in 0..m {
                assert!(
                    (aat_w[r] - scale * ac[r]).abs() < 1e-4,
                    "column {c}, row {r}"
                );
            }
        }
    }

    #[test]
    fn transposed_dictionary_is_the_transpose() {
        let problem = Problem::new(&ExperimentConfig::new().with_m(3).with_n(5));
        let operator = problem.operator(&Device::flex());
        let a = operator.dictionary.transpose().into_data();
        let at = operator.dictionary_t.into_data();
        assert_eq!(
            a.try_to_vec::<f32>().unwrap(),
            at.try_to_vec::<f32>().unwrap()
        );
    }

    #[test]
    fn samples_are_pure_functions_of_their_index() {
        let problem = Problem::new(&ExperimentConfig::new());
        let a = problem.sample(1, Stream::Train, 500, 200);
        assert_eq!(a, problem.sample(1, Stream::Train, 500, 200));
        // Any slice of the range is the same samples, drawn alone.
        let part = problem.sample(1, Stream::Train, 550, 10);
        assert_eq!(part.x, a.x[50 * 128..60 * 128]);
        assert_eq!(part.y, a.y[50 * 64..60 * 64]);
        assert_ne!(a.x, problem.sample(1, Stream::Train, 501, 200).x);
        assert_ne!(a.x, problem.sample(2, Stream::Train, 500, 200).x);
        assert_ne!(a.x, problem.sample(1, Stream::Validation, 500, 200).x);
        let density = a.x.iter().filter(|&&v| v != 0.0).count() as f64 / a.x.len() as f64;
        assert!((density - problem.p).abs() < 0.02, "density {density}");
        let values: Vec<f64> =
            a.x.iter()
                .filter(|&&v| v != 0.0)
                .map(|&v| v as f64)
                .collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.15, "{mean} {var}");
    }

    #[test]
    fn a_density_spread_varies_training_codes_only() {
        let spread = Problem::new(&ExperimentConfig::new().with_density_spread(0.5));
        let plain = Problem::new(&ExperimentConfig::new());
        // The mean and variance of the nonzeros per training code.
        let moments = |problem: &Problem| {
            let codes = problem.sample(0, Stream::Train, 0, 2000).x;
            let k: Vec<f64> = codes
                .chunks(128)
                .map(|c| c.iter().filter(|&&v| v != 0.0).count() as f64)
                .collect();
            let mean = k.iter().sum::<f64>() / 2000.0;
            let var = k.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2000.0;
            [mean, var]
        };
        // Binomial(128, 0.1) has variance 11.5; p spread uniformly ±50% adds (0.5·12.8)²/3 ≈ 13.7.
        let [mean, var] = moments(&spread);
        assert!((mean - 12.8).abs() < 0.5 && var > 20.0, "{mean} {var}");
        assert!(moments(&plain)[1] < 14.0);
        let validation = |problem: &Problem| problem.sample(0, Stream::Validation, 0, 50);
        assert_eq!(validation(&spread), validation(&plain));
    }

    #[test]
    fn noise_matches_the_requested_snr() {
        let problem = Problem::new(&ExperimentConfig::new().with_snr_db(Some(20.0)));
        let noisy = problem.sample(9, Stream::Test, 0, 2000);
        let clean = Problem {
            noise_std: 0.0,
            ..problem.clone()
        }
        .sample(9, Stream::Test, 0, 2000);
        // Same codes (the noise has its own generator).
        assert_eq!(noisy.x, clean.x);
        let signal: f64 = clean.y.iter().map(|&v| (v as f64).powi(2)).sum();
        let noise: f64 = noisy
            .y
            .iter()
            .zip(&clean.y)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum();
        let snr = 10.0 * (signal / noise).log10();
        assert!((snr - 20.0).abs() < 0.5, "measured SNR {snr} dB");
    }
}
