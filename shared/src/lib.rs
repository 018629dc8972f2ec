//! Cairn's library: everything the Lambda functions and the `cairn` CLI share.
//!
//! # Layout
//! - [`config`]: configuration, read once from the environment.
//! - [`model`]: jobs, destinations, executions, keys, settings, and their validation.
//! - [`store`]: the narrow async traits the services depend on (job repository,
//!   execution store, key store, rate limiter, dispatcher).
//! - [`adapters`]: their DynamoDB implementations, the AWS client set-up, and the table
//!   definitions `cairn init` and template.yaml share.
//! - [`api`]: the HTTP API as a service: routes, auth, rate limits, bodies, errors; plus
//!   the translation to and from `lambda_http` events used by every function.
//! - [`engine`]: the streaming backup engine (tar, zstd, SHA-256, S3 multipart upload).
//! - [`schedule`]: cron expressions in time zones.
//! - [`runner`]: claims queued executions and performs them; the periodic sweep.
//! - [`hooks`]: running hooks with JetBackup's arguments, safely.
//! - [`error`]: the library's error types.
//! - [`wiring`]: builds clients, stores, runner and services once per process.

pub mod adapters;
pub mod api;
pub mod config;
pub mod engine;
pub mod error;
pub mod hooks;
pub mod model;
pub mod runner;
pub mod schedule;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod wiring;
