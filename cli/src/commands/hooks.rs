//! `cairn hooks`: hooks run before and after tasks.

use std::path::PathBuf;

use cairn_shared::domain::{Hook, HookPosition, HookSpec};
use cairn_shared::http::views;
use cairn_shared::services::CairnService;
use clap::Subcommand;
use serde_json::{json, Value};

use super::{parse, read_input, service_err};
use crate::output::{enabled, table, Output};

#[derive(Debug, Subcommand)]
pub enum HooksCmd {
    /// Create a hook from flags, or from a JSON file with --file.
    Create {
        #[arg(long, conflicts_with_all = ["name", "position", "hook_type", "script"])]
        file: Option<PathBuf>,
        #[command(flatten)]
        flags: HookFlags,
    },
    List,
    Show {
        id: String,
    },
    /// Replace a hook's definition from a JSON file.
    Update {
        id: String,
        #[arg(long)]
        file: PathBuf,
    },
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    Delete {
        id: String,
    },
}

/// A hook given by flags instead of a file.
#[derive(Debug, clap::Args)]
pub struct HookFlags {
    #[arg(long)]
    name: Option<String>,
    /// pre or post
    #[arg(long)]
    position: Option<String>,
    /// backup, backup_item, clone, clone_item, restore, download
    #[arg(long = "type")]
    hook_type: Option<String>,
    /// An executable under CAIRN_HOOKS_DIR, or "INTERPRETER SCRIPT".
    #[arg(long)]
    script: Option<String>,
    #[arg(long)]
    timeout: Option<u64>,
    /// fail or continue
    #[arg(long)]
    on_error: Option<String>,
    /// Comma-separated job ids (default: every job).
    #[arg(long)]
    jobs: Option<String>,
    #[arg(long)]
    disabled: bool,
}

impl HookFlags {
    /// The hook as the API's JSON body.
    fn into_body(self) -> anyhow::Result<Vec<u8>> {
        let required = |v: Option<String>, flag: &str| v.ok_or_else(|| anyhow::anyhow!("{flag} is required"));
        let mut v = json!({
            "name": required(self.name, "--name")?,
            "position": required(self.position, "--position (pre or post)")?,
            "type": required(self.hook_type, "--type")?,
            "script": required(self.script, "--script")?,
            "enabled": !self.disabled,
        });
        if let Some(t) = self.timeout {
            v["timeout"] = json!(t);
        }
        if let Some(o) = self.on_error {
            v["onError"] = json!(o);
        }
        if let Some(j) = self.jobs {
            v["jobs"] = json!(j.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>());
        }
        Ok(serde_json::to_vec(&v)?)
    }
}

fn hooks_table(hooks: &[Hook]) -> String {
    let row = |h: &Hook| {
        let position = match h.position {
            HookPosition::Pre => "pre",
            HookPosition::Post => "post",
        };
        [
            h.id.clone(),
            h.name.clone(),
            format!("{position} {}", h.hook_type.as_str()),
            h.script.clone(),
            enabled(h.enabled),
        ]
    };
    table(["ID", "NAME", "WHEN", "SCRIPT", "STATE"], hooks.iter().map(row))
}

pub async fn run(svc: &CairnService, cmd: HooksCmd, out: Output) -> anyhow::Result<()> {
    let show = |h: &Hook| out.emit(&views::plain(h), || hooks_table(std::slice::from_ref(h)));
    match cmd {
        HooksCmd::Create { file, flags } => {
            let body = match file {
                Some(f) => read_input(&f)?,
                None => flags.into_body()?,
            };
            let spec: HookSpec = parse(&body)?;
            show(&svc.create_hook(spec).await.map_err(service_err)?);
        }
        HooksCmd::List => {
            let hooks = svc.list_hooks().await.map_err(service_err)?;
            out.emit(&views::plain(&hooks), || hooks_table(&hooks));
        }
        HooksCmd::Show { id } => {
            let v: Value = views::plain(&svc.get_hook(&id).await.map_err(service_err)?);
            out.emit(&v, || serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        HooksCmd::Update { id, file } => {
            let spec: HookSpec = parse(&read_input(&file)?)?;
            show(&svc.update_hook(&id, spec).await.map_err(service_err)?);
        }
        HooksCmd::Enable { id } => show(&svc.set_hook_enabled(&id, true).await.map_err(service_err)?),
        HooksCmd::Disable { id } => show(&svc.set_hook_enabled(&id, false).await.map_err(service_err)?),
        HooksCmd::Delete { id } => {
            svc.delete_hook(&id).await.map_err(service_err)?;
            out.emit(&json!({"deleted": id}), || format!("deleted hook {id}"));
        }
    }
    Ok(())
}
