//! The HTTP layer: route, rate-limit, size-check, authenticate and authorise, then turn
//! each operation into one service call and its result into a response.
//!
//! The manage function's operations (writes, cancels, restores, downloads) are compiled
//! only with the `manage` feature, so the request-only functions (run, poll, list), which
//! API Gateway never sends them to, link none of their code and stay small.
#![cfg_attr(not(feature = "manage"), allow(unused_imports, unused_variables, dead_code))]

use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info_span, Instrument};

use super::request::{parse_json_body, ApiRequest};
use super::response::{error_response, ApiResponse};
use super::routes::{is_id, resolve, Function, Operation};
use super::status::HttpError;
use super::views;
use crate::config::Config;
use crate::domain::key::parse_duration_seconds;
use crate::domain::{ApiKey, DestinationSpec, ExecutionStatus, HookSpec, JobSpec, Permission, RestoreRequest, Trigger};
use crate::ports::ExecutionQuery;
use crate::services::{CairnService, DownloadRequest};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The API as served over HTTP by every function.
#[derive(Clone)]
pub struct HttpApi {
    pub service: CairnService,
    pub rate_limit_get: u32,
    pub rate_limit_write: u32,
}

impl std::fmt::Debug for HttpApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpApi")
            .field("rate_limit_get", &self.rate_limit_get)
            .field("rate_limit_write", &self.rate_limit_write)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateKeyBody {
    name: String,
    permissions: Vec<String>,
    #[serde(default)]
    expires_in: Option<String>,
}

type Answer = Result<ApiResponse, HttpError>;

impl HttpApi {
    pub fn new(service: CairnService, config: &Config) -> Self {
        Self {
            service,
            rate_limit_get: config.rate_limit_get,
            rate_limit_write: config.rate_limit_write,
        }
    }

    /// Serves one request on behalf of `function`. Never fails: every error becomes its
    /// JSON response.
    pub async fn handle(&self, function: Function, req: ApiRequest) -> ApiResponse {
        let span = info_span!("request", request_id = %req.request_id, method = %req.method, path = %req.path, function = function.name());
        async {
            let result = self.handle_inner(function, &req).await;
            let response = result.unwrap_or_else(|e| error_response(&e, &req.request_id));
            tracing::info!(status = response.status, "request served");
            response
        }
        .instrument(span)
        .await
    }

