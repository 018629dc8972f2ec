//! S3 helpers.
