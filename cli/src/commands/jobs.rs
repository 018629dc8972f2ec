//! `cairn jobs`: backup jobs.

use std::path::PathBuf;
use std::sync::Arc;

use cairn_shared::domain::{Job, JobSpec, Trigger};
use cairn_shared::http::views;
use cairn_shared::runner::Runner;
use cairn_shared::services::{CairnService, JobSummary};
use clap::Subcommand;
use serde_json::json;

use super::{follow, parse, read_input, service_err};
use crate::output::{enabled, fields, table, when, when_opt, Output};

#[derive(Debug, Subcommand)]
pub enum JobsCmd {
    /// Create a job from a JSON file (`-` for standard input).
    Create {
        #[arg(long)]
        file: PathBuf,
    },
    List,
    Show {
        id: String,
    },
    /// Replace a job's definition from a JSON file.
    Update {
        id: String,
        #[arg(long)]
        file: PathBuf,
    },
    Delete {
        id: String,
    },
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    /// Queue a run of the job now.
    Run {
        id: String,
        /// Perform it in this process and follow it to its end with a progress bar; exit
        /// 0 Success, 1 Failed, 2 Partial, 3 Cancelled. Without it the run waits for a
        /// runner: the runner Lambda in AWS, or a `cairn serve` on the same tables.
        #[arg(long)]
        wait: bool,
    },
}

fn jobs_table(jobs: &[JobSummary]) -> String {
    let row = |s: &JobSummary| {
        let j = &s.job;
        let last = s
            .last_execution
            .as_ref()
            .map(|e| format!("{} {}", e.status.as_str(), when(e.ended_at.as_deref().unwrap_or(&e.queued_at))))
            .unwrap_or_default();
        [
            j.id.clone(),
            j.name.clone(),
            enabled(j.enabled),
            j.items.len().to_string(),
            last,
            when_opt(j.next_run_at.as_deref()),
        ]
    };
    table(["ID", "NAME", "STATE", "ITEMS", "LAST RUN", "NEXT RUN"], jobs.iter().map(row))
}

/// One job whole: its settings as lines, then its items.
fn job_text(s: &JobSummary) -> String {
    let j = &s.job;
    let schedule = j
        .schedule
        .as_ref()
        .map(|s| format!("{} ({})", s.cron, s.timezone))
        .unwrap_or_default();
    let last = s
        .last_execution
        .as_ref()
        .map(|e| format!("{} {} ({})", e.id, e.status.as_str(), when(&e.queued_at)));
    let mut text = fields(&[
        ("id", j.id.clone()),
        ("name", j.name.clone()),
        ("state", enabled(j.enabled)),
        ("runner", format!("{:?}", j.runner).to_lowercase()),
        ("destinations", j.destinations.join(", ")),
        ("schedule", schedule),
        ("next run", when_opt(j.next_run_at.as_deref())),
        ("last execution", last.unwrap_or_default()),
        ("hooks", enabled(j.hooks_enabled)),
        ("encrypted", if j.encryption.is_some() { "yes" } else { "no" }.to_owned()),
        ("created", when(&j.created_at)),
        ("updated", when(&j.updated_at)),
    ]);
    let items = j.items.iter().map(|i| {
        let source = serde_json::to_value(&i.source).unwrap_or_default();
        [i.name.clone(), source["type"].as_str().unwrap_or("").to_owned()]
    });
    text.push_str("\n\n");
    text.push_str(&table(["ITEM", "SOURCE"], items));
    text
}

/// Performs execution `id` in this process, and only it. Where another runner (a `cairn
/// serve` on the same tables) claimed it first, or no slot is free, following it is all
/// that is left to do.
async fn perform_here(runner: &Arc<Runner>, id: &str) {
    if let Err(e) = runner.execute_one(id).await {
        tracing::info!(execution_id = id, error = %e, "not performed here; following it");
    }
}

async fn summaries(svc: &CairnService, jobs: Vec<Job>) -> anyhow::Result<Vec<JobSummary>> {
    let mut all = Vec::with_capacity(jobs.len());
    for j in jobs {
        all.push(svc.job_summary(j).await.map_err(service_err)?);
    }
    Ok(all)
}

/// Runs the command; `local` is this process's runner when no runner Lambda is configured
/// (`jobs run --wait` then performs its execution here).
pub async fn run(svc: &CairnService, local: Option<Arc<Runner>>, cmd: JobsCmd, out: Output) -> anyhow::Result<i32> {
    let show = |j: &Job, verb: &str| {
        let v = views::plain(j);
        out.emit(&v, || format!("{verb} {} ({})", j.name, j.id));
    };
    match cmd {
        JobsCmd::Create { file } => {
            let spec: JobSpec = parse(&read_input(&file)?)?;
            show(&svc.create_job(spec).await.map_err(service_err)?, "created job");
        }
        JobsCmd::List => {
            let jobs = svc.list_jobs().await.map_err(service_err)?;
            let v = views::plain(&jobs);
            let all = summaries(svc, jobs).await?;
            out.emit(&v, || jobs_table(&all));
        }
        JobsCmd::Show { id } => {
            let j = svc.get_job(&id).await.map_err(service_err)?;
            let v = views::plain(&j);
            let summary = svc.job_summary(j).await.map_err(service_err)?;
            out.emit(&v, || job_text(&summary));
        }
        JobsCmd::Update { id, file } => {
            let spec: JobSpec = parse(&read_input(&file)?)?;
            show(&svc.update_job(&id, spec).await.map_err(service_err)?, "updated job");
        }
        JobsCmd::Delete { id } => {
            svc.delete_job(&id).await.map_err(service_err)?;
            out.emit(&json!({"deleted": id}), || format!("deleted job {id}"));
        }
        JobsCmd::Enable { id } => show(&svc.set_job_enabled(&id, true).await.map_err(service_err)?, "enabled job"),
        JobsCmd::Disable { id } => show(&svc.set_job_enabled(&id, false).await.map_err(service_err)?, "disabled job"),
        JobsCmd::Run { id, wait: true } => {
            let t = svc.run_job(&id, Trigger::Cli, None).await.map_err(service_err)?;
            if out == Output::Text {
                eprintln!("queued execution {}", t.execution_id);
            }
            return match local {
                Some(runner) => {
                    let (_, code) = tokio::join!(perform_here(&runner, &t.execution_id), follow::wait(svc, &t.execution_id, out));
                    code
                }
                None => follow::wait(svc, &t.execution_id, out).await,
            };
        }
        JobsCmd::Run { id, wait: false } => {
            let t = svc.run_job(&id, Trigger::Cli, None).await.map_err(service_err)?;
            out.emit(&json!({"executionId": t.execution_id}), || {
                format!(
                    "queued execution {id}\nfollow it with: cairn executions wait {id}",
                    id = t.execution_id
                )
            });
        }
    }
    Ok(0)
}
