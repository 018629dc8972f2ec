//! Configuration: environment only, read once at start-up.

use std::path::PathBuf;

use crate::domain::Policy;
use crate::error::ConfigError;

/// Interpreters allowed by default in front of a hook script.
pub const DEFAULT_INTERPRETERS: &str = "/bin/sh,/bin/bash,/usr/bin/bash,/usr/bin/php,/usr/bin/python3,/usr/bin/perl,/usr/bin/node";

/// Everything Cairn reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CAIRN_TABLE_PREFIX` (default `cairn`): tables are `<prefix>-jobs`, `<prefix>-executions`, ...
    pub table_prefix: String,
    /// `CAIRN_BUCKET` (default `cairn-backups`): the default bucket `cairn init` creates.
    pub bucket: String,
    /// `CAIRN_HOOKS_DIR` (default `/opt/hooks`): hook scripts must live under it.
    pub hooks_dir: PathBuf,
    /// `CAIRN_HOOK_INTERPRETERS`: comma-separated interpreters a hook may name before its
    /// script (the script itself must be inside the hooks directory).
    pub hook_interpreters: Vec<PathBuf>,
    /// `CAIRN_RATE_LIMIT_GET` (default 100): GET requests per client IP per minute.
    pub rate_limit_get: u32,
    /// `CAIRN_RATE_LIMIT_WRITE` (default 20): POST/PUT/DELETE requests per client IP per minute.
    pub rate_limit_write: u32,
    /// `CAIRN_RUNNER_FUNCTION`: the runner Lambda's name, for asynchronous dispatch in AWS.
    /// Unset: executions are dispatched to a runner in the same process.
    pub runner_function: Option<String>,
    /// `CAIRN_LEASE_SECONDS` (default 30): how long a runner's claim lasts without renewal.
    pub lease_seconds: u64,
    /// `CAIRN_DOWNLOAD_MAX_SECONDS` (default 43200): the longest a download URL may live.
    pub download_max_seconds: u64,
    /// `CAIRN_PART_SIZE_MIB` (default 8): multipart part size for uploads.
    pub part_size_mib: usize,
    /// `CAIRN_PRUNE_INTERVAL_HOURS` (default 24): a repository of incremental backups is
    /// pruned after retention at most this often (0: after every retention that forgot
    /// something).
    pub prune_interval_hours: u64,
    /// What API keys may choose among: `CAIRN_COMMANDS_DIR`, `CAIRN_SOURCE_DIRS`,
    /// `CAIRN_RESTORE_DIRS`, `CAIRN_SECRETS_DIR`, `CAIRN_DATABASE_HOSTS`,
    /// `CAIRN_ALLOWED_ENDPOINTS` (see [`Policy`]).
    pub policy: Policy,
    /// `CAIRN_MIN_REMAINING_SECONDS` (default 180): a Lambda runner claims queued work only
    /// while at least this much of its invocation is left.
    pub min_remaining_seconds: u64,
    /// `CAIRN_STOP_BEFORE_DEADLINE_SECONDS` (default 30): an execution still running this
    /// close to the invocation's deadline is stopped cleanly.
    pub stop_before_deadline_seconds: u64,
    /// Where `"runner": "fargate"` executions run, when the deployment has the task.
    pub fargate: Option<FargateTask>,
    /// `CAIRN_EXECUTION_ID`: set in a Fargate task, the one execution it performs.
    pub execution_id: Option<String>,
    /// `CAIRN_EVENT_BUS` (default `default`): the EventBridge bus every execution state
    /// change is published to; `CAIRN_EVENTS=off` publishes none.
    pub event_bus: Option<String>,
    /// Whether the runner prints its CloudWatch EMF line per finished execution on
    /// stdout: where CloudWatch Logs reads stdout (in Lambda, `AWS_LAMBDA_FUNCTION_NAME`;
    /// in the Fargate task, `CAIRN_EXECUTION_ID`), or with `CAIRN_EMF=on`. Elsewhere (the
    /// CLI, `cairn serve`) stdout is the user's.
    pub emf_metrics: bool,
}

/// The ECS task that performs `"runner": "fargate"` executions: `CAIRN_FARGATE_CLUSTER`,
/// `CAIRN_FARGATE_TASK_DEFINITION`, `CAIRN_FARGATE_SUBNETS` and
/// `CAIRN_FARGATE_SECURITY_GROUPS` (comma-separated), `CAIRN_FARGATE_CONTAINER` (default
/// `runner`), `CAIRN_FARGATE_PUBLIC_IP` (`ENABLED` or the default `DISABLED`) and
/// `CAIRN_FARGATE_START_SECONDS` (default 300: how long a task may take to start before
/// the sweep fails its execution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FargateTask {
    pub cluster: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub container: String,
    pub assign_public_ip: bool,
    pub start_seconds: u64,
}

