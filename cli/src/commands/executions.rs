//! `cairn executions`: runs of jobs.

use cairn_shared::domain::{Execution, ExecutionStatus};
use cairn_shared::http::views;
use cairn_shared::ports::ExecutionQuery;
use cairn_shared::services::CairnService;
use clap::Subcommand;
use serde_json::Value;

use super::service_err;
use crate::output::{table, Output};

#[derive(Debug, Subcommand)]
pub enum ExecutionsCmd {
    Show {
        id: String,
        #[arg(long)]
        logs: bool,
    },
    List {
        #[arg(long)]
        job: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
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
            e.queued_at.clone(),
            e.error.clone().unwrap_or_default(),
        ]
    };
    table(["ID", "TYPE", "JOB", "STATUS", "PROGRESS", "QUEUED", "ERROR"], all.iter().map(row))
}

pub async fn run(svc: &CairnService, cmd: ExecutionsCmd, out: Output) -> anyhow::Result<()> {
    match cmd {
        ExecutionsCmd::Show { id, logs } => {
            let d = svc.get_execution(&id, logs).await.map_err(service_err)?;
            out.emit(&views::execution_detail(&d), || {
                let mut text = executions_table(std::slice::from_ref(&d.execution));
                for l in d.logs.iter().flatten() {
                    text.push_str(&format!("\n{}  {:?}  {}  {}", l.timestamp, l.level, l.stage.as_str(), l.message));
                }
                text
            });
        }
        ExecutionsCmd::List { job, status, limit } => {
            let status = status
                .map(|s| ExecutionStatus::parse(&s).ok_or_else(|| anyhow::anyhow!("unknown status '{s}'")))
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
    Ok(())
}
