//! Reading scenario files and finding them in a directory.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::model::Scenario;
use super::validate::{FieldError, parse_scenario};
use crate::limits;

/// The JSON Schema that lives beside the scenarios and is not itself a scenario.
pub const SCHEMA_FILE_NAME: &str = "schema.json";

/// Why a scenario file could not be used.
#[derive(Debug)]
pub enum ScenarioFileError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file is larger than `SCENARIO_FILE_BYTES_MAX`.
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file was read but is not a valid scenario.
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, each at its field.
        errors: Vec<FieldError>,
    },
}

impl fmt::Display for ScenarioFileError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioFileError::Io { path, source } => {
                write!(formatter, "{}: cannot read: {source}", path.display())
            }
            ScenarioFileError::TooLarge { path } => {
                let max = limits::SCENARIO_FILE_BYTES_MAX;
                write!(formatter, "{}: larger than {max} bytes", path.display())
            }
            ScenarioFileError::Invalid { path, errors } => {
                let lines: Vec<String> =
                    errors.iter().map(|error| format!("{}: {error}", path.display())).collect();
                formatter.write_str(&lines.join("\n"))
            }
        }
    }
}

impl std::error::Error for ScenarioFileError {}

/// Reads, parses and validates one scenario file.
pub fn load_scenario(path: &Path) -> Result<Scenario, ScenarioFileError> {
    let io_error = |source| ScenarioFileError::Io { path: path.to_path_buf(), source };
    let file = fs::File::open(path).map_err(io_error)?;
    let mut text = String::new();
    // Read one byte past the limit so that an oversized file is refused without reading it all.
    file.take(limits::SCENARIO_FILE_BYTES_MAX + 1).read_to_string(&mut text).map_err(io_error)?;
    if text.len() as u64 > limits::SCENARIO_FILE_BYTES_MAX {
        return Err(ScenarioFileError::TooLarge { path: path.to_path_buf() });
    }
    parse_scenario(&text)
        .map_err(|errors| ScenarioFileError::Invalid { path: path.to_path_buf(), errors })
}

/// The scenario files in `dir` (`*.json` except the schema), sorted by name.
pub fn scenario_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let is_json = path.extension().is_some_and(|extension| extension == "json");
        let is_schema = path.file_name().is_some_and(|name| name == SCHEMA_FILE_NAME);
        if is_json && !is_schema && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The files named on a command line: each directory becomes its scenario files.
pub fn expand_paths(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(scenario_files(path)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}
