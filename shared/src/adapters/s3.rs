//! [`ObjectStore`] on S3 (and S3-compatible stores, through a destination's endpoint).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, StorageClass,
};
use bytes::Bytes;
use futures::StreamExt;

use crate::error::ObjectStoreError;
use crate::ports::{
    ObjectBody, ObjectEntry, ObjectInfo, ObjectPage, ObjectStore, ObjectStores, OpenUpload, PartUpload, StoreLocation, UploadOptions,
    UploadedPart,
};

/// One S3 client: the default one, or a destination's.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

/// Turns an SDK error into the port's: "not found" as such, anything else with its code
/// and message (never the raw response).
fn store_err<E>(operation: &'static str, bucket: &str, key: &str, e: aws_sdk_s3::error::SdkError<E>) -> ObjectStoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let not_found = matches!(e.code(), Some("NoSuchKey" | "NotFound" | "NoSuchUpload" | "NoSuchBucket"))
        || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
    if not_found {
        return ObjectStoreError::NotFound {
            operation,
            location: format!("s3://{bucket}/{key}"),
        };
    }
    ObjectStoreError::failed(operation, bucket, key, super::sdk_failure(e))
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, bucket: &str, key: &str, range: Option<(u64, u64)>) -> Result<ObjectBody, ObjectStoreError> {
        let got = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_range(range.map(|(from, to)| format!("bytes={from}-{to}")))
            .send()
            .await
            .map_err(|e| store_err("GetObject", bucket, key, e))?;
        let size = got.content_length().and_then(|n| u64::try_from(n).ok());
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let chunks = futures::stream::unfold(Some(got.body), move |body: Option<ByteStream>| {
            let (bucket, key) = (bucket.clone(), key.clone());
            async move {
                let mut body = body?;
                match body.next().await? {
                    Ok(b) => Some((Ok(b), Some(body))),
                    Err(e) => Some((Err(ObjectStoreError::failed("GetObject", &bucket, &key, e.to_string())), None)),
                }
            }
        });
        // Fused: readers may ask again after the end, which an unfold must not be.
        Ok(ObjectBody {
            size,
            chunks: chunks.fuse().boxed(),
        })
    }

    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<(), ObjectStoreError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| store_err("PutObject", bucket, key, e))?;
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectStoreError> {
        let head = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| store_err("HeadObject", bucket, key, e))?;
        Ok(ObjectInfo {
            size: u64::try_from(head.content_length().unwrap_or(-1)).unwrap_or(u64::MAX),
            etag: head.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
            crc64nvme: head.checksum_crc64_nvme().map(str::to_owned),
        })
    }

    async fn list(&self, bucket: &str, prefix: &str, token: Option<String>) -> Result<ObjectPage, ObjectStoreError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| store_err("ListObjectsV2", bucket, prefix, e))?;
        let objects = page
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ObjectEntry {
                    key: o.key()?.to_owned(),
                    size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    modified: o.last_modified().map_or(0, |t| t.secs()),
                })
            })
            .collect();
        let next = match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => Some(t.to_owned()),
            _ => None,
        };
        Ok(ObjectPage { objects, next })
    }

    async fn delete_prefix(&self, bucket: &str, prefix: &str) -> Result<(), ObjectStoreError> {
        let mut token = None;
        loop {
            let page = self.list(bucket, prefix, token.take()).await?;
            let ids: Vec<ObjectIdentifier> = page
                .objects
                .iter()
                .filter_map(|o| ObjectIdentifier::builder().key(&o.key).build().ok())
                .collect();
            if !ids.is_empty() {
                let delete = Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()
                    .map_err(|e| ObjectStoreError::failed("DeleteObjects", bucket, prefix, e.to_string()))?;
                self.client
                    .delete_objects()
                    .bucket(bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| store_err("DeleteObjects", bucket, prefix, e))?;
            }
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    async fn presign_get(&self, bucket: &str, key: &str, seconds: u64) -> Result<String, ObjectStoreError> {
        let config = PresigningConfig::expires_in(Duration::from_secs(seconds))
            .map_err(|e| ObjectStoreError::failed("presign GetObject", bucket, key, e.to_string()))?;
        let req = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| store_err("presign GetObject", bucket, key, e))?;
        Ok(req.uri().to_owned())
    }

    async fn create_multipart(&self, bucket: &str, key: &str, options: &UploadOptions) -> Result<String, ObjectStoreError> {
        let mut req = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(&options.content_type);
        if options.full_object_crc64nvme {
            req = req
                .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                .checksum_type(ChecksumType::FullObject);
        }
        if let Some(sc) = &options.storage_class {
            req = req.storage_class(StorageClass::from(sc.as_str()));
        }
        let out = req.send().await.map_err(|e| store_err("CreateMultipartUpload", bucket, key, e))?;
        Ok(out.upload_id().unwrap_or_default().to_owned())
    }

    async fn upload_part(&self, bucket: &str, key: &str, upload_id: &str, part: PartUpload) -> Result<UploadedPart, ObjectStoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part.number)
            .set_checksum_crc64_nvme(part.crc64nvme.clone())
            .set_content_md5(part.content_md5)
            .body(ByteStream::from(part.data))
            // The part's CRC64NVME (checked by S3) protects the payload; signing it too
            // would hash every byte a second time.
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| store_err("UploadPart", bucket, key, e))?;
        Ok(UploadedPart {
            number: part.number,
            etag: out.e_tag().map(str::to_owned),
            crc64nvme: part.crc64nvme,
        })
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<UploadedPart>,
        crc64nvme: Option<&str>,
    ) -> Result<Option<String>, ObjectStoreError> {
        let parts: Vec<CompletedPart> = parts
            .into_iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.number)
                    .set_e_tag(p.etag)
                    .set_checksum_crc64_nvme(p.crc64nvme)
                    .build()
            })
            .collect();
        let mut req = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
        if let Some(crc) = crc64nvme {
            req = req.checksum_type(ChecksumType::FullObject).checksum_crc64_nvme(crc);
        }
        let done = req.send().await.map_err(|e| store_err("CompleteMultipartUpload", bucket, key, e))?;
        Ok(done.e_tag().map(|t| t.trim_matches('"').to_owned()))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectStoreError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| store_err("DeleteObject", bucket, key, e))?;
        Ok(())
    }

    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), ObjectStoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| store_err("AbortMultipartUpload", bucket, key, e))?;
        Ok(())
    }

    async fn open_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<OpenUpload>, ObjectStoreError> {
        let list = self
            .client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| store_err("ListMultipartUploads", bucket, prefix, e))?;
        Ok(list
            .uploads()
            .iter()
            .filter_map(|u| {
                Some(OpenUpload {
                    key: u.key()?.to_owned(),
                    upload_id: u.upload_id()?.to_owned(),
                })
            })
            .collect())
    }
}