impl FargateTask {
    /// The task, when both the cluster and the task definition are set.
    fn read(lookup: &impl Fn(&str) -> Option<String>, start_seconds: u64) -> Result<Option<Self>, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let (cluster, task_definition) = match (get("CAIRN_FARGATE_CLUSTER"), get("CAIRN_FARGATE_TASK_DEFINITION")) {
            (None, None) => return Ok(None),
            (Some(c), Some(t)) => (c, t),
            _ => {
                return Err(ConfigError::Invalid {
                    name: "CAIRN_FARGATE_CLUSTER",
                    reason: "set both CAIRN_FARGATE_CLUSTER and CAIRN_FARGATE_TASK_DEFINITION, or neither".into(),
                })
            }
        };
        let subnets = list(get("CAIRN_FARGATE_SUBNETS"));
        if subnets.is_empty() {
            return Err(ConfigError::Invalid {
                name: "CAIRN_FARGATE_SUBNETS",
                reason: "a Fargate task needs at least one subnet (comma-separated subnet ids)".into(),
            });
        }
        Ok(Some(Self {
            cluster,
            task_definition,
            subnets,
            security_groups: list(get("CAIRN_FARGATE_SECURITY_GROUPS")),
            container: get("CAIRN_FARGATE_CONTAINER").unwrap_or_else(|| "runner".into()),
            assign_public_ip: get("CAIRN_FARGATE_PUBLIC_IP").is_some_and(|v| v.eq_ignore_ascii_case("ENABLED")),
            start_seconds,
        }))
    }
}

/// A list of absolute directories (`sep`-separated), each named in errors by `name`.
fn directories(name: &'static str, value: Option<String>, sep: char) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    for part in value.iter().flat_map(|v| v.split(sep)).map(str::trim).filter(|p| !p.is_empty()) {
        if !part.starts_with('/') {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("'{part}' is not an absolute directory"),
            });
        }
        out.push(PathBuf::from(part));
    }
    Ok(out)
}

/// A comma-separated list.
fn list(value: Option<String>) -> Vec<String> {
    value
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Config {
    /// Reads the operator's policy.
    fn read_policy(lookup: &impl Fn(&str) -> Option<String>, hooks_dir: &std::path::Path) -> Result<Policy, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Ok(Policy {
            commands_dir: directories("CAIRN_COMMANDS_DIR", get("CAIRN_COMMANDS_DIR"), ':')?
                .into_iter()
                .next(),
            source_dirs: directories("CAIRN_SOURCE_DIRS", get("CAIRN_SOURCE_DIRS"), ':')?,
            restore_dirs: directories("CAIRN_RESTORE_DIRS", get("CAIRN_RESTORE_DIRS"), ':')?,
            hooks_dir: Some(hooks_dir.to_path_buf()),
            secrets_dir: directories("CAIRN_SECRETS_DIR", get("CAIRN_SECRETS_DIR"), ':')?.into_iter().next(),
            database_hosts: list(get("CAIRN_DATABASE_HOSTS")),
            allowed_endpoints: list(get("CAIRN_ALLOWED_ENDPOINTS")),
            fargate_runner: get("CAIRN_FARGATE_CLUSTER").is_some(),
        })
    }
}

