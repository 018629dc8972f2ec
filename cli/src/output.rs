//! What the CLI prints: a human-readable table or line by default, or exactly one JSON
//! document with `--output json` (the API's shapes).

use chrono::{DateTime, Local, Utc};
use clap::ValueEnum;
use comfy_table::{presets, ContentArrangement, Table};
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

/// Rows under a header, each column as wide as its widest cell (wrapped to the
/// terminal's width when printing to one).
pub fn table<const N: usize>(header: [&str; N], rows: impl IntoIterator<Item = [String; N]>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    for row in rows {
        t.add_row(row);
    }
    // The preset pads every cell by one space on each side: lines start at the margin and
    // end where their text ends.
    t.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `name: value` lines, the names aligned: one record shown whole.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An ISO 8601 instant in local time with its age: `2026-12-01 14:03:12 (5 min ago)`.
/// Text that is not an instant is shown as it is.
pub fn when(iso: &str) -> String {
    when_at(iso, Utc::now())
}

fn when_at(iso: &str, now: DateTime<Utc>) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(iso) else {
        return iso.to_owned();
    };
    let local = t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
    format!("{local} ({})", age(now.signed_duration_since(t.with_timezone(&Utc))))
}

/// `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 days ago`; `in 5 min` ahead.
fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds();
    let span = |s: i64| match s {
        0..=4 => None,
        5..=59 => Some(format!("{s} s")),
        60..=3_599 => Some(format!("{} min", s / 60)),
        3_600..=86_399 => Some(format!("{} h", s / 3_600)),
        _ => Some(format!("{} days", s / 86_400)),
    };
    match (s >= 0, span(s.abs())) {
        (_, None) => "just now".into(),
        (true, Some(a)) => format!("{a} ago"),
        (false, Some(a)) => format!("in {a}"),
    }
}

/// An optional instant, or nothing.
pub fn when_opt(iso: Option<&str>) -> String {
    iso.map(when).unwrap_or_default()
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
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        let name_at = lines[0].find("NAME").unwrap();
        assert_eq!(lines[1].find("first"), Some(name_at), "{t}");
        assert_eq!(lines[2].find('x'), Some(name_at), "{t}");
        assert!(lines[2].contains("long-id"));
    }

    #[test]
    fn instants_show_their_age() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z").unwrap().with_timezone(&Utc);
        assert!(when_at("2026-12-01T11:55:00Z", now).ends_with("(5 min ago)"));
        assert!(when_at("2026-12-01T11:59:58Z", now).ends_with("(just now)"));
        assert!(when_at("2026-11-28T12:00:00Z", now).ends_with("(3 days ago)"));
        assert!(when_at("2026-12-01T14:00:00Z", now).ends_with("(in 2 h)"));
        assert_eq!(when_at("soon", now), "soon");
    }

    #[test]
    fn fields_align_and_skip_empty_values() {
        assert_eq!(
            fields(&[("id", "e1".into()), ("error", String::new()), ("status", "Success".into())]),
            "id      e1\nstatus  Success"
        );
    }
}
