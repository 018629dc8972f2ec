//! A program whose standard output is the dump: run without a shell, in its own process
//! group, with a watchdog for its time limit and for cancels.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{pour, ArchiveSink, SourceContext, FILE_READ_SIZE};
use crate::engine::io::CountingReader;
use crate::error::EngineError;

/// Runs a dump program without a shell, in its own process group, copying its standard
/// output into `out`. A watchdog kills the whole group on timeout or cancel. `secret` is
/// one environment variable (name, value) for the program, never an argument.
///
/// # Errors
/// The program cannot start, times out, or exits non-zero (with its last line of stderr).
pub fn run<W: ArchiveSink>(
    argv: &[String],
    secret: Option<(&'static str, String)>,
    timeout: Duration,
    mut out: W,
    ctx: &SourceContext,
) -> Result<W, EngineError> {
    let program = argv.first().ok_or_else(|| EngineError::InvalidSource("empty command".into()))?;
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some((name, value)) = secret {
        cmd.env(name, value);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| EngineError::SourceFailed(format!("cannot start {program}: {e}")))?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let stderr_thread = keep_stderr_tail(child.stderr.take());
    let watchdog = Watchdog::start(pid, timeout, ctx.signals.clone());
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
    let timed_out = watchdog.stop();
    let stderr_text = stderr_thread.join().unwrap_or_default();
    if ctx.signals.cancelled() {
        return Err(EngineError::Cancelled);
    }
    if timed_out {
        return Err(EngineError::SourceFailed(format!(
            "{program} timed out after {} s and was killed",
            timeout.as_secs()
        )));
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

/// Kills the program's process group once its time is up or the run is cancelled.
struct Watchdog {
    done: Arc<AtomicBool>,
    timed_out: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    fn start(pid: i32, timeout: Duration, signals: Arc<crate::engine::Signals>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let timed_out = Arc::new(AtomicBool::new(false));
        let (d, t) = (done.clone(), timed_out.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + timeout;
            while !d.load(Ordering::Relaxed) {
                let expired = Instant::now() >= deadline;
                if expired || signals.cancelled() {
                    t.store(expired, Ordering::Relaxed);
                    kill_group(pid);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self { done, timed_out, thread }
    }

    /// Stops watching (the program ended); answers whether it was killed for its time.
    fn stop(self) -> bool {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.timed_out.load(Ordering::Relaxed)
    }
}
