//! `cairn destinations`: where backups are written.

use cairn_shared::domain::{Destination, DestinationSpec};
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
        } => {
            let spec = DestinationSpec {
                name,
                bucket,
                prefix,
                endpoint,
                region,
                storage_class,
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
