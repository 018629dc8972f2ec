//! Cairn's library: everything the Lambda functions and the `cairn` CLI share.
//!
//! # Layout (each layer imports only from the layers listed after it)
//! - [`wiring`]: builds clients, stores, runner and services once per process.
//! - [`http`]: the HTTP API: routes, request parsing, one service call per operation,
//!   the seed's JSON shapes, and the one mapping of errors to statuses.
//! - [`services`]: the operations the API and the CLI call, answering domain values and
//!   [`error::ServiceError`]s.
//! - [`runner`]: claims queued executions and performs them (one task skeleton that
//!   backup, restore and clone plug into); the lease, heartbeat and sweep.
//! - [`engine`]: the streaming pipeline (sources, tar, zstd, SHA-256, multipart upload,
//!   verification, restore) over [`ports::ObjectStore`] and plain `Read`/`Write`.
//! - [`hooks`]: the hooks' argument tables, and running a process safely.
//! - [`ports`]: the narrow async traits everything above depends on (state stores, object
//!   store, dispatcher), with in-memory versions for unit tests.
//! - [`domain`]: jobs, destinations, executions, hooks, keys, manifests, schedules,
//!   retention, validation: plain types with no SDK, HTTP or index keys.
//! - [`config`], [`error`], [`time`], [`units`], [`telemetry`]: configuration read once,
//!   one error enum per layer, time formatting, sizes and durations for people, log set-up.
//!
//! [`adapters`] implements the ports on AWS and is the only module that names an SDK
//! type; only [`wiring`] (and the CLI's `init`) reach for it.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod hooks;
pub mod http;
pub mod ports;
pub mod runner;
pub mod services;
pub mod telemetry;
pub mod time;
pub mod units;
pub mod wiring;