impl Config {
    /// Where hooks may live and which interpreters may run them.
    pub fn hook_rules(&self) -> crate::domain::HookRules {
        crate::domain::HookRules {
            hooks_dir: self.hooks_dir.clone(),
            interpreters: self.hook_interpreters.clone(),
        }
    }

    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    /// A variable that is set but malformed (a limit that is not a positive number, say).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the environment.
    ///
    /// # Errors
    /// As [`Config::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = |name: &str, default: &str| lookup(name).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned());
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match lookup(name).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(ConfigError::Invalid {
                        name,
                        reason: format!("expected a positive whole number, got {v:?}"),
                    }),
                },
            }
        };
        let table_prefix = text("CAIRN_TABLE_PREFIX", "cairn");
        if !table_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(ConfigError::Invalid {
                name: "CAIRN_TABLE_PREFIX",
                reason: "only letters, digits, '-', '_' and '.' are allowed in table names".into(),
            });
        }
        let hooks_dir = PathBuf::from(text("CAIRN_HOOKS_DIR", "/opt/hooks"));
        let policy = Self::read_policy(&lookup, &hooks_dir)?;
        Ok(Self {
            table_prefix,
            bucket: text("CAIRN_BUCKET", "cairn-backups"),
            hooks_dir,
            hook_interpreters: text("CAIRN_HOOK_INTERPRETERS", DEFAULT_INTERPRETERS)
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            rate_limit_get: u32::try_from(number("CAIRN_RATE_LIMIT_GET", 100)?).unwrap_or(u32::MAX),
            rate_limit_write: u32::try_from(number("CAIRN_RATE_LIMIT_WRITE", 20)?).unwrap_or(u32::MAX),
            runner_function: lookup("CAIRN_RUNNER_FUNCTION").filter(|v| !v.is_empty()),
            lease_seconds: number("CAIRN_LEASE_SECONDS", 30)?,
            download_max_seconds: number("CAIRN_DOWNLOAD_MAX_SECONDS", 43_200)?,
            part_size_mib: usize::try_from(number("CAIRN_PART_SIZE_MIB", 8)?).unwrap_or(8).max(5),
            // 0 is allowed here (prune after every retention), unlike the counts above.
            prune_interval_hours: match lookup("CAIRN_PRUNE_INTERVAL_HOURS").filter(|v| !v.is_empty()) {
                None => 24,
                Some(v) => v.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                    name: "CAIRN_PRUNE_INTERVAL_HOURS",
                    reason: format!("expected a whole number of hours (0 or more), got {v:?}"),
                })?,
            },
            policy,
            min_remaining_seconds: number("CAIRN_MIN_REMAINING_SECONDS", 180)?,
            stop_before_deadline_seconds: number("CAIRN_STOP_BEFORE_DEADLINE_SECONDS", 30)?,
            fargate: FargateTask::read(&lookup, number("CAIRN_FARGATE_START_SECONDS", 300)?)?,
            execution_id: lookup("CAIRN_EXECUTION_ID").filter(|v| !v.trim().is_empty()),
            emf_metrics: lookup("CAIRN_EMF").map_or_else(
                || lookup("AWS_LAMBDA_FUNCTION_NAME").is_some() || lookup("CAIRN_EXECUTION_ID").is_some_and(|v| !v.trim().is_empty()),
                |v| v.trim() == "on",
            ),
            event_bus: match lookup("CAIRN_EVENTS").as_deref().map(str::trim) {
                Some("off") => None,
                None | Some("" | "on") => Some(text("CAIRN_EVENT_BUS", "default")),
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "CAIRN_EVENTS",
                        reason: format!("'{other}' is neither 'on' nor 'off'"),
                    })
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_metrics_follow_the_environment() {
        let with = |pairs: &'static [(&str, &str)]| {
            Config::from_lookup(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
        };
        assert_eq!(with(&[]).unwrap().event_bus.as_deref(), Some("default"));
        assert_eq!(with(&[("CAIRN_EVENT_BUS", "ops")]).unwrap().event_bus.as_deref(), Some("ops"));
        assert_eq!(with(&[("CAIRN_EVENTS", "off")]).unwrap().event_bus, None);
        assert!(!with(&[]).unwrap().emf_metrics, "stdout is the user's outside Lambda and Fargate");
        assert!(with(&[("AWS_LAMBDA_FUNCTION_NAME", "cairn-runner")]).unwrap().emf_metrics);
        assert!(with(&[("CAIRN_EXECUTION_ID", "e1")]).unwrap().emf_metrics);
        assert!(with(&[("CAIRN_EMF", "on")]).unwrap().emf_metrics);
        let err = with(&[("CAIRN_EVENTS", "maybe")]).unwrap_err().to_string();
        assert!(err.contains("CAIRN_EVENTS") && err.contains("'maybe'"), "{err}");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.table_prefix, "cairn");
        assert_eq!(c.bucket, "cairn-backups");
        assert_eq!(c.rate_limit_get, 100);
        assert_eq!(c.rate_limit_write, 20);
        assert!(c.runner_function.is_none());
        assert_eq!((c.min_remaining_seconds, c.stop_before_deadline_seconds), (180, 30));
        assert!(c.fargate.is_none());
    }

    #[test]
    fn a_fargate_task_needs_its_cluster_definition_and_subnets() {
        let half = Config::from_lookup(|n| (n == "CAIRN_FARGATE_CLUSTER").then(|| "cairn".to_owned())).unwrap_err();
        assert!(half.to_string().contains("CAIRN_FARGATE_TASK_DEFINITION"), "{half}");
        let env = |subnets: &'static str| {
            move |n: &str| match n {
                "CAIRN_FARGATE_CLUSTER" => Some("cairn".to_owned()),
                "CAIRN_FARGATE_TASK_DEFINITION" => Some("cairn-runner:3".to_owned()),
                "CAIRN_FARGATE_SUBNETS" => Some(subnets.to_owned()),
                _ => None,
            }
        };
        let no_subnet = Config::from_lookup(env("")).unwrap_err();
        assert!(no_subnet.to_string().contains("CAIRN_FARGATE_SUBNETS"), "{no_subnet}");
        let task = Config::from_lookup(env("subnet-a, subnet-b")).unwrap().fargate.unwrap();
        assert_eq!(task.subnets, ["subnet-a", "subnet-b"]);
        assert_eq!(
            (task.container.as_str(), task.assign_public_ip, task.start_seconds),
            ("runner", false, 300)
        );
    }

    #[test]
    fn when_a_limit_is_not_a_number_should_name_the_variable() {
        let err = Config::from_lookup(|n| (n == "CAIRN_RATE_LIMIT_GET").then(|| "ten".to_owned())).unwrap_err();
        assert!(err.to_string().contains("CAIRN_RATE_LIMIT_GET"), "{err}");
    }
}
