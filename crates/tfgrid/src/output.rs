//! How results are shown: JSON for scripts, or text and tables for people, on stdout; notes on
//! stderr. A reader that stops early (`tfgrid ... | head`) ends the command quietly, as Unix tools
//! do, instead of a panic: stdout's [`StdoutClosed`] goes up to `main`, which exits without a word.

use std::fmt::Display;
use std::io::{ErrorKind, Write};

use anyhow::{Context, Result};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

/// Stdout's reader went away: nothing more can be shown, and nothing is wrong.
#[derive(Debug)]
pub struct StdoutClosed;

impl Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `text` and a line end to stdout, now: a closed pipe is [`StdoutClosed`].
pub fn print(text: impl Display) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        written => written.context("writing to stdout"),
    }
}

/// Writes a note (progress, what a call cost) and a line end to stderr; with nobody reading stderr
/// any more, the note is dropped.
pub fn note(text: impl Display) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or its human rendering.
    pub fn show<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) -> Result<()> {
        if self.json {
            print(serde_json::to_string_pretty(value).expect("results serialize"))
        } else {
            print(human(value))
        }
    }
}

/// A text table with a header row.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
}

/// `key: value` lines, aligned.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn gib(bytes: u64) -> String {
    format!("{} GiB", bytes / (1024 * 1024 * 1024))
}
