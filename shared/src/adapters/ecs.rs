//! Dispatch to a Fargate task by ECS `RunTask`.

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType, NetworkConfiguration, TaskOverride,
};

use crate::config::FargateTask;
use crate::error::StoreError;
use crate::ports::Dispatcher;

/// Starts one task of the runner's task definition per execution, with the execution's
/// id in the container's environment (`CAIRN_EXECUTION_ID`).
#[derive(Debug, Clone)]
pub struct EcsDispatcher {
    client: aws_sdk_ecs::Client,
    task: FargateTask,
}

impl EcsDispatcher {
    pub fn new(client: aws_sdk_ecs::Client, task: FargateTask) -> Self {
        Self { client, task }
    }

    fn network(&self) -> Result<NetworkConfiguration, StoreError> {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(self.task.subnets.clone()))
            .set_security_groups(Some(self.task.security_groups.clone()).filter(|g| !g.is_empty()))
            .assign_public_ip(if self.task.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|e| StoreError::Dispatch(format!("RunTask network configuration: {e}")))?;
        Ok(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
    }
}

#[async_trait]
impl Dispatcher for EcsDispatcher {
    async fn dispatch(&self, execution_id: &str) -> Result<(), StoreError> {
        let environment = KeyValuePair::builder().name("CAIRN_EXECUTION_ID").value(execution_id).build();
        let container = ContainerOverride::builder()
            .name(&self.task.container)
            .environment(environment)
            .build();
        let out = self
            .client
            .run_task()
            .cluster(&self.task.cluster)
            .task_definition(&self.task.task_definition)
            .launch_type(LaunchType::Fargate)
            .count(1)
            .network_configuration(self.network()?)
            .overrides(TaskOverride::builder().container_overrides(container).build())
            .started_by("cairn")
            // A repeated dispatch of the same execution starts no second task.
            .client_token(execution_id)
            .send()
            .await
            .map_err(|e| StoreError::Dispatch(format!("ECS RunTask: {}", aws_sdk_ecs::error::DisplayErrorContext(e))))?;
        if let Some(f) = out.failures().first() {
            return Err(StoreError::Dispatch(format!(
                "ECS RunTask refused: {} {}",
                f.reason().unwrap_or("no reason given"),
                f.detail().unwrap_or("")
            )));
        }
        if out.tasks().is_empty() {
            return Err(StoreError::Dispatch("ECS RunTask started no task".into()));
        }
        Ok(())
    }
}
