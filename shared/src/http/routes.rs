//! The route table: every method and path of the API, the function that serves it, and
//! the permission it needs. template.yaml routes the same way (a test checks it).

use super::status::HttpError;
use crate::domain::Permission;

/// The Lambda functions that serve HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Run,
    Poll,
    List,
    Manage,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Poll => "poll",
            Self::List => "list",
            Self::Manage => "manage",
        }
    }
}

/// A resolved route, with its path parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    RunJob(String),
    GetExecution(String),
    ListJobs,
    GetJob(String),
    ListExecutions,
    Health,
    CreateJob,
    UpdateJob(String),
    DeleteJob(String),
    EnableJob(String),
    DisableJob(String),
    ListDestinations,
    CreateDestination,
    DeleteDestination(String),
    ListKeys,
    CreateKey,
    EnableKey(String),
    DisableKey(String),
    DeleteKey(String),
    CancelExecution(String),
    ListHooks,
    CreateHook,
    GetHook(String),
    UpdateHook(String),
    DeleteHook(String),
    EnableHook(String),
    DisableHook(String),
    RestoreBackup(String),
    DownloadBackup(String),
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct RouteDef {
    pub method: &'static str,
    /// The path as API Gateway writes it: `/api/jobs/{id}/run`.
    pub path: &'static str,
    pub function: Function,
    /// `None` only for the health check.
    pub permission: Option<Permission>,
    make: fn(Option<String>) -> Operation,
}

macro_rules! route {
    ($method:literal, $path:literal, $func:ident, $perm:expr, $make:expr) => {
        RouteDef {
            method: $method,
            path: $path,
            function: Function::$func,
            permission: $perm,
            make: $make,
        }
    };
}

fn param(p: Option<String>) -> String {
    p.unwrap_or_default()
}

/// Every route of the API.
pub const ROUTES: &[RouteDef] = &[
    route!("POST", "/api/jobs/{id}/run", Run, Some(Permission::JobsExecute), |p| {
        Operation::RunJob(param(p))
    }),
    route!("GET", "/api/executions/{id}", Poll, Some(Permission::HistoryRead), |p| {
        Operation::GetExecution(param(p))
    }),
    route!("GET", "/api/jobs", List, Some(Permission::JobsRead), |_| Operation::ListJobs),
    route!("GET", "/api/jobs/{id}", List, Some(Permission::JobsRead), |p| Operation::GetJob(
        param(p)
    )),
    route!("GET", "/api/executions", List, Some(Permission::HistoryRead), |_| {
        Operation::ListExecutions
    }),
    route!("GET", "/api/health", List, None, |_| { Operation::Health }),
    route!("POST", "/api/jobs", Manage, Some(Permission::JobsWrite), |_| Operation::CreateJob),
    route!("PUT", "/api/jobs/{id}", Manage, Some(Permission::JobsWrite), |p| {
        Operation::UpdateJob(param(p))
    }),
    route!("DELETE", "/api/jobs/{id}", Manage, Some(Permission::JobsWrite), |p| {
        Operation::DeleteJob(param(p))
    }),
    route!("POST", "/api/jobs/{id}/enable", Manage, Some(Permission::JobsWrite), |p| {
        Operation::EnableJob(param(p))
    }),
    route!("POST", "/api/jobs/{id}/disable", Manage, Some(Permission::JobsWrite), |p| {
        Operation::DisableJob(param(p))
    }),
    route!("GET", "/api/destinations", Manage, Some(Permission::JobsRead), |_| {
        Operation::ListDestinations
    }),
    route!("POST", "/api/destinations", Manage, Some(Permission::DestinationsWrite), |_| {
        Operation::CreateDestination
    }),
    route!(
        "DELETE",
        "/api/destinations/{id}",
        Manage,
        Some(Permission::DestinationsWrite),
        |p| { Operation::DeleteDestination(param(p)) }
    ),
    route!("GET", "/api/keys", Manage, Some(Permission::KeysWrite), |_| Operation::ListKeys),
    route!("POST", "/api/keys", Manage, Some(Permission::KeysWrite), |_| Operation::CreateKey),
    route!("POST", "/api/keys/{id}/enable", Manage, Some(Permission::KeysWrite), |p| {
        Operation::EnableKey(param(p))
    }),
    route!("POST", "/api/keys/{id}/disable", Manage, Some(Permission::KeysWrite), |p| {
        Operation::DisableKey(param(p))
    }),
    route!("DELETE", "/api/keys/{id}", Manage, Some(Permission::KeysWrite), |p| {
        Operation::DeleteKey(param(p))
    }),
    route!("POST", "/api/executions/{id}/cancel", Manage, Some(Permission::JobsExecute), |p| {
        Operation::CancelExecution(param(p))
    }),
    route!("GET", "/api/hooks", Manage, Some(Permission::JobsRead), |_| Operation::ListHooks),
    route!("POST", "/api/hooks", Manage, Some(Permission::HooksWrite), |_| {
        Operation::CreateHook
    }),
    route!(
        "GET",
        "/api/hooks/{id}",
        Manage,
        Some(Permission::JobsRead),
        |p| Operation::GetHook(param(p))
    ),
    route!("PUT", "/api/hooks/{id}", Manage, Some(Permission::HooksWrite), |p| {
        Operation::UpdateHook(param(p))
    }),
    route!("DELETE", "/api/hooks/{id}", Manage, Some(Permission::HooksWrite), |p| {
        Operation::DeleteHook(param(p))
    }),
    route!("POST", "/api/hooks/{id}/enable", Manage, Some(Permission::HooksWrite), |p| {
        Operation::EnableHook(param(p))
    }),
    route!("POST", "/api/hooks/{id}/disable", Manage, Some(Permission::HooksWrite), |p| {
        Operation::DisableHook(param(p))
    }),
    route!(
        "POST",
        "/api/executions/{id}/restore",
        Manage,
        Some(Permission::BackupsRestore),
        |p| Operation::RestoreBackup(param(p))
    ),
    route!(
        "POST",
        "/api/executions/{id}/download",
        Manage,
        Some(Permission::BackupsDownload),
        |p| Operation::DownloadBackup(param(p))
    ),
];

