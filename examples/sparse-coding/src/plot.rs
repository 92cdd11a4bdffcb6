//! Line charts as PNG files, drawn on a plain RGB canvas with a built-in 5×7 pixel font, so
//! the example needs no font files or plotting stack.

use crate::error::Error;
use crate::font::glyph;
use std::path::Path;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Line colours, one per series in order.
pub const PALETTE: [Rgb; 6] = [
    [214, 39, 40],
    [31, 119, 180],
    [44, 160, 44],
    [255, 127, 14],
    [148, 103, 189],
    [127, 127, 127],
];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];

/// One named line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points `(x, y)`; non-finite ones are skipped (the line breaks there).
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis labels and lines.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Drawn above the plot area.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Left of the y axis (drawn horizontally above it).
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

/// An RGB image in memory.
#[derive(Debug, Clone)]
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    /// The colour at `(x, y)`.
    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    fn set(&mut self, x: i64, y: i64, colour: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&colour);
        }
    }

    fn fill_rect(&mut self, x0: i64, y0: i64, w: i64, h: i64, colour: Rgb) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.set(x, y, colour);
            }
        }
    }

    /// A line `thickness` pixels wide (Bresenham, with a square pen).
    fn line(&mut self, from: (i64, i64), to: (i64, i64), thickness: i64, colour: Rgb) {
        let (mut x, mut y) = from;
        let (dx, dy) = ((to.0 - x).abs(), -(to.1 - y).abs());
        let (sx, sy) = (if x < to.0 { 1 } else { -1 }, if y < to.1 { 1 } else { -1 });
        let mut err = dx + dy;
        let half = thickness / 2;
        loop {
            self.fill_rect(x - half, y - half, thickness, thickness, colour);
            if (x, y) == to {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text with its top-left corner at `(x, y)`, each font pixel `scale` pixels wide.
    fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, colour: Rgb) {
        for (i, ch) in text.chars().enumerate() {
            let Some(rows) = glyph(ch) else { continue };
            let left = x + i as i64 * 6 * scale;
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0b10000 >> col) != 0 {
                        self.fill_rect(
                            left + col * scale,
                            y + row as i64 * scale,
                            scale,
                            scale,
                            colour,
                        );
                    }
                }
            }
        }
    }

    /// Writes the canvas as an 8-bit RGB PNG.
    pub fn save_png(&self, path: &Path) -> Result<(), Error> {
        let file = std::fs::File::create(path).map_err(Error::io(path))?;
        let mut encoder = png::Encoder::new(
            std::io::BufWriter::new(file),
            self.width as u32,
            self.height as u32,
        );
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let to_io = |e: png::EncodingError| std::io::Error::other(e.to_string());
        let mut writer = encoder
            .write_header()
            .map_err(to_io)
            .map_err(Error::io(path))?;
        writer
            .write_image_data(&self.pixels)
            .map_err(to_io)
            .map_err(Error::io(path))?;
        writer.finish().map_err(to_io).map_err(Error::io(path))
    }
}

/// Width in pixels of `text` at `scale`.
fn text_width(text: &str, scale: i64) -> i64 {
    text.chars().count() as i64 * 6 * scale
}

