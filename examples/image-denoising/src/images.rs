//! Grayscale images: the bundled ones or a folder's, their overlapping patches, and the image
//! rebuilt from patches by averaging the overlaps.

use crate::error::Error;
use std::ops::Range;
use std::path::Path;

/// A grayscale image, pixels 0–255 row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The file's name without its extension.
    pub name: String,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `height × width` values.
    pub pixels: Vec<f32>,
}

/// The bundled images (`images/DATA.md` says where each is from): training, then test.
const BUNDLED: [(&str, &[u8]); 8] = [
    ("astronaut", include_bytes!("../images/train/astronaut.png")),
    ("brick", include_bytes!("../images/train/brick.png")),
    ("chelsea", include_bytes!("../images/train/chelsea.png")),
    ("grass", include_bytes!("../images/train/grass.png")),
    ("rocket", include_bytes!("../images/train/rocket.png")),
    ("text", include_bytes!("../images/train/text.png")),
    ("camera", include_bytes!("../images/test/camera.png")),
    ("coffee", include_bytes!("../images/test/coffee.png")),
];

/// Bundled images that are training images; the rest are test images.
const BUNDLED_TRAINING: usize = 6;

impl Image {
    /// Decodes a PNG or JPEG file's bytes; colour is converted to luma (Rec. 709).
    pub fn decode(name: &str, bytes: &[u8]) -> Result<Self, image::ImageError> {
        let gray = image::load_from_memory(bytes)?.into_luma8();
        Ok(Self {
            name: name.into(),
            width: gray.width() as usize,
            height: gray.height() as usize,
            pixels: gray.into_raw().into_iter().map(f32::from).collect(),
        })
    }

    /// The bundled training images (`test = false`) or test images.
    pub fn bundled(test: bool) -> Vec<Self> {
        let (training, tests) = BUNDLED.split_at(BUNDLED_TRAINING);
        let set = if test { tests } else { training };
        let decode = |(name, bytes): &(&str, &[u8])| Self::decode(name, bytes);
        set.iter()
            .map(|image| decode(image).expect("the bundled images are PNG files"))
            .collect()
    }

    /// The PNG and JPEG files of `dir` (in name order), each at least `side` pixels on a side.
    /// Other files are passed over; a file with an image extension that does not decode is named
    /// in `note`'s one line.
    pub fn folder(dir: &Path, side: usize, note: &dyn Fn(String)) -> Result<Vec<Self>, Error> {
        let fail = |reason: String| Error::Images(dir.to_path_buf(), reason);
        let entries = std::fs::read_dir(dir)
            .map_err(|e| fail(format!("cannot be read as a folder of images ({e})")))?;
        let mut files: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        files.sort();
        let mut images = Vec::new();
        for file in files {
            let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !["png", "jpg", "jpeg"].contains(&extension.to_lowercase().as_str()) {
                continue;
            }
            let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
            let decoded = std::fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|bytes| Self::decode(name, &bytes).map_err(|e| e.to_string()));
            match decoded {
                Ok(image) if image.width.min(image.height) < side => {
                    return Err(fail(format!(
                        "{} is {}×{} pixels, smaller than {side}×{side} (a patch, or a training \
                         crop): remove it",
                        file.display(),
                        image.width,
                        image.height
                    )));
                }
                Ok(image) => images.push(image),
                Err(e) => note(format!("passing over {}: {e}", file.display())),
            }
        }
        if images.is_empty() {
            return Err(fail(
                "holds no readable PNG or JPEG image: pass a folder of them".into(),
            ));
        }
        Ok(images)
    }

    /// Every overlapping `patch × patch` patch (stride 1), row by row: `count × patch²` values.
    pub fn patches(&self, patch: usize) -> Vec<f32> {
        self.patch_rows(patch, 0..self.height - patch + 1)
    }

    /// The patches whose top row is in `rows`, in the layout of [`patches`](Self::patches).
    pub fn patch_rows(&self, patch: usize, rows: Range<usize>) -> Vec<f32> {
        let cols = self.width - patch + 1;
        let mut out = Vec::with_capacity(rows.len() * cols * patch * patch);
        for r in rows {
            for c in 0..cols {
                for i in 0..patch {
                    let start = (r + i) * self.width + c;
                    out.extend_from_slice(&self.pixels[start..start + patch]);
                }
            }
        }
        out
    }

    /// Adds the `patches` of [`patch_rows`](Self::patch_rows) from row `first` on to each
    /// pixel's running `sum` and `count`.
    pub fn add_patches(
        &self,
        patches: &[f32],
        patch: usize,
        first: usize,
        sum: &mut [f32],
        count: &mut [f32],
    ) {
        let cols = self.width - patch + 1;
        for (index, values) in patches.chunks_exact(patch * patch).enumerate() {
            let (r, c) = (first + index / cols, index % cols);
            for (i, row) in values.chunks_exact(patch).enumerate() {
                let start = (r + i) * self.width + c;
                for (j, v) in row.iter().enumerate() {
                    sum[start + j] += v;
                    count[start + j] += 1.0;
                }
            }
        }
    }

    /// The image of this one's size whose pixels are `sum / count`, the running sums and counts
    /// of [`add_patches`](Self::add_patches), clipped to 0–255: the patches' overlaps averaged.
    pub fn averaged(&self, sum: &[f32], count: &[f32]) -> Self {
        let pixels = sum
            .iter()
            .zip(count)
            .map(|(s, n)| (s / n).clamp(0.0, 255.0));
        Self {
            name: self.name.clone(),
            width: self.width,
            height: self.height,
            pixels: pixels.collect(),
        }
    }

    /// Peak signal-to-noise ratio of `estimate` against this image, in dB (peak 255).
    pub fn psnr(&self, estimate: &Self) -> f64 {
        let pairs = self.pixels.iter().zip(&estimate.pixels);
        let squared: f64 = pairs
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum();
        10.0 * (255.0f64.powi(2) * self.pixels.len() as f64 / squared).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(width: usize, height: usize) -> Image {
        let pixels = (0..width * height).map(|i| (i * 7 % 251) as f32).collect();
        let name = "ramp".into();
        Image {
            name,
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn patches_put_back_give_the_image() {
        let image = ramp(11, 9);
        let patches = image.patches(4);
        assert_eq!(patches.len(), 8 * 6 * 16);
        // Patch (row 2, column 3) starts at pixel (2, 3).
        assert_eq!(patches[(2 * 8 + 3) * 16], image.pixels[2 * 11 + 3]);
        let (mut sum, mut count) = (vec![0.0; 99], vec![0.0; 99]);
        image.add_patches(&patches, 4, 0, &mut sum, &mut count);
        assert_eq!(image.averaged(&sum, &count), image);
        assert_eq!(image.psnr(&image), f64::INFINITY);
    }

    #[test]
    fn bundled_images_are_gray_and_split() {
        let (training, test) = (Image::bundled(false), Image::bundled(true));
        assert_eq!((training.len(), test.len()), (6, 2));
        assert!(
            test.iter()
                .all(|i| i.width == 256 && i.pixels.len() == 256 * 256)
        );
    }
}
