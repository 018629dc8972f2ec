//! `cairn settings`: system settings.

use cairn_shared::http::views;
use cairn_shared::services::CairnService;
use clap::{Subcommand, ValueEnum};

use super::service_err;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum SettingsCmd {
    Show,
    /// `cairn settings set max-concurrent-jobs N`
    Set {
        name: SettingName,
        value: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SettingName {
    MaxConcurrentJobs,
}

pub async fn run(svc: &CairnService, cmd: SettingsCmd, out: Output) -> anyhow::Result<()> {
    let s = match cmd {
        SettingsCmd::Show => svc.settings().await.map_err(service_err)?,
        SettingsCmd::Set {
            name: SettingName::MaxConcurrentJobs,
            value,
        } => svc.set_max_concurrent_jobs(value).await.map_err(service_err)?,
    };
    out.emit(&views::plain(&s), || format!("max-concurrent-jobs = {}", s.max_concurrent_jobs));
    Ok(())
}
