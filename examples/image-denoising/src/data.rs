//! burn-train's data: the batch of step `s` is a pure function of the seed and `s` (random
//! crops of the training images, each turned or mirrored at random, with fresh noise at a random
//! level of `sigmas`), so a resumed run draws exactly the batches an unstopped one draws.

use crate::config::DenoiseConfig;
use crate::images::Image;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use sparse_coding::data::next_epoch_steps;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

/// A batch of noisy crops, cut into their overlapping patches, with the clean crops: the loss
/// compares the crop rebuilt from the denoised patches with the clean one, as the test images
/// are rebuilt.
#[derive(Debug, Clone)]
pub struct NoisyCrops {
    /// Every crop's patches, crop by crop: `(crops · per crop) × patch²`.
    pub noisy: Tensor<2>,
    /// Each patch's noise level, `(crops · per crop) × 1`.
    pub sigma: Tensor<2>,
    /// The clean crops, `crops × crop²`.
    pub clean: Tensor<2>,
    /// The rebuild: a crop's patches, as one row, times this matrix average into the crop.
    pub rebuild: Tensor<2>,
}

/// The random stream of the validation batch (training steps use their own index).
const VALIDATION_STREAM: u64 = u64::MAX;

/// The matrix that averages a `crop × crop` image's overlapping patches back into it:
/// `(patches · patch²) × crop²`, the layout of [`Image::patches`] and [`Image::add_patches`].
/// Each row has one entry: where that patch pixel goes, weighted by 1 / the patches covering it.
pub fn rebuild_matrix(crop: usize, patch: usize, device: &Device) -> Tensor<2> {
    let side = crop - patch + 1;
    let covering = |i: usize| ((i + 1).min(patch).min(crop - i).min(side)) as f32;
    let (rows, columns) = (side * side * patch * patch, crop * crop);
    let mut matrix = vec![0.0f32; rows * columns];
    for (r, c) in (0..side).flat_map(|r| (0..side).map(move |c| (r, c))) {
        for (i, j) in (0..patch).flat_map(|i| (0..patch).map(move |j| (i, j))) {
            let row = ((r * side + c) * patch + i) * patch + j;
            let (y, x) = (r + i, c + j);
            matrix[row * columns + y * crop + x] = 1.0 / (covering(y) * covering(x));
        }
    }
    Tensor::<1>::from_floats(matrix.as_slice(), device).reshape([rows, columns])
}

impl NoisyCrops {
    /// `crops` crops of random stream `stream`.
    pub fn draw(
        images: &[Image],
        config: &DenoiseConfig,
        stream: u64,
        crops: usize,
        rebuild: &Tensor<2>,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(stream);
        let (p, s) = (config.patch, config.crop);
        let (mut clean, mut noisy, mut sigmas) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..crops {
            let image = &images[rng.random_range(0..images.len())];
            let top = rng.random_range(0..=image.height - s);
            let left = rng.random_range(0..=image.width - s);
            // One of the square's 8 symmetries: transposed, then rows and columns reversed.
            let [transpose, flip_rows, flip_cols]: [bool; 3] = rng.random();
            let sigma = config.sigmas[rng.random_range(0..config.sigmas.len())] as f32;
            let mut crop = Image {
                name: String::new(),
                width: s,
                height: s,
                pixels: Vec::with_capacity(s * s),
            };
            for i in 0..s {
                for j in 0..s {
                    let (i, j) = if transpose { (j, i) } else { (i, j) };
                    let i = if flip_rows { s - 1 - i } else { i };
                    let j = if flip_cols { s - 1 - j } else { j };
                    crop.pixels
                        .push(image.pixels[(top + i) * image.width + left + j]);
                }
            }
            clean.extend_from_slice(&crop.pixels);
            for pixel in &mut crop.pixels {
                *pixel += sigma * rng.sample::<f32, _>(StandardNormal);
            }
            let patches = crop.patches(p);
            sigmas.extend(std::iter::repeat_n(sigma, patches.len() / (p * p)));
            noisy.extend(patches);
        }
        let device = rebuild.device();
        let rows = |values: Vec<f32>, width| {
            let count = values.len() / width;
            Tensor::<1>::from_floats(values.as_slice(), &device).reshape([count, width])
        };
        Self {
            noisy: rows(noisy, p * p),
            sigma: rows(sigmas, 1),
            clean: rows(clean, s * s),
            rebuild: rebuild.clone(),
        }
    }
}

/// A data loader of whole steps. burn-train's `iter` is told nothing of the epoch (it restarts a
/// data loader from its first item), so the training loader counts the epochs it has served,
/// from the one a resumed run starts at; the validation loader serves its one batch each time.
#[derive(Clone)]
pub struct StepLoader {
    images: Arc<Vec<Image>>,
    config: DenoiseConfig,
    /// The steps an epoch serves, and how many of them.
    steps: Range<usize>,
    epoch_steps: usize,
    /// The next epoch to serve; `None` for the validation loader.
    next_epoch: Option<Arc<AtomicUsize>>,
    /// The rebuild matrix, on the device the batches are made on.
    rebuild: Tensor<2>,
}

