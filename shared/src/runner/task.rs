//! The one skeleton every task follows (load, pre hooks, body, post hooks, completion),
//! and the trait that backup, restore and clone plug into it.

use std::sync::Arc;

use async_trait::async_trait;

use super::deadline::time_limit_outcome;
use super::lease::RunState;
use super::outcome::{completion, Outcome};
use super::Runner;
use crate::domain::{Execution, Hook, LogLevel, Stage};
use crate::hooks::HookCall;
use crate::ports::Completion;
use crate::time;

/// The hooks that apply to a task, and the secrets their output must never show.
#[derive(Debug, Clone, Default)]
pub(super) struct TaskHooks {
    pub hooks: Vec<Hook>,
    pub secrets: Vec<String>,
}

/// One kind of task.
#[async_trait]
pub(super) trait Task: Send + Sync {
    /// The task in messages: `Backup`, `Restore`, `Clone`.
    const NOUN: &'static str;

    fn hooks(&self) -> &TaskHooks;
    /// The task's pre hooks' call, given its start (epoch seconds).
    fn pre_call(&self, start: i64) -> HookCall;
    /// The task's post hooks' call, with the end and the final status code.
    fn post_call(&self, start: i64, end: i64, status: u32) -> HookCall;
    /// The work itself, once the pre hooks passed.
    async fn body(&self, runner: &Runner, execution: &Execution, state: &Arc<RunState>) -> Outcome;
}

impl Runner {
    /// Runs a loaded task through the skeleton: pre hooks (a failing one stops the task
    /// before it touches anything), the body, post hooks with the final status whatever
    /// happened, and the terminal state. A task that could not be loaded ends with the
    /// loader's outcome.
    pub(super) async fn run_task<T: Task>(&self, execution: &Execution, state: &Arc<RunState>, loaded: Result<T, Outcome>) -> Completion {
        let task = match loaded {
            Ok(t) => t,
            Err(outcome) => return completion(execution, state, T::NOUN, outcome),
        };
        let start = started_epoch(execution);
        state.advance(Stage::PreHooks, 5);
        let outcome = match self.run_hooks(task.hooks(), &task.pre_call(start), state).await {
            Err(failed) => {
                state.log(LogLevel::Error, format!("{} stopped before touching anything: {failed}", T::NOUN));
                Outcome::failed(failed.summary)
            }
            Ok(()) => task.body(self, execution, state).await,
        };
        let outcome = time_limit_outcome(state, outcome);
        state.advance(Stage::PostHooks, 98);
        let post = task.post_call(start, time::now().timestamp(), outcome.status.hook_code());
        // Post hooks only warn; their failure never changes the outcome.
        let _ = self.run_hooks(task.hooks(), &post, state).await;
        completion(execution, state, T::NOUN, outcome)
    }
}

/// When an execution was claimed (epoch seconds), for the hooks' start argument.
pub(super) fn started_epoch(execution: &Execution) -> i64 {
    execution
        .started_at
        .as_deref()
        .and_then(time::parse_iso)
        .unwrap_or_else(time::now)
        .timestamp()
}
