//! Line charts as SVG, for the report: latency CDF, delivery over time,
//! revocation convergence. Pure: data in, an SVG document out.

use std::fmt::Write;

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis labels, and its lines.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label beside the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// The y axis spans 0 to 1 (shown as percent) instead of the data.
    pub y_fraction: bool,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// A step of 1, 2 or 5 times a power of ten giving about `ticks` ticks
/// over `span`.
fn nice_step(span: f64, ticks: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / ticks;
    let power = 10f64.powf(raw.log10().floor());
    let unit = raw / power;
    let nice = if unit < 1.5 {
        1.0
    } else if unit < 3.5 {
        2.0
    } else if unit < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * power
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn label(value: f64, step: f64, percent: bool) -> String {
    if percent {
        return format!("{:.0}%", value * 100.0);
    }
    if step >= 1.0 {
        format!("{value:.0}")
    } else {
        let decimals = (-step.log10()).ceil() as usize;
        format!("{value:.decimals$}")
    }
}

impl Chart {
    /// The chart as a standalone SVG document.
    pub fn svg(&self) -> String {
        let points = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x_max, mut y_max) = (0f64, 0f64);
        let mut x_min = f64::INFINITY;
        for &(x, y) in points {
            if x.is_finite() && y.is_finite() {
                x_min = x_min.min(x);
                x_max = x_max.max(x);
                y_max = y_max.max(y);
            }
        }
        let x_min = if x_min.is_finite() {
            x_min.min(0.0)
        } else {
            0.0
        };
        let x_step = nice_step(x_max - x_min, 6.0);
        let x_max = ((x_max / x_step).ceil() * x_step).max(x_min + x_step);
        let (y_max, y_step) = if self.y_fraction {
            (1.0, 0.2)
        } else {
            let step = nice_step(y_max, 5.0);
            (((y_max / step).ceil() * step).max(step), step)
        };
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x_min) / (x_max - x_min) * plot_w;
        let sy = |y: f64| TOP + plot_h - y / y_max * plot_h;

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            svg,
            r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        );
        // Grid and tick labels.
        let mut x = x_min;
        while x <= x_max + x_step / 2.0 {
            let px = sx(x);
            let _ = writeln!(
                svg,
                r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + plot_h,
                TOP + plot_h + 16.0,
                label(x, x_step, false)
            );
            x += x_step;
        }
        let mut y = 0.0;
        while y <= y_max + y_step / 2.0 {
            let py = sy(y);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                py + 4.0,
                label(y, y_step, self.y_fraction)
            );
            y += y_step;
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 18.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        for (i, series) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let path: Vec<String> = series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y.min(y_max))))
                .collect();
            if !path.is_empty() {
                let _ = writeln!(
                    svg,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                    path.join(" ")
                );
            }
            let ly = TOP + 16.0 + i as f64 * 16.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                LEFT + 12.0,
                LEFT + 36.0,
                LEFT + 42.0,
                ly + 4.0,
                escape(&series.name)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// The CDF of sorted `values`: (value, share at or below it), thinned to at
/// most `max_points` points.
pub fn cdf(sorted: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let stride = n.div_ceil(max_points.max(1)).max(1);
    let mut points: Vec<(f64, f64)> = (0..n)
        .step_by(stride)
        .map(|i| (sorted[i], (i + 1) as f64 / n as f64))
        .collect();
    if points.last().map(|p| p.1) != Some(1.0) {
        points.push((sorted[n - 1], 1.0));
    }
    points
}

/// A rising step curve: at each of the sorted `times` one more of `total`
/// has happened.
pub fn share_over_time(sorted_times: &[f64], total: usize, max_points: usize) -> Vec<(f64, f64)> {
    let mut points = vec![(0.0, 0.0)];
    points.extend(
        cdf(sorted_times, max_points)
            .into_iter()
            .map(|(t, share)| (t, share * sorted_times.len() as f64 / total.max(1) as f64)),
    );
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 6.0), 1.0);
        assert_eq!(nice_step(0.3, 6.0), 0.05);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
    }

    #[test]
    fn a_chart_is_an_svg_with_every_series() {
        let chart = Chart {
            title: "latency <CDF>".into(),
            x_label: "ms".into(),
            y_label: "share".into(),
            series: vec![
                Series {
                    name: "ours".into(),
                    points: cdf(&[1.0, 2.0, 3.0, 10.0], 100),
                },
                Series {
                    name: "baseline".into(),
                    points: vec![],
                },
            ],
            y_fraction: true,
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("latency &lt;CDF&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains(">baseline<"));
        assert!(svg.contains(">100%<"));
    }

    #[test]
    fn cdf_and_share_curves_end_where_they_should() {
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        let curve = cdf(&values, 50);
        assert!(curve.len() <= 51);
        assert_eq!(curve.last(), Some(&(1000.0, 1.0)));
        let share = share_over_time(&[1.0, 2.0], 4, 10);
        assert_eq!(share.first(), Some(&(0.0, 0.0)));
        assert_eq!(share.last(), Some(&(2.0, 0.5)));
    }
}
