//! Cairn's DynamoDB tables: one definition, used by `cairn init` and checked against
//! template.yaml by a test.

use super::bucket_settings;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use serde::Serialize;

use crate::error::StoreError;

/// Table names for a prefix.
#[derive(Debug, Clone)]
pub struct TableNames {
    pub jobs: String,
    pub destinations: String,
    pub hooks: String,
    pub keys: String,
    pub executions: String,
    pub logs: String,
    pub control: String,
}

impl TableNames {
    pub fn new(prefix: &str) -> Self {
        let t = |s: &str| format!("{prefix}-{s}");
        Self {
            jobs: t("jobs"),
            destinations: t("destinations"),
            hooks: t("hooks"),
            keys: t("keys"),
            executions: t("executions"),
            logs: t("logs"),
            control: t("control"),
        }
    }
}

/// One table's shape: hash key, optional range key (names; all strings unless numeric),
/// indexes and TTL attribute.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TableDef {
    /// Suffix after the prefix: `jobs` for `cairn-jobs`.
    pub suffix: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
    pub indexes: Vec<IndexDef>,
    pub ttl_attribute: Option<&'static str>,
}

/// A global secondary index (all attributes projected).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IndexDef {
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
}

/// Attributes stored as numbers; every other key attribute is a string.
const NUMERIC_KEYS: &[&str] = &[];

/// Every table Cairn uses.
pub fn definitions() -> Vec<TableDef> {
    let simple = |suffix, hash_key| TableDef {
        suffix,
        hash_key,
        range_key: None,
        indexes: vec![],
        ttl_attribute: None,
    };
    vec![
        simple("jobs", "id"),
        simple("destinations", "id"),
        simple("hooks", "id"),
        TableDef {
            suffix: "keys",
            hash_key: "keyHash",
            range_key: None,
            indexes: vec![IndexDef {
                name: "by-id",
                hash_key: "id",
                range_key: None,
            }],
            ttl_attribute: None,
        },
        TableDef {
            suffix: "executions",
            hash_key: "id",
            range_key: None,
            indexes: vec![
                IndexDef {
                    name: "by-job",
                    hash_key: "jobId",
                    range_key: Some("queuedAt"),
                },
                IndexDef {
                    name: "by-status",
                    hash_key: "status",
                    range_key: Some("queuedAt"),
                },
                IndexDef {
                    name: "all",
                    hash_key: "listPartition",
                    range_key: Some("queuedAt"),
                },
            ],
            ttl_attribute: None,
        },
        TableDef {
            suffix: "logs",
            hash_key: "executionId",
            range_key: Some("seq"),
            indexes: vec![],
            ttl_attribute: None,
        },
        TableDef {
            suffix: "control",
            hash_key: "pk",
            range_key: None,
            indexes: vec![],
            ttl_attribute: Some("expiresAt"),
        },
    ]
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type are set")
}

fn attr(name: &str) -> AttributeDefinition {
    let t = if NUMERIC_KEYS.contains(&name) {
        ScalarAttributeType::N
    } else {
        ScalarAttributeType::S
    };
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .expect("name and type are set")
}

fn dynamo_err(operation: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Dynamo {
        operation,
        message: e.to_string(),
    }
}

