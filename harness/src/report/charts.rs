//! One chart type, drawn by plotters into an SVG string: series of points joined by lines (or points
//! alone), optional horizontal reference lines, and axes that are linear, log10, HdrHistogram's
//! "nines", or categories.
//!
//! Non-linear axes are drawn on transformed values (log10 v, or -log10(1 - p)) over whole decades /
//! whole nines, so the ticks fall on 1, 10, 100... or 90%, 99%, 99.9%..., labelled in the original
//! unit.

use anyhow::anyhow;
use plotters::prelude::*;

/// How an axis maps values.
#[derive(Debug, Clone)]
pub enum Scale {
    Linear,
    Log10,
    /// Percentiles (0-100) on the nines axis.
    Nines,
    /// Values are indexes into these names.
    Categories(Vec<String>),
}

/// An axis: label (with its unit), scale, and how to print a value.
#[derive(Debug, Clone)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    pub format: fn(f64) -> String,
}

/// One line (or set of points) with its legend name; `point_labels`, when given, are printed next
/// to the points.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub point_labels: Vec<String>,
}

/// A chart to draw.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    /// Horizontal lines at a y value, with a name ("disk (fio)").
    pub references: Vec<(String, f64)>,
    /// Join the points with lines.
    pub lines: bool,
}

const SIZE: (u32, u32) = (880, 440);

impl Scale {
    fn to_plot(&self, v: f64) -> Option<f64> {
        match self {
            Scale::Linear | Scale::Categories(_) => v.is_finite().then_some(v),
            Scale::Log10 => (v > 0.0 && v.is_finite()).then(|| v.log10()),
            Scale::Nines => (0.0..100.0).contains(&v).then(|| -(1.0 - v / 100.0).log10()),
        }
    }

    fn value_at(&self, t: f64) -> f64 {
        match self {
            Scale::Linear | Scale::Categories(_) => t,
            Scale::Log10 => 10f64.powf(t),
            Scale::Nines => 100.0 * (1.0 - 10f64.powf(-t)),
        }
    }

    /// Plot range covering `values` (already transformed) and the number of labels to ask for.
    fn range(&self, values: &[f64]) -> (f64, f64, usize) {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        match self {
            Scale::Linear => {
                let lo = lo.min(0.0);
                let hi = if hi > lo { hi * 1.08 } else { lo + 1.0 };
                (lo, hi, 8)
            }
            Scale::Log10 | Scale::Nines => {
                let (a, b) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
                let a = if matches!(self, Scale::Nines) { 0.0 } else { a };
                (a, b, (b - a) as usize + 1)
            }
            Scale::Categories(names) => (-0.5, names.len().max(1) as f64 - 0.5, names.len().max(1)),
        }
    }

