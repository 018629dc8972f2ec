//! What the CLI prints: a human-readable table or line by default, or exactly one JSON
//! document with `--output json` (the API's shapes).

use clap::ValueEnum;
use serde_json::{json, Value};

/// Output format: human-readable text, or one JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

impl Output {
    /// Prints `value` as JSON, or `text` for humans.
    pub fn emit(self, value: &Value, text: impl FnOnce() -> String) {
        match self {
            Self::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
            Self::Text => println!("{}", text()),
        }
    }

    /// Prints a failure: one line for humans, or `{"success": false, "error": ...}`.
    pub fn error(self, e: &anyhow::Error) {
        match self {
            Self::Json => println!("{}", json!({"success": false, "error": format!("{e:#}")})),
            Self::Text => eprintln!("error: {e:#}"),
        }
    }
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table<const N: usize>(header: [&str; N], rows: impl IntoIterator<Item = [String; N]>) -> String {
    let rows: Vec<[String; N]> = rows.into_iter().collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

/// `enabled` or `disabled`.
pub fn enabled(on: bool) -> String {
    if on { "enabled" } else { "disabled" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_their_widest_cell() {
        let t = table(
            ["ID", "NAME"],
            [["a".to_owned(), "first".to_owned()], ["long-id".to_owned(), "x".to_owned()]],
        );
        assert_eq!(t, "ID       NAME\na        first\nlong-id  x");
    }
}
