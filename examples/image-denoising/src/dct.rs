//! The 2-D discrete cosine transform: the orthonormal basis of the patch-DCT baseline, and the
//! overcomplete DCT dictionary both networks start from (as K-SVD does).

use burn::tensor::{Device, Tensor};

/// `k` cosines of length `n` as the rows of a `k × n` matrix, row `j` sampled at frequency
/// `j·π/k`; orthonormal DCT-II when `k = n`, otherwise unit rows with zero mean but the first.
fn cosines(n: usize, k: usize) -> Vec<f64> {
    let mut rows = Vec::with_capacity(k * n);
    for j in 0..k {
        let wave = (0..n).map(|i| {
            let phase = if k == n { i as f64 + 0.5 } else { i as f64 };
            (std::f64::consts::PI * j as f64 * phase / k as f64).cos()
        });
        let mut row: Vec<f64> = wave.collect();
        if j > 0 && k != n {
            let mean = row.iter().sum::<f64>() / n as f64;
            row.iter_mut().for_each(|v| *v -= mean);
        }
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        rows.extend(row.iter().map(|v| v / norm));
    }
    rows
}

/// The separable 2-D dictionary of `cosines(patch, side)`: `side² × patch²`, one atom per row,
/// each the outer product of two 1-D rows.
fn separable(patch: usize, side: usize, device: &Device) -> Tensor<2> {
    let rows = cosines(patch, side);
    let mut atoms = Vec::with_capacity(side * side * patch * patch);
    for a in 0..side {
        for b in 0..side {
            for i in 0..patch {
                for j in 0..patch {
                    atoms.push((rows[a * patch + i] * rows[b * patch + j]) as f32);
                }
            }
        }
    }
    Tensor::<1>::from_floats(atoms.as_slice(), device).reshape([side * side, patch * patch])
}

/// The orthonormal 2-D DCT-II of `patch × patch` patches, `patch² × patch²`, the constant atom
/// first.
pub fn dct_basis(patch: usize, device: &Device) -> Tensor<2> {
    separable(patch, patch, device)
}

/// An overcomplete DCT dictionary of `atoms` unit atoms (a square number ≥ `patch²`).
pub fn overcomplete_dct(patch: usize, atoms: usize, device: &Device) -> Tensor<2> {
    separable(patch, (atoms as f64).sqrt().round() as usize, device)
}

/// Patch-DCT hard thresholding's code: each patch's DCT coefficients, those below `threshold`
/// in magnitude set to zero, the constant one kept. `patches` is `count × patch²`; the denoised
/// patches are the code times `basis`.
pub fn dct_code(patches: Tensor<2>, basis: &Tensor<2>, threshold: f64) -> Tensor<2> {
    let coefficients = patches.matmul(basis.clone().transpose());
    let keep = coefficients.clone().abs().greater_elem(threshold);
    // The constant (first) coefficient is the patch's mean, never thresholded.
    let [count, size] = coefficients.dims();
    let first = Tensor::<2>::ones([count, 1], &keep.device()).greater_elem(0.0);
    let keep = Tensor::cat(vec![first, keep.slice([0..count, 1..size])], 1);
    coefficients.mask_fill(keep.bool_not(), 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn the_basis_is_orthonormal_and_the_dictionary_unit_norm() {
        let device = Device::flex();
        let basis = dct_basis(8, &device);
        let gram = values(basis.clone().matmul(basis.transpose()));
        for (i, v) in gram.iter().enumerate() {
            let identity = if i / 64 == i % 64 { 1.0 } else { 0.0 };
            assert!((v - identity).abs() < 1e-5, "entry {i}: {v}");
        }
        let dictionary = overcomplete_dct(8, 256, &device);
        assert_eq!(dictionary.dims(), [256, 64]);
        let norms = values(dictionary.powi_scalar(2).sum_dim(1));
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5));
    }

    #[test]
    fn thresholding_keeps_large_coefficients_and_the_mean() {
        let device = Device::flex();
        let basis = dct_basis(4, &device);
        // A patch of a small mean plus one strong and one weak cosine: the mean's coefficient is
        // below the threshold, and kept.
        let mut coefficients = vec![0.0f32; 16];
        (coefficients[0], coefficients[5], coefficients[9]) = (0.5, 5.0, -0.5);
        let code = Tensor::<1>::from_floats(coefficients.as_slice(), &device).reshape([1, 16]);
        let patch = code.matmul(basis.clone());
        let denoised = dct_code(patch, &basis, 1.0);
        let expected = [0.5, 5.0];
        let got = values(denoised);
        assert!((got[0] - expected[0]).abs() < 1e-4 && (got[5] - expected[1]).abs() < 1e-4);
        assert!(got[9].abs() < 1e-5);
    }
}
