//! `cairn destinations`: where backups are written.

use cairn_shared::domain::{Destination, DestinationSpec, RepositorySpec};
use cairn_shared::http::views;
use cairn_shared::services::CairnService;
use clap::Subcommand;
use serde_json::json;

use super::service_err;
use crate::output::{table, Output};

#[derive(Debug, Subcommand)]
pub enum DestinationsCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        bucket: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        storage_class: Option<String>,
        /// The Secrets Manager secret (under cairn/) holding the password of the
        /// destination's repository of incremental backups.
        #[arg(long, conflicts_with = "repository_password_env")]
        repository_password_secret: Option<String>,
        /// The runner's CAIRN_SECRET_* variable holding that password instead.
        #[arg(long)]
        repository_password_env: Option<String>,
    },
    List,
    Delete {
        id: String,
    },
}

fn destinations_table(all: &[Destination]) -> String {
    let row = |d: &Destination| {
        [
            d.id.clone(),
            d.name.clone(),
            format!("s3://{}/{}", d.bucket, d.prefix),
            d.endpoint.clone().unwrap_or_default(),
        ]
    };
    table(["ID", "NAME", "LOCATION", "ENDPOINT"], all.iter().map(row))
}

pub async fn run(svc: &CairnService, cmd: DestinationsCmd, out: Output) -> anyhow::Result<()> {
    match cmd {
        DestinationsCmd::Create {
            name,
            bucket,
            prefix,
            endpoint,
            region,
            storage_class,
            repository_password_secret,
            repository_password_env,
        } => {
            let named = repository_password_secret.is_some() || repository_password_env.is_some();
            let repository = named.then_some(RepositorySpec {
                password_env: repository_password_env,
                password_secret: repository_password_secret,
            });
            let spec = DestinationSpec {
                name,
                bucket,
                prefix,
                endpoint,
                region,
                storage_class,
                repository,
            };
            let d = svc.create_destination(spec).await.map_err(service_err)?;
            out.emit(&views::plain(&d), || {
                format!("created destination\n{}", destinations_table(std::slice::from_ref(&d)))
            });
        }
        DestinationsCmd::List => {
            let all = svc.list_destinations().await.map_err(service_err)?;
            out.emit(&views::plain(&all), || destinations_table(&all));
        }
        DestinationsCmd::Delete { id } => {
            svc.delete_destination(&id).await.map_err(service_err)?;
            out.emit(&json!({"deleted": id}), || format!("deleted destination {id}"));
        }
    }
    Ok(())
}
