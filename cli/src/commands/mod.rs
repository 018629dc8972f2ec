//! One module per command group; each holds its subcommands and what they do.

pub mod backups;
pub mod destinations;
pub mod executions;
pub mod follow;
pub mod hooks;
pub mod jobs;
pub mod keys;
pub mod local;
pub mod schedule;
pub mod settings;

use std::path::Path;

use anyhow::Context;

/// A file's contents, or standard input for `-`.
pub fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// A JSON document (a file or a built request) as `T`, with the API's field-naming errors.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> anyhow::Result<T> {
    cairn_shared::http::parse_json_body(body).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A service error as one line.
pub fn service_err(e: cairn_shared::error::ServiceError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}