    fn label(&self, t: f64, format: fn(f64) -> String) -> String {
        match self {
            Scale::Categories(names) => {
                let i = t.round();
                if (t - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
            Scale::Nines => nines_label(t),
            _ => format(self.value_at(t)),
        }
    }
}

/// 0 -> "0%", 1 -> "90%", 2 -> "99%", 3 -> "99.9%" ...
fn nines_label(t: f64) -> String {
    let n = t.round();
    if (t - n).abs() > 1e-6 || n < 0.0 {
        return String::new();
    }
    match n as u32 {
        0 => "0%".into(),
        1 => "90%".into(),
        k => format!("99.{}%", "9".repeat(k as usize - 2)).replace("99.%", "99%"),
    }
}

/// Draws `chart` as an `<svg>` element.
pub fn render(chart: &Chart) -> anyhow::Result<String> {
    let map = |s: &Series| -> Vec<(f64, f64)> {
        s.points.iter().filter_map(|&(x, y)| Some((chart.x.scale.to_plot(x)?, chart.y.scale.to_plot(y)?))).collect()
    };
    let mapped: Vec<Vec<(f64, f64)>> = chart.series.iter().map(map).collect();
    let xs: Vec<f64> = mapped.iter().flatten().map(|p| p.0).collect();
    let mut ys: Vec<f64> = mapped.iter().flatten().map(|p| p.1).collect();
    ys.extend(chart.references.iter().filter_map(|(_, v)| chart.y.scale.to_plot(*v)));
    let (x0, x1, xn) = chart.x.scale.range(&xs);
    let (y0, y1, yn) = chart.y.scale.range(&ys);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
        let mut c = ChartBuilder::on(&root)
            .caption(&chart.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(78)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
        let (xs, ys) = (chart.x.clone(), chart.y.clone());
        let x_fmt = move |t: &f64| xs.scale.label(*t, xs.format);
        let y_fmt = move |t: &f64| ys.scale.label(*t, ys.format);
        c.configure_mesh()
            .x_desc(&chart.x.label)
            .y_desc(&chart.y.label)
            .x_labels(xn)
            .y_labels(yn)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
        for (i, (s, pts)) in chart.series.iter().zip(&mapped).enumerate() {
            let color = Palette99::pick(i).to_rgba();
            if chart.lines {
                c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(|e| anyhow!("drawing {}: {e}", chart.title))?
                    .label(&s.name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            }
            let dots = c
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
            if !chart.lines {
                dots.label(&s.name).legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
            }
            let labels = pts
                .iter()
                .zip(&s.point_labels)
                .map(|(&p, l)| Text::new(l.clone(), p, ("sans-serif", 11).into_font().color(&BLACK)).into_dyn());
            c.draw_series(labels.map(|t| t as DynElement<_, _>))
                .map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
        }
        for (name, v) in &chart.references {
            let Some(y) = chart.y.scale.to_plot(*v) else { continue };
            let style = RGBColor(200, 40, 40).stroke_width(1);
            c.draw_series(DashedLineSeries::new(vec![(x0, y), (x1, y)], 6, 4, style))
                .map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
            let label = format!("{name}: {}", (chart.y.format)(*v));
            c.draw_series(std::iter::once(Text::new(
                label,
                (x0, y),
                ("sans-serif", 11).into_font().color(&RGBColor(200, 40, 40)),
            )))
            .map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
        }
        if chart.series.iter().any(|s| !s.name.is_empty()) {
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(("sans-serif", 11))
                .draw()
                .map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
        }
        root.present().map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(v: f64) -> String {
        format!("{v:.0}")
    }

    #[test]
    fn nines_axis_maps_percentiles_to_ticks() {
        assert_eq!(Scale::Nines.to_plot(99.0).map(|t| (t * 1e9).round() / 1e9), Some(2.0));
        assert_eq!(Scale::Nines.to_plot(100.0), None);
        assert_eq!(
            ["0%", "90%", "99%", "99.9%", "99.99%"].to_vec(),
            (0..5).map(|t| nines_label(t as f64)).collect::<Vec<_>>()
        );
        assert_eq!(nines_label(1.5), "");
        assert_eq!(Scale::Log10.range(&[0.3, 2.2]), (0.0, 3.0, 4));
    }

    #[test]
    fn renders_an_svg_with_axes_legend_and_reference() {
        let chart = Chart {
            title: "t".into(),
            x: Axis { label: "latency (ms)".into(), scale: Scale::Log10, format: plain },
            y: Axis { label: "records/s".into(), scale: Scale::Linear, format: plain },
            series: vec![Series {
                name: "batch.size=16384".into(),
                points: vec![(1.0, 10.0), (100.0, 20.0)],
                point_labels: vec!["#0".into(), "#1".into()],
            }],
            references: vec![("disk (fio)".into(), 25.0)],
            lines: true,
        };
        let svg = render(&chart).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        for needle in ["latency (ms)", "records/s", "batch.size=16384", "disk (fio): 25", "#1"] {
            assert!(svg.contains(needle), "missing {needle}");
        }
        // Empty charts still draw (a run with no successful case).
        let empty = Chart { series: vec![], references: vec![], ..chart };
        assert!(render(&empty).unwrap().contains("<svg"));
    }
}
