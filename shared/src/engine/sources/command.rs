//! A program whose standard output is the dump: run without a shell, in its own process
//! group and a fresh working directory, with the hooks' minimal environment (nothing of
//! the runner's: no AWS credentials) plus only the secret its item names, and a watchdog
//! for its time limit and for cancels.

use std::io::Read;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{pour, ArchiveSink, SourceContext, FILE_READ_SIZE};
use crate::engine::io::CountingReader;
use crate::error::EngineError;
pub use crate::hooks::process::confined;
use crate::hooks::redact;

/// Runs a dump program without a shell, in its own process group, copying its standard
/// output into `out`. A watchdog kills the whole group on timeout or cancel. `secret` is
/// one environment variable (name, value) for the program, never an argument.
///
/// # Errors
/// The program cannot start, times out, or exits non-zero (with its last line of stderr).
pub fn run<W: ArchiveSink>(
    argv: &[String],
    secret: Option<(&'static str, String)>,
    limits: Limits,
    mut out: W,
    ctx: &SourceContext,
) -> Result<W, EngineError> {
    let program = argv.first().ok_or_else(|| EngineError::InvalidSource("empty command".into()))?;
    let workdir = tempfile::Builder::new().prefix("cairn-command-").tempdir()?;
    let mut cmd = confined(program, workdir.path());
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let secret_value = secret.as_ref().map(|(_, v)| v.clone());
    if let Some((name, value)) = secret {
        cmd.env(name, value);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| EngineError::SourceFailed(format!("cannot start {program}: {e}")))?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let stderr_thread = keep_stderr_tail(child.stderr.take());
    let watchdog = Watchdog::start(pid, limits, ctx.signals.clone());
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| EngineError::SourceFailed(format!("{program} gave no standard output")))?;
    let copied = pour(
        &mut CountingReader {
            inner: stdout,
            signals: ctx.signals.clone(),
        },
        &mut out,
        &mut vec![0u8; FILE_READ_SIZE],
    );
    if copied.is_err() {
        kill_group(pid);
    }
    let status = child.wait();
    let killed_for = watchdog.stop();
    // The item's own password must not reach the execution's error through a client's
    // complaint about it.
    let stderr_text = redact(&stderr_thread.join().unwrap_or_default(), secret_value.as_slice());
    if ctx.signals.cancelled() {
        return Err(EngineError::Cancelled);
    }
    match killed_for {
        Some(Killed::Timeout) => {
            let secs = limits.total.as_secs();
            return Err(EngineError::SourceFailed(format!(
                "{program} timed out after {secs} s and was killed"
            )));
        }
        Some(Killed::Silent) => {
            let secs = limits.first_output.map_or(0, |d| d.as_secs());
            return Err(EngineError::SourceFailed(format!(
                "{program} wrote nothing for {secs} s and was killed: is its server reachable, and is it the right kind of server?"
            )));
        }
        None => {}
    }
    copied?;
    let status = status?;
    if !status.success() {
        let last = stderr_text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        let code = status.code().map_or_else(|| "a signal".to_owned(), |c| format!("status {c}"));
        return Err(EngineError::SourceFailed(format!(
            "{program} exited with {code}{}",
            if last.is_empty() { String::new() } else { format!(": {last}") }
        )));
    }
    Ok(out)
}

/// Kills a process group, the program and whatever it started.
fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

/// Keeps the last 64 KiB of a program's standard error, on a thread of its own, for the
/// error message when the program fails.
fn keep_stderr_tail(stderr: Option<std::process::ChildStderr>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut tail = Vec::new();
        if let Some(mut s) = stderr {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 64 * 1024 {
                    tail.drain(..tail.len() - 64 * 1024);
                }
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    })
}

/// How long a program may run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole run.
    pub total: Duration,
    /// Until its first byte of output: for clients with no connect timeout of their own,
    /// which would wait on a port that is not their server for the whole `total`.
    pub first_output: Option<Duration>,
}

impl Limits {
    pub fn total(total: Duration) -> Self {
        Self { total, first_output: None }
    }
}

/// Why the watchdog killed the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killed {
    Timeout,
    Silent,
}

/// Kills the program's process group once its time is up, it stayed silent too long, or
/// the run is cancelled.
struct Watchdog {
    done: Arc<AtomicBool>,
    killed: Arc<std::sync::Mutex<Option<Killed>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    fn start(pid: i32, limits: Limits, signals: Arc<crate::engine::Signals>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let killed = Arc::new(std::sync::Mutex::new(None));
        let (d, k) = (done.clone(), killed.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while !d.load(Ordering::Relaxed) {
                let why = if started.elapsed() >= limits.total {
                    Some(Killed::Timeout)
                } else if limits.first_output.is_some_and(|f| started.elapsed() >= f) && signals.input_bytes.load(Ordering::Relaxed) == 0 {
                    Some(Killed::Silent)
                } else {
                    None
                };
                if why.is_some() || signals.cancelled() {
                    if let Ok(mut slot) = k.lock() {
                        *slot = why;
                    }
                    kill_group(pid);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self { done, killed, thread }
    }

    /// Stops watching (the program ended); answers why it was killed, if it was.
    fn stop(self) -> Option<Killed> {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.killed.lock().ok().and_then(|k| *k)
    }
}
