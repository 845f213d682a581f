//! The timeline plot: an inline SVG with operation latencies (log scale) coloured by outcome,
//! throughput, shaded fault windows and leader changes on one time axis.

use std::fmt::Write;

use super::html::escape;
use crate::checker::seconds;
use crate::history::{EventKind, Events, FaultWindow, History, OpType};
use crate::limits;

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const LATENCY_HEIGHT: f64 = 260.0;
const GAP: f64 = 40.0;
const THROUGHPUT_HEIGHT: f64 = 110.0;
const BOTTOM: f64 = 40.0;

/// Maps run time to x and values to y within the plot areas.
struct Scale {
    end_ns: f64,
    /// log10 of the lowest and highest latency shown, in milliseconds.
    log_low: f64,
    log_high: f64,
}

impl Scale {
    fn x(&self, time_ns: u64) -> f64 {
        LEFT + (time_ns as f64 / self.end_ns) * (WIDTH - LEFT - RIGHT)
    }

    fn latency_y(&self, latency_ms: f64) -> f64 {
        let fraction =
            (latency_ms.max(1e-3).log10() - self.log_low) / (self.log_high - self.log_low);
        TOP + LATENCY_HEIGHT * (1.0 - fraction.clamp(0.0, 1.0))
    }
}

/// The whole timeline as an `<svg>` element.
pub(super) fn timeline_svg(history: &History, events: &Events, end_ns: u64) -> String {
    let operations = history.operations();
    let latencies: Vec<f64> =
        operations.iter().filter_map(|op| op.latency_ns()).map(|ns| ns as f64 / 1e6).collect();
    let low = latencies.iter().copied().fold(f64::INFINITY, f64::min);
    let high = latencies.iter().copied().fold(0.0, f64::max);
    let (log_low, log_high) = if latencies.is_empty() {
        (0.0, 3.0)
    } else {
        let log_low = low.max(1e-3).log10().floor();
        (log_low, high.max(1e-3).log10().ceil().max(log_low + 1.0))
    };
    let scale = Scale { end_ns: end_ns.max(1) as f64, log_low, log_high };
    let height = TOP + LATENCY_HEIGHT + GAP + THROUGHPUT_HEIGHT + BOTTOM;
    let mut svg = format!(
        r#"<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="timeline">"#
    );
    for window in events.fault_windows(end_ns) {
        fault_window(&mut svg, &scale, &window, height);
    }
    axes(&mut svg, &scale, height);
    let stride = operations.len().div_ceil(limits::REPORT_POINTS_MAX).max(1);
    for operation in operations.iter().step_by(stride) {
        let (class, latency_ms) = match (operation.outcome(), operation.latency_ns()) {
            (OpType::Ok, Some(ns)) => ("ok", ns as f64 / 1e6),
            (OpType::Fail, Some(ns)) => ("fail", ns as f64 / 1e6),
            (_, Some(ns)) => ("info", ns as f64 / 1e6),
            (_, None) => ("info", 10f64.powf(scale.log_high)),
        };
        let (x, y) = (scale.x(operation.invoke.time_ns), scale.latency_y(latency_ms));
        let title = format!(
            "{} {} {:?}: {class} in {latency_ms:.1} ms",
            operation.invoke.process,
            operation.invoke.f,
            operation.key()
        );
        let _ = write!(
            svg,
            r#"<circle class="op {class}" cx="{x:.1}" cy="{y:.1}" r="2"><title>{}</title></circle>"#,
            escape(&title)
        );
    }
    throughput(&mut svg, &scale, history, end_ns);
    for leader in events.of_kind(EventKind::Leader) {
        let x = scale.x(leader.time_ns);
        let node = leader.node.map_or("?".to_string(), |node| node.to_string());
        let label = format!("node {node} leads at {} {}", seconds(leader.time_ns), leader.detail);
        let _ = write!(
            svg,
            r#"<g class="leader"><line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/><text x="{x:.1}" y="{:.1}">n{node}</text><title>{}</title></g>"#,
            height - BOTTOM,
            TOP - 6.0,
            escape(label.trim_end())
        );
    }
    svg.push_str("</svg>");
    svg
}

fn fault_window(svg: &mut String, scale: &Scale, window: &FaultWindow, height: f64) {
    let (x1, x2) = (scale.x(window.start_ns), scale.x(window.end_ns));
    let node = window.node.map_or("every node".to_string(), |node| format!("node {node}"));
    let end =
        if window.healed { seconds(window.end_ns) } else { "the end (never healed)".to_string() };
    let title = format!("{} {node} from {} to {end}", window.detail, seconds(window.start_ns));
    let _ = write!(
        svg,
        r#"<rect class="fault-window" x="{x1:.1}" y="{TOP}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
        (x2 - x1).max(1.0),
        height - TOP - BOTTOM,
        escape(&title)
    );
}

fn axes(svg: &mut String, scale: &Scale, height: f64) {
    let bottom = height - BOTTOM;
    let _ = write!(
        svg,
        r#"<g class="axis"><line x1="{LEFT}" y1="{bottom}" x2="{:.1}" y2="{bottom}"/>"#,
        WIDTH - RIGHT
    );
    for tick in 0..=10 {
        let time_ns = (scale.end_ns * f64::from(tick) / 10.0) as u64;
        let x = scale.x(time_ns);
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{:.1} s</text>"#,
            bottom + 16.0,
            time_ns as f64 / 1e9
        );
    }
    let mut decade = scale.log_low;
    while decade <= scale.log_high {
        let latency_ms = 10f64.powf(decade);
        let y = scale.latency_y(latency_ms);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{} ms</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            latency_ms
        );
        decade += 1.0;
    }
    let _ = write!(svg, r#"<text x="{LEFT}" y="{:.1}">latency (log scale)</text>"#, TOP - 14.0);
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{:.1}">throughput (ok ops/s)</text></g>"#,
        TOP + LATENCY_HEIGHT + GAP - 8.0
    );
}

/// Completed `ok` operations per second, in equal time buckets, as a line.
fn throughput(svg: &mut String, scale: &Scale, history: &History, end_ns: u64) {
    let buckets = limits::REPORT_THROUGHPUT_BUCKETS;
    let bucket_ns = (end_ns.max(1) as f64 / buckets as f64).max(1.0);
    let mut counts = vec![0u64; buckets];
    for op in history.ops().iter().filter(|op| op.op_type == OpType::Ok) {
        counts[((op.time_ns as f64 / bucket_ns) as usize).min(buckets - 1)] += 1;
    }
    let rates: Vec<f64> = counts.iter().map(|count| *count as f64 / (bucket_ns / 1e9)).collect();
    let peak = rates.iter().copied().fold(1.0, f64::max);
    let base = TOP + LATENCY_HEIGHT + GAP + THROUGHPUT_HEIGHT;
    let points: Vec<String> = rates
        .iter()
        .enumerate()
        .map(|(bucket, rate)| {
            let x = scale.x(((bucket as f64 + 0.5) * bucket_ns) as u64);
            format!("{x:.1},{:.1}", base - THROUGHPUT_HEIGHT * rate / peak)
        })
        .collect();
    let _ = write!(svg, r#"<polyline class="throughput" points="{}"/>"#, points.join(" "));
    let _ = write!(
        svg,
        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{peak:.0}/s</text>"#,
        LEFT - 6.0,
        base - THROUGHPUT_HEIGHT + 4.0
    );
}
