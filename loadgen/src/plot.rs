//! The latency plot: percentile curves of each latency kind on log scales, HdrHistogram style,
//! with AWS's published figures drawn as horizontal reference lines.
//!
//! SVG, so that the text is `<text>` rendered by whatever opens the file with its own fonts:
//! nothing to install on a fresh machine, and it opens in any browser.

use crate::stats::Latency;
use anyhow::Context;
use plotters::prelude::*;
use std::path::Path;

/// One curve: a label, its histogram and its colour.
pub struct Curve<'a> {
    pub label: String,
    pub latency: &'a Latency,
    pub color: RGBColor,
}

/// One horizontal reference line, e.g. AWS's ~200 ms for one polling consumer.
pub struct Reference {
    pub label: String,
    pub ms: f64,
    pub color: RGBColor,
}

const WIDTH_PX: u32 = 1100;
const HEIGHT_PX: u32 = 700;

/// The x axis shows percentiles as "nines": x = log10(1 / (1 - p)), so 90% is 1, 99% is 2,
/// 99.9% is 3. The last point of a curve (p = 1, the maximum) is drawn at the right edge.
fn nines(quantile: f64, x_max: f64) -> f64 {
    if quantile >= 1.0 {
        x_max
    } else {
        (1.0 / (1.0 - quantile)).log10().min(x_max)
    }
}

fn nines_label(x: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.round() as i32 - 2).max(0) as usize;
    format!("{percent:.decimals$}%")
}

/// Draws the curves as an SVG at `path`.
pub fn percentile_plot(path: &Path, title: &str, curves: &[Curve<'_>], references: &[Reference]) -> anyhow::Result<()> {
    // Enough nines to show every curve's tail: 99.9% needs a thousand samples.
    let samples_max = curves.iter().map(|c| c.latency.count()).max().unwrap_or(0).max(1);
    let x_max = ((samples_max as f64).log10().floor()).clamp(2.0, 6.0);
    let points: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|curve| {
            curve
                .latency
                .percentile_curve_ms()
                .into_iter()
                .map(|(quantile, ms)| (nines(quantile, x_max), ms.max(0.001)))
                .collect()
        })
        .collect();
    let values = points.iter().flatten().map(|&(_, ms)| ms).chain(references.iter().map(|r| r.ms));
    let (low, high) = values.fold((f64::MAX, f64::MIN), |(lo, hi), ms| (lo.min(ms), hi.max(ms)));
    let (y_min, y_max) = if low <= high { (low / 2.0, high * 2.0) } else { (0.1, 1_000.0) };

    let root = SVGBackend::new(path, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .margin_right(50)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms, log scale)")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| nines_label(*x))
        .y_label_formatter(&|y| format_ms(*y))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for reference in references {
        let color = reference.color;
        chart
            .draw_series(LineSeries::new([(0.0, reference.ms), (x_max, reference.ms)], color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(reference.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(2)));
    }
    for (curve, points) in curves.iter().zip(points) {
        let color = curve.color;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(3)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(curve.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        // Lower right: below the polling curves and right of the fast ones' bulk, where the
        // percentile curves of these runs leave the plot empty.
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

fn format_ms(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.3}").trim_end_matches('0').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_map_to_nines_and_back_to_labels() {
        assert_eq!(nines(0.0, 4.0), 0.0);
        assert!((nines(0.9, 4.0) - 1.0).abs() < 1e-9);
        assert!((nines(0.999, 4.0) - 3.0).abs() < 1e-9);
        assert_eq!(nines(1.0, 4.0), 4.0);
        assert_eq!(nines(0.999_999_9, 4.0), 4.0);
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(4.0), "99.99%");
    }

    #[test]
    fn writes_an_svg_with_its_labels_as_text() {
        let dir = std::env::temp_dir().join(format!("loadgen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plot.svg");
        let mut fast = Latency::new();
        let mut slow = Latency::new();
        for i in 1..=5_000u64 {
            fast.record_ns(i * 1_000);
            slow.record_ns(i * 100_000);
        }
        let curves = [
            Curve { label: "efo".into(), latency: &fast, color: BLUE },
            Curve { label: "polling".into(), latency: &slow, color: RED },
        ];
        let references = [Reference { label: "AWS polling (~200 ms)".into(), ms: 200.0, color: RED }];
        percentile_plot(&path, "test", &curves, &references).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["polling", "efo", "AWS polling (~200 ms)", "99.9%", "percentile"] {
            assert!(svg.contains(text), "{text} missing from the plot");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
