//! Wiring shared by every binary: clients, stores, the runner, the service.

use std::sync::Arc;

use crate::adapters::dispatch::LambdaDispatcher;
use crate::adapters::tables::TableNames;
use crate::adapters::{AwsClients, DynamoStore};
use crate::api::{CairnService, HttpApi};
use crate::config::Config;
use crate::runner::{InProcessDispatcher, Runner, RunnerStores};
use crate::store::Dispatcher;

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
        let service = CairnService {
            jobs: store.clone(),
            destinations: store.clone(),
            keys: store.clone(),
            executions: store.clone(),
            settings: store.clone(),
            hooks: store.clone(),
            dispatcher,
            hook_rules: config.hook_rules(),
            backups: Arc::new(crate::adapters::s3::S3BackupReader {
                client: clients.s3.clone(),
            }),
            download_max_seconds: config.download_max_seconds,
        };
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