/// [`ObjectStores`] from the process's SDK configuration: the default client, or one
/// per destination endpoint and region.
#[derive(Debug, Clone)]
pub struct S3Stores {
    default: Arc<S3Store>,
    sdk_config: aws_config::SdkConfig,
}

impl S3Stores {
    pub fn new(default: aws_sdk_s3::Client, sdk_config: aws_config::SdkConfig) -> Self {
        Self {
            default: Arc::new(S3Store::new(default)),
            sdk_config,
        }
    }
}

/// Cairn checks every byte it reads against the SHA-256 it recorded (restores, verify, the
/// re-read after an upload), so the SDK's own check of a response checksum adds nothing
/// but a failure on stores that misreport checksums while their data is intact.
pub(super) const READS_UNCHECKED_BY_THE_SDK: aws_sdk_s3::config::ResponseChecksumValidation =
    aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired;

impl ObjectStores for S3Stores {
    fn at(&self, location: &StoreLocation) -> Arc<dyn ObjectStore> {
        if location.endpoint.is_none() && location.region.is_none() {
            return self.default.clone();
        }
        let mut b = aws_sdk_s3::config::Builder::from(&self.sdk_config).response_checksum_validation(READS_UNCHECKED_BY_THE_SDK);
        if let Some(e) = &location.endpoint {
            // S3-compatible servers rarely serve virtual-hosted buckets.
            b = b.endpoint_url(e).force_path_style(true);
        }
        if let Some(r) = &location.region {
            b = b.region(aws_sdk_s3::config::Region::new(r.clone()));
        }
        Arc::new(S3Store::new(aws_sdk_s3::Client::from_conf(b.build())))
    }
}
