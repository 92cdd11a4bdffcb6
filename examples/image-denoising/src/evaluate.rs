//! The test: every test image, with noise at every σ, denoised by each method; PSNR per image and
//! their mean, and the mean nonzero coefficients per patch; `results.json` and the table.

use crate::config::DenoiseConfig;
use crate::dct::{dct_basis, dct_code};
use crate::images::Image;
use crate::model::Denoiser;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The methods, as `results.json` names them: the baselines, then the two networks.
pub const METHODS: [&str; 4] = ["noisy", "dct", "learned_ista", "learned_iht"];

/// One method's scores at one σ.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    /// PSNR of each test image (in `Results::images`' order), dB.
    pub psnr: Vec<f64>,
    /// Their mean, dB.
    pub mean_psnr: f64,
    /// Mean nonzero coefficients per patch (`None` for the noisy input).
    pub nonzeros_per_patch: Option<f64>,
}

/// What `results.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    /// The test images' names.
    pub images: Vec<String>,
    /// For each σ (as written: "25"), each method's scores.
    pub sigmas: BTreeMap<String, BTreeMap<String, Scores>>,
    /// Training's wall time in the invocation that finished it, seconds.
    pub training_seconds: f64,
    /// The test's wall time, seconds.
    pub test_seconds: f64,
}

/// The first test image denoised by every method at one σ, kept for the pictures.
pub struct Shown {
    /// The noise level.
    pub sigma: f64,
    /// `(method, image)` pairs, the clean one first.
    pub panels: Vec<(String, Image)>,
}

/// The noisy version of test image `index` at noise level `sigma` (of index `level`): the same
/// noise for every method and every run with the same `test_seed`.
pub fn noisy(image: &Image, config: &DenoiseConfig, index: usize, level: usize) -> Image {
    let mut rng = ChaCha8Rng::seed_from_u64(config.test_seed);
    rng.set_stream((index * 1000 + level) as u64);
    let sigma = config.sigmas[level] as f32;
    let pixels = image.pixels.iter();
    let noisy = pixels.map(|v| {
        let noise: f32 = StandardNormal.sample(&mut rng);
        v + sigma * noise
    });
    Image {
        pixels: noisy.collect(),
        ..image.clone()
    }
}

/// Patches a denoiser takes at once (whole rows of them): bounds the memory of a large image.
const CHUNK: usize = 16_384;

/// Denoises `noisy`'s patches with a network, or for `None` the DCT of `basis`; the rebuilt
/// image and the mean nonzero coefficients per patch (the DCT's without its constant one, which
/// a network's code leaves out too).
fn denoise(
    noisy: &Image,
    network: Option<&Denoiser>,
    basis: &Tensor<2>,
    config: &DenoiseConfig,
    sigma: f64,
) -> (Image, f64) {
    let (p, device) = (config.patch, basis.device());
    let (rows, cols) = (noisy.height - p + 1, noisy.width - p + 1);
    let band = (CHUNK / cols).max(1);
    let mut sum = vec![0.0f32; noisy.pixels.len()];
    let mut count = vec![0.0f32; noisy.pixels.len()];
    let mut nonzeros = 0.0;
    for first in (0..rows).step_by(band) {
        let chunk = noisy.patch_rows(p, first..(first + band).min(rows));
        let patches = chunk.len() / (p * p);
        let tensor = Tensor::<1>::from_floats(chunk.as_slice(), &device).reshape([patches, p * p]);
        let (estimate, code) = match network {
            Some(network) => {
                let sigmas = Tensor::<2>::full([patches, 1], sigma, &device);
                let (code, mean) = network.encode(tensor, sigmas);
                let estimate = code.clone().matmul(network.dictionary.val()) + mean;
                (estimate, code)
            }
            None => {
                let code = dct_code(tensor, basis, config.dct_threshold * sigma);
                let estimate = code.clone().matmul(basis.clone());
                (estimate, code.slice([0..patches, 1..p * p]))
            }
        };
        let kept = code.abs().greater_elem(1e-3).int().sum();
        nonzeros += kept.into_scalar::<f64>();
        let estimate = estimate.try_into_vec_as::<f32>().expect("float patches");
        noisy.add_patches(&estimate, p, first, &mut sum, &mut count);
    }
    let mean_nonzeros = nonzeros / (rows * cols) as f64;
    (noisy.averaged(&sum, &count), mean_nonzeros)
}

