//! JSON lines: one record per line, as in history.jsonl and events.jsonl.

use std::io::{self, BufRead, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::limits;

/// Why a JSON-lines file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    /// A line is not a valid record.
    #[error("line {line}: {reason}")]
    Line {
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads every record, with the line number each came from. Blank lines are skipped.
pub fn read_records<T: DeserializeOwned>(
    reader: impl BufRead,
) -> Result<Vec<(usize, T)>, JsonlError> {
    let mut reader = reader;
    let mut records = Vec::new();
    let mut buffer = Vec::new();
    let mut line = 0;
    loop {
        buffer.clear();
        line += 1;
        // Bound each line so that a file without newlines cannot take all memory.
        let limit = limits::JSONL_LINE_BYTES_MAX as u64 + 1;
        let read = (&mut reader).take(limit).read_until(b'\n', &mut buffer)?;
        if read == 0 {
            return Ok(records);
        }
        if buffer.len() > limits::JSONL_LINE_BYTES_MAX {
            let reason = format!("longer than {} bytes", limits::JSONL_LINE_BYTES_MAX);
            return Err(JsonlError::Line { line, reason });
        }
        if buffer.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = serde_json::from_slice(&buffer)
            .map_err(|error| JsonlError::Line { line, reason: without_location(&error) })?;
        records.push((line, record));
    }
}

/// Writes each record on its own line.
pub fn write_records<'a, T: Serialize + 'a>(
    writer: impl Write,
    records: impl IntoIterator<Item = &'a T>,
) -> io::Result<()> {
    let mut writer = io::BufWriter::new(writer);
    for record in records {
        serde_json::to_writer(&mut writer, record)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()
}

/// A serde_json message without its " at line 1 column N" suffix, which is redundant on a
/// single line except for the column.
fn without_location(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => format!("{} (column {})", &text[..cut], error.column()),
        None => text,
    }
}
