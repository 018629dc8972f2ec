//! Hooks: JetBackup's positional arguments (exactly the seed's tables), the same values as
//! `CAIRN_*` environment variables and as JSON on stdin, and running them safely.
//!
//! # Layout
//! - [`args`]: the argument tables: one constructor per hook type and position.
//! - [`process`]: running a hook: no shell, its own process group, a fresh working
//!   directory, a minimal environment, a time limit, output captured (capped, secrets
//!   redacted).

pub mod args;
pub mod process;

pub use args::HookCall;
pub use process::{redact, rules_from, HookOutcome, HookRunner, PreHookFailed, HOOK_PATH, OUTPUT_CAP};

/// A stable id for a job item: the first 12 hex digits of SHA-256(job id, item name).
pub fn item_id(job_id: &str, item_name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("{job_id}:{item_name}").as_bytes()))[..12].to_owned()
}
