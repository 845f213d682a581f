//! The run directory and the report: `summary.json` and a self-contained `report.html`.
//!
//! A run directory holds `summary.json` ([`RunSummary`]: scenario, seed, verdicts, counts,
//! latency percentiles, step timings), `history.jsonl`, `events.jsonl`, each node's log, and
//! `report.html`. The page is built only from the other files ([`rebuild_report`]), so
//! `aspen-lab report <dir>` can redraw it after the run, and it is one file with inline CSS and
//! SVG: it opens offline, from an archive or a CI artifact, and references nothing outside.
//!
//! The timeline shows each operation as a dot at its invocation time and latency (log scale),
//! coloured by outcome; completed operations per second below it; one shaded window per fault
//! (from `fault_start` to its `fault_end`); and a dashed line per leader change.
//!
//! Caveats:
//! - Past `REPORT_POINTS_MAX` operations the dots are sampled evenly; the counts and
//!   percentiles still cover every operation.
//! - No scripts: tooltips are SVG `<title>` elements, so there is no zooming.

mod html;
mod run_dir;
mod summary;
mod timeline;

#[cfg(test)]
mod tests;

pub use html::{escape, render_html};
pub use run_dir::{
    EVENTS_FILE, HISTORY_FILE, REPORT_FILE, RunData, RunDirError, SUMMARY_FILE, rebuild_report,
};
pub use summary::{Counts, Latency, RunSummary, StepTiming, Timings, run_end_ns};
