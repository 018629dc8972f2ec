//! The HTTP API, independent of how requests arrive (API Gateway events in Lambda, a
//! local server under `cairn serve`).
//!
//! # Layout
//! - [`routes`]: the route table (which function serves which method and path, with
//!   which permission), shared by the handlers, `cairn serve` and the template check.
//! - [`request`] / [`response`]: the transport-neutral request and response, their
//!   translation from and to `lambda_http`, and body parsing.
//! - [`handlers`]: rate limits, body limits, authentication, then one service call per
//!   operation.
//! - [`views`]: the JSON shapes of responses.
//! - [`status`]: the HTTP layer's errors and their statuses.
//! - [`eventbridge`]: EventBridge events pointed at the run function.
//! - [`console`]: the web console's page, script and style.

pub mod console;
pub mod eventbridge;
pub mod handlers;
pub mod request;
pub mod response;
pub mod routes;
pub mod status;
pub mod views;

pub use handlers::{HttpApi, MAX_BODY_BYTES};
pub use request::{parse_json_body, ApiRequest};
pub use response::ApiResponse;
pub use routes::{Function, Operation};
pub use status::HttpError;