    async fn handle_inner(&self, function: Function, req: &ApiRequest) -> Answer {
        let resolved = resolve(&req.method, &req.path);
        // Health checks (load balancers, uptime probes) are not counted; everything else,
        // unknown routes included, is.
        let is_health = resolved.as_ref().is_ok_and(|r| r.operation == Operation::Health);
        if !is_health {
            self.check_rate(req).await?;
        }
        let route = resolved?;
        if route.def.function != function {
            // API Gateway never sends another function's route here; a misconfigured
            // gateway gets a clear answer instead of a wrong action.
            return Err(HttpError::NoRoute(format!(
                "No route for {} {} on the {} function",
                req.method,
                req.path,
                function.name()
            )));
        }
        if req.body.len() > MAX_BODY_BYTES {
            return Err(HttpError::PayloadTooLarge {
                size: req.body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let key = match route.def.permission {
            None => None,
            Some(p) => Some(self.service.authenticate(req.authorization.as_deref(), p).await?),
        };
        self.dispatch(route.operation, req, key.as_ref()).await
    }

    /// Counts the request against its client's budget for its class (GET, or writes).
    async fn check_rate(&self, req: &ApiRequest) -> Result<(), HttpError> {
        let (class, limit) = if matches!(req.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
            ("GET", self.rate_limit_get)
        } else {
            ("write", self.rate_limit_write)
        };
        Ok(self.service.admit(&req.source_ip, class, limit).await?)
    }

    /// One operation, by the part of the API it belongs to.
    async fn dispatch(&self, op: Operation, req: &ApiRequest, key: Option<&ApiKey>) -> Answer {
        let trigger = || Trigger::Api {
            key: key.map(|k| k.name.clone()).unwrap_or_default(),
        };
        match op {
            Operation::Health => Ok(ApiResponse::ok(200, json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))),
            Operation::RunJob(_) | Operation::GetExecution(_) | Operation::ListExecutions | Operation::CancelExecution(_) => {
                self.executions(op, req, trigger()).await
            }
            Operation::ListJobs | Operation::GetJob(_) => self.jobs(op, req).await,
            #[cfg(feature = "manage")]
            Operation::RestoreBackup(_) | Operation::DownloadBackup(_) => self.backups(op, req, trigger()).await,
            #[cfg(feature = "manage")]
            Operation::CreateJob
            | Operation::UpdateJob(_)
            | Operation::DeleteJob(_)
            | Operation::EnableJob(_)
            | Operation::DisableJob(_) => self.jobs(op, req).await,
            #[cfg(feature = "manage")]
            Operation::ListDestinations | Operation::CreateDestination | Operation::DeleteDestination(_) => {
                self.destinations(op, req).await
            }
            #[cfg(feature = "manage")]
            Operation::ListKeys | Operation::CreateKey | Operation::EnableKey(_) | Operation::DisableKey(_) | Operation::DeleteKey(_) => {
                self.keys(op, req, key).await
            }
            #[cfg(feature = "manage")]
            _ => self.hooks(op, req).await,
            #[cfg(not(feature = "manage"))]
            other => Err(misrouted(&other)),
        }
    }

    async fn jobs(&self, op: Operation, req: &ApiRequest) -> Answer {
        let svc = &self.service;
        Ok(match op {
            Operation::ListJobs => {
                let mut out = Vec::new();
                for job in svc.list_jobs().await? {
                    out.push(views::job(&svc.job_summary(job).await?));
                }
                ApiResponse::data(200, Value::Array(out))
            }
            Operation::GetJob(id) => ApiResponse::data(200, views::job(&svc.job_summary(svc.get_job(&id).await?).await?)),
            #[cfg(feature = "manage")]
            Operation::CreateJob => ApiResponse::data(201, views::plain(&svc.create_job(parse_json_body::<JobSpec>(&req.body)?).await?)),
            #[cfg(feature = "manage")]
            Operation::UpdateJob(id) => {
                let spec = parse_json_body::<JobSpec>(&req.body)?;
                ApiResponse::data(200, views::plain(&svc.update_job(&id, spec).await?))
            }
            #[cfg(feature = "manage")]
            Operation::DeleteJob(id) => {
                svc.delete_job(&id).await?;
                ApiResponse::ok(200, json!({}))
            }
            #[cfg(feature = "manage")]
            Operation::EnableJob(id) => ApiResponse::data(200, views::plain(&svc.set_job_enabled(&id, true).await?)),
            #[cfg(feature = "manage")]
            Operation::DisableJob(id) => ApiResponse::data(200, views::plain(&svc.set_job_enabled(&id, false).await?)),
            other => return Err(misrouted(&other)),
        })
    }

    async fn executions(&self, op: Operation, req: &ApiRequest, trigger: Trigger) -> Answer {
        let svc = &self.service;
        Ok(match op {
            Operation::RunJob(id) => {
                let idem = req.idempotency_key.as_deref().map(validate_idempotency_key).transpose()?;
                let t = svc.run_job(&id, trigger, idem).await?;
                ApiResponse::ok(200, json!({"executionId": t.execution_id}))
            }
            Operation::GetExecution(id) => {
                let include_logs = bool_param(req, "includeLogs")?;
                ApiResponse::data(200, views::execution_detail(&svc.get_execution(&id, include_logs).await?))
            }
            Operation::ListExecutions => {
                let page = svc.list_executions(&execution_query(req)?).await?;
                let data: Vec<Value> = page.executions.iter().map(views::execution).collect();
                ApiResponse::ok(200, json!({"data": data, "nextCursor": page.next_cursor}))
            }
            #[cfg(feature = "manage")]
            Operation::CancelExecution(id) => ApiResponse::data(200, views::execution(&svc.cancel_execution(&id).await?)),
            other => return Err(misrouted(&other)),
        })
    }

    #[cfg(feature = "manage")]
    async fn backups(&self, op: Operation, req: &ApiRequest, trigger: Trigger) -> Answer {
        let svc = &self.service;
        Ok(match op {
            Operation::RestoreBackup(id) => {
                let request: RestoreRequest = parse_json_body(&req.body)?;
                let t = svc.start_restore(&id, request, trigger).await?;
                ApiResponse::ok(200, json!({"executionId": t.execution_id}))
            }
            Operation::DownloadBackup(id) => {
                let request: DownloadRequest = if req.body.iter().all(u8::is_ascii_whitespace) {
                    DownloadRequest::default()
                } else {
                    parse_json_body(&req.body)?
                };
                let d = svc.download(&id, request, trigger).await?;
                ApiResponse::ok(200, json!({"executionId": d.execution_id, "data": views::download(&d)}))
            }
            other => return Err(misrouted(&other)),
        })
    }

    #[cfg(feature = "manage")]
    async fn destinations(&self, op: Operation, req: &ApiRequest) -> Answer {
        let svc = &self.service;
        Ok(match op {
            Operation::ListDestinations => ApiResponse::data(200, views::plain(&svc.list_destinations().await?)),
            Operation::CreateDestination => {
                let spec = parse_json_body::<DestinationSpec>(&req.body)?;
                ApiResponse::data(201, views::plain(&svc.create_destination(spec).await?))
            }
            Operation::DeleteDestination(id) => {
                svc.delete_destination(&id).await?;
                ApiResponse::ok(200, json!({}))
            }
            other => return Err(misrouted(&other)),
        })
    }

    #[cfg(feature = "manage")]
    async fn keys(&self, op: Operation, req: &ApiRequest, key: Option<&ApiKey>) -> Answer {
        let svc = &self.service;
        Ok(match op {
            Operation::ListKeys => ApiResponse::data(200, Value::Array(svc.list_keys().await?.iter().map(views::key).collect())),
            Operation::CreateKey => {
                let body: CreateKeyBody = parse_json_body(&req.body)?;
                let perms = Permission::parse_list(&body.permissions.join(","))?;
                let expires = body.expires_in.as_deref().map(parse_duration_seconds).transpose()?;
                let k = svc.create_key(body.name, perms, expires, key).await?;
                let mut data = views::key(&k.stored);
                data["key"] = json!(k.secret);
                ApiResponse::data(201, data)
            }
            Operation::EnableKey(id) => ApiResponse::data(200, views::key(&svc.set_key_enabled(&id, true).await?)),
            Operation::DisableKey(id) => ApiResponse::data(200, views::key(&svc.set_key_enabled(&id, false).await?)),
            Operation::DeleteKey(id) => {
                svc.delete_key(&id).await?;
                ApiResponse::ok(200, json!({}))
            }
            other => return Err(misrouted(&other)),
        })
    }

    #[cfg(feature = "manage")]
    async fn hooks(&self, op: Operation, req: &ApiRequest) -> Answer {
        let svc = &self.service;
        Ok(match op {
            Operation::ListHooks => ApiResponse::data(200, views::plain(&svc.list_hooks().await?)),
            Operation::CreateHook => ApiResponse::data(201, views::plain(&svc.create_hook(parse_json_body::<HookSpec>(&req.body)?).await?)),
            Operation::GetHook(id) => ApiResponse::data(200, views::plain(&svc.get_hook(&id).await?)),
            Operation::UpdateHook(id) => {
                let spec = parse_json_body::<HookSpec>(&req.body)?;
                ApiResponse::data(200, views::plain(&svc.update_hook(&id, spec).await?))
            }
            Operation::DeleteHook(id) => {
                svc.delete_hook(&id).await?;
                ApiResponse::ok(200, json!({}))
            }
            Operation::EnableHook(id) => ApiResponse::data(200, views::plain(&svc.set_hook_enabled(&id, true).await?)),
            Operation::DisableHook(id) => ApiResponse::data(200, views::plain(&svc.set_hook_enabled(&id, false).await?)),
            other => return Err(misrouted(&other)),
        })
    }
}

/// An operation handed to the wrong group: a fault in [`HttpApi::dispatch`].
fn misrouted(op: &Operation) -> HttpError {
    HttpError::NoRoute(format!("operation {op:?} is not served here"))
}

fn validate_idempotency_key(k: &str) -> Result<&str, HttpError> {
    if k.is_empty() || k.len() > 128 || !k.chars().all(|c| c.is_ascii_graphic()) {
        return Err(HttpError::BadRequest(
            "Invalid header 'Idempotency-Key': use 1 to 128 printable ASCII characters without spaces".into(),
        ));
    }
    Ok(k)
}

fn bool_param(req: &ApiRequest, name: &str) -> Result<bool, HttpError> {
    match req.query_param(name) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(other) => Err(HttpError::BadRequest(format!(
            "Invalid query parameter '{name}': expected true or false, got '{other}'"
        ))),
    }
}

fn execution_query(req: &ApiRequest) -> Result<ExecutionQuery, HttpError> {
    let status = req
        .query_param("status")
        .map(|s| {
            ExecutionStatus::parse(s).ok_or_else(|| {
                HttpError::BadRequest(format!(
                    "Invalid query parameter 'status': '{s}' is not one of Pending, Running, Success, Partial, Failed, Cancelled"
                ))
            })
        })
        .transpose()?;
    let limit = match req.query_param("limit") {
        None => 20,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| HttpError::BadRequest(format!("Invalid query parameter 'limit': expected 1 to 100, got '{l}'")))?,
    };
    let job_id = req.query_param("jobId").map(str::to_owned);
    // The same shape as a job id in a path: anything else names no job.
    if job_id.as_deref().is_some_and(|j| !is_id(j)) {
        return Err(HttpError::BadRequest(
            "Invalid query parameter 'jobId': use 1 to 64 letters, digits, '-' or '_'".into(),
        ));
    }
    Ok(ExecutionQuery {
        job_id,
        status,
        limit,
        cursor: req.query_param("cursor").map(str::to_owned),
    })
}
