//! The run's pictures, as PNG: the learned atoms, one test image denoised by each method, and the
//! validation PSNR over training.

use crate::config::DenoiseConfig;
use crate::error::Error;
use crate::evaluate::Shown;
use crate::model::Denoiser;
use crate::training::NETWORKS;
use burn::train::LearnerSummary;
use plotters::prelude::*;
use sparse_coding::plot::{Chart, save};
use sparse_coding::run_dir::write_atomic;
use std::path::Path;

/// `atoms.png`, `denoised.png` and `training.png` in the run directory `out`; the networks'
/// metric logs are in the run directory `logs`.
pub fn plot_run(
    out: &Path,
    logs: &Path,
    config: &DenoiseConfig,
    learned: &Denoiser,
    shown: &Shown,
) -> Result<(), Error> {
    write_png(&out.join("atoms.png"), &atoms(learned, config.patch))?;
    write_png(&out.join("denoised.png"), &panels(shown))?;
    // Each network's validation loss per epoch, from burn-train's own summary of its logs, as
    // PSNR (the loss is the mean squared error per pixel).
    let history = |(name, _): &(&str, bool)| {
        let summary = LearnerSummary::new(logs.join(name), &["Loss"]).ok();
        let entries = summary
            .into_iter()
            .flat_map(|s| s.metrics.valid)
            .flat_map(|m| m.entries);
        let step = |epoch: usize| (epoch * config.checkpoint_every).min(config.steps) as f64;
        let psnr = |mse: f64| 10.0 * (255.0f64.powi(2) / mse).log10();
        let points = entries.map(|e| (step(e.step), psnr(e.value))).collect();
        (label(name).to_string(), points)
    };
    let chart = Chart {
        title: "Validation PSNR (training images, fresh noise)",
        axes: ["step", "PSNR (dB)"],
        lines: NETWORKS.iter().map(history).collect(),
    };
    Ok(save(&[chart], &out.join("training.png"), (800, 480))?)
}

fn label(method: &str) -> &str {
    match method {
        "learned_iht" | "learned-iht" => "learned IHT",
        "learned_ista" | "learned-ista" => "soft twin",
        "dct" => "patch DCT",
        other => other,
    }
}

/// An RGB picture: width, height, pixels.
struct Picture(u32, u32, Vec<u8>);

/// The dictionary's atoms in a square grid, each scaled to its own range, 4 pixels per pixel.
fn atoms(network: &Denoiser, patch: usize) -> Picture {
    let values = network
        .dictionary
        .val()
        .try_into_vec_as::<f32>()
        .expect("float dictionary");
    let count = values.len() / (patch * patch);
    let side = (count as f64).sqrt().ceil() as usize;
    let (zoom, gap) = (4, 2);
    let cell = patch * zoom + gap;
    let size = side * cell + gap;
    let mut gray = vec![255u8; size * size];
    for (index, atom) in values.chunks_exact(patch * patch).enumerate() {
        let low = atom.iter().copied().fold(f32::MAX, f32::min);
        let high = atom.iter().copied().fold(f32::MIN, f32::max);
        let (top, left) = (gap + index / side * cell, gap + index % side * cell);
        for (k, v) in atom.iter().enumerate() {
            // A flat atom (the constant one) shows as mid-gray.
            let level = match high - low {
                range if range > 1e-6 => (255.0 * (v - low) / range).round() as u8,
                _ => 128,
            };
            for dy in 0..zoom {
                let row = top + k / patch * zoom + dy;
                let start = row * size + left + k % patch * zoom;
                gray[start..start + zoom].fill(level);
            }
        }
    }
    let rgb = gray.iter().flat_map(|&v| [v, v, v]).collect();
    Picture(size as u32, size as u32, rgb)
}

/// The shown images side by side, each captioned with its method and PSNR.
fn panels(shown: &Shown) -> Picture {
    let (clean, images) = (&shown.panels[0].1, &shown.panels);
    let (w, h) = (clean.width, clean.height);
    let (gap, caption) = (8, 30);
    let width = images.len() * (w + gap) + gap;
    let height = h + caption + gap;
    let mut rgb = vec![255u8; width * height * 3];
    for (n, (_, image)) in images.iter().enumerate() {
        for (k, v) in image.pixels.iter().enumerate() {
            let (row, col) = (caption + k / w, gap + n * (w + gap) + k % w);
            let level = v.clamp(0.0, 255.0).round() as u8;
            rgb[(row * width + col) * 3..][..3].fill(level);
        }
    }
    let font = epaint_default_fonts::UBUNTU_LIGHT;
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, font);
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (width as u32, height as u32));
        let area = area.into_drawing_area();
        for (n, (method, image)) in images.iter().enumerate() {
            let text = match n {
                0 => format!("{} (σ = {})", clean.name, shown.sigma),
                _ => format!("{}: {:.2} dB", label(method), clean.psnr(image)),
            };
            let at = ((gap + n * (w + gap)) as i32, 6);
            let _ = area.draw_text(&text, &("sans-serif", 17).into_font().color(&BLACK), at);
        }
        let _ = area.present();
    }
    Picture(width as u32, height as u32, rgb)
}

/// Writes the picture as an 8-bit gray PNG (every picture here is gray: a third of the bytes).
fn write_png(path: &Path, Picture(width, height, rgb): &Picture) -> Result<(), Error> {
    let gray: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
    let mut bytes = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    image::ImageEncoder::write_image(
        encoder,
        &gray,
        *width,
        *height,
        image::ExtendedColorType::L8,
    )
    .map_err(|e| Error::Images(path.to_path_buf(), format!("cannot encode: {e}")))?;
    Ok(write_atomic(path, &bytes)?)
}

/// Test images' panels keep their pixels: a check that the picture holds what was denoised.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::Image;

    #[test]
    fn panels_hold_the_images_below_their_captions() {
        let image = |v: f32| Image {
            name: "flat".into(),
            width: 20,
            height: 10,
            pixels: vec![v; 200],
        };
        let shown = Shown {
            sigma: 25.0,
            panels: vec![("clean".into(), image(10.0)), ("dct".into(), image(200.0))],
        };
        let Picture(width, height, rgb) = panels(&shown);
        assert_eq!((width, height), (2 * 28 + 8, 10 + 30 + 8));
        let at = |row: usize, col: usize| rgb[(row * width as usize + col) * 3];
        assert_eq!((at(35, 8), at(35, 36)), (10, 200));
    }
}