impl StepLoader {
    /// The training batches, from epoch `start_epoch` (0-based) on.
    pub fn training(
        images: Arc<Vec<Image>>,
        config: &DenoiseConfig,
        start_epoch: usize,
        device: &Device,
    ) -> Self {
        Self {
            images,
            config: config.clone(),
            steps: 0..config.steps,
            epoch_steps: config.checkpoint_every,
            next_epoch: Some(Arc::new(AtomicUsize::new(start_epoch))),
            rebuild: rebuild_matrix(config.crop, config.patch, device),
        }
    }

    /// The validation batch: 64 crops of the training images, from a random stream of its own.
    pub fn validation(images: Arc<Vec<Image>>, config: &DenoiseConfig, device: &Device) -> Self {
        let loader = Self::training(images, config, 0, device);
        let (steps, epoch_steps) = (0..1, 1);
        Self {
            steps,
            epoch_steps,
            next_epoch: None,
            ..loader
        }
    }

    fn batch(&self, step: usize) -> NoisyCrops {
        let (stream, crops) = match self.next_epoch {
            Some(_) => (step as u64, self.config.batch),
            None => (VALIDATION_STREAM, 64),
        };
        NoisyCrops::draw(&self.images, &self.config, stream, crops, &self.rebuild)
    }
}

/// An epoch's steps, served one by one.
struct Steps<'a> {
    loader: &'a StepLoader,
    steps: Range<usize>,
    total: usize,
}

impl Iterator for Steps<'_> {
    type Item = Result<NoisyCrops, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.steps.next().map(|step| Ok(self.loader.batch(step)))
    }
}

impl DataLoaderIterator<NoisyCrops> for Steps<'_> {
    fn progress(&self) -> Progress {
        let done = self.total - self.steps.len();
        Progress::new(done, self.total, Some("steps".into()))
    }
}

impl DataLoader<NoisyCrops> for StepLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<NoisyCrops> + 'a> {
        let steps = next_epoch_steps(self.next_epoch.as_deref(), &self.steps, self.epoch_steps);
        let total = steps.len();
        Box::new(Steps {
            loader: self,
            steps,
            total,
        })
    }

    fn num_items(&self) -> usize {
        self.epoch_steps.min(self.steps.len())
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<NoisyCrops>> {
        let rebuild = self.rebuild.clone().to_device(device);
        Arc::new(Self {
            rebuild,
            ..self.clone()
        })
    }

    // burn-train slices a loader only to train on several devices, which this example does not
    // offer: the whole loader stands for any slice.
    fn slice(&self, _: usize, _: usize) -> Arc<dyn DataLoader<NoisyCrops>> {
        Arc::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(batches: Box<dyn DataLoaderIterator<NoisyCrops> + '_>) -> Vec<Vec<f32>> {
        let values = |b: NoisyCrops| b.noisy.try_into_vec_as::<f32>().unwrap();
        batches.map(|b| values(b.unwrap())).collect()
    }

    #[test]
    fn epochs_walk_the_steps_and_a_resumed_loader_continues() {
        let config = DenoiseConfig::new()
            .with_steps(10)
            .with_checkpoint_every(4)
            .with_batch(8);
        let images = Arc::new(Image::bundled(false));
        let device = Device::flex();
        let whole = StepLoader::training(images.clone(), &config, 0, &device);
        let epochs: Vec<_> = (0..3).map(|_| noisy(whole.iter())).collect();
        assert_eq!(epochs.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        let resumed = StepLoader::training(images.clone(), &config, 1, &device);
        assert_eq!(noisy(resumed.iter()), epochs[1]);
        // Each step's batch is its own: noise differs from step to step.
        assert_ne!(epochs[0][0], epochs[0][1]);
        // The matrix rebuilds as averaging the overlaps does.
        let image = &images[0];
        let small = Image {
            pixels: image.pixels[..20 * 20].to_vec(),
            width: 20,
            height: 20,
            ..image.clone()
        };
        let patches = Tensor::<1>::from_floats(small.patches(8).as_slice(), &device);
        let rebuilt = patches
            .reshape([1, -1])
            .matmul(rebuild_matrix(20, 8, &device));
        let rebuilt = rebuilt.try_into_vec_as::<f32>().unwrap();
        // The overlaps of an image's own patches average back to it.
        assert!(
            rebuilt
                .iter()
                .zip(&small.pixels)
                .all(|(a, b)| (a - b).abs() < 1e-3)
        );
        // The noise has the level drawn: σ² ≈ the mean squared difference of the pixels (the
        // first row of a crop's first patch is its first row's first pixels).
        let config = config.with_sigmas(vec![20.0]);
        let rebuild = rebuild_matrix(config.crop, config.patch, &device);
        let batch = NoisyCrops::draw(&images, &config, 3, 64, &rebuild);
        let rebuilt = batch.noisy.reshape([64, -1]).matmul(batch.rebuild);
        let variance = (rebuilt - batch.clean)
            .powi_scalar(2)
            .mean()
            .into_scalar::<f64>();
        assert!((variance.sqrt() - 20.0).abs() < 0.5, "{}", variance.sqrt());
    }
}
