//! Charts as inline SVG, drawn on the server: no script, no external file. Each chart has a text
//! alternative (`role="img"` with a label) and a `<title>` per point for pointer users.

use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, html};

const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 110.0;
const LEFT: f64 = 26.0;
const BOTTOM: f64 = 14.0;
const TOP: f64 = 6.0;

/// The compliance score of an attachment over its reports, oldest first.
pub fn score_trend(label: &str, points: &[(DateTime<Utc>, f64)]) -> Markup {
    if points.is_empty() {
        return html! { p.muted { "No reports yet." } };
    }
    let plot_width = WIDTH - LEFT - 6.0;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let step = if points.len() > 1 {
        plot_width / (points.len() - 1) as f64
    } else {
        0.0
    };
    let x = |index: usize| {
        if points.len() == 1 {
            LEFT + plot_width / 2.0
        } else {
            LEFT + step * index as f64
        }
    };
    let y = |percent: f64| TOP + plot_height * (1.0 - percent.clamp(0.0, 100.0) / 100.0);
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(index, (_, percent))| format!("{:.1},{:.1}", x(index), y(*percent)))
        .collect();
    let first = points.first().map_or(0.0, |(_, percent)| *percent);
    let last = points.last().map_or(0.0, |(_, percent)| *percent);
    let description = format!(
        "{label}: compliance score over the last {} reports, from {first:.1} % to {last:.1} %",
        points.len()
    );
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(description) {
            @for percent in [0.0, 50.0, 100.0] {
                line.axis x1=(LEFT) x2=(WIDTH - 4.0) y1=(format!("{:.1}", y(percent))) y2=(format!("{:.1}", y(percent))) {}
                text x="0" y=(format!("{:.1}", y(percent) + 3.0)) { (format!("{percent:.0}%")) }
            }
            polyline.line points=(line.join(" ")) {}
            @for (index, (at, percent)) in points.iter().enumerate() {
                circle.dot cx=(format!("{:.1}", x(index))) cy=(format!("{:.1}", y(*percent))) r="2.5" {
                    title { (format!("{}: {percent:.1} %", at.format("%Y-%m-%d %H:%M"))) }
                }
            }
            @if let (Some((from, _)), Some((to, _))) = (points.first(), points.last()) {
                text x=(LEFT) y=(HEIGHT - 2.0) { (from.format("%Y-%m-%d")) }
                text x=(WIDTH - 4.0) y=(HEIGHT - 2.0) text-anchor="end" { (to.format("%Y-%m-%d")) }
            }
        }
    }
}

/// Severities, most severe first, as the findings API spells them.
pub const SEVERITIES: [&str; 4] = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];

/// Findings per day, stacked by severity (counts in [`SEVERITIES`] order).
pub fn severity_bars(days: &[(NaiveDate, [u64; 4])]) -> Markup {
    let highest = days
        .iter()
        .map(|(_, counts)| counts.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_width = WIDTH - LEFT - 6.0;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let slot = plot_width / days.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let total: u64 = days.iter().flat_map(|(_, counts)| counts.iter()).sum();
    let description = format!(
        "Findings by severity per day over {} days: {total} in all",
        days.len()
    );
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(description) {
            line.axis x1=(LEFT) x2=(WIDTH - 4.0) y1=(TOP + plot_height) y2=(TOP + plot_height) {}
            text x="0" y=(TOP + 6.0) { (highest) }
            text x="0" y=(TOP + plot_height) { "0" }
            @for (index, (day, counts)) in days.iter().enumerate() {
                @let mut base = TOP + plot_height;
                @for (severity, count) in SEVERITIES.iter().zip(counts.iter()) {
                    @if *count > 0 {
                        @let height = plot_height * (*count as f64) / (highest as f64);
                        @let top = { base -= height; base };
                        rect class=(format!("sev-{severity}")) x=(format!("{:.1}", LEFT + slot * index as f64 + (slot - bar) / 2.0))
                            y=(format!("{top:.1}")) width=(format!("{bar:.1}")) height=(format!("{height:.1}")) {
                            title { (format!("{day}: {count} {}", severity.to_ascii_lowercase())) }
                        }
                    }
                }
            }
            @if let (Some((from, _)), Some((to, _))) = (days.first(), days.last()) {
                text x=(LEFT) y=(HEIGHT - 2.0) { (from) }
                text x=(WIDTH - 4.0) y=(HEIGHT - 2.0) text-anchor="end" { (to) }
            }
        }
        ul.legend aria-hidden="true" {
            @for severity in SEVERITIES {
                li { span class=(format!("sev-{severity}")) {} (severity.to_ascii_lowercase()) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_render_with_text_alternatives() {
        let now = Utc::now();
        let trend = score_trend("daily", &[(now, 50.0), (now, 75.0)]).into_string();
        assert!(trend.contains("from 50.0 % to 75.0 %"), "{trend}");
        assert!(trend.contains("<polyline"));
        let day = now.date_naive();
        let bars = severity_bars(&[(day, [1, 2, 0, 3])]).into_string();
        assert!(bars.contains("6 in all"), "{bars}");
        assert_eq!(bars.matches("<rect").count(), 3);
    }
}
