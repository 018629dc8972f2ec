//! The services against the in-memory ports: idempotent runs, schedule slots, keys.

use std::sync::Arc;

use super::CairnService;
use crate::domain::{DestinationSpec, JobSpec, Permission, Trigger};
use crate::error::{AuthError, ServiceError};
use crate::ports::memory::{MemoryObjects, MemoryStore, RecordingDispatcher};
use crate::ports::ExecutionStore;
use crate::time;

fn service() -> (CairnService, Arc<MemoryStore>, Arc<RecordingDispatcher>) {
    let store = MemoryStore::new();
    let dispatcher = Arc::new(RecordingDispatcher::default());
    let config = crate::config::Config::from_lookup(|name| (name == "CAIRN_HOOKS_DIR").then(|| "/nonexistent".to_owned())).unwrap();
    let service = CairnService::new(&store, dispatcher.clone(), Arc::new(MemoryObjects::default()), &config);
    (service, store, dispatcher)
}

async fn job(svc: &CairnService, extra: serde_json::Value) -> String {
    let d = svc
        .create_destination(DestinationSpec {
            name: "d".into(),
            bucket: "unit-bucket".into(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            storage_class: None,
            repository: None,
        })
        .await
        .unwrap();
    let mut body = serde_json::json!({"name": "j", "items": [{"name": "c", "source": {"kind": "config"}}], "destinations": [d.id]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let spec: JobSpec = serde_json::from_value(body).unwrap();
    svc.create_job(spec).await.unwrap().id
}

#[tokio::test]
async fn a_repeated_idempotency_key_answers_the_first_execution_and_dispatches_once() {
    let (svc, store, dispatcher) = service();
    let id = job(&svc, serde_json::json!({})).await;
    let first = svc.run_job(&id, Trigger::Cli, Some("deploy-42")).await.unwrap();
    let again = svc.run_job(&id, Trigger::Cli, Some("deploy-42")).await.unwrap();
    let other = svc.run_job(&id, Trigger::Cli, Some("deploy-43")).await.unwrap();
    assert!(first.created && !again.created && other.created);
    assert_eq!(first.execution_id, again.execution_id);
    assert_ne!(first.execution_id, other.execution_id);
    assert_eq!(dispatcher.dispatched.lock().unwrap().len(), 2);
    assert_eq!(store.oldest_pending(10).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_slot_runs_exactly_once_under_overlapping_ticks() {
    let (svc, store, _) = service();
    let id = job(&svc, serde_json::json!({"schedule": {"cron": "0 3 * * *", "timezone": "UTC"}})).await;
    let slot = svc.get_job(&id).await.unwrap().next_run_at.unwrap();
    let at = time::parse_iso(&slot).unwrap() + chrono::Duration::seconds(30);
    let ticks = (0..8).map(|_| {
        let svc = svc.clone();
        tokio::spawn(async move { svc.schedule_tick(at).await.unwrap().len() })
    });
    let started: usize = futures::future::join_all(ticks).await.into_iter().map(Result::unwrap).sum();
    assert_eq!(started, 1);
    assert_eq!(store.oldest_pending(10).await.unwrap().len(), 1);
    // A later tick within the same slot runs nothing more.
    assert!(svc.schedule_tick(at + chrono::Duration::seconds(10)).await.unwrap().is_empty());
    let next = svc.get_job(&id).await.unwrap().next_run_at.unwrap();
    assert!(next > slot, "the next run moved past the slot: {next}");
}

#[tokio::test]
async fn a_disabled_job_is_refused_with_a_conflict() {
    let (svc, _, _) = service();
    let id = job(&svc, serde_json::json!({})).await;
    svc.set_job_enabled(&id, false).await.unwrap();
    let e = svc.run_job(&id, Trigger::Cli, None).await.unwrap_err();
    assert!(matches!(e, ServiceError::Conflict(_)), "{e}");
    assert!(matches!(
        svc.run_job("nope", Trigger::Cli, None).await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
}

#[tokio::test]
async fn keys_authenticate_only_while_enabled_and_only_for_what_they_hold() {
    let (svc, _, _) = service();
    let k = svc
        .create_key("ci".into(), vec![Permission::JobsExecute], None, None)
        .await
        .unwrap();
    let header = format!("Bearer {}", k.secret);
    assert!(svc.authenticate(Some(&header), Permission::JobsExecute).await.is_ok());
    let forbidden = svc.authenticate(Some(&header), Permission::JobsWrite).await.unwrap_err();
    assert!(matches!(forbidden, ServiceError::Forbidden("jobs:write")), "{forbidden}");
    svc.set_key_enabled(&k.stored.id, false).await.unwrap();
    let disabled = svc.authenticate(Some(&header), Permission::JobsExecute).await.unwrap_err();
    assert!(matches!(disabled, ServiceError::Unauthenticated(AuthError::Disabled)), "{disabled}");
    let missing = svc.authenticate(None, Permission::JobsExecute).await.unwrap_err();
    assert!(matches!(missing, ServiceError::Unauthenticated(AuthError::Missing)), "{missing}");
}

#[tokio::test]
async fn a_key_grants_only_the_permissions_it_holds() {
    let (svc, _, _) = service();
    let granter = svc
        .create_key("keys".into(), vec![Permission::KeysWrite, Permission::JobsRead], None, None)
        .await
        .unwrap();
    let ok = svc
        .create_key("reader".into(), vec![Permission::JobsRead], None, Some(&granter.stored))
        .await;
    assert!(ok.is_ok());
    let all = svc
        .create_key("root".into(), Permission::ALL.to_vec(), None, Some(&granter.stored))
        .await
        .unwrap_err();
    assert!(matches!(all, ServiceError::Forbidden("jobs:write")), "{all}");
    let admin = svc.create_key("admin".into(), Permission::ALL.to_vec(), None, None).await.unwrap();
    assert!(
        svc.create_key("root".into(), Permission::ALL.to_vec(), None, Some(&admin.stored))
            .await
            .is_ok(),
        "only all grants all"
    );
}

#[tokio::test]
async fn key_lifetimes_beyond_five_years_are_refused_without_overflow() {
    let (svc, _, _) = service();
    for seconds in [
        i64::MAX,
        10_000_000_000_000,
        106_751_991_167 * 86_400,
        super::admin::MAX_KEY_LIFETIME_SECS + 1,
    ] {
        let e = svc
            .create_key("k".into(), vec![Permission::JobsRead], Some(seconds), None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("at most 5 years"), "{seconds}: {e}");
    }
    let k = svc
        .create_key(
            "k".into(),
            vec![Permission::JobsRead],
            Some(super::admin::MAX_KEY_LIFETIME_SECS),
            None,
        )
        .await
        .unwrap();
    assert!(k.stored.expires_at.is_some());
}
