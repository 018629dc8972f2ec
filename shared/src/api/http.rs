//! The HTTP layer: route, rate-limit, size-check, authenticate, authorise, parse, call the
//! service, and shape the response.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info_span, warn, Instrument};

use super::request::ApiRequest;
use super::response::{error_response, ApiResponse};
use super::routes::{resolve, Function, Operation};
use super::service::CairnService;
use super::service::DownloadRequest;
use crate::config::Config;
use crate::error::{ApiError, AuthError};
use crate::model::key::{hash_key, parse_duration_seconds};
use crate::model::{parse_json_body, ApiKey, DestinationSpec, ExecutionStatus, JobSpec, Permission, Trigger};
use crate::model::{HookSpec, RestoreRequest};
use crate::store::{ExecutionQuery, RateLimiter};
use crate::time;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// How stale a key's lastUsedAt may be before a request writes it again.
const KEY_USE_PRECISION_SECONDS: i64 = 60;

/// The API as served over HTTP by every function.
#[derive(Clone)]
pub struct HttpApi {
    pub service: CairnService,
    pub limiter: Arc<dyn RateLimiter>,
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

impl HttpApi {
    pub fn new(service: CairnService, limiter: Arc<dyn RateLimiter>, config: &Config) -> Self {
        Self {
            service,
            limiter,
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

    async fn handle_inner(&self, function: Function, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
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
            return Err(ApiError::NotFound(format!(
                "No route for {} {} on the {} function",
                req.method,
                req.path,
                function.name()
            )));
        }
        if req.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                size: req.body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let key = match route.def.permission {
            None => None,
            Some(p) => Some(self.authorise(req, p).await?),
        };
        self.dispatch(route.operation, req, key.as_ref()).await
    }

    async fn check_rate(&self, req: &ApiRequest) -> Result<(), ApiError> {
        let (class, limit) = if matches!(req.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
            ("GET", self.rate_limit_get)
        } else {
            ("write", self.rate_limit_write)
        };
        let now = time::now().timestamp();
        let window = now / 60;
        let retry_after = u64::try_from((window + 1) * 60 - now).unwrap_or(1).max(1);
        let hits = self
            .limiter
            .hit(&format!("{}#{class}#{window}", req.source_ip), (window + 2) * 60)
            .await?;
        if hits > u64::from(limit) {
            warn!(source_ip = %req.source_ip, class, hits, "rate limited");
            return Err(ApiError::RateLimited { limit, class, retry_after });
        }
        Ok(())
    }

    async fn authorise(&self, req: &ApiRequest, permission: Permission) -> Result<ApiKey, ApiError> {
        let header = req
            .authorization
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(AuthError::Missing)?;
        if !token.starts_with("cairn_") || token.len() > 256 {
            return Err(AuthError::Invalid.into());
        }
        let hash = hash_key(token);
        let key = self.service.keys.key_by_hash(&hash).await?.ok_or(AuthError::Invalid)?;
        if !key.enabled {
            return Err(AuthError::Disabled.into());
        }
        let now = time::now();
        if key.expires_at.as_deref().and_then(time::parse_iso).is_some_and(|exp| exp <= now) {
            return Err(AuthError::Expired.into());
        }
        if !key.has(permission) {
            return Err(ApiError::Forbidden(permission.as_str()));
        }
        // lastUsedAt says whether a key is still in use, so a minute's precision will do:
        // written at most once a minute, it costs a polling client one write a minute
        // instead of one per request.
        let recent = key
            .last_used_at
            .as_deref()
            .and_then(time::parse_iso)
            .is_some_and(|used| (now - used).num_seconds() < KEY_USE_PRECISION_SECONDS);
        if !recent {
            if let Err(e) = self.service.keys.touch_key(&hash, &time::iso(now)).await {
                warn!(key_id = %key.id, error = %e, "could not record lastUsedAt");
            }
        }
        Ok(key)
    }

    async fn dispatch(&self, op: Operation, req: &ApiRequest, key: Option<&ApiKey>) -> Result<ApiResponse, ApiError> {
        let svc = &self.service;
        let key_name = key.map(|k| k.name.clone()).unwrap_or_default();
        Ok(match op {
            Operation::Health => ApiResponse::ok(200, json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})),
            Operation::RunJob(id) => {
                let idem = req.idempotency_key.as_deref().map(validate_idempotency_key).transpose()?;
                let t = svc.run_job(&id, Trigger::Api { key: key_name }, idem).await?;
                ApiResponse::ok(200, json!({"executionId": t.execution_id}))
            }
            Operation::GetExecution(id) => {
                let include_logs = bool_param(req, "includeLogs")?;
                ApiResponse::data(200, svc.get_execution(&id, include_logs).await?)
            }
            Operation::ListJobs => {
                let mut views = Vec::new();
                for job in svc.list_jobs().await? {
                    views.push(svc.job_view(&job).await?);
                }
                ApiResponse::data(200, Value::Array(views))
            }
            Operation::GetJob(id) => ApiResponse::data(200, svc.job_view(&svc.get_job(&id).await?).await?),
            Operation::ListExecutions => {
                let q = execution_query(req)?;
                let page = svc.list_executions(&q).await?;
                let data: Vec<Value> = page.executions.iter().map(crate::model::Execution::to_api).collect();
                ApiResponse::ok(200, json!({"data": data, "nextCursor": page.next_cursor}))
            }
            Operation::CreateJob => ApiResponse::data(
                201,
                serde_json::to_value(svc.create_job(parse_json_body::<JobSpec>(&req.body)?).await?).unwrap_or_default(),
            ),
            Operation::UpdateJob(id) => ApiResponse::data(
                200,
                serde_json::to_value(svc.update_job(&id, parse_json_body::<JobSpec>(&req.body)?).await?).unwrap_or_default(),
            ),
            Operation::DeleteJob(id) => {
                svc.delete_job(&id).await?;
                ApiResponse::ok(200, json!({}))
            }
            Operation::EnableJob(id) => {
                ApiResponse::data(200, serde_json::to_value(svc.set_job_enabled(&id, true).await?).unwrap_or_default())
            }
            Operation::DisableJob(id) => ApiResponse::data(
                200,
                serde_json::to_value(svc.set_job_enabled(&id, false).await?).unwrap_or_default(),
            ),
            Operation::ListDestinations => ApiResponse::data(200, serde_json::to_value(svc.list_destinations().await?).unwrap_or_default()),
            Operation::CreateDestination => ApiResponse::data(
                201,
                serde_json::to_value(svc.create_destination(parse_json_body::<DestinationSpec>(&req.body)?).await?).unwrap_or_default(),
            ),
            Operation::DeleteDestination(id) => {
                svc.delete_destination(&id).await?;
                ApiResponse::ok(200, json!({}))
            }
            Operation::ListKeys => ApiResponse::data(200, Value::Array(svc.list_keys().await?.iter().map(ApiKey::to_api).collect())),
            Operation::CreateKey => {
                let body: CreateKeyBody = parse_json_body(&req.body)?;
                let perms = crate::model::Permission::parse_list(&body.permissions.join(","))?;
                let expires = body.expires_in.as_deref().map(parse_duration_seconds).transpose()?;
                let k = svc.create_key(body.name, perms, expires).await?;
                let mut data = k.stored.to_api();
                data["key"] = json!(k.secret);
                ApiResponse::data(201, data)
            }
            Operation::EnableKey(id) => ApiResponse::data(200, svc.set_key_enabled(&id, true).await?.to_api()),
            Operation::DisableKey(id) => ApiResponse::data(200, svc.set_key_enabled(&id, false).await?.to_api()),
            Operation::DeleteKey(id) => {
                svc.delete_key(&id).await?;
                ApiResponse::ok(200, json!({}))
            }
            Operation::ListHooks => ApiResponse::data(200, serde_json::to_value(svc.list_hooks().await?).unwrap_or_default()),
            Operation::CreateHook => ApiResponse::data(
                201,
                serde_json::to_value(svc.create_hook(parse_json_body::<HookSpec>(&req.body)?).await?).unwrap_or_default(),
            ),
            Operation::GetHook(id) => ApiResponse::data(200, serde_json::to_value(svc.get_hook(&id).await?).unwrap_or_default()),
            Operation::UpdateHook(id) => ApiResponse::data(
                200,
                serde_json::to_value(svc.update_hook(&id, parse_json_body::<HookSpec>(&req.body)?).await?).unwrap_or_default(),
            ),
            Operation::DeleteHook(id) => {
                svc.delete_hook(&id).await?;
                ApiResponse::ok(200, json!({}))
            }
            Operation::EnableHook(id) => ApiResponse::data(
                200,
                serde_json::to_value(svc.set_hook_enabled(&id, true).await?).unwrap_or_default(),
            ),
            Operation::DisableHook(id) => ApiResponse::data(
                200,
                serde_json::to_value(svc.set_hook_enabled(&id, false).await?).unwrap_or_default(),
            ),
            Operation::RestoreBackup(id) => {
                let request: RestoreRequest = parse_json_body(&req.body)?;
                let t = svc.start_restore(&id, request, Trigger::Api { key: key_name }).await?;
                ApiResponse::ok(200, json!({"executionId": t.execution_id}))
            }
            Operation::DownloadBackup(id) => {
                let request: DownloadRequest = if req.body.iter().all(u8::is_ascii_whitespace) {
                    DownloadRequest::default()
                } else {
                    parse_json_body(&req.body)?
                };
                let data = svc.download(&id, request, Trigger::Api { key: key_name }).await?;
                let execution_id = data["executionId"].clone();
                ApiResponse::ok(200, json!({"executionId": execution_id, "data": data}))
            }
            Operation::CancelExecution(id) => ApiResponse::data(200, svc.cancel_execution(&id).await?.to_api()),
        })
    }
}

