//! The runner and the services against the in-memory ports: the queue's cap, cancels,
//! the sweep, and what the task skeleton guarantees (a failing pre hook stops the task,
//! post hooks still run; a damaged backup is never restored).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{Runner, RunnerStores};
use crate::config::Config;
use crate::domain::{Destination, DestinationSpec, Execution, ExecutionStatus, ExecutionType, HookSpec, JobSpec, RestoreRequest, Trigger};
use crate::ports::memory::{MemoryObjects, MemoryStore, RecordingDispatcher};
use crate::ports::{ClaimOutcome, ExecutionStore, SettingsStore};
use crate::services::CairnService;
use crate::time;

/// A runner and a service over one in-memory store and object store.
struct Harness {
    store: Arc<MemoryStore>,
    objects: MemoryObjects,
    runner: Arc<Runner>,
    service: CairnService,
    _hooks_dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let hooks_dir = tempfile::tempdir().unwrap();
        let dir = hooks_dir.path().display().to_string();
        let tmp = std::env::temp_dir().display().to_string();
        let config = Config::from_lookup(|name| match name {
            "CAIRN_HOOKS_DIR" | "CAIRN_COMMANDS_DIR" => Some(dir.clone()),
            "CAIRN_SOURCE_DIRS" | "CAIRN_RESTORE_DIRS" => Some(tmp.clone()),
            "CAIRN_LEASE_SECONDS" => Some("5".into()),
            _ => None,
        })
        .unwrap();
        let store = MemoryStore::new();
        let objects = MemoryObjects::default();
        let secrets = Arc::new(crate::ports::memory::MemorySecrets::default());
        let runner = Arc::new(Runner::new(
            RunnerStores::of(&store),
            Arc::new(objects.clone()),
            secrets,
            config.clone(),
        ));
        let dispatcher = Arc::new(RecordingDispatcher::default());
        let service = CairnService::new(&store, dispatcher, Arc::new(objects.clone()), &config);
        Self {
            store,
            objects,
            runner,
            service,
            _hooks_dir: hooks_dir,
        }
    }

    fn hooks_dir(&self) -> &Path {
        self._hooks_dir.path()
    }

    async fn destination(&self) -> Destination {
        let spec = DestinationSpec {
            name: "primary".into(),
            bucket: "unit-bucket".into(),
            prefix: "backups".into(),
            endpoint: None,
            region: None,
            storage_class: None,
            repository: None,
        };
        self.service.create_destination(spec).await.unwrap()
    }

    /// A job backing up `source` (a JSON source object) to a fresh destination.
    async fn job(&self, source: serde_json::Value) -> String {
        let d = self.destination().await;
        let spec: JobSpec = serde_json::from_value(serde_json::json!({
            "name": "unit", "items": [{"name": "files", "source": source}], "destinations": [d.id]
        }))
        .unwrap();
        self.service.create_job(spec).await.unwrap().id
    }

    /// Queues a run of `job` and drains the queue to the end.
    async fn run(&self, job: &str) -> Execution {
        let id = self.service.run_job(job, Trigger::Cli, None).await.unwrap().execution_id;
        self.runner.drain(Some(&id), None).await;
        self.execution(&id).await
    }

    async fn execution(&self, id: &str) -> Execution {
        self.store.get_execution(id).await.unwrap().unwrap()
    }

    /// A queued config backup claimed by `owner_of(id)` with a lease that expired a minute
    /// ago, as a runner that died leaves it.
    async fn claimed_with_expired_lease(&self, owner_of: impl Fn(&str) -> String) -> String {
        let job = self.job(serde_json::json!({"kind": "config"})).await;
        let id = self.service.run_job(&job, Trigger::Cli, None).await.unwrap().execution_id;
        let past = time::now().timestamp() - 60;
        let claimed = self
            .store
            .claim(&id, &owner_of(&id), past, 1, &time::iso(time::now()))
            .await
            .unwrap();
        assert!(matches!(claimed, ClaimOutcome::Claimed(_)));
        id
    }

    /// A queued config backup claimed by `owner` with a lease of `lease` seconds.
    async fn claimed(&self, owner: &str, lease: i64) -> String {
        let job = self.job(serde_json::json!({"kind": "config"})).await;
        let id = self.service.run_job(&job, Trigger::Cli, None).await.unwrap().execution_id;
        let until = time::now().timestamp() + lease;
        let claimed = self.store.claim(&id, owner, until, 1, &time::iso(time::now())).await.unwrap();
        assert!(matches!(claimed, ClaimOutcome::Claimed(_)));
        id
    }

    fn script(&self, name: &str, body: &str) -> String {
        let path = self.hooks_dir().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    async fn hook(&self, name: &str, position: &str, script: String) {
        let spec: HookSpec =
            serde_json::from_value(serde_json::json!({"name": name, "position": position, "type": "backup", "script": script})).unwrap();
        self.service.create_hook(spec).await.unwrap();
    }
}

