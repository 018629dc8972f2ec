//! Jobs, hooks and destinations: items keyed by `id`.

use async_trait::async_trait;

use super::{err, is_condition_failed, n, s, DynamoStore};
use crate::domain::{Destination, Hook, Job, Verification};
use crate::error::StoreError;
use crate::ports::{DestinationRepository, HookRepository, JobRepository};

#[async_trait]
impl JobRepository for DynamoStore {
    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        self.put_new(&self.tables.jobs, "id", job).await
    }

    async fn replace_job(&self, job: &Job) -> Result<bool, StoreError> {
        self.put_existing(&self.tables.jobs, job).await
    }

    async fn get_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.get(&self.tables.jobs, ("id", s(id))).await
    }

    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let mut jobs: Vec<Job> = self.scan_all(&self.tables.jobs).await?;
        jobs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(jobs)
    }

    async fn delete_job(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_existing(&self.tables.jobs, ("id", s(id))).await
    }

    async fn advance_schedule(&self, id: &str, expected: Option<&str>, next: &str) -> Result<bool, StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.tables.jobs)
            .key("id", s(id))
            .update_expression("SET nextRunAt = :next")
            .expression_attribute_values(":next", s(next));
        let req = match expected {
            Some(e) => req
                .condition_expression("nextRunAt = :expected")
                .expression_attribute_values(":expected", s(e)),
            None => req.condition_expression("attribute_exists(id) AND attribute_not_exists(nextRunAt)"),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }
}

#[async_trait]
impl HookRepository for DynamoStore {
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError> {
        self.put_new(&self.tables.hooks, "id", hook).await
    }

    async fn replace_hook(&self, hook: &Hook) -> Result<bool, StoreError> {
        self.put_existing(&self.tables.hooks, hook).await
    }

    async fn get_hook(&self, id: &str) -> Result<Option<Hook>, StoreError> {
        self.get(&self.tables.hooks, ("id", s(id))).await
    }

    async fn list_hooks(&self) -> Result<Vec<Hook>, StoreError> {
        let mut all: Vec<Hook> = self.scan_all(&self.tables.hooks).await?;
        all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    }

    async fn delete_hook(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_existing(&self.tables.hooks, ("id", s(id))).await
    }
}

#[async_trait]
impl DestinationRepository for DynamoStore {
    async fn create_destination(&self, d: &Destination) -> Result<(), StoreError> {
        self.put_new(&self.tables.destinations, "id", d).await
    }

    async fn get_destination(&self, id: &str) -> Result<Option<Destination>, StoreError> {
        self.get(&self.tables.destinations, ("id", s(id))).await
    }

    async fn list_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        let mut all: Vec<Destination> = self.scan_all(&self.tables.destinations).await?;
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(all)
    }

    async fn delete_destination(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_existing(&self.tables.destinations, ("id", s(id))).await
    }

    async fn record_verification(&self, id: &str, verification: Verification) -> Result<(), StoreError> {
        let value = serde_json::to_value(verification)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let sent = self
            .client
            .update_item()
            .table_name(&self.tables.destinations)
            .key("id", s(id))
            .update_expression("SET verification = :v")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_values(":v", s(&value))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    async fn claim_prune(&self, id: &str, owner: &str, now: i64, since: i64, until: i64) -> Result<bool, StoreError> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.tables.destinations)
            .key("id", s(id))
            .update_expression("SET pruneOwner = :o, pruneUntil = :u")
            .condition_expression(
                "attribute_exists(id) AND (attribute_not_exists(prunedAt) OR prunedAt <= :since) \
                 AND (attribute_not_exists(pruneUntil) OR pruneUntil < :now)",
            )
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":u", n(until))
            .expression_attribute_values(":since", n(since))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    async fn finish_prune(&self, id: &str, owner: &str, now: i64, pruned: bool) -> Result<(), StoreError> {
        let update = if pruned {
            "SET prunedAt = :now REMOVE pruneOwner, pruneUntil"
        } else {
            "REMOVE pruneOwner, pruneUntil"
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tables.destinations)
            .key("id", s(id))
            .update_expression(update)
            .condition_expression("pruneOwner = :o")
            .expression_attribute_values(":o", s(owner));
        if pruned {
            request = request.expression_attribute_values(":now", n(now));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            // The claim expired and another took it: that one records its own prune.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }
}
