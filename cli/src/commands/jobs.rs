//! `cairn jobs`: backup jobs.

use std::path::PathBuf;

use cairn_shared::domain::{Job, JobSpec, Trigger};
use cairn_shared::http::views;
use cairn_shared::services::CairnService;
use clap::Subcommand;
use serde_json::json;

use super::{parse, read_input, service_err};
use crate::output::{enabled, table, Output};

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
    },
}

fn jobs_table(jobs: &[Job]) -> String {
    let row = |j: &Job| {
        [
            j.id.clone(),
            j.name.clone(),
            enabled(j.enabled),
            j.items.len().to_string(),
            j.next_run_at.clone().unwrap_or_default(),
        ]
    };
    table(["ID", "NAME", "STATE", "ITEMS", "NEXT RUN"], jobs.iter().map(row))
}

pub async fn run(svc: &CairnService, cmd: JobsCmd, out: Output) -> anyhow::Result<()> {
    let show = |j: &Job, verb: &str| {
        let v = views::plain(j);
        out.emit(&v, || format!("{verb}\n{}", jobs_table(std::slice::from_ref(j))));
    };
    match cmd {
        JobsCmd::Create { file } => {
            let spec: JobSpec = parse(&read_input(&file)?)?;
            show(&svc.create_job(spec).await.map_err(service_err)?, "created job");
        }
        JobsCmd::List => {
            let jobs = svc.list_jobs().await.map_err(service_err)?;
            out.emit(&views::plain(&jobs), || jobs_table(&jobs));
        }
        JobsCmd::Show { id } => {
            let j = svc.get_job(&id).await.map_err(service_err)?;
            let v = views::plain(&j);
            out.emit(&v, || serde_json::to_string_pretty(&v).unwrap_or_default());
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
        JobsCmd::Run { id } => {
            let t = svc.run_job(&id, Trigger::Cli, None).await.map_err(service_err)?;
            out.emit(&json!({"executionId": t.execution_id}), || {
                format!("queued execution {}", t.execution_id)
            });
        }
    }
    Ok(())
}
