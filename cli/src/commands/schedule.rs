//! `cairn schedule`: what the EventBridge rule does every minute.

use cairn_shared::services::CairnService;
use clap::Subcommand;
use serde_json::json;

use super::service_err;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Run one schedule tick now (or as if at --at, an ISO 8601 time): what the
    /// EventBridge rule does every minute.
    Tick {
        #[arg(long)]
        at: Option<String>,
    },
}

pub async fn run(svc: &CairnService, cmd: ScheduleCmd, out: Output) -> anyhow::Result<()> {
    let ScheduleCmd::Tick { at } = cmd;
    let now = match at {
        Some(a) => cairn_shared::time::parse_iso(&a)
            .ok_or_else(|| anyhow::anyhow!("--at must be an ISO 8601 time such as 2026-01-15T03:00:00Z"))?,
        None => cairn_shared::time::now(),
    };
    let started = svc.schedule_tick(now).await.map_err(service_err)?;
    out.emit(&json!({"started": started}), || {
        format!("{} scheduled run(s) started", started.len())
    });
    Ok(())
}
