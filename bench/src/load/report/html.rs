//! The report as a self-contained HTML page with SVG plots over time (throughput, latency
//! percentiles, errors, the target's memory). No scripts, fonts or styles are loaded from
//! anywhere: the page opens from a file on a machine with no network.

use std::fmt::Write as _;

use super::Report;
use super::text::{si, text};
use crate::load::run::Model;
use crate::load::stats::Second;

/// One line of a chart: its name, colour and `(seconds, value)` points.
type Line<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A line chart as inline SVG; x in seconds.
fn chart(title: &str, unit: &str, series: &[Line<'_>]) -> String {
    const W: f64 = 860.0;
    const H: f64 = 220.0;
    const L: f64 = 64.0;
    const R: f64 = 16.0;
    const T: f64 = 28.0;
    const B: f64 = 30.0;
    let xs = series.iter().flat_map(|s| s.2.iter().map(|p| p.0));
    let x_max = xs.fold(1.0_f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(0.0_f64, f64::max);
    let y_max = nice(if y_max > 0.0 { y_max * 1.05 } else { 1.0 });
    let px = |x: f64| L + (W - L - R) * x / x_max;
    let py = |y: f64| T + (H - T - B) * (1.0 - y / y_max);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">"##
    );
    let _ = write!(
        svg,
        r##"<text x="{L}" y="16" font-size="13" font-weight="bold">{}</text>"##,
        escape(title)
    );
    for i in 0..=4 {
        let y = y_max * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{L}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 4.0,
            py(y) + 4.0,
            escape(&format!("{}{unit}", si(y))),
            py = py(y)
        );
        let x = x_max * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="middle">{:.0} s</text>"##,
            px(x),
            H - 10.0,
            x
        );
    }
    // The legend starts after the title (about 7.5 px a character at 13 px bold).
    let mut legend_x = L + 7.5 * title.chars().count() as f64 + 24.0;
    for (name, colour, points) in series {
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"##,
            path.join(" ")
        );
        let _ = write!(
            svg,
            r##"<rect x="{legend_x}" y="8" width="10" height="10" fill="{colour}"/><text x="{}" y="17">{}</text>"##,
            legend_x + 14.0,
            escape(name)
        );
        legend_x += 24.0 + 7.0 * name.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `x`.
fn nice(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG plots of a report, one per measure (the HTML page holds them).
pub fn charts(r: &Report) -> Vec<String> {
    let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
    let mut out = Vec::new();
    for l in &r.lanes {
        let tl = &l.timeline;
        let ok: Vec<(f64, f64)> = tl
            .iter()
            .map(|s| (s.t, (s.requests - s.errors) as f64))
            .collect();
        let target: Vec<(f64, f64)> = if l.model == Model::Open {
            tl.iter().map(|s| (s.t, s.target)).collect()
        } else {
            Vec::new()
        };
        out.push(chart(
            &format!("{}: successful requests per second", l.scenario),
            "/s",
            &[("ok", colours[0], ok), ("target", "#999", target)],
        ));
        let lat = |f: fn(&Second) -> f64| {
            tl.iter()
                .filter(|s| s.requests > 0)
                .map(|s| (s.t, f(s)))
                .collect::<Vec<_>>()
        };
        out.push(chart(
            &format!("{}: latency per second", l.scenario),
            " ms",
            &[
                ("p50", colours[0], lat(|s| s.p50_ms)),
                ("p90", colours[1], lat(|s| s.p90_ms)),
                ("p99", colours[3], lat(|s| s.p99_ms)),
                ("max", "#bbb", lat(|s| s.max_ms)),
            ],
        ));
        out.push(chart(
            &format!("{}: failed requests per second", l.scenario),
            "/s",
            &[(
                "errors",
                colours[3],
                tl.iter().map(|s| (s.t, s.errors as f64)).collect(),
            )],
        ));
    }
    let mib = |f: fn(&Second) -> Option<u64>| -> Vec<(f64, f64)> {
        r.lanes[0]
            .timeline
            .iter()
            .filter_map(|s| f(s).map(|b| (s.t, b as f64 / (1 << 20) as f64)))
            .collect()
    };
    let target = mib(|s| s.target_rss_bytes);
    let own = mib(|s| s.generator_rss_bytes);
    if !target.is_empty() || !own.is_empty() {
        out.push(chart(
            "memory (resident set)",
            " MiB",
            &[
                ("target", colours[4], target),
                ("strata-bench", "#8c564b", own),
            ],
        ));
    }
    out
}

/// The self-contained HTML page.
pub fn html(r: &Report) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>strata-bench: {}</title>\
         <style>body{{font-family:sans-serif;margin:24px;color:#222}}pre{{background:#f6f6f6;padding:12px;overflow-x:auto}}\
         svg{{display:block;margin:12px 0;border:1px solid #eee}}</style></head><body>",
        escape(&r.target)
    );
    let _ = write!(
        page,
        "<h1>strata-bench report</h1><p><code>{}</code></p>",
        escape(&r.command)
    );
    let _ = write!(page, "<pre>{}</pre>", escape(&text(r)));
    for svg in charts(r) {
        page.push_str(&svg);
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_svg_with_every_series() {
        let svg = chart(
            "latency <p99>",
            " ms",
            &[
                ("p50", "#000", vec![(1.0, 2.0), (2.0, 3.0)]),
                ("p99", "#f00", vec![(1.0, 9.0), (2.0, f64::NAN)]),
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("latency &lt;p99&gt;"));
        // A NaN point is left out rather than written as NaN.
        assert!(!svg.contains("NaN"));
        assert_eq!(nice(7.3), 10.0);
        assert_eq!(nice(0.021), 0.025);
        assert_eq!(nice(120.0), 200.0);
    }
}
