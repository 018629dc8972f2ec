//! Wiring shared by every binary: clients, stores, the runner, the service.
//!
//! [`App`] is the whole of Cairn (the runner, `manage`, `cairn serve`). [`ApiApp`] is what
//! the request-only functions (`run`, `poll`, `list`) need: DynamoDB and, to dispatch,
//! Lambda. It never builds an S3 client or a runner, so the linker leaves the S3 SDK and
//! the backup engine out of those binaries (smaller, faster to start).

use std::sync::Arc;

use crate::adapters::dispatch::LambdaDispatcher;
use crate::adapters::tables::TableNames;
use crate::adapters::{AwsClients, DynamoStore};
use crate::api::{CairnService, HttpApi};
use crate::config::Config;
use crate::error::StoreError;
use crate::runner::{InProcessDispatcher, Runner, RunnerStores};
use crate::store::{BackupReader, Dispatcher};

/// Everything a Cairn process needs, built once at start-up.
#[derive(Clone)]
pub struct App {
    pub config: Config,
    pub clients: AwsClients,
    pub store: Arc<DynamoStore>,
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
    /// otherwise.
    pub async fn build(config: Config) -> Self {
        let clients = AwsClients::load().await;
        let store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), TableNames::new(&config.table_prefix)));
        let stores = RunnerStores {
            jobs: store.clone(),
            destinations: store.clone(),
            keys: store.clone(),
            executions: store.clone(),
            settings: store.clone(),
            hooks: store.clone(),
        };
        let runner = Arc::new(Runner::new(stores, clients.clone(), config.clone()));
        let dispatcher: Arc<dyn Dispatcher> = match &config.runner_function {
            Some(name) => Arc::new(LambdaDispatcher::new(clients.lambda.clone(), name.clone())),
            None => Arc::new(InProcessDispatcher { runner: runner.clone() }),
        };
        let backups = Arc::new(crate::adapters::s3::S3BackupReader {
            client: clients.s3.clone(),
        });
        let service = service(&config, &store, dispatcher, backups);
        let http = HttpApi::new(service.clone(), store.clone(), &config);
        Self {
            config,
            clients,
            store,
            runner,
            service,
            http,
        }
    }
}

fn service(config: &Config, store: &Arc<DynamoStore>, dispatcher: Arc<dyn Dispatcher>, backups: Arc<dyn BackupReader>) -> CairnService {
    CairnService {
        jobs: store.clone(),
        destinations: store.clone(),
        keys: store.clone(),
        executions: store.clone(),
        settings: store.clone(),
        hooks: store.clone(),
        dispatcher,
        hook_rules: config.hook_rules(),
        backups,
        download_max_seconds: config.download_max_seconds,
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
        let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let store = Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk_config),
            TableNames::new(&config.table_prefix),
        ));
        let dispatcher: Arc<dyn Dispatcher> = match &config.runner_function {
            Some(name) => Arc::new(LambdaDispatcher::new(aws_sdk_lambda::Client::new(&sdk_config), name.clone())),
            None => Arc::new(NotServedHere),
        };
        let service = service(&config, &store, dispatcher, Arc::new(NotServedHere));
        let http = HttpApi::new(service.clone(), store.clone(), &config);
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

#[async_trait::async_trait]
impl BackupReader for NotServedHere {
    async fn manifest(&self, _bucket: &str, _folder: &str) -> Result<crate::engine::manifest::Manifest, String> {
        Err("backups are read by the manage function".into())
    }
    async fn presign_get(&self, _bucket: &str, _key: &str, _seconds: u64) -> Result<String, String> {
        Err("download URLs are made by the manage function".into())
    }
}
