//! Line charts with plotters, saved as PNG and SVG.
//!
//! The font (Ubuntu Light, from `epaint_default_fonts`) is compiled into the binary, so text
//! draws on machines without system fonts. Each chart keeps its legend in a column of its own
//! beside the plot, where it cannot hide a line.

use crate::error::Error;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// Line colours, one per series in order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(127, 127, 127),
];

/// Width of the legend column, in pixels.
const LEGEND_WIDTH: u32 = 150;

/// One named line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points `(x, y)`; a non-finite one breaks the line there.
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis labels and lines.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Drawn above the plot.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Beside the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        )
        .unwrap_or_else(|_| panic!("the bundled font is a valid TrueType font"));
    });
}

/// The lowest and highest finite value of `values`, widened to a non-empty range.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if high - low < 1e-9 {
        (low - 0.5, high + 0.5)
    } else {
        (low, high)
    }
}

/// The runs of consecutive finite points of a series (each drawn as one line).
fn segments(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    points
        .split(|(x, y)| !(x.is_finite() && y.is_finite()))
        .filter(|run| !run.is_empty())
        .map(<[_]>::to_vec)
        .collect()
}

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let (width, _) = area.dim_in_pixel();
    let (plot, legend) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    let (x_low, x_high) = bounds(
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0)),
    );
    let (y_low, y_high) = bounds(
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1)),
    );
    let pad = (y_high - y_low) * 0.05;
    let mut context = ChartBuilder::on(&plot)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x_low..x_high, (y_low - pad)..(y_high + pad))
        .map_err(|e| e.to_string())?;
    // Layers and steps are whole numbers, and dB ticks need no decimals.
    let integer = |v: &f64| format!("{v:.0}");
    context
        .configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_label_formatter(&integer)
        .y_label_formatter(&integer)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(|e| e.to_string())?;
    for (series, colour) in chart.series.iter().zip(PALETTE.iter().cycle()) {
        let style = ShapeStyle::from(colour).stroke_width(2);
        for run in segments(&series.points) {
            // A lone point still shows.
            if run.len() == 1 {
                context
                    .draw_series(std::iter::once(Circle::new(run[0], 3, style.filled())))
                    .map_err(|e| e.to_string())?;
            }
            context
                .draw_series(LineSeries::new(run, style))
                .map_err(|e| e.to_string())?;
        }
    }
    // The legend, in its own column.
    for (i, (series, colour)) in chart.series.iter().zip(PALETTE.iter().cycle()).enumerate() {
        let y = 60 + 26 * i as i32;
        legend
            .draw(&PathElement::new(
                vec![(6, y), (30, y)],
                ShapeStyle::from(colour).stroke_width(3),
            ))
            .map_err(|e| e.to_string())?;
        legend
            .draw(&Text::new(
                series.name.as_str(),
                (38, y - 9),
                ("sans-serif", 16).into_font().color(&BLACK),
            ))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Draws `charts` side by side on `root`.
fn draw_all<DB: DrawingBackend>(
    charts: &[Chart],
    root: DrawingArea<DB, Shift>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, charts.len()));
    for (panel, chart) in panels.iter().zip(charts) {
        draw(panel, chart)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Draws `charts` side by side, each `size` pixels, into `<stem>.png` and `<stem>.svg`.
pub fn save(charts: &[Chart], stem: &Path, size: (u32, u32)) -> Result<(), Error> {
    register_font();
    let total = (size.0 * charts.len() as u32, size.1);
    let png_path = stem.with_extension("png");
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |reason: String| Error::Plot { path, reason }
    };
    let mut pixels = vec![0u8; (total.0 * total.1 * 3) as usize];
    draw_all(
        charts,
        BitMapBackend::with_buffer(&mut pixels, total).into_drawing_area(),
    )
    .map_err(fail(&png_path))?;
    write_png(&png_path, &pixels, total).map_err(fail(&png_path))?;

    let svg_path = stem.with_extension("svg");
    let mut svg = String::new();
    draw_all(
        charts,
        SVGBackend::with_string(&mut svg, total).into_drawing_area(),
    )
    .map_err(fail(&svg_path))?;
    crate::checkpoint::write_atomic(&svg_path, svg.as_bytes()).map_err(Error::io(&svg_path))
}

/// Encodes an RGB buffer as a PNG file.
fn write_png(path: &Path, pixels: &[u8], (width, height): (u32, u32)) -> Result<(), String> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(pixels).map_err(|e| e.to_string())?;
    }
    crate::checkpoint::write_atomic(path, &bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_points_break_lines_and_bounds_skip_them() {
        let points = [(1.0, 2.0), (2.0, f64::NAN), (3.0, 4.0), (4.0, 5.0)];
        assert_eq!(
            segments(&points),
            vec![vec![(1.0, 2.0)], vec![(3.0, 4.0), (4.0, 5.0)]]
        );
        assert_eq!(bounds(points.iter().map(|p| p.1)), (2.0, 5.0));
        assert_eq!(bounds([f64::NAN].into_iter()), (0.0, 1.0));
    }

    #[test]
    fn charts_are_written_as_png_and_svg() {
        let dir = std::env::temp_dir().join(format!("plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let chart = Chart {
            title: "Test NMSE per layer".into(),
            x_label: "layer".into(),
            y_label: "NMSE (dB)".into(),
            series: vec![Series {
                name: "learned-iht".into(),
                points: (1..=16).map(|k| (k as f64, -2.0 * k as f64)).collect(),
            }],
        };
        save(&[chart.clone(), chart], &dir.join("chart"), (400, 300)).unwrap();
        let png = std::fs::read(dir.join("chart.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(dir.join("chart.svg")).unwrap();
        assert!(svg.contains("learned-iht") && svg.contains("<svg"), "{svg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
