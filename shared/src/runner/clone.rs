//! A clone: each item's source streamed straight into its target (for example production
//! PostgreSQL into staging) through a pipe, with nothing stored.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;

use super::lease::RunState;
use super::outcome::Outcome;
use super::task::{Task, TaskHooks};
use super::Runner;
use crate::domain::policy::secrets_of_items;
use crate::domain::{Execution, HookType, Item, ItemResult, Job, LogLevel, ManifestItem, RestoreTarget, Stage};
use crate::engine::restore::{apply_uncompressed, check_directory_target};
use crate::engine::sources::{self, kind_name, SourceContext};
use crate::engine::EngineError;
use crate::hooks::{item_id, HookCall};

/// A loaded clone.
pub(super) struct CloneTask {
    job: Job,
    hooks: TaskHooks,
    /// The Secrets Manager secrets the sources and targets name.
    secrets: Arc<HashMap<String, String>>,
    log_id: String,
}

impl Runner {
    pub(super) async fn load_clone(&self, execution: &Execution, job: Option<Job>, state: &RunState) -> Result<CloneTask, Outcome> {
        let job = self.confined(self.job_of(execution, job).await?)?;
        state.items_total.store(job.items.len(), Ordering::Relaxed);
        state.log(
            LogLevel::Info,
            format!("Clone of job '{}' started: {} item(s)", job.name, job.items.len()),
        );
        let mut hooks = self.hooks_for(&job, state).await;
        let secrets = self.read_secrets(secrets_of_items(&job.items), &mut hooks).await?;
        Ok(CloneTask {
            job,
            hooks,
            secrets,
            log_id: execution.id.clone(),
        })
    }

    /// One item, with its clone_item hooks.
    #[tracing::instrument(skip_all, fields(item = %item.name))]
    async fn clone_one(&self, task: &CloneTask, state: &Arc<RunState>, index: usize, item: &Item) -> ItemResult {
        state.item_index.store(index, Ordering::Relaxed);
        let job = &task.job;
        let (hook_id, log_id) = (item_id(&job.id, &item.name), format!("{}/{}", task.log_id, item.name));
        let pre = HookCall::item_pre(HookType::CloneItem, &job.id, &hook_id, &item.name, &log_id);
        let result = match (self.run_hooks(&task.hooks, &pre, state).await, &item.target) {
            (Err(failed), _) => Err(failed.summary),
            (Ok(()), None) => Err("the item has no target".to_owned()),
            (Ok(()), Some(target)) => self.clone_item(task, state, item, target).await.map_err(|e| e.to_string()),
        };
        let result = match result {
            Ok(bytes) => {
                state.log(LogLevel::Info, format!("Item '{}' cloned ({bytes} bytes streamed)", item.name));
                ItemResult::succeeded(item.name.clone(), bytes)
            }
            Err(e) => {
                state.log(LogLevel::Error, format!("Item '{}' failed: {e}", item.name));
                ItemResult::failed(item.name.clone(), e)
            }
        };
        let post = HookCall::item_post(
            HookType::CloneItem,
            &job.id,
            &hook_id,
            &item.name,
            result.status.hook_code(),
            &log_id,
        );
        let _ = self.run_hooks(&task.hooks, &post, state).await;
        state.item_index.store(index + 1, Ordering::Relaxed);
        state.data_progress();
        result
    }

    /// Streams one source into one target through a pipe: the producer on one thread,
    /// the restore client on another.
    async fn clone_item(&self, task: &CloneTask, state: &RunState, item: &Item, target: &RestoreTarget) -> Result<u64, EngineError> {
        if let RestoreTarget::Directory { path, overwrite } = target {
            check_directory_target(std::path::Path::new(path), *overwrite)?;
        }
        let object = sources::object_name(&item.name, &item.source);
        let described = ManifestItem {
            compression: "none".into(),
            ..ManifestItem::described(&item.name, kind_name(&item.source), item.source.is_archive(), object)
        };
        let ctx = SourceContext::new(state.signals.clone(), self.objects.default_store(), None, task.secrets.clone());
        let (reader, writer) = std::io::pipe()?;
        let (source, pctx) = (item.source.clone(), ctx.clone());
        let producer = tokio::task::spawn_blocking(move || sources::produce(&source, writer, &pctx).map(drop));
        let target = target.clone();
        let applier = tokio::task::spawn_blocking(move || apply_uncompressed(reader, &described, &target, &ctx));
        let (produced, applied) = tokio::join!(producer, applier);
        let stopped = |e: tokio::task::JoinError| EngineError::SourceFailed(format!("the clone stopped: {e}"));
        let produced = produced.map_err(stopped)?.map_err(|e| format!("source: {e}"));
        let applied = applied.map_err(stopped)?.map_err(|e| format!("target: {e}"));
        match (produced, applied) {
            (Ok(()), Ok(_)) => Ok(state.take_item_bytes()),
            (Err(p), Err(a)) => Err(EngineError::Target(format!("{p}; {a}"))),
            (Err(e), Ok(_)) | (Ok(()), Err(e)) => Err(EngineError::Target(e)),
        }
    }
}

#[async_trait]
impl Task for CloneTask {
    const NOUN: &'static str = "Clone";

    fn hooks(&self) -> &TaskHooks {
        &self.hooks
    }

    fn pre_call(&self, start: i64) -> HookCall {
        HookCall::clone_pre(&self.job, start, &self.log_id)
    }

    fn post_call(&self, start: i64, end: i64, status: u32) -> HookCall {
        HookCall::clone_post(&self.job, start, end, status, &self.log_id)
    }

    async fn body(&self, runner: &Runner, _execution: &Execution, state: &Arc<RunState>) -> Outcome {
        state.advance(Stage::Restoring, 10);
        let mut results = Vec::new();
        let mut moved = 0;
        for (index, item) in self.job.items.iter().enumerate() {
            if state.cancelled() {
                state.item_index.store(index, Ordering::Relaxed);
                results.push(ItemResult::cancelled(item.name.clone(), "cancelled".into()));
                continue;
            }
            let result = runner.clone_one(self, state, index, item).await;
            moved += result.size.unwrap_or(0);
            results.push(result);
        }
        Outcome::from_items(results, moved, state.cancelled())
    }
}
