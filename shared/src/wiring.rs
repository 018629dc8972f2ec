//! Wiring shared by every binary: clients, stores, the runner, the service.
//!
//! [`App`] is the whole of Cairn (the runner, `manage`, `cairn serve`). [`ApiApp`] is what
//! the request-only functions (`run`, `poll`, `list`) need: DynamoDB and, to dispatch,
//! Lambda. It never builds an S3 client or a runner, so the linker leaves the S3 SDK and
//! the backup engine out of those binaries (smaller, faster to start).

use std::sync::Arc;

use crate::adapters::aws::ApiClients;
use crate::adapters::ecs::EcsDispatcher;
use crate::adapters::events::EventBridgePublisher;
use crate::adapters::lambda::LambdaDispatcher;
use crate::adapters::tables::TableNames;
use crate::adapters::{AwsClients, DynamoStore};
use crate::config::Config;
use crate::error::{ObjectStoreError, StoreError};
use crate::http::HttpApi;
use crate::ports::{
    Dispatcher, ExecutionStore, ObjectBody, ObjectInfo, ObjectPage, ObjectStore, ObjectStores, OpenUpload, PartUpload,
    PublishingExecutions, StoreLocation, UploadOptions, UploadedPart,
};
use crate::runner::{fargate_owner, InProcessDispatcher, Runner, RunnerStores};
use crate::services::CairnService;

/// Everything a Cairn process needs, built once at start-up.
#[derive(Clone)]
pub struct App {
    pub config: Config,
    pub clients: AwsClients,
    pub store: Arc<DynamoStore>,
    pub objects: Arc<dyn ObjectStores>,
    pub runner: Arc<Runner>,
    pub service: CairnService,
    pub http: HttpApi,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("config", &self.config).finish_non_exhaustive()
    }
}

impl App {
    /// Loads AWS clients and builds the stores and services. Executions are dispatched to
    /// the runner Lambda when `CAIRN_RUNNER_FUNCTION` is set, to an in-process runner
    /// otherwise; Fargate executions' tasks are started by ECS `RunTask` when
    /// `CAIRN_FARGATE_CLUSTER` is set. In a Fargate task (`CAIRN_EXECUTION_ID` set) the
    /// runner claims and renews as that execution's task.
    pub async fn build(config: Config) -> Self {
        let clients = AwsClients::load().await;
        let store = Arc::new(dynamo_store(&clients.dynamodb, &config));
        let executions = published(
            &store,
            config
                .event_bus
                .clone()
                .map(|bus| EventBridgePublisher::new(&clients.sdk_config, bus)),
        );
        let mut stores = RunnerStores::of(&store);
        stores.executions = executions.clone();
        let objects: Arc<dyn ObjectStores> = Arc::new(clients.object_stores());
        let secrets = Arc::new(clients.secret_store());
        let mut runner = Runner::new(stores, objects.clone(), secrets, config.clone());
        if let Some(task) = &config.fargate {
            runner = runner.with_fargate(Arc::new(EcsDispatcher::new(clients.ecs.clone(), task.clone())));
        }
        let lambda = config
            .runner_function
            .as_ref()
            .map(|name| Arc::new(LambdaDispatcher::new(clients.lambda.clone(), name.clone())));
        if let Some(lambda) = &lambda {
            // The runner's own function: a fresh invocation takes the queue on.
            runner = runner.with_successor(lambda.clone());
        }
        if let Some(id) = &config.execution_id {
            runner = runner.with_owner(fargate_owner(id));
        }
        let runner = Arc::new(runner);
        let dispatcher: Arc<dyn Dispatcher> = match lambda {
            Some(lambda) => lambda,
            None => Arc::new(InProcessDispatcher { runner: runner.clone() }),
        };
        let mut service = CairnService::new(&store, dispatcher, objects.clone(), &config);
        service.executions = executions;
        let http = HttpApi::new(service.clone(), &config);
        Self {
            config,
            clients,
            store,
            objects,
            runner,
            service,
            http,
        }
    }
}

/// The DynamoDB store, with counter writes serialized (see
/// [`DynamoStore::serialize_counter_writes`]).
fn dynamo_store(clients_dynamodb: &crate::adapters::aws::DynamoClient, config: &Config) -> DynamoStore {
    DynamoStore::new(clients_dynamodb.clone(), TableNames::new(&config.table_prefix)).serialize_counter_writes()
}

