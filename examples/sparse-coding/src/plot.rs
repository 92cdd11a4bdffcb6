//! The run's two charts, as PNG: test NMSE per layer of every method, and each network's training
//! loss and validation NMSE over the steps.
//!
//! The font (Ubuntu Light, from `epaint_default_fonts`) is compiled into the binary, so text draws
//! on machines without system fonts.

use crate::config::ExperimentConfig;
use crate::error::Error;
use crate::evaluate::Results;
use crate::run_dir::write_atomic;
use crate::training::{NETWORKS, launches};
use burn::train::{LearnerSummary, MetricSummary, SummaryMetrics};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Line colours, one per series in order.
const PALETTE: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

/// A chart: its title, axis labels and named lines.
pub struct Chart {
    /// Above the plot.
    pub title: &'static str,
    /// The axes' labels, x then y.
    pub axes: [&'static str; 2],
    /// `(name, points)` of each line; non-finite points are left out.
    pub lines: Vec<(String, Vec<(f64, f64)>)>,
}

/// How a method (`learned_iht`) or network (`learned-iht`) is named in the charts.
fn label(method: &str) -> String {
    match method.replace('-', "_").as_str() {
        "learned_iht" => "learned IHT".into(),
        "lista_cp" => "LISTA-CP (soft)".into(),
        other => other.to_uppercase(),
    }
}

/// A split of burn-train's summary of a launch.
type Split = fn(SummaryMetrics) -> Vec<MetricSummary>;

/// Why a chart could not be drawn: plotters' errors and the PNG encoder's.
type DrawError = Box<dyn std::error::Error>;

/// `nmse_per_layer.png` and `training.png` in the run directory `out`.
pub fn plot_run(out: &Path, config: &ExperimentConfig, results: &Results) -> Result<(), Error> {
    let per_layer = results.methods().map(|(method, scores)| {
        let layers = (1..).map(f64::from).zip(scores.nmse_db.iter().copied());
        (label(method), layers.collect())
    });
    let per_layer = Chart {
        title: "Test NMSE per layer",
        axes: ["layer (iteration for the baselines)", "NMSE (dB)"],
        lines: per_layer.into(),
    };
    save(&[per_layer], &out.join("nmse_per_layer.png"), (900, 560))?;
    // Each network's `metric` in a split per epoch, over its launches, from burn-train's own
    // summary of its metric logs.
    let history = |metric: &str, split: Split, value: fn(f64) -> f64| {
        let network = |network: &str| {
            let mut points = Vec::new();
            for launch in launches(config) {
                let dir = out.join(network).join(&launch.name);
                let Ok(summary) = LearnerSummary::new(dir, &[metric]) else {
                    continue;
                };
                for entry in split(summary.metrics).into_iter().flat_map(|m| m.entries) {
                    let steps = (entry.step * config.checkpoint_every).min(launch.steps.len());
                    points.push(((launch.steps.start + steps) as f64, value(entry.value)));
                }
            }
            (label(network), points)
        };
        NETWORKS.iter().map(|(name, _)| network(name)).collect()
    };
    let charts = [
        Chart {
            title: "Training loss, mean per epoch",
            axes: ["step", "loss (dB)"],
            lines: history("Loss", |m| m.train, |loss| 10.0 * loss.log10()),
        },
        Chart {
            title: "Validation NMSE, last trained layer",
            axes: ["step", "NMSE (dB)"],
            lines: history("NMSE", |m| m.valid, |nmse| nmse),
        },
    ];
    save(&charts, &out.join("training.png"), (800, 520))
}

/// Draws `charts` side by side, each `size` pixels, into the PNG file `path`.
pub fn save(charts: &[Chart], path: &Path, (width, height): (u32, u32)) -> Result<(), Error> {
    let png = render(charts, width * charts.len() as u32, height).map_err(|e| {
        let cannot = std::io::Error::other(format!("cannot draw: {e}"));
        Error::Io(path.to_path_buf(), cannot)
    })?;
    write_atomic(path, &png)
}

/// `charts` side by side in a `width` × `height` PNG image, as the file's bytes.
fn render(charts: &[Chart], width: u32, height: u32) -> Result<Vec<u8>, DrawError> {
    // Registered anew on each call: the last registration stands.
    let font = epaint_default_fonts::UBUNTU_LIGHT;
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, font);
    let mut pixels = vec![0u8; (width * height * 3) as usize];
    let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, chart) in root.split_evenly((1, charts.len())).iter().zip(charts) {
        draw(area, chart)?;
    }
    root.present()?;
    drop(root);
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(png)
}

/// Draws `chart` on `area`, scaled to its finite points.
fn draw(area: &DrawingArea<BitMapBackend, Shift>, chart: &Chart) -> Result<(), DrawError> {
    let finite = |(x, y): &&(f64, f64)| x.is_finite() && y.is_finite();
    let points: Vec<_> = chart
        .lines
        .iter()
        .flat_map(|(_, points)| points)
        .filter(finite)
        .collect();
    let range = |axis: fn(&(f64, f64)) -> f64| {
        let low = points.iter().copied().map(axis).fold(f64::MAX, f64::min);
        let high = points.iter().copied().map(axis).fold(f64::MIN, f64::max);
        if low > high {
            0.0..1.0
        } else {
            low..high.max(low + 1e-9)
        }
    };
    let y = range(|p| p.1);
    let pad = (y.end - y.start) * 0.05;
    let mut plot = ChartBuilder::on(area)
        .caption(chart.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(range(|p| p.0), y.start - pad..y.end + pad)?;
    // Layers and steps are whole numbers; dB ticks need a decimal only on a narrow range.
    let whole = |v: &f64| format!("{v:.0}");
    let decimals = usize::from(y.end - y.start < 10.0);
    let y_ticks = |v: &f64| format!("{v:.decimals$}");
    plot.configure_mesh()
        .x_desc(chart.axes[0])
        .y_desc(chart.axes[1])
        .x_label_formatter(&whole)
        .y_label_formatter(&y_ticks)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    for ((name, points), colour) in chart.lines.iter().zip(PALETTE) {
        let points = points.iter().filter(finite).copied();
        let line = LineSeries::new(points, colour.stroke_width(2));
        let key = move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3));
        plot.draw_series(line)?.label(name).legend(key);
    }
    // The curves fall from the upper left: the lower left is where the legend hides nothing.
    plot.configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_written_as_png_leaving_out_non_finite_points() {
        let dir = tempfile::tempdir().unwrap();
        let points = (1..=16)
            .map(|k| (k as f64, -2.0 * k as f64))
            .chain([(17.0, f64::NAN)]);
        let chart = || Chart {
            title: "Test NMSE per layer",
            axes: ["layer", "NMSE (dB)"],
            lines: vec![("learned IHT".into(), points.clone().collect())],
        };
        let path = dir.path().join("chart.png");
        save(&[chart(), chart()], &path, (400, 300)).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        assert_eq!((decoder.info().width, decoder.info().height), (800, 300));
    }
}
