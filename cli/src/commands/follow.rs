//! Following an execution as it runs: `--wait` (a progress bar on a terminal, a plain
//! line per change elsewhere) and `logs --follow`.

use std::io::IsTerminal;
use std::time::Duration;

use cairn_shared::domain::{Execution, ExecutionStatus, LogEntry};
use cairn_shared::http::views;
use cairn_shared::services::CairnService;
use cairn_shared::units::{human_bytes, human_duration_ms};
use indicatif::{ProgressBar, ProgressStyle};

use super::service_err;
use crate::output::Output;

/// How often the execution is read while it runs.
const POLL: Duration = Duration::from_millis(500);

/// The exit code for an execution's end: 0 Success, 1 Failed, 2 Partial, 3 Cancelled.
pub fn exit_code(status: ExecutionStatus) -> i32 {
    match status {
        ExecutionStatus::Success => 0,
        ExecutionStatus::Partial => 2,
        ExecutionStatus::Cancelled => 3,
        _ => 1,
    }
}

/// Follows execution `id` to its end, then prints it; answers its exit code.
pub async fn wait(svc: &CairnService, id: &str, out: Output) -> anyhow::Result<i32> {
    let mut view = Progress::new(out);
    let end = loop {
        let d = svc.get_execution(id, false).await.map_err(service_err)?;
        if d.execution.status.is_terminal() {
            break d.execution;
        }
        view.show(&d.execution, d.queue_position);
        tokio::time::sleep(POLL).await;
    };
    view.finish();
    out.emit(&views::execution(&end), || final_line(&end));
    Ok(exit_code(end.status))
}

/// `e1: Success in 12.3 s, 45.1 MiB stored` or `e1: Failed in 2.0 s: <error>`.
fn final_line(e: &Execution) -> String {
    let mut line = format!("{}: {}", e.id, e.status.as_str());
    if let Some(ms) = e.duration {
        line.push_str(&format!(" in {}", human_duration_ms(ms)));
    }
    if let Some(size) = e.size.filter(|s| *s > 0) {
        line.push_str(&format!(", {} stored", human_bytes(size)));
    }
    if let Some(error) = &e.error {
        line.push_str(&format!(": {error}"));
    }
    line
}

/// What is shown while an execution runs: a bar on a terminal, lines elsewhere, nothing
/// with `--output json`.
enum Progress {
    Bar(ProgressBar),
    Lines { last: String },
    Quiet,
}

impl Progress {
    fn new(out: Output) -> Self {
        if out == Output::Json {
            return Self::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Self::Lines { last: String::new() };
        }
        let bar = ProgressBar::new(100);
        let style = ProgressStyle::with_template("{spinner} {prefix:<9} [{bar:32}] {pos:>3}%  {msg}  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::Bar(bar)
    }

    fn show(&mut self, e: &Execution, queue_position: Option<u64>) {
        let detail = match queue_position {
            Some(p) => format!("queued, position {p}; waiting for a runner (the runner Lambda, or `cairn serve`)"),
            None => detail(e),
        };
        match self {
            Self::Bar(bar) => {
                bar.set_prefix(e.status.as_str().to_owned());
                bar.set_position(u64::from(e.progress));
                bar.set_message(detail);
            }
            Self::Lines { last } => {
                let line = format!("{} {}% {detail}", e.status.as_str(), e.progress);
                if *last != line {
                    eprintln!("{line}");
                    *last = line;
                }
            }
            Self::Quiet => {}
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// `Uploading, 1.2 GiB read, 85.0 MiB/s`: the stage, and while data moves, how much and
/// how fast (averaged since the execution started).
fn detail(e: &Execution) -> String {
    let mut text = e.stage.as_str().to_owned();
    if let Some(read) = e.bytes_read.filter(|b| *b > 0) {
        text.push_str(&format!(", {} read", human_bytes(read)));
        let running_for = e
            .started_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds());
        if let Some(secs) = running_for.and_then(|s| u64::try_from(s).ok()).filter(|s| *s > 0) {
            text.push_str(&format!(", {}/s", human_bytes(read / secs)));
        }
    }
    text
}

/// One log entry as a line: time, level and stage in columns, then the message.
pub fn log_line(l: &LogEntry) -> String {
    format!(
        "{}  {:<7}  {:<18}  {}",
        l.timestamp,
        format!("{:?}", l.level),
        l.stage.as_str(),
        l.message
    )
}

/// Prints the execution's log entries as they arrive, until it has ended and every entry
/// is printed.
pub async fn follow_logs(svc: &CairnService, id: &str) -> anyhow::Result<()> {
    let mut printed = 0;
    loop {
        let d = svc.get_execution(id, true).await.map_err(service_err)?;
        let logs = d.logs.unwrap_or_default();
        for l in logs.iter().skip(printed) {
            println!("{}", log_line(l));
        }
        printed = printed.max(logs.len());
        if d.execution.status.is_terminal() {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_has_its_own_exit_code() {
        assert_eq!(exit_code(ExecutionStatus::Success), 0);
        assert_eq!(exit_code(ExecutionStatus::Failed), 1);
        assert_eq!(exit_code(ExecutionStatus::Partial), 2);
        assert_eq!(exit_code(ExecutionStatus::Cancelled), 3);
    }
}