/// The execution store every writer of a status uses: the DynamoDB store, publishing each
/// state change to `events` (EventBridge, unless `CAIRN_EVENTS=off`).
fn published(store: &Arc<DynamoStore>, events: Option<EventBridgePublisher>) -> Arc<dyn ExecutionStore> {
    match events {
        Some(events) => Arc::new(PublishingExecutions::new(store.clone(), Arc::new(events))),
        None => store.clone(),
    }
}

/// The request-only functions' wiring: the API over DynamoDB, dispatching to the runner
/// Lambda named by `CAIRN_RUNNER_FUNCTION`.
#[derive(Clone)]
pub struct ApiApp {
    pub config: Config,
    pub store: Arc<DynamoStore>,
    pub service: CairnService,
    pub http: HttpApi,
}

impl std::fmt::Debug for ApiApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiApp").field("config", &self.config).finish_non_exhaustive()
    }
}

impl ApiApp {
    pub async fn build(config: Config) -> Self {
        let clients = ApiClients::load().await;
        let store = Arc::new(dynamo_store(&clients.dynamodb, &config));
        let dispatcher: Arc<dyn Dispatcher> = match &config.runner_function {
            Some(name) => Arc::new(LambdaDispatcher::new(clients.lambda.clone(), name.clone())),
            None => Arc::new(NotServedHere),
        };
        let mut service = CairnService::new(&store, dispatcher, Arc::new(NotServedHere), &config);
        service.executions = published(
            &store,
            config
                .event_bus
                .clone()
                .map(|bus| EventBridgePublisher::new(&clients.sdk_config, bus)),
        );
        let http = HttpApi::new(service.clone(), &config);
        Self {
            config,
            store,
            service,
            http,
        }
    }
}

/// Stands in for what a request-only function does not do. API Gateway never routes such
/// requests to it (template.yaml); if one arrives anyway, the caller gets a clear error.
struct NotServedHere;

#[async_trait::async_trait]
impl Dispatcher for NotServedHere {
    async fn dispatch(&self, _execution_id: &str) -> Result<(), StoreError> {
        Err(StoreError::Dispatch("CAIRN_RUNNER_FUNCTION is not set on this function".into()))
    }
}

impl ObjectStores for NotServedHere {
    fn at(&self, _location: &StoreLocation) -> Arc<dyn ObjectStore> {
        Arc::new(NotServedHere)
    }
}

fn not_served() -> ObjectStoreError {
    ObjectStoreError::Failed {
        operation: "read",
        location: "backups".into(),
        message: "backups are read by the manage function and the runner".into(),
    }
}

/// Every call fails: the request-only functions link no S3 client.
#[async_trait::async_trait]
impl ObjectStore for NotServedHere {
    async fn get(&self, _: &str, _: &str, _: Option<(u64, u64)>) -> Result<ObjectBody, ObjectStoreError> {
        Err(not_served())
    }
    async fn put(&self, _: &str, _: &str, _: bytes::Bytes, _: &str) -> Result<(), ObjectStoreError> {
        Err(not_served())
    }
    async fn head(&self, _: &str, _: &str) -> Result<ObjectInfo, ObjectStoreError> {
        Err(not_served())
    }
    async fn list(&self, _: &str, _: &str, _: Option<String>) -> Result<ObjectPage, ObjectStoreError> {
        Err(not_served())
    }
    async fn delete(&self, _: &str, _: &str) -> Result<(), ObjectStoreError> {
        Err(not_served())
    }
    async fn delete_prefix(&self, _: &str, _: &str) -> Result<(), ObjectStoreError> {
        Err(not_served())
    }
    async fn presign_get(&self, _: &str, _: &str, _: u64) -> Result<String, ObjectStoreError> {
        Err(not_served())
    }
    async fn create_multipart(&self, _: &str, _: &str, _: &UploadOptions) -> Result<String, ObjectStoreError> {
        Err(not_served())
    }
    async fn upload_part(&self, _: &str, _: &str, _: &str, _: PartUpload) -> Result<UploadedPart, ObjectStoreError> {
        Err(not_served())
    }
    async fn complete_multipart(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Vec<UploadedPart>,
        _: Option<&str>,
    ) -> Result<Option<String>, ObjectStoreError> {
        Err(not_served())
    }
    async fn abort_multipart(&self, _: &str, _: &str, _: &str) -> Result<(), ObjectStoreError> {
        Err(not_served())
    }
    async fn open_uploads(&self, _: &str, _: &str) -> Result<Vec<OpenUpload>, ObjectStoreError> {
        Err(not_served())
    }
}