fn validate_idempotency_key(k: &str) -> Result<&str, ApiError> {
    if k.is_empty() || k.len() > 128 || !k.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            "Invalid header 'Idempotency-Key': use 1 to 128 printable ASCII characters without spaces".into(),
        ));
    }
    Ok(k)
}

fn bool_param(req: &ApiRequest, name: &str) -> Result<bool, ApiError> {
    match req.query_param(name) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "Invalid query parameter '{name}': expected true or false, got '{other}'"
        ))),
    }
}

fn execution_query(req: &ApiRequest) -> Result<ExecutionQuery, ApiError> {
    let status = req
        .query_param("status")
        .map(|s| {
            ExecutionStatus::parse(s).ok_or_else(|| {
                ApiError::BadRequest(format!(
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
            .ok_or_else(|| ApiError::BadRequest(format!("Invalid query parameter 'limit': expected 1 to 100, got '{l}'")))?,
    };
    let job_id = req.query_param("jobId").map(str::to_owned);
    if job_id.as_deref().is_some_and(|j| j.is_empty() || j.len() > 64) {
        return Err(ApiError::BadRequest("Invalid query parameter 'jobId'".into()));
    }
    Ok(ExecutionQuery {
        job_id,
        status,
        limit,
        cursor: req.query_param("cursor").map(str::to_owned),
    })
}
