//! `cairn executions`: runs of jobs.

use cairn_shared::domain::{Execution, ExecutionStatus};
use cairn_shared::http::views;
use cairn_shared::ports::ExecutionQuery;
use cairn_shared::services::{CairnService, ExecutionDetail};
use cairn_shared::units::{human_bytes, human_duration_ms};
use clap::Subcommand;
use serde_json::Value;

use super::{follow, service_err};
use crate::output::{fields, table, when, when_opt, Output};

#[derive(Debug, Subcommand)]
pub enum ExecutionsCmd {
    /// One execution whole, with its logs if asked.
    Show {
        id: String,
        #[arg(long)]
        logs: bool,
    },
    /// The newest executions first.
    List {
        #[arg(long)]
        job: Option<String>,
        /// Pending, Running, Success, Partial, Failed or Cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Follow an execution to its end with a progress bar; exit 0 Success, 1 Failed,
    /// 2 Partial, 3 Cancelled.
    Wait {
        id: String,
    },
    /// An execution's log entries; with --follow, as they arrive until it ends.
    Logs {
        id: String,
        #[arg(long, short)]
        follow: bool,
    },
    Cancel {
        id: String,
    },
}

fn executions_table(all: &[Execution]) -> String {
    let row = |e: &Execution| {
        [
            e.id.clone(),
            format!("{:?}", e.execution_type),
            e.job_name.clone(),
            e.status.as_str().to_owned(),
            format!("{}%", e.progress),
            when(&e.queued_at),
            e.duration.map(human_duration_ms).unwrap_or_default(),
            e.size.map(human_bytes).unwrap_or_default(),
            e.error.clone().unwrap_or_default(),
        ]
    };
    table(
        ["ID", "TYPE", "JOB", "STATUS", "PROGRESS", "QUEUED", "DURATION", "SIZE", "ERROR"],
        all.iter().map(row),
    )
}

/// One execution as `name  value` lines, then its logs.
fn detail_text(d: &ExecutionDetail) -> String {
    let e = &d.execution;
    let mut text = fields(&[
        ("id", e.id.clone()),
        ("type", format!("{:?}", e.execution_type)),
        ("job", format!("{} ({})", e.job_name, e.job_id)),
        ("status", e.status.as_str().to_owned()),
        ("stage", format!("{} ({}%)", e.stage.as_str(), e.progress)),
        ("queue position", d.queue_position.map(|p| p.to_string()).unwrap_or_default()),
        ("queued", when(&e.queued_at)),
        ("started", when_opt(e.started_at.as_deref())),
        ("ended", when_opt(e.ended_at.as_deref())),
        ("duration", e.duration.map(human_duration_ms).unwrap_or_default()),
        ("size", e.size.map(human_bytes).unwrap_or_default()),
        ("path", e.path.clone().unwrap_or_default()),
        ("error", e.error.clone().unwrap_or_default()),
        ("pruned", e.pruned.clone().unwrap_or_default()),
    ]);
    if !e.items.is_empty() {
        let items = e.items.iter().map(|i| {
            [
                i.name.clone(),
                i.status.as_str().to_owned(),
                i.size.map(human_bytes).unwrap_or_default(),
                i.error.clone().unwrap_or_default(),
            ]
        });
        text.push_str("\n\n");
        text.push_str(&table(["ITEM", "STATUS", "SIZE", "ERROR"], items));
    }
    for l in d.logs.iter().flatten() {
        text.push('\n');
        text.push_str(&follow::log_line(l));
    }
    text
}

pub async fn run(svc: &CairnService, cmd: ExecutionsCmd, out: Output) -> anyhow::Result<i32> {
    match cmd {
        ExecutionsCmd::Show { id, logs } => {
            let d = svc.get_execution(&id, logs).await.map_err(service_err)?;
            out.emit(&views::execution_detail(&d), || detail_text(&d));
        }
        ExecutionsCmd::List { job, status, limit } => {
            let status = status
                .map(|s| {
                    ExecutionStatus::parse(&s)
                        .ok_or_else(|| anyhow::anyhow!("unknown status '{s}': use Pending, Running, Success, Partial, Failed or Cancelled"))
                })
                .transpose()?;
            let q = ExecutionQuery {
                job_id: job,
                status,
                limit,
                cursor: None,
            };
            let page = svc.list_executions(&q).await.map_err(service_err)?;
            let v: Vec<Value> = page.executions.iter().map(views::execution).collect();
            out.emit(&Value::Array(v), || executions_table(&page.executions));
        }
        ExecutionsCmd::Wait { id } => return follow::wait(svc, &id, out).await,
        ExecutionsCmd::Logs { id, follow: true } => follow::follow_logs(svc, &id).await?,
        ExecutionsCmd::Logs { id, follow: false } => {
            let d = svc.get_execution(&id, true).await.map_err(service_err)?;
            let logs = d.logs.clone().unwrap_or_default();
            out.emit(&serde_json::to_value(&logs).unwrap_or_default(), || {
                let rows = logs.iter().map(|l| {
                    [
                        l.timestamp.clone(),
                        format!("{:?}", l.level),
                        l.stage.as_str().to_owned(),
                        l.message.clone(),
                    ]
                });
                table(["TIME", "LEVEL", "STAGE", "MESSAGE"], rows)
            });
        }
        ExecutionsCmd::Cancel { id } => {
            let e = svc.cancel_execution(&id).await.map_err(service_err)?;
            let what = if e.status == ExecutionStatus::Cancelled {
                "cancelled"
            } else {
                "cancel requested"
            };
            out.emit(&views::execution(&e), || format!("{}: {what}", e.id));
        }
    }
    Ok(0)
}