/// Creates every table (and its TTL) that does not exist yet, and waits until they are
/// active. Idempotent.
///
/// # Errors
/// Any DynamoDB failure other than "already exists".
pub async fn create_tables(client: &aws_sdk_dynamodb::Client, prefix: &str) -> Result<Vec<String>, StoreError> {
    let mut created = Vec::new();
    for def in definitions() {
        let name = format!("{prefix}-{}", def.suffix);
        let exists = client.describe_table().table_name(&name).send().await.is_ok();
        if !exists {
            let mut attrs = vec![def.hash_key];
            let mut req = client
                .create_table()
                .table_name(&name)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key(def.hash_key, KeyType::Hash));
            if let Some(r) = def.range_key {
                req = req.key_schema(key(r, KeyType::Range));
                attrs.push(r);
            }
            for idx in &def.indexes {
                let mut g = GlobalSecondaryIndex::builder()
                    .index_name(idx.name)
                    .key_schema(key(idx.hash_key, KeyType::Hash))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build());
                attrs.push(idx.hash_key);
                if let Some(r) = idx.range_key {
                    g = g.key_schema(key(r, KeyType::Range));
                    attrs.push(r);
                }
                req = req.global_secondary_indexes(g.build().map_err(|e| dynamo_err("CreateTable", e))?);
            }
            attrs.sort_unstable();
            attrs.dedup();
            for a in attrs {
                req = req.attribute_definitions(attr(a));
            }
            match req.send().await {
                Ok(_) => created.push(name.clone()),
                Err(e) => {
                    let already = e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception());
                    if !already {
                        return Err(dynamo_err("CreateTable", crate::adapters::sdk_error_text(e)));
                    }
                }
            }
        }
        wait_active(client, &name).await?;
        if let Some(ttl) = def.ttl_attribute {
            let current = client
                .describe_time_to_live()
                .table_name(&name)
                .send()
                .await
                .map_err(|e| dynamo_err("DescribeTimeToLive", e))?;
            let enabled = current
                .time_to_live_description()
                .and_then(|d| d.time_to_live_status())
                .is_some_and(|s| {
                    matches!(
                        s,
                        aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled | aws_sdk_dynamodb::types::TimeToLiveStatus::Enabling
                    )
                });
            if !enabled {
                client
                    .update_time_to_live()
                    .table_name(&name)
                    .time_to_live_specification(
                        TimeToLiveSpecification::builder()
                            .enabled(true)
                            .attribute_name(ttl)
                            .build()
                            .map_err(|e| dynamo_err("UpdateTimeToLive", e))?,
                    )
                    .send()
                    .await
                    .map_err(|e| dynamo_err("UpdateTimeToLive", crate::adapters::sdk_error_text(e)))?;
            }
        }
    }
    Ok(created)
}

async fn wait_active(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), StoreError> {
    for _ in 0..600 {
        let d = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| dynamo_err("DescribeTable", crate::adapters::sdk_error_text(e)))?;
        if d.table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| *s == aws_sdk_dynamodb::types::TableStatus::Active)
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(dynamo_err("DescribeTable", format!("table {name} did not become active")))
}

/// What `cairn init` did to the default bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketSetup {
    pub created: bool,
    /// The settings applied to a bucket created now: `versioning`, `encryption`,
    /// `public-access block`, `lifecycle`.
    pub applied: Vec<&'static str>,
    /// Settings the store does not implement, with what it answered. Backups work without
    /// them; the operator may want another store or to set them by other means.
    pub unsupported: Vec<(&'static str, String)>,
}

/// Creates the bucket if it is missing and applies the settings template.yaml gives the
/// backup bucket (versioning, SSE-S3, public access blocked, incomplete uploads aborted
/// after a day). A setting the store does not implement (S3-compatible servers often lack
/// some) is reported in [`BucketSetup::unsupported`], not an error; any other refusal is.
///
/// # Errors
/// The bucket could not be created, or a setting was refused for another reason.
pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> Result<BucketSetup, crate::error::ObjectStoreError> {
    let s3err = |operation, e: String| crate::error::ObjectStoreError::failed(operation, bucket, "", e);
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(BucketSetup::default());
    }
    if let Err(e) = client.create_bucket().bucket(bucket).send().await {
        let owned = e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you());
        if !owned {
            return Err(s3err("CreateBucket", crate::adapters::sdk_error_text(e)));
        }
        return Ok(BucketSetup::default());
    }
    let mut setup = BucketSetup {
        created: true,
        ..BucketSetup::default()
    };
    let outcomes = [
        (
            "versioning",
            "PutBucketVersioning",
            bucket_settings::versioning(client, bucket).await,
        ),
        (
            "encryption",
            "PutBucketEncryption",
            bucket_settings::encryption(client, bucket).await,
        ),
        (
            "public-access block",
            "PutPublicAccessBlock",
            bucket_settings::public_access_block(client, bucket).await,
        ),
        (
            "lifecycle",
            "PutBucketLifecycleConfiguration",
            bucket_settings::lifecycle(client, bucket).await,
        ),
    ];
    for (setting, operation, outcome) in outcomes {
        match outcome {
            Ok(()) => setup.applied.push(setting),
            Err(bucket_settings::Refused::NotImplemented(text)) => setup.unsupported.push((setting, text)),
            Err(bucket_settings::Refused::Other(text)) => return Err(s3err(operation, text)),
        }
    }
    Ok(setup)
}