fn directory_with_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), b"first file").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/b.bin"), vec![7u8; 100_000]).unwrap();
    dir
}

fn directory_source(dir: &Path) -> serde_json::Value {
    serde_json::json!({"kind": "directory", "path": dir.display().to_string()})
}

#[tokio::test]
async fn a_backup_through_the_ports_stores_every_item_and_the_manifest_last() {
    let h = Harness::new();
    let dir = directory_with_files();
    let job = h.job(directory_source(dir.path())).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Success, "{:?}", e.error);
    let keys = h.objects.keys("unit-bucket");
    assert!(keys.iter().any(|k| k.ends_with("/files.tar.zst")), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with("/manifest.json")), "{keys:?}");
    assert_eq!(h.store.running_slots(), 0);
    let logs = h.store.logs(&e.id).await.unwrap();
    assert!(logs.iter().any(|l| l.message == "Backup completed successfully"), "{logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_never_exceed_the_cap_under_50_concurrent_claims() {
    let h = Harness::new();
    h.service.set_max_concurrent_jobs(3).await.unwrap();
    let job = h.job(serde_json::json!({"kind": "config"})).await;
    for _ in 0..50 {
        h.service.run_job(&job, Trigger::Cli, None).await.unwrap();
    }
    let claims = (0..50).map(|_| {
        let runner = h.runner.clone();
        tokio::spawn(async move { runner.claim_next(None).await.unwrap().is_some() })
    });
    let claimed = futures::future::join_all(claims)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(claimed, 3);
    assert_eq!(h.store.running_slots(), 3);
    let settings = h.store.settings().await.unwrap();
    assert_eq!(settings.max_concurrent_jobs, 3);
}

