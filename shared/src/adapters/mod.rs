//! Implementations of [`crate::store`]'s traits on AWS, and the AWS set-up.

pub mod aws;
pub mod dispatch;
pub mod dynamo;
pub mod s3;
pub mod tables;

pub use aws::AwsClients;
pub use dynamo::DynamoStore;
