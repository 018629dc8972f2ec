//! The HTTP API as a service, independent of how requests arrive.
//!
//! - [`routes`]: the route table (which function serves which method and path), shared by
//!   the handlers, `cairn serve` and the template check.
//! - [`request`] / [`response`]: the transport-neutral request and response, and their
//!   translation from and to `lambda_http`.
//! - [`service`]: the operations (create a job, run it, read an execution, ...), used by the
//!   HTTP layer and by the CLI alike.
//! - [`eventbridge`]: EventBridge events pointed at the run function.
//! - [`http`]: the HTTP layer: rate limits, body limits, authentication, permissions,
//!   parsing, and mapping results to responses.

pub mod eventbridge;
pub mod http;
pub mod request;
pub mod response;
pub mod routes;
pub mod service;

pub use http::HttpApi;
pub use request::ApiRequest;
pub use response::ApiResponse;
pub use routes::{Function, Operation};
pub use service::CairnService;