#[tokio::test]
async fn cancel_while_pending_ends_it_at_once_and_it_never_runs() {
    let h = Harness::new();
    let job = h.job(serde_json::json!({"kind": "config"})).await;
    let id = h.service.run_job(&job, Trigger::Cli, None).await.unwrap().execution_id;
    let cancelled = h.service.cancel_execution(&id).await.unwrap();
    assert_eq!(cancelled.status, ExecutionStatus::Cancelled);
    h.runner.drain(None, None).await;
    let e = h.execution(&id).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled);
    assert!(e.started_at.is_none());
    assert!(h.objects.keys("unit-bucket").is_empty());
    let again = h.service.cancel_execution(&id).await.unwrap_err();
    assert!(again.to_string().contains("already ended"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_running_stops_the_run_and_leaves_nothing_stored() {
    let h = Harness::new();
    h.script("slow.sh", "sleep 30");
    let job = h.job(serde_json::json!({"kind": "command", "argv": ["slow.sh"]})).await;
    let id = h.service.run_job(&job, Trigger::Cli, None).await.unwrap().execution_id;
    let runner = h.runner.clone();
    let hint = id.clone();
    let drained = tokio::spawn(async move { runner.drain(Some(&hint), None).await });
    for _ in 0..100 {
        if h.execution(&id).await.status == ExecutionStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let requested = h.service.cancel_execution(&id).await.unwrap();
    assert_eq!(requested.status, ExecutionStatus::Running, "a running execution is asked to stop");
    tokio::time::timeout(Duration::from_secs(20), drained)
        .await
        .expect("the run stopped")
        .unwrap();
    let e = h.execution(&id).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled, "{:?}", e.error);
    assert_eq!(h.objects.open_upload_count(), 0, "its upload was aborted");
    assert!(
        h.objects.keys("unit-bucket").iter().all(|k| !k.contains(&id)),
        "nothing of it stays"
    );
    assert_eq!(h.store.running_slots(), 0);
}

#[tokio::test]
async fn an_expired_lease_is_failed_by_the_sweep_as_never_finished_and_its_slot_freed() {
    let h = Harness::new();
    let id = h.claimed_with_expired_lease(|_| "a-dead-runner".into()).await;
    assert_eq!(h.store.running_slots(), 1);
    h.runner.sweep(None).await;
    let e = h.execution(&id).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert!(e.error.as_deref().unwrap_or("").starts_with("Never finished"), "{:?}", e.error);
    assert_eq!(h.store.running_slots(), 0);
}

#[tokio::test]
async fn a_fargate_task_that_never_started_is_failed_by_the_sweep_saying_so() {
    let h = Harness::new();
    let id = h.claimed_with_expired_lease(super::fargate_owner).await;
    h.runner.sweep(None).await;
    let e = h.execution(&id).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    let error = e.error.unwrap_or_default();
    assert!(
        error.starts_with("Never finished: its Fargate task did not start in time"),
        "{error}"
    );
    assert_eq!(h.store.running_slots(), 0);
}

#[tokio::test]
async fn a_failing_pre_hook_stops_the_backup_before_it_reads_and_post_hooks_get_102() {
    let h = Harness::new();
    let record = h.hooks_dir().join("post-args");
    h.hook("refuse", "pre", h.script("pre.sh", "exit 3")).await;
    h.hook(
        "record",
        "post",
        h.script("post.sh", &format!("echo \"$9\" > {}", record.display())),
    )
    .await;
    let dir = directory_with_files();
    let job = h.job(directory_source(dir.path())).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    let error = e.error.clone().unwrap_or_default();
    assert!(error.contains("'refuse'") && error.contains("status 3"), "{error}");
    assert_eq!(std::fs::read_to_string(&record).unwrap().trim(), "102");
    assert!(h.objects.keys("unit-bucket").is_empty(), "nothing was stored");
}

#[tokio::test]
async fn a_job_whose_directory_became_a_link_outside_fails_before_any_hook() {
    let h = Harness::new();
    let record = h.hooks_dir().join("pre-ran");
    h.hook("mark", "pre", h.script("pre.sh", &format!("touch {}", record.display())))
        .await;
    let holder = tempfile::tempdir().unwrap();
    let data = holder.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let job = h.job(directory_source(&data)).await;
    // Swapped for a link to a directory outside CAIRN_SOURCE_DIRS after the job was stored.
    std::fs::remove_dir(&data).unwrap();
    std::os::unix::fs::symlink("/etc", &data).unwrap();
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    let error = e.error.unwrap_or_default();
    assert!(error.contains("outside CAIRN_SOURCE_DIRS"), "{error}");
    assert!(!record.exists(), "no hook ran");
    assert!(h.objects.keys("unit-bucket").is_empty());
}

#[tokio::test]
async fn a_restore_of_a_damaged_object_writes_nothing() {
    let h = Harness::new();
    let dir = directory_with_files();
    let job = h.job(directory_source(dir.path())).await;
    let backup = h.run(&job).await;
    assert_eq!(backup.status, ExecutionStatus::Success, "{:?}", backup.error);
    let key = h.objects.keys("unit-bucket").into_iter().find(|k| k.ends_with(".tar.zst")).unwrap();
    let mut data = h.objects.object("unit-bucket", &key).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0xff;
    h.objects.insert("unit-bucket", &key, data);
    let target = tempfile::tempdir().unwrap();
    let into = target.path().join("restored");
    let request: RestoreRequest =
        serde_json::from_value(serde_json::json!({"target": {"kind": "directory", "path": into.display().to_string()}})).unwrap();
    let restore = h.service.start_restore(&backup.id, request, Trigger::Cli).await.unwrap();
    h.runner.drain(Some(&restore.execution_id), None).await;
    let e = h.execution(&restore.execution_id).await;
    assert_eq!(e.execution_type, ExecutionType::Restore);
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert!(
        e.error.as_deref().unwrap_or("").contains("nothing was written to the target"),
        "{:?}",
        e.error
    );
    assert!(!into.exists(), "the target was not created");
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0, "the staging copy was left");
    let logs = h.store.logs(&e.id).await.unwrap();
    assert!(logs.iter().any(|l| l.message.starts_with("Restore failed")), "{logs:?}");
}

#[tokio::test]
async fn an_intact_backup_restores_byte_for_byte() {
    let h = Harness::new();
    let dir = directory_with_files();
    let job = h.job(directory_source(dir.path())).await;
    let backup = h.run(&job).await;
    let target = tempfile::tempdir().unwrap();
    let into = target.path().join("restored");
    let request: RestoreRequest =
        serde_json::from_value(serde_json::json!({"target": {"kind": "directory", "path": into.display().to_string()}})).unwrap();
    let restore = h.service.start_restore(&backup.id, request, Trigger::Cli).await.unwrap();
    h.runner.drain(Some(&restore.execution_id), None).await;
    let e = h.execution(&restore.execution_id).await;
    assert_eq!(e.status, ExecutionStatus::Success, "{:?}", e.error);
    assert_eq!(std::fs::read(into.join("a.txt")).unwrap(), b"first file");
    assert_eq!(std::fs::read(into.join("sub/b.bin")).unwrap(), vec![7u8; 100_000]);
}

#[tokio::test]
async fn renewals_that_fail_a_while_keep_the_run_while_the_lease_holds_and_lose_it_once_it_ran_out() {
    use super::lease::{heartbeat, RunState};
    let h = Harness::new();
    let id = h.claimed("runner-1", 4).await;
    let state = Arc::new(RunState::new(&id));
    let stop = Arc::new(tokio::sync::Notify::new());
    h.store.fail_renewals(2);
    let beating = tokio::spawn(heartbeat(h.store.clone(), "runner-1".into(), 4, state.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        !state.lease_lost.load(std::sync::atomic::Ordering::Relaxed),
        "two failed renewals lost the run"
    );
    assert!(!beating.is_finished());
    // The store stays down: once the last renewed lease ran out the run stops.
    h.store.fail_renewals(u32::MAX);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        state.lease_lost.load(std::sync::atomic::Ordering::Relaxed),
        "the run outlived its lease"
    );
    assert!(state.signals.cancelled());
    assert!(beating.is_finished());
}
