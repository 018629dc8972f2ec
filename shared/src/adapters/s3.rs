//! S3 for the API: manifests and presigned URLs.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;

use crate::engine::manifest::Manifest;
use crate::store::BackupReader;

/// [`BackupReader`] on the default S3 client.
#[derive(Debug, Clone)]
pub struct S3BackupReader {
    pub client: aws_sdk_s3::Client,
}

#[async_trait]
impl BackupReader for S3BackupReader {
    async fn manifest(&self, bucket: &str, folder: &str) -> Result<Manifest, String> {
        crate::engine::verify::read_manifest(&self.client, bucket, folder)
            .await
            .map_err(|e| e.to_string())
    }

    async fn presign_get(&self, bucket: &str, key: &str, seconds: u64) -> Result<String, String> {
        let config = PresigningConfig::expires_in(Duration::from_secs(seconds)).map_err(|e| e.to_string())?;
        let req = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(super::sdk_error_text)?;
        Ok(req.uri().to_owned())
    }
}

/// Splits `s3://bucket/folder/` into bucket and folder (no trailing slash).
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("s3://")?;
    let (bucket, folder) = rest.split_once('/')?;
    Some((bucket, folder.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_split_into_bucket_and_folder() {
        assert_eq!(super::split_path("s3://b/p/j/e/"), Some(("b", "p/j/e")));
        assert_eq!(super::split_path("b/p"), None);
    }
}