/// About `target` round tick values covering `[low, high]` (steps of 1, 2 or 5 × 10^k).
pub fn ticks(low: f64, high: f64, target: usize) -> Vec<f64> {
    let span = (high - low).abs().max(1e-12);
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn tick_label(value: f64) -> String {
    if value == 0.0 {
        "0".into()
    } else if value.abs() >= 1e4 || value.abs() < 1e-2 {
        format!("{value:.0e}")
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').to_string()
    }
}

impl Chart {
    /// Draws the chart into the rectangle `(x, y, width, height)` of `canvas`.
    pub fn draw(&self, canvas: &mut Canvas, x: i64, y: i64, width: i64, height: i64) {
        let scale = 2;
        let (left, right, top, bottom) = (x + 90, x + width - 20, y + 50, y + height - 60);
        canvas.text(
            x + (width - text_width(&self.title, scale)) / 2,
            y + 12,
            &self.title,
            scale,
            BLACK,
        );
        canvas.text(left - 70, top - 22, &self.y_label, 1 + scale / 2, BLACK);
        canvas.text(
            left + (right - left - text_width(&self.x_label, scale)) / 2,
            bottom + 36,
            &self.x_label,
            scale,
            BLACK,
        );

        let finite: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect();
        let bounds = |f: fn(&(f64, f64)) -> f64| {
            let values = finite.iter().map(f);
            let low = values.clone().fold(f64::INFINITY, f64::min);
            let high = values.fold(f64::NEG_INFINITY, f64::max);
            if low.is_finite() && high > low {
                (low, high)
            } else if low.is_finite() {
                (low - 1.0, low + 1.0)
            } else {
                (0.0, 1.0)
            }
        };
        let (x_low, x_high) = bounds(|p| p.0);
        let (y_low, y_high) = bounds(|p| p.1);
        let pad = (y_high - y_low) * 0.05;
        let (y_low, y_high) = (y_low - pad, y_high + pad);
        let to_px = |(a, b): (f64, f64)| -> (i64, i64) {
            let px = left as f64 + (a - x_low) / (x_high - x_low) * (right - left) as f64;
            let py = bottom as f64 - (b - y_low) / (y_high - y_low) * (bottom - top) as f64;
            (px.round() as i64, py.round() as i64)
        };

        for t in ticks(y_low, y_high, 6) {
            let (_, py) = to_px((x_low, t));
            canvas.line((left, py), (right, py), 1, GRID);
            let label = tick_label(t);
            canvas.text(
                left - 8 - text_width(&label, scale),
                py - 7,
                &label,
                scale,
                BLACK,
            );
        }
        for t in ticks(x_low, x_high, 8) {
            let (px, _) = to_px((t, y_low));
            canvas.line((px, top), (px, bottom), 1, GRID);
            let label = tick_label(t);
            canvas.text(
                px - text_width(&label, scale) / 2,
                bottom + 8,
                &label,
                scale,
                BLACK,
            );
        }
        canvas.line((left, bottom), (right, bottom), 2, BLACK);
        canvas.line((left, top), (left, bottom), 2, BLACK);

        for (series, colour) in self.series.iter().zip(PALETTE.iter().cycle()) {
            let mut previous: Option<(i64, i64)> = None;
            for &point in &series.points {
                if !(point.0.is_finite() && point.1.is_finite()) {
                    previous = None;
                    continue;
                }
                let p = to_px(point);
                if let Some(q) = previous {
                    canvas.line(q, p, 3, *colour);
                } else {
                    canvas.fill_rect(p.0 - 2, p.1 - 2, 5, 5, *colour);
                }
                previous = Some(p);
            }
        }

        // Legend in the top-right corner of the plot area.
        let longest = self
            .series
            .iter()
            .map(|s| text_width(&s.name, scale))
            .max()
            .unwrap_or(0);
        let (lx, ly) = (right - longest - 50, top + 8);
        let rows = self.series.len() as i64;
        if rows > 0 {
            canvas.fill_rect(lx - 8, ly - 6, longest + 54, rows * 22 + 8, WHITE);
        }
        for (i, (series, colour)) in self.series.iter().zip(PALETTE.iter().cycle()).enumerate() {
            let row = ly + i as i64 * 22;
            canvas.line((lx, row + 7), (lx + 30, row + 7), 3, *colour);
            canvas.text(lx + 38, row, &series.name, scale, BLACK);
        }
    }

    /// Draws the chart alone on a `width` × `height` canvas and saves it.
    pub fn save_png(&self, path: &Path, width: usize, height: usize) -> Result<(), Error> {
        let mut canvas = Canvas::new(width, height);
        self.draw(&mut canvas, 0, 0, width as i64, height as i64);
        canvas.save_png(path)
    }
}

/// Saves several charts side by side in one image, each `width` × `height`.
pub fn save_row(charts: &[Chart], path: &Path, width: usize, height: usize) -> Result<(), Error> {
    let mut canvas = Canvas::new(width * charts.len(), height);
    for (i, chart) in charts.iter().enumerate() {
        chart.draw(
            &mut canvas,
            (i * width) as i64,
            0,
            width as i64,
            height as i64,
        );
    }
    canvas.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(-31.0, -4.0, 6);
        assert!(t.iter().all(|v| (-31.0..=-4.0).contains(v)));
        assert!(
            t.windows(2).all(|w| (w[1] - w[0] - 5.0).abs() < 1e-9),
            "{t:?}"
        );
    }

    #[test]
    fn every_label_character_has_a_glyph() {
        for text in [
            "NMSE (dB)",
            "layer / iteration",
            "learned-iht",
            "ista fista iht",
            "-1.5e-3",
            "step",
            "loss, test [%]=_'+:",
        ] {
            for ch in text.chars().filter(|c| *c != ' ') {
                assert!(glyph(ch).is_some(), "no glyph for {ch:?}");
            }
        }
    }

    #[test]
    fn chart_draws_its_lines_in_their_colours() {
        let chart = Chart {
            title: "T".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "a".into(),
                points: vec![(0.0, 0.0), (1.0, 1.0)],
            }],
        };
        let mut canvas = Canvas::new(400, 300);
        chart.draw(&mut canvas, 0, 0, 400, 300);
        let red = (0..300)
            .flat_map(|y| (0..400).map(move |x| (x, y)))
            .filter(|&(x, y)| canvas.pixel(x, y) == PALETTE[0])
            .count();
        assert!(red > 200, "only {red} pixels of the line");
        let file =
            std::env::temp_dir().join(format!("sparse-coding-chart-{}.png", std::process::id()));
        chart.save_png(&file, 400, 300).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
