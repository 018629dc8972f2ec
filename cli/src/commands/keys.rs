//! `cairn keys`: API keys.

use cairn_shared::domain::key::parse_duration_seconds;
use cairn_shared::domain::{ApiKey, Permission};
use cairn_shared::http::views;
use cairn_shared::services::CairnService;
use clap::Subcommand;
use serde_json::{json, Value};

use super::service_err;
use crate::output::{enabled, table, Output};

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a key; it is printed once and never stored.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated permissions, or `all`.
        #[arg(long)]
        permissions: String,
        /// Lifetime such as 30d, 12h, 90m.
        #[arg(long)]
        expires_in: Option<String>,
    },
    List,
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

fn keys_table(keys: &[ApiKey]) -> String {
    let row = |k: &ApiKey| {
        let perms: Vec<&str> = k.permissions.iter().map(|p| p.as_str()).collect();
        [
            k.id.clone(),
            k.name.clone(),
            enabled(k.enabled),
            perms.join(","),
            k.expires_at.clone().unwrap_or_default(),
            k.last_used_at.clone().unwrap_or_default(),
        ]
    };
    table(["ID", "NAME", "STATE", "PERMISSIONS", "EXPIRES", "LAST USED"], keys.iter().map(row))
}

pub async fn run(svc: &CairnService, cmd: KeysCmd, out: Output) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::Create {
            name,
            permissions,
            expires_in,
        } => {
            let perms = Permission::parse_list(&permissions).map_err(|e| service_err(e.into()))?;
            let expires = expires_in
                .as_deref()
                .map(parse_duration_seconds)
                .transpose()
                .map_err(|e| service_err(e.into()))?;
            let k = svc.create_key(name, perms, expires, None).await.map_err(service_err)?;
            let v = json!({"id": k.stored.id, "key": k.secret, "name": k.stored.name, "permissions": k.stored.permissions, "expiresAt": k.stored.expires_at});
            out.emit(&v, || {
                format!(
                    "Created key {} ('{}'). Store it now; it is not shown again:\n{}",
                    k.stored.id, k.stored.name, k.secret
                )
            });
        }
        KeysCmd::List => {
            let keys = svc.list_keys().await.map_err(service_err)?;
            out.emit(&Value::Array(keys.iter().map(views::key).collect()), || keys_table(&keys));
        }
        KeysCmd::Enable { id } => {
            let k = svc.set_key_enabled(&id, true).await.map_err(service_err)?;
            out.emit(&views::key(&k), || keys_table(std::slice::from_ref(&k)));
        }
        KeysCmd::Disable { id } => {
            let k = svc.set_key_enabled(&id, false).await.map_err(service_err)?;
            out.emit(&views::key(&k), || keys_table(std::slice::from_ref(&k)));
        }
        KeysCmd::Delete { id } => {
            svc.delete_key(&id).await.map_err(service_err)?;
            out.emit(&json!({"deleted": id}), || format!("deleted key {id}"));
        }
    }
    Ok(())
}
