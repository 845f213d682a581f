//! report.html: one self-contained page (inline CSS and SVG, no scripts, no external assets).

use std::fmt::Write;

use super::run_dir::RunData;
use super::summary::run_end_ns;
use super::timeline::timeline_svg;
use crate::checker::{Outcome, seconds};

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1060px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td pre { margin: 0; white-space: pre-wrap; font-size: 0.9em; }
.badge { padding: 2px 8px; border-radius: 4px; color: #fff; font-size: 0.8em; }
.badge.pass { background: #2a9d4b; } .badge.fail { background: #d1495b; } .badge.unknown { background: #888; }
.timeline text { font-size: 11px; fill: #555; } .timeline .axis line, .timeline .grid { stroke: #ccc; }
.op.ok { fill: #2a9d4b; } .op.fail { fill: #d1495b; } .op.info { fill: #edae49; }
.fault-window { fill: #d1495b; fill-opacity: 0.12; }
.leader line { stroke: #3b6ea5; stroke-dasharray: 4 3; } .leader text { fill: #3b6ea5; }
.throughput { fill: none; stroke: #3b6ea5; stroke-width: 1.5; }
.legend span { margin-right: 1.2em; } .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
";

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}

/// The report page of a run.
pub fn render_html(run: &RunData) -> String {
    let summary = &run.summary;
    let end_ns = run_end_ns(&run.history, &run.events).max(summary.timings.duration_ms * 1_000_000);
    let mut page = String::new();
    let title = escape(&summary.scenario);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>aspen-lab: {title}</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(page, "<h1>{title} {}</h1>", badge(summary.outcome));
    let _ = write!(page, "<p>{}</p>", escape(&summary.description));
    let _ = write!(
        page,
        "<p>seed {} · duration {} · reproduce with <code>aspen-lab run {title} --seed {}</code></p>",
        summary.seed,
        seconds(end_ns),
        summary.seed
    );
    page.push_str("<h2>Checks</h2><table class=\"verdicts\"><tr><th>check</th><th>outcome</th><th>reason</th></tr>");
    for verdict in &summary.verdicts {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            verdict.check,
            badge(verdict.outcome),
            escape(&verdict.reason)
        );
    }
    if summary.verdicts.is_empty() {
        page.push_str("<tr><td colspan=\"3\">no check was run</td></tr>");
    }
    page.push_str("</table><h2>Timeline</h2>");
    page.push_str(&timeline_svg(&run.history, &run.events, end_ns));
    page.push_str(LEGEND);
    numbers(&mut page, run);
    faults(&mut page, run, end_ns);
    steps(&mut page, run);
    page.push_str("</body></html>\n");
    page
}

const LEGEND: &str = "<p class=\"legend\"><span><i class=\"swatch\" style=\"background:#2a9d4b\"></i>ok</span><span><i class=\"swatch\" style=\"background:#d1495b\"></i>fail</span><span><i class=\"swatch\" style=\"background:#edae49\"></i>info (unknown outcome; no reply is drawn at the top)</span><span><i class=\"swatch\" style=\"background:#f5d5da\"></i>fault in effect</span><span>dashed line: new leader</span></p>";

fn badge(outcome: Outcome) -> String {
    let class = outcome.label().to_lowercase();
    format!("<span class=\"badge {class}\">{}</span>", outcome.label())
}

fn numbers(page: &mut String, run: &RunData) {
    let counts = &run.summary.counts;
    let latency = &run.summary.latency;
    let ms = |value: Option<f64>| value.map_or("–".to_string(), |ms| format!("{ms:.2} ms"));
    let _ = write!(
        page,
        "<h2>Operations</h2><table><tr><th>invoked</th><th>ok</th><th>fail</th><th>info</th><th>faults</th><th>leaders</th><th>p50</th><th>p99</th><th>max</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        counts.operations,
        counts.ok,
        counts.fail,
        counts.info,
        counts.faults,
        counts.leader_changes,
        ms(latency.p50_ms),
        ms(latency.p99_ms),
        ms(latency.max_ms)
    );
}

fn faults(page: &mut String, run: &RunData, end_ns: u64) {
    let windows = run.events.fault_windows(end_ns);
    if windows.is_empty() {
        return;
    }
    page.push_str(
        "<h2>Faults</h2><table><tr><th>node</th><th>fault</th><th>from</th><th>to</th></tr>",
    );
    for window in windows {
        let node = window.node.map_or("every node".to_string(), |node| node.to_string());
        let end = if window.healed { seconds(window.end_ns) } else { "never healed".to_string() };
        let _ = write!(
            page,
            "<tr><td>{node}</td><td>{}</td><td>{}</td><td>{end}</td></tr>",
            escape(&window.detail),
            seconds(window.start_ns)
        );
    }
    page.push_str("</table>");
}

fn steps(page: &mut String, run: &RunData) {
    let steps = &run.summary.timings.steps;
    if steps.is_empty() {
        return;
    }
    page.push_str("<h2>Steps</h2><table><tr><th>step</th><th>from</th><th>to</th></tr>");
    for step in steps {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{:.3} s</td><td>{:.3} s</td></tr>",
            escape(&step.step),
            step.start_ms as f64 / 1e3,
            step.end_ms as f64 / 1e3
        );
    }
    page.push_str("</table>");
}
