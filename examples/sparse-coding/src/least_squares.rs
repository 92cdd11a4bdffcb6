//! Least squares on a support: an estimate's nonzeros refit to the measurements, in f64 on the
//! host. A hard threshold leaves exactly a support, and on it `y = A_S x_S` is an overdetermined
//! system whose solution removes what the layers' finite steps left of the error.

use crate::problem::Problem;

/// Each sample's estimate (samples are rows) refit on its support:
/// `x_S = argmin ‖y − A_S z‖₂`, 0 off the support, through the normal equations. A sample whose
/// support is empty, wider than m, or made of dependent columns keeps its estimate.
pub fn refit(problem: &Problem, y: &[f32], estimate: &[f32]) -> Vec<f32> {
    let (m, n) = (problem.m, problem.n);
    let column = |j: usize| (0..m).map(move |r| f64::from(problem.a[r * n + j]));
    let mut refit = estimate.to_vec();
    for (x, y) in refit.chunks_mut(n).zip(y.chunks(m)) {
        let support: Vec<usize> = (0..n).filter(|&j| x[j] != 0.0).collect();
        let k = support.len();
        if k == 0 || k > m {
            continue;
        }
        // G = A_Sᵀ A_S, k × k.
        let mut g = vec![0f64; k * k];
        for (p, &i) in support.iter().enumerate() {
            for (q, &j) in support.iter().enumerate().take(p + 1) {
                let dot: f64 = column(i).zip(column(j)).map(|(u, v)| u * v).sum();
                g[p * k + q] = dot;
                g[q * k + p] = dot;
            }
        }
        if !cholesky(&mut g, k) {
            continue;
        }
        let aty = |p: usize| {
            column(support[p])
                .zip(y)
                .map(|(a, &y)| a * f64::from(y))
                .sum()
        };
        for (p, value) in solve(&g, k, aty).into_iter().enumerate() {
            x[support[p]] = value as f32;
        }
    }
    refit
}

/// `G = R Rᵀ` with R lower triangular, in place in the lower half of the `k × k` matrix `g`;
/// `false` when G is not positive definite.
pub fn cholesky(g: &mut [f64], k: usize) -> bool {
    for j in 0..k {
        let diag = g[j * k + j] - (0..j).map(|p| g[j * k + p].powi(2)).sum::<f64>();
        if diag.is_nan() || diag <= 0.0 {
            return false;
        }
        let pivot = diag.sqrt();
        g[j * k + j] = pivot;
        for i in j + 1..k {
            let dot: f64 = (0..j).map(|p| g[i * k + p] * g[j * k + p]).sum();
            g[i * k + j] = (g[i * k + j] - dot) / pivot;
        }
    }
    true
}

/// Solves `R Rᵀ w = b` for a factor from [`cholesky`]: `R z = b`, then `Rᵀ w = z`.
pub fn solve(r: &[f64], k: usize, b: impl Fn(usize) -> f64) -> Vec<f64> {
    let mut z = vec![0f64; k];
    for i in 0..k {
        let dot: f64 = (0..i).map(|p| r[i * k + p] * z[p]).sum();
        z[i] = (b(i) - dot) / r[i * k + i];
    }
    let mut w = vec![0f64; k];
    for i in (0..k).rev() {
        let dot: f64 = (i + 1..k).map(|p| r[p * k + i] * w[p]).sum();
        w[i] = (z[i] - dot) / r[i * k + i];
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExperimentConfig;
    use crate::problem::Stream;

    #[test]
    fn the_true_support_refits_noiseless_codes_exactly() {
        let problem = Problem::new(&ExperimentConfig::new());
        let samples = problem.sample(0, Stream::Test, 0, 20);
        // The true support with wrong values: the refit finds the true ones.
        let rough: Vec<f32> = samples.x.iter().map(|&v| v * 0.5).collect();
        let refit = refit(&problem, &samples.y, &rough);
        for (got, want) in refit.iter().zip(&samples.x) {
            assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        }
        // An empty estimate stays empty.
        let zeros = vec![0f32; samples.x.len()];
        assert_eq!(super::refit(&problem, &samples.y, &zeros), zeros);
    }

    #[test]
    fn solve_inverts_a_factored_matrix() {
        let mut g = vec![4.0, 2.0, 2.0, 3.0];
        assert!(cholesky(&mut g, 2));
        // [[4, 2], [2, 3]] w = [2, 1] has w = [0.5, 0].
        let w = solve(&g, 2, |i| [2.0, 1.0][i]);
        assert!((w[0] - 0.5).abs() < 1e-12 && w[1].abs() < 1e-12, "{w:?}");
        assert!(!cholesky(&mut [1.0, 2.0, 2.0, 1.0], 2));
    }
}
