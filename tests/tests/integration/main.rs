//! Integration tests: the real `cairn` binary serving the API over HTTP, against the
//! local S3/DynamoDB endpoint (started by `localstack/start.sh` if nothing answers on
//! 127.0.0.1:4566). Every test gets fresh table and bucket names.

mod helpers;

mod api_auth;
mod api_errors;
mod api_jobs;
mod api_rate_limits;
mod backups;
mod cli;
mod console;
mod contracts;
mod events;
mod fargate;
mod faults;
mod hooks;
mod incremental;
mod lambda;
mod policy;
mod queue;
mod recorder;
mod restores;
mod schedules;
mod seed_clients;
mod soak;
