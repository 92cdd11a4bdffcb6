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
use burn::train::{LearnerSummary, MetricSummary};
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
    pub title: String,
    /// The axes' labels, x then y.
    pub axes: [&'static str; 2],
    /// `(name, points)` of each line; non-finite points are left out.
    pub lines: Vec<(String, Vec<(f64, f64)>)>,
}

/// How a method or network is named in the charts.
fn label(method: &str) -> String {
    match method {
        "learned_iht" | "learned-iht" => "learned IHT".into(),
        "lista_cp" | "lista-cp" => "LISTA-CP (soft)".into(),
        other => other.to_uppercase(),
    }
}

/// `nmse_per_layer.png` and `training.png` in the run directory `out`.
pub fn plot_run(out: &Path, config: &ExperimentConfig, results: &Results) -> Result<(), Error> {
    let layers = |nmse: &[f64]| (1..).map(f64::from).zip(nmse.iter().copied()).collect();
    let lines = results
        .methods()
        .map(|(method, scores)| (label(method), layers(&scores.nmse_db)));
    let axes = ["layer (iteration for the baselines)", "NMSE (dB)"];
    let per_layer = Chart {
        title: "Test NMSE per layer".into(),
        axes,
        lines: lines.to_vec(),
    };
    save(&[per_layer], &out.join("nmse_per_layer.png"), (900, 560))?;

    // Per epoch, from burn-train's own summary of its metric logs.
    let (mut loss, mut nmse) = (Vec::new(), Vec::new());
    for (network, _) in NETWORKS {
        let (mut losses, mut nmses) = (Vec::new(), Vec::new());
        for launch in launches(config) {
            let dir = out.join(network).join(&launch.name);
            let Ok(summary) = LearnerSummary::new(dir, &["Loss", "NMSE"]) else {
                continue;
            };
            let at = |epoch: usize| (epoch * config.checkpoint_every).min(launch.steps.len());
            let find = |split: &[MetricSummary], name: &str, db: bool| {
                let metric = split
                    .iter()
                    .filter(|m| m.name == name)
                    .flat_map(|m| &m.entries);
                let value = move |v: f64| if db { 10.0 * v.log10() } else { v };
                metric
                    .map(|e| ((launch.steps.start + at(e.step)) as f64, value(e.value)))
                    .collect::<Vec<_>>()
            };
            losses.extend(find(&summary.metrics.train, "Loss", true));
            nmses.extend(find(&summary.metrics.valid, "NMSE", false));
        }
        loss.push((label(network), losses));
        nmse.push((label(network), nmses));
    }
    let charts = [
        Chart {
            title: "Training loss, mean per epoch".into(),
            axes: ["step", "loss (dB)"],
            lines: loss,
        },
        Chart {
            title: "Validation NMSE, last trained layer".into(),
            axes: ["step", "NMSE (dB)"],
            lines: nmse,
        },
    ];
    save(&charts, &out.join("training.png"), (800, 520))
}

/// Draws `charts` side by side, each `size` pixels, into the PNG file `path`.
pub fn save(charts: &[Chart], path: &Path, (width, height): (u32, u32)) -> Result<(), Error> {
    static FONT: std::sync::Once = std::sync::Once::new();
    FONT.call_once(|| {
        let font = epaint_default_fonts::UBUNTU_LIGHT;
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, font);
    });
    let size = (width * charts.len() as u32, height);
    let mut pixels = vec![0u8; (size.0 * size.1 * 3) as usize];
    let fail = |e: &dyn std::fmt::Display| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("cannot draw: {e}")),
    };
    let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    for (area, chart) in root.split_evenly((1, charts.len())).iter().zip(charts) {
        draw(area, chart).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    drop(root);
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, size.0, size.1);
    encoder.set_color(png::ColorType::Rgb);
    let written = encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels));
    written.map_err(|e| fail(&e))?;
    write_atomic(path, &bytes)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawError<'a> = DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

fn draw<'a>(area: &Area<'a>, chart: &Chart) -> Result<(), DrawError<'a>> {
    let finite: Vec<Vec<(f64, f64)>> = chart
        .lines
        .iter()
        .map(|(_, points)| {
            points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect()
        })
        .collect();
    let all = || finite.iter().flatten();
    let range = |values: Vec<f64>| {
        let (low, high) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        if low > high {
            0.0..1.0
        } else {
            low..high.max(low + 1e-9)
        }
    };
    let x = range(all().map(|p| p.0).collect());
    let y = range(all().map(|p| p.1).collect());
    let pad = (y.end - y.start) * 0.05;
    let mut plot = ChartBuilder::on(area)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y.start - pad..y.end + pad)?;
    // Layers and steps are whole numbers, and dB ticks need no decimals.
    let whole = |v: &f64| format!("{v:.0}");
    plot.configure_mesh()
        .x_desc(chart.axes[0])
        .y_desc(chart.axes[1])
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    for (((name, _), points), colour) in chart.lines.iter().zip(finite).zip(PALETTE) {
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
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_written_as_png_leaving_out_non_finite_points() {
        let dir = std::env::temp_dir().join(format!("plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let points = (1..=16)
            .map(|k| (k as f64, -2.0 * k as f64))
            .chain([(17.0, f64::NAN)]);
        let chart = || Chart {
            title: "Test NMSE per layer".into(),
            axes: ["layer", "NMSE (dB)"],
            lines: vec![("learned IHT".into(), points.clone().collect())],
        };
        save(&[chart(), chart()], &dir.join("chart.png"), (400, 300)).unwrap();
        let png = std::fs::read(dir.join("chart.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        assert_eq!((decoder.info().width, decoder.info().height), (800, 300));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
