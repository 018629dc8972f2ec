//! Running a hook: executed directly (no shell) in a process group of its own, in a fresh
//! working directory, with a minimal environment and a time limit; output captured
//! (capped, secrets redacted) into the execution's log.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::HookCall;
use crate::domain::{Hook, HookPosition, HookRules, LogLevel, OnError};

/// Output kept per hook (stdout and stderr together).
pub const OUTPUT_CAP: usize = 64 * 1024;

/// The standard `PATH` hooks get.
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A pre hook failed and stops its task: names the hook and how it failed
/// (`pre-backup hook 'x' exited with status 3 in 5 ms`).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{summary}")]
pub struct PreHookFailed {
    pub summary: String,
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
    fn not_started(error: String, duration: Duration) -> Self {
        Self {
            exit_code: None,
            timed_out: false,
            duration,
            output: String::new(),
            truncated: false,
            start_error: Some(error),
        }
    }

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
        let fail = |e: String| HookOutcome::not_started(e, started.elapsed());
        // Checked again at run time: the script may have been replaced since creation.
        let resolved = match self.rules.resolve(&hook.script) {
            Ok(r) => r,
            Err(e) => return fail(e.reason),
        };
        let workdir = match tempfile::Builder::new().prefix("cairn-hook-").tempdir() {
            Ok(d) => d,
            Err(e) => return fail(format!("cannot create a working directory: {e}")),
        };
        let mut cmd = tokio::process::Command::from(confined(&resolved.program, workdir.path()));
        cmd.args(&resolved.args)
            .args(&call.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        named_environment(&mut cmd, hook, call);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return fail(format!("{}: {e}", resolved.program.display())),
        };
        if let Some(mut stdin) = child.stdin.take() {
            let doc = call.to_json(hook).to_string();
            // A hook that does not read stdin must not block us: write in the background.
            tokio::spawn(async move {
                let _ = stdin.write_all(doc.as_bytes()).await;
            });
        }
        let (exit_code, timed_out, output, truncated) = wait_capturing(child, Duration::from_secs(hook.timeout)).await;
        HookOutcome {
            exit_code,
            timed_out,
            duration: started.elapsed(),
            output: redact(&output, secrets),
            truncated,
            start_error: None,
        }
    }
}

/// A program to run the way every hook, command source and database client runs: no
/// shell, its own process group and working directory, and a minimal environment (only
/// `PATH`, `HOME`, `TMPDIR` and `LANG`; nothing of the runner's, no AWS credentials).
/// Callers add the one secret a client needs.
pub fn confined(program: impl AsRef<std::ffi::OsStr>, workdir: &std::path::Path) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program);
    cmd.env_clear()
        .env("PATH", HOOK_PATH)
        .env("HOME", workdir)
        .env("TMPDIR", workdir)
        .env("LANG", "C.UTF-8")
        .current_dir(workdir)
        .process_group(0);
    cmd
}

/// The hook's own `CAIRN_*` values, and the runner's AWS credentials only where the hook
/// asks for them.
fn named_environment(cmd: &mut tokio::process::Command, hook: &Hook, call: &HookCall) {
    let position = match call.position {
        HookPosition::Pre => "pre",
        HookPosition::Post => "post",
    };
    cmd.env("CAIRN_HOOK_ID", &hook.id)
        .env("CAIRN_HOOK_NAME", &hook.name)
        .env("CAIRN_HOOK_TYPE", call.hook_type.as_str())
        .env("CAIRN_HOOK_POSITION", position);
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
}

/// Waits for the child up to `timeout` (then kills its whole group), and collects its
/// output: (exit code, timed out, stdout and stderr capped together, truncated).
async fn wait_capturing(mut child: tokio::process::Child, timeout: Duration) -> (Option<i32>, bool, String, bool) {
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    let kill_group = || {
        if let Some(pid) = pid {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    };
    let out = child.stdout.take().map(|s| tokio::spawn(read_capped(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(read_capped(s)));
    let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(s) => (s.ok(), false),
        Err(_) => {
            kill_group();
            (child.wait().await.ok(), true)
        }
    };
    // The group is gone, or its survivors get a moment to close their pipes.
    kill_group();
    let mut output = Vec::new();
    let mut truncated = false;
    for handle in [out, err].into_iter().flatten() {
        if let Ok(Ok((bytes, t))) = tokio::time::timeout(Duration::from_secs(2), handle).await {
            let room = OUTPUT_CAP.saturating_sub(output.len());
            truncated |= t || bytes.len() > room;
            output.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }
    (
        status.and_then(|s| s.code()),
        timed_out,
        String::from_utf8_lossy(&output).into_owned(),
        truncated,
    )
}

impl HookRunner {
    /// Runs the hooks among `hooks` that match `call`'s type and position, in the given
    /// (name) order, reporting each through `log`. A pre hook that fails with
    /// `onError: fail` stops the rest and answers why; other failures are warnings.
    ///
    /// # Errors
    /// The failing pre hook's summary (`pre-backup hook 'x' exited with status 3 in 5 ms`).
    pub async fn run_all(
        &self,
        hooks: &[Hook],
        call: &HookCall,
        secrets: &[String],
        log: impl Fn(LogLevel, String),
    ) -> Result<(), PreHookFailed> {
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
                return Err(PreHookFailed { summary });
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

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact("pw=hunter22 ok", &["hunter22".into()]), "pw=[redacted] ok");
    }
}
