//! The classical solvers the learned network is compared with, run for as many iterations
//! as it has layers, with Burn tensors on the same device.
//!
//! With step `1/L` (`L = ‖A‖₂²`) and a gradient step `u = x + (y − x Aᵀ) A / L`:
//!
//! - ISTA: `x ← soft(u, τ)`, `soft(u, τ) = sign(u)·max(|u| − τ, 0)`.
//! - FISTA: ISTA from an extrapolated point `z = x_k + (t_k − 1)/t_{k+1} (x_k − x_{k−1})`,
//!   `t_{k+1} = (1 + √(1 + 4 t_k²)) / 2`, `t_0 = 1`.
//! - IHT: `x ← hardshrink(u, τ)`.
//!
//! Each method's threshold `τ` is picked from a log-spaced grid by the lowest error of its last
//! iterate on a validation set.

use crate::problem::Operator;
use crate::scores::{host, nmse_db};
use burn::tensor::Tensor;
use burn_hardshrink::hardshrink;

/// A classical iterative solver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Iterative soft thresholding.
    Ista,
    /// ISTA with Nesterov momentum.
    Fista,
    /// Iterative hard thresholding.
    Iht,
}

/// `sign(u)·max(|u| − τ, 0)` as `u − clamp(u, −τ, τ)`: the same numbers in two ops instead of
/// four (Flex's `sign` is a libm call per element).
fn soft(u: Tensor<2>, tau: f64) -> Tensor<2> {
    u.clone() - u.clamp(-tau, tau)
}

/// Every iterate `x_1 … x_iterations` of `method` with threshold `tau`, for measurements `y`.
pub fn iterate(
    method: Method,
    operator: &Operator,
    y: &Tensor<2>,
    tau: f64,
    iterations: usize,
) -> Vec<Tensor<2>> {
    let step = |x: &Tensor<2>| -> Tensor<2> {
        let residual = y.clone() - x.clone().matmul(operator.dictionary_t.clone());
        x.clone() + residual.matmul(operator.dictionary.clone()) / operator.lipschitz
    };
    let shape = [y.dims()[0], operator.dictionary.dims()[1]];
    let mut x = Tensor::<2>::zeros(shape, &y.device());
    let mut z = x.clone();
    let mut t = 1.0f64;
    let mut iterates = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let next = match method {
            Method::Ista => soft(step(&x), tau),
            Method::Fista => soft(step(&z), tau),
            Method::Iht => hardshrink(step(&x), tau),
        };
        if method == Method::Fista {
            let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
            z = next.clone() + (next.clone() - x) * ((t - 1.0) / t_next);
            t = t_next;
        }
        x = next;
        iterates.push(x.clone());
    }
    iterates
}

/// The threshold of a grid (25 values, log-spaced from 1e-3 to 1) whose last iterate has the
/// lowest NMSE on the validation set.
pub fn choose_threshold(
    method: Method,
    operator: &Operator,
    y: &Tensor<2>,
    x_true: &[f32],
    iterations: usize,
) -> f64 {
    let mut best = (f64::INFINITY, f64::NAN);
    for tau in (0..25).map(|i| 10f64.powf(-3.0 + 3.0 * i as f64 / 24.0)) {
        let last = iterate(method, operator, y, tau, iterations).pop();
        let error = nmse_db(&host(last.expect("at least one iteration")), x_true);
        // NaN (a diverged run) never wins.
        if error < best.0 {
            best = (error, tau);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn soft_is_soft_thresholding() {
        let tau = 0.3f32;
        // The edges of the band, far out, and a sweep of [-2, 2].
        let edges = [
            -3e38f32, -2.5, -0.3, -0.2999, -1e-8, 0.0, 1e-8, 0.3, 0.30001, 0.7, 1e30,
        ];
        let sweep = (0..=4000).map(|i| i as f32 / 1000.0 - 2.0);
        let values: Vec<f32> = edges.into_iter().chain(sweep).collect();
        let u =
            Tensor::<1>::from_floats(values.as_slice(), &Device::flex()).reshape([1, values.len()]);
        let got = soft(u, tau as f64).into_data().try_to_vec::<f32>().unwrap();
        for (v, g) in values.iter().zip(got) {
            assert_eq!(g, v.signum() * (v.abs() - tau).max(0.0), "soft({v})");
        }
    }
}