/// A route found for a request.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub def: &'static RouteDef,
    pub operation: Operation,
}

/// Whether the request path's `parts` match the route's path; answers the `{id}` part.
fn matches(def: &RouteDef, parts: &[&str]) -> Option<Option<String>> {
    let segments: Vec<&str> = def.path.trim_start_matches('/').split('/').collect();
    if segments.len() != parts.len() {
        return None;
    }
    let mut captured = None;
    for (seg, part) in segments.iter().zip(parts) {
        if seg.starts_with('{') {
            if part.is_empty() {
                return None;
            }
            captured = Some((*part).to_owned());
        } else if seg != part {
            return None;
        }
    }
    Some(captured)
}

/// Finds the route for `method` and `path`.
///
/// # Errors
/// 404 for an unknown path, 405 (naming the allowed methods) for a known path with
/// another method, 400 for a path parameter that is not a plausible id.
pub fn resolve(method: &str, path: &str) -> Result<Resolved, HttpError> {
    let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let parts: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    let mut allowed = Vec::new();
    for def in ROUTES {
        if let Some(captured) = matches(def, &parts) {
            if def.method == method {
                if let Some(id) = &captured {
                    check_id(id)?;
                }
                return Ok(Resolved {
                    def,
                    operation: (def.make)(captured),
                });
            }
            allowed.push(def.method);
        }
    }
    if allowed.is_empty() {
        Err(HttpError::NoRoute(format!("No route for {method} {path}")))
    } else {
        Err(HttpError::MethodNotAllowed {
            method: method.to_owned(),
            path: path.to_owned(),
            allowed: allowed.join(", "),
        })
    }
}

/// Ids are UUIDs or similar: 1 to 64 of letters, digits, '-' and '_'.
pub(super) fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_id(id: &str) -> Result<(), HttpError> {
    if !is_id(id) {
        return Err(HttpError::BadRequest(
            "Invalid id in path: use 1 to 64 letters, digits, '-' or '_'".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_routes_resolve_to_their_functions() {
        let r = resolve("POST", "/api/jobs/abc-1/run").unwrap();
        assert_eq!(r.operation, Operation::RunJob("abc-1".into()));
        assert_eq!(r.def.function, Function::Run);
        assert_eq!(resolve("GET", "/api/executions/x").unwrap().def.function, Function::Poll);
        assert_eq!(resolve("GET", "/api/jobs").unwrap().def.function, Function::List);
        assert_eq!(resolve("GET", "/api/jobs/").unwrap().operation, Operation::ListJobs);
    }

    #[test]
    fn when_the_method_is_wrong_should_answer_405_with_the_allowed_ones() {
        let e = resolve("PATCH", "/api/jobs/x").unwrap_err();
        assert_eq!(crate::http::status::status(&e), 405);
        assert!(e.to_string().contains("GET, PUT, DELETE"), "{e}");
    }

    #[test]
    fn when_the_path_is_unknown_should_answer_404() {
        assert_eq!(crate::http::status::status(&resolve("GET", "/api/nothing").unwrap_err()), 404);
        assert_eq!(crate::http::status::status(&resolve("GET", "/").unwrap_err()), 404);
    }

    #[test]
    fn when_an_id_has_odd_characters_should_answer_400() {
        assert_eq!(crate::http::status::status(&resolve("GET", "/api/jobs/a%2Fb").unwrap_err()), 400);
    }
}