/// Scores `networks` (learned IHT, its twin) and the baselines on `test` images at every σ;
/// keeps the first image's pictures at the σ closest to 25.
pub fn test(
    config: &DenoiseConfig,
    networks: &[Denoiser; 2],
    test: &[Image],
    device: &Device,
    training_seconds: f64,
) -> (Results, Shown) {
    let started = std::time::Instant::now();
    let shown_level = (0..config.sigmas.len())
        .min_by(|&a, &b| {
            (config.sigmas[a] - 25.0)
                .abs()
                .total_cmp(&(config.sigmas[b] - 25.0).abs())
        })
        .expect("at least one σ");
    let mut shown = Shown {
        sigma: config.sigmas[shown_level],
        panels: vec![("clean".into(), test[0].clone())],
    };
    let basis = dct_basis(config.patch, device);
    let mut sigmas = BTreeMap::new();
    for (level, &sigma) in config.sigmas.iter().enumerate() {
        let mut methods: BTreeMap<String, Scores> = BTreeMap::new();
        for (index, image) in test.iter().enumerate() {
            let noisy = noisy(image, config, index, level);
            for method in METHODS {
                let (estimate, nonzeros) = match method {
                    "learned_iht" => denoise(&noisy, Some(&networks[0]), &basis, config, sigma),
                    "learned_ista" => denoise(&noisy, Some(&networks[1]), &basis, config, sigma),
                    "dct" => denoise(&noisy, None, &basis, config, sigma),
                    _ => (noisy.clone(), f64::NAN),
                };
                let scores = methods.entry(method.into()).or_insert(Scores {
                    psnr: Vec::new(),
                    mean_psnr: 0.0,
                    nonzeros_per_patch: nonzeros.is_finite().then_some(0.0),
                });
                scores.psnr.push(image.psnr(&estimate));
                if let Some(mean) = &mut scores.nonzeros_per_patch {
                    *mean += nonzeros / test.len() as f64;
                }
                if level == shown_level && index == 0 {
                    shown.panels.push((method.into(), estimate));
                }
            }
        }
        for scores in methods.values_mut() {
            scores.mean_psnr = scores.psnr.iter().sum::<f64>() / scores.psnr.len() as f64;
        }
        sigmas.insert(format!("{sigma}"), methods);
    }
    let results = Results {
        images: test.iter().map(|i| i.name.clone()).collect(),
        sigmas,
        training_seconds,
        test_seconds: started.elapsed().as_secs_f64(),
    };
    (results, shown)
}

impl Results {
    /// The table: a row per σ and method, a column per test image and the mean.
    pub fn table(&self) -> String {
        let mut lines = vec![format!(
            "{:>5}  {:<14}{}{:>9}{:>11}",
            "σ",
            "method",
            self.images
                .iter()
                .map(|n| format!("{n:>11.11}"))
                .collect::<String>(),
            "mean",
            "nonzeros"
        )];
        let mut sigmas: Vec<_> = self.sigmas.iter().collect();
        sigmas.sort_by(|a, b| {
            a.0.parse::<f64>()
                .ok()
                .partial_cmp(&b.0.parse::<f64>().ok())
                .unwrap()
        });
        for (sigma, methods) in sigmas {
            for method in METHODS {
                let Some(scores) = methods.get(method) else {
                    continue;
                };
                let per_image: String = scores.psnr.iter().map(|v| format!("{v:>11.2}")).collect();
                let nonzeros = scores
                    .nonzeros_per_patch
                    .map_or("".into(), |n| format!("{n:.1}"));
                lines.push(format!(
                    "{sigma:>5}  {method:<14}{per_image}{:>9.2}{nonzeros:>11}",
                    scores.mean_psnr
                ));
            }
        }
        lines.join("\n")
    }
}
