//! The files of a run directory, read and written together.

use std::fs;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use super::html::render_html;
use super::summary::RunSummary;
use crate::history::{Events, History};

/// The run's summary, as JSON.
pub const SUMMARY_FILE: &str = "summary.json";
/// The client operations, as JSON lines.
pub const HISTORY_FILE: &str = "history.jsonl";
/// The lab events, as JSON lines.
pub const EVENTS_FILE: &str = "events.jsonl";
/// The self-contained report page.
pub const REPORT_FILE: &str = "report.html";

/// Why a run directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct RunDirError {
    /// The file at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// Everything a report is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct RunData {
    /// summary.json.
    pub summary: RunSummary,
    /// history.jsonl (empty if the run recorded none).
    pub history: History,
    /// events.jsonl (empty if the run recorded none).
    pub events: Events,
}

impl RunData {
    /// Reads a run directory. summary.json is required; a missing history or events file
    /// counts as empty, since a run without a workload records none.
    pub fn load(dir: &Path) -> Result<Self, RunDirError> {
        let path = dir.join(SUMMARY_FILE);
        let text = fs::read_to_string(&path).map_err(|error| failed(&path, error))?;
        let summary = serde_json::from_str(&text).map_err(|error| failed(&path, error))?;
        let history = match open_optional(&dir.join(HISTORY_FILE))? {
            Some(reader) => History::read_jsonl(reader)
                .map_err(|error| failed(&dir.join(HISTORY_FILE), error))?,
            None => History::default(),
        };
        let events = match open_optional(&dir.join(EVENTS_FILE))? {
            Some(reader) => {
                Events::read_jsonl(reader).map_err(|error| failed(&dir.join(EVENTS_FILE), error))?
            }
            None => Events::default(),
        };
        Ok(Self { summary, history, events })
    }

    /// Writes every file of a run directory, report included, creating the directory.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let summary = serde_json::to_string_pretty(&self.summary).map_err(io::Error::other)?;
        fs::write(dir.join(SUMMARY_FILE), summary + "\n")?;
        self.history.write_jsonl(fs::File::create(dir.join(HISTORY_FILE))?)?;
        self.events.write_jsonl(fs::File::create(dir.join(EVENTS_FILE))?)?;
        fs::write(dir.join(REPORT_FILE), render_html(self))
    }
}

/// Rebuilds report.html from the other files of a run directory; returns its path.
pub fn rebuild_report(dir: &Path) -> Result<PathBuf, RunDirError> {
    let run = RunData::load(dir)?;
    let path = dir.join(REPORT_FILE);
    fs::write(&path, render_html(&run)).map_err(|error| failed(&path, error))?;
    Ok(path)
}

fn open_optional(path: &Path) -> Result<Option<BufReader<fs::File>>, RunDirError> {
    match fs::File::open(path) {
        Ok(file) => Ok(Some(BufReader::new(file))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(failed(path, error)),
    }
}

fn failed(path: &Path, error: impl std::fmt::Display) -> RunDirError {
    RunDirError { path: path.to_path_buf(), reason: error.to_string() }
}
