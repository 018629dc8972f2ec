//! Running hooks: JetBackup's positional arguments (exactly the seed's tables), the same
//! values as `CAIRN_*` environment variables and as JSON on stdin; executed directly
//! (no shell) in a process group of their own, in a fresh working directory, with a
//! minimal environment and a time limit; output captured (capped, secrets redacted).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::model::{Hook, HookPosition, HookRules, HookType, Job, LogLevel, OnError};

/// Output kept per hook (stdout and stderr together).
pub const OUTPUT_CAP: usize = 64 * 1024;

/// The standard `PATH` hooks get.
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One invocation's data: the positional arguments and the same values by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCall {
    pub hook_type: HookType,
    pub position: HookPosition,
    pub args: Vec<String>,
    /// `(name, value)`: exported as `CAIRN_<NAME>` and as camelCase keys in the JSON.
    pub named: Vec<(&'static str, String)>,
}

fn job_fields(job: &Job) -> [(&'static str, String); 5] {
    [
        ("JOB_ID", job.id.clone()),
        ("JOB_NAME", job.name.clone()),
        ("JOB_TYPE", job.job_type.code().to_string()),
        ("JOB_CONTAINS", job.contains().to_string()),
        ("JOB_STRUCTURE", job.structure().to_string()),
    ]
}

fn call(hook_type: HookType, position: HookPosition, named: Vec<(&'static str, String)>) -> HookCall {
    HookCall {
        hook_type,
        position,
        args: named.iter().map(|(_, v)| v.clone()).collect(),
        named,
    }
}

impl HookCall {
    /// Backup, pre: `$1` job id, `$2` name, `$3` type, `$4` contains, `$5` structure,
    /// `$6` destinations, `$7` start (epoch), `$8` log id.
    pub fn backup_pre(job: &Job, start: i64, log_id: &str) -> Self {
        let mut named: Vec<_> = job_fields(job).into();
        named.extend([
            ("DESTINATIONS", job.destinations.join(",")),
            ("START", start.to_string()),
            ("LOG_ID", log_id.to_owned()),
        ]);
        call(HookType::Backup, HookPosition::Pre, named)
    }

    /// Backup, post: as pre, then `$8` end, `$9` status, `$10` log id.
    pub fn backup_post(job: &Job, start: i64, end: i64, status: u32, log_id: &str) -> Self {
        let mut named: Vec<_> = job_fields(job).into();
        named.extend([
            ("DESTINATIONS", job.destinations.join(",")),
            ("START", start.to_string()),
            ("END", end.to_string()),
            ("STATUS", status.to_string()),
            ("LOG_ID", log_id.to_owned()),
        ]);
        call(HookType::Backup, HookPosition::Post, named)
    }

    /// Backup item (and clone item), pre: `$1` job id, `$2` item id, `$3` item name, `$4` log id.
    pub fn item_pre(hook_type: HookType, job_id: &str, item_id: &str, item_name: &str, log_id: &str) -> Self {
        call(
            hook_type,
            HookPosition::Pre,
            vec![
                ("JOB_ID", job_id.to_owned()),
                ("ITEM_ID", item_id.to_owned()),
                ("ITEM_NAME", item_name.to_owned()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Backup item (and clone item), post: `$4` status, `$5` log id.
    pub fn item_post(hook_type: HookType, job_id: &str, item_id: &str, item_name: &str, status: u32, log_id: &str) -> Self {
        call(
            hook_type,
            HookPosition::Post,
            vec![
                ("JOB_ID", job_id.to_owned()),
                ("ITEM_ID", item_id.to_owned()),
                ("ITEM_NAME", item_name.to_owned()),
                ("STATUS", status.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Clone, pre: `$1` id, `$2` name, `$3` type, `$4` contains, `$5` destinations, `$6` start, `$7` log id.
    pub fn clone_pre(job: &Job, start: i64, log_id: &str) -> Self {
        let [id, name, ty, contains, _] = job_fields(job);
        call(
            HookType::Clone,
            HookPosition::Pre,
            vec![
                id,
                name,
                ty,
                contains,
                ("DESTINATIONS", job.destinations.join(",")),
                ("START", start.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Clone, post: `$6` start, `$7` end, `$8` status, `$9` log id.
    pub fn clone_post(job: &Job, start: i64, end: i64, status: u32, log_id: &str) -> Self {
        let [id, name, ty, contains, _] = job_fields(job);
        call(
            HookType::Clone,
            HookPosition::Post,
            vec![
                id,
                name,
                ty,
                contains,
                ("DESTINATIONS", job.destinations.join(",")),
                ("START", start.to_string()),
                ("END", end.to_string()),
                ("STATUS", status.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Restore, pre: `$1` backup type, `$2` contains, `$3` account (item) id, `$4` account
    /// name, `$5` items, `$6` start, `$7` log id.
    pub fn restore_pre(job: &Job, item_id: &str, item_name: &str, items: &[String], start: i64, log_id: &str) -> Self {
        call(
            HookType::Restore,
            HookPosition::Pre,
            vec![
                ("JOB_TYPE", job.job_type.code().to_string()),
                ("JOB_CONTAINS", job.contains().to_string()),
                ("ITEM_ID", item_id.to_owned()),
                ("ITEM_NAME", item_name.to_owned()),
                ("ITEMS", items.join(",")),
                ("START", start.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Restore, post: `$6` start, `$7` end, `$8` status, `$9` log id.
    #[allow(clippy::too_many_arguments)]
    pub fn restore_post(
        job: &Job,
        item_id: &str,
        item_name: &str,
        items: &[String],
        start: i64,
        end: i64,
        status: u32,
        log_id: &str,
    ) -> Self {
        call(
            HookType::Restore,
            HookPosition::Post,
            vec![
                ("JOB_TYPE", job.job_type.code().to_string()),
                ("JOB_CONTAINS", job.contains().to_string()),
                ("ITEM_ID", item_id.to_owned()),
                ("ITEM_NAME", item_name.to_owned()),
                ("ITEMS", items.join(",")),
                ("START", start.to_string()),
                ("END", end.to_string()),
                ("STATUS", status.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Download, pre and post: `$1` account (item) id, `$2` log id.
    pub fn download(position: HookPosition, item_id: &str, log_id: &str) -> Self {
        call(
            HookType::Download,
            position,
            vec![("ITEM_ID", item_id.to_owned()), ("LOG_ID", log_id.to_owned())],
        )
    }

    /// The JSON document written to the hook's stdin.
    pub fn to_json(&self, hook: &Hook) -> Value {
        let mut fields = Map::new();
        for (name, value) in &self.named {
            let camel: String = name
                .to_lowercase()
                .split('_')
                .enumerate()
                .map(|(i, w)| if i == 0 { w.to_owned() } else { w[..1].to_uppercase() + &w[1..] })
                .collect();
            fields.insert(camel, Value::String(value.clone()));
        }
        json!({
            "hook": {"id": hook.id, "name": hook.name},
            "type": self.hook_type.as_str(),
            "position": match self.position { HookPosition::Pre => "pre", HookPosition::Post => "post" },
            "args": self.args,
            "context": fields,
        })
    }
}

/// A stable id for a job item: the first 12 hex digits of SHA-256(job id, item name).
pub fn item_id(job_id: &str, item_name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("{job_id}:{item_name}").as_bytes()))[..12].to_owned()
}

/// How one hook run went.
#[derive(Debug, Clone)]
pub struct HookOutcome {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration: Duration,
    pub output: String,
    pub truncated: bool,
    /// Could not be started (missing, refused by the rules).
    pub start_error: Option<String>,
}

impl HookOutcome {
    pub fn succeeded(&self) -> bool {
        self.start_error.is_none() && !self.timed_out && self.exit_code == Some(0)
    }

    /// `exited with status 3`, `timed out after 300 s and was killed`, ...
    pub fn describe(&self, timeout: u64) -> String {
        if let Some(e) = &self.start_error {
            return format!("could not start: {e}");
        }
        if self.timed_out {
            return format!("timed out after {timeout} s and was killed with its process group");
        }
        match self.exit_code {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".into(),
        }
    }
}

/// Runs hooks under the configured rules.
#[derive(Debug, Clone)]
pub struct HookRunner {
    pub rules: HookRules,
}

async fn read_capped<R: AsyncRead + Unpin>(mut r: R) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (kept, truncated)
}

/// Replaces every occurrence of a secret with `[redacted]`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "[redacted]"))
}

impl HookRunner {
    /// Runs `hook` with `call`'s arguments. `secrets` are scrubbed from the output.
    pub async fn run(&self, hook: &Hook, call: &HookCall, secrets: &[String]) -> HookOutcome {
        let started = Instant::now();
        let fail = |e: String| HookOutcome {
            exit_code: None,
            timed_out: false,
            duration: started.elapsed(),
            output: String::new(),
            truncated: false,
            start_error: Some(e),
        };
        // Checked again at run time: the script may have been replaced since creation.
        let resolved = match self.rules.resolve(&hook.script) {
            Ok(r) => r,
            Err(e) => return fail(e.reason),
        };
        let workdir = match tempfile::Builder::new().prefix("cairn-hook-").tempdir() {
            Ok(d) => d,
            Err(e) => return fail(format!("cannot create a working directory: {e}")),
        };
        let mut cmd = tokio::process::Command::new(&resolved.program);
        cmd.args(&resolved.args)
            .args(&call.args)
            .env_clear()
            .env("PATH", HOOK_PATH)
            .env("HOME", workdir.path())
            .env("TMPDIR", workdir.path())
            .env("LANG", "C.UTF-8")
            .env("CAIRN_HOOK_ID", &hook.id)
            .env("CAIRN_HOOK_NAME", &hook.name)
            .env("CAIRN_HOOK_TYPE", call.hook_type.as_str())
            .env(
                "CAIRN_HOOK_POSITION",
                match call.position {
                    HookPosition::Pre => "pre",
                    HookPosition::Post => "post",
                },
            )
            .current_dir(workdir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for (name, value) in &call.named {
            cmd.env(format!("CAIRN_{name}"), value);
        }
        if hook.pass_aws_credentials {
            for var in [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "AWS_ENDPOINT_URL",
            ] {
                if let Ok(v) = std::env::var(var) {
                    cmd.env(var, v);
                }
            }
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return fail(format!("{}: {e}", resolved.program.display())),
        };
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        if let Some(mut stdin) = child.stdin.take() {
            let doc = call.to_json(hook).to_string();
            // A hook that does not read stdin must not block us: write in the background.
            tokio::spawn(async move {
                let _ = stdin.write_all(doc.as_bytes()).await;
            });
        }
        let out = child.stdout.take().map(|s| tokio::spawn(read_capped(s)));
        let err = child.stderr.take().map(|s| tokio::spawn(read_capped(s)));
        let (status, timed_out) = match tokio::time::timeout(Duration::from_secs(hook.timeout), child.wait()).await {
            Ok(s) => (s.ok(), false),
            Err(_) => {
                if let Some(pid) = pid {
                    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
                (child.wait().await.ok(), true)
            }
        };
        // The group is gone, or its survivors get a moment to close their pipes.
        if let Some(pid) = pid {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let mut output = Vec::new();
        let mut truncated = false;
        for handle in [out, err].into_iter().flatten() {
            if let Ok(Ok((bytes, t))) = tokio::time::timeout(Duration::from_secs(2), handle).await {
                let room = OUTPUT_CAP.saturating_sub(output.len());
                truncated |= t || bytes.len() > room;
                output.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        }
        HookOutcome {
            exit_code: status.and_then(|s| s.code()),
            timed_out,
            duration: started.elapsed(),
            output: redact(&String::from_utf8_lossy(&output), secrets),
            truncated,
            start_error: None,
        }
    }
}

impl HookRunner {
    /// Runs the hooks among `hooks` that match `call`'s type and position, in the given
    /// (name) order, reporting each through `log`. A pre hook that fails with
    /// `onError: fail` stops the rest and answers why; other failures are warnings.
    ///
    /// # Errors
    /// The failing pre hook's summary (`pre-backup hook 'x' exited with status 3 in 5 ms`).
    pub async fn run_all(&self, hooks: &[Hook], call: &HookCall, secrets: &[String], log: impl Fn(LogLevel, String)) -> Result<(), String> {
        for hook in hooks
            .iter()
            .filter(|h| h.hook_type == call.hook_type && h.position == call.position)
        {
            let outcome = self.run(hook, call, secrets).await;
            let position = match call.position {
                HookPosition::Pre => "pre",
                HookPosition::Post => "post",
            };
            let what = format!("{position}-{} hook '{}'", call.hook_type.as_str(), hook.name);
            let summary = format!("{what} {} in {} ms", outcome.describe(hook.timeout), outcome.duration.as_millis());
            let fails_task = !outcome.succeeded() && call.position == HookPosition::Pre && hook.on_error == OnError::Fail;
            let level = if outcome.succeeded() {
                LogLevel::Info
            } else if fails_task {
                LogLevel::Error
            } else {
                LogLevel::Warning
            };
            log(
                level,
                format!(
                    "{}{summary}",
                    if outcome.succeeded() || fails_task {
                        ""
                    } else {
                        "ignoring failure: "
                    }
                ),
            );
            if !outcome.output.trim().is_empty() {
                let note = if outcome.truncated { " (truncated at 64 KiB)" } else { "" };
                log(level, format!("{what} output{note}:\n{}", outcome.output.trim_end()));
            }
            if fails_task {
                return Err(summary);
            }
        }
        Ok(())
    }
}

/// The hooks directory and allowed interpreters from the configuration.
pub fn rules_from(hooks_dir: PathBuf, interpreters: &[PathBuf]) -> HookRules {
    HookRules {
        hooks_dir,
        interpreters: interpreters.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{parse_json_body, JobSpec};

    fn job() -> Job {
        let spec: JobSpec = parse_json_body(
            br#"{"name":"Nightly app","items":[{"name":"uploads","source":{"kind":"directory","path":"/srv"}},{"name":"db","source":{"kind":"postgres","url":"postgres://u@h/d"}}],"destinations":["d1","d2"]}"#,
        )
        .unwrap();
        Job::from_spec("job-1".into(), spec, "t")
    }

    #[test]
    fn backup_arguments_follow_the_seed_positions() {
        let j = job();
        let pre = HookCall::backup_pre(&j, 1000, "exec-1");
        assert_eq!(pre.args, ["job-1", "Nightly app", "1", "3", "6", "d1,d2", "1000", "exec-1"]);
        let post = HookCall::backup_post(&j, 1000, 1060, 100, "exec-1");
        assert_eq!(
            post.args,
            ["job-1", "Nightly app", "1", "3", "6", "d1,d2", "1000", "1060", "100", "exec-1"]
        );
    }

    #[test]
    fn item_clone_restore_and_download_arguments_have_the_seed_counts() {
        let j = job();
        assert_eq!(
            HookCall::item_pre(HookType::BackupItem, "job-1", "i1", "db", "exec-1/db").args,
            ["job-1", "i1", "db", "exec-1/db"]
        );
        assert_eq!(
            HookCall::item_post(HookType::CloneItem, "job-1", "i1", "db", 102, "l").args,
            ["job-1", "i1", "db", "102", "l"]
        );
        assert_eq!(
            HookCall::clone_pre(&j, 5, "l").args,
            ["job-1", "Nightly app", "1", "3", "d1,d2", "5", "l"]
        );
        assert_eq!(HookCall::clone_post(&j, 5, 9, 101, "l").args.len(), 9);
        let items = vec!["uploads".to_owned(), "db".to_owned()];
        assert_eq!(
            HookCall::restore_pre(&j, "", "", &items, 5, "l").args,
            ["1", "3", "", "", "uploads,db", "5", "l"]
        );
        assert_eq!(HookCall::restore_post(&j, "", "", &items, 5, 9, 100, "l").args[7], "100");
        assert_eq!(HookCall::download(HookPosition::Post, "i", "l").args, ["i", "l"]);
    }

    #[test]
    fn the_json_document_carries_args_and_named_values() {
        let j = job();
        let hook = crate::model::Hook::from_spec(
            "h".into(),
            crate::model::HookSpec {
                name: "n".into(),
                position: HookPosition::Pre,
                hook_type: HookType::Backup,
                script: "/x".into(),
                timeout: None,
                on_error: None,
                enabled: true,
                jobs: None,
                pass_aws_credentials: false,
            },
            "t",
        );
        let v = HookCall::backup_pre(&j, 7, "e").to_json(&hook);
        assert_eq!(v["context"]["jobId"], "job-1");
        assert_eq!(v["context"]["logId"], "e");
        assert_eq!(v["args"][6], "7");
        assert_eq!(v["type"], "backup");
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact("pw=hunter22 ok", &["hunter22".into()]), "pw=[redacted] ok");
    }
}
