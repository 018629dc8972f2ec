//! The operator's policy: what API keys may choose among. Keys never bring code, paths,
//! hosts or secrets of their own; every job, restore and destination is checked against
//! this when it is created and again right before the runner acts (a path or a link can
//! change in between). Every refusal names the rule and the variable to change.

use std::path::{Path, PathBuf};

use super::validate::FieldError;
use super::{Decryption, DestinationSpec, Item, RestoreRequest, RestoreTarget, RunnerKind, Source};

pub use super::secret::{check_secret_name, check_secret_var, SECRET_NAME_PREFIX, SECRET_PREFIX};

/// What the operator allows (read once from the environment; see `config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `CAIRN_COMMANDS_DIR`: command sources run programs from here only; unset refuses them.
    pub commands_dir: Option<PathBuf>,
    /// `CAIRN_SOURCE_DIRS`: directory sources lie inside one of these; empty refuses them.
    pub source_dirs: Vec<PathBuf>,
    /// `CAIRN_RESTORE_DIRS`: directory restores and clones go inside one of these.
    pub restore_dirs: Vec<PathBuf>,
    /// `CAIRN_HOOKS_DIR`: never a restore target.
    pub hooks_dir: Option<PathBuf>,
    /// `CAIRN_SECRETS_DIR`: where `identityFile`s lie.
    pub secrets_dir: Option<PathBuf>,
    /// `CAIRN_DATABASE_HOSTS`: `host`, `host:port` or `*.suffix`; empty allows any host.
    pub database_hosts: Vec<String>,
    /// `CAIRN_ALLOWED_ENDPOINTS`: the custom S3 endpoints destinations may name.
    pub allowed_endpoints: Vec<String>,
    /// Whether the deployment has a Fargate task (`CAIRN_FARGATE_CLUSTER`): without one,
    /// `"runner": "fargate"` is refused when the job is stored, not when it runs.
    pub fargate_runner: bool,
}

/// The query parameters a connection string may carry: nothing that makes a client read
/// local files (passfile, service, sslkey, sslcert, sslrootcert, ...).
const ALLOWED_PARAMETERS: &[&str] = &["sslmode", "ssl-mode", "connect_timeout", "application_name"];

fn listed(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        "unset".into()
    } else {
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":")
    }
}

/// `path` with symlinks and `..` resolved; a path that does not exist yet resolves
/// through its nearest existing ancestor.
fn resolve(path: &Path) -> Option<PathBuf> {
    if let Ok(real) = std::fs::canonicalize(path) {
        return Some(real);
    }
    let parent = path.parent()?;
    let name = path.file_name()?;
    if name == ".." {
        return None;
    }
    Some(resolve(parent)?.join(name))
}

/// Whether `path` resolves inside one of `dirs` (each resolved too).
fn inside_any(path: &Path, dirs: &[PathBuf]) -> bool {
    let Some(real) = resolve(path) else { return false };
    dirs.iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .any(|d| real.starts_with(d))
}

impl Policy {
    /// Checks every item of a job; answers the items with each command's program
    /// resolved to the file that will run.
    ///
    /// # Errors
    /// The first item that breaks a rule, by its field.
    pub fn check_items(&self, items: &[Item]) -> Result<Vec<Item>, FieldError> {
        let mut items = items.to_vec();
        for (i, item) in items.iter_mut().enumerate() {
            let field = format!("items[{i}]");
            self.check_source(&format!("{field}.source"), &mut item.source)?;
            if let Some(t) = &item.target {
                self.check_target(&format!("{field}.target"), t)?;
            }
        }
        Ok(items)
    }

    fn check_source(&self, field: &str, source: &mut Source) -> Result<(), FieldError> {
        match source {
            Source::Directory { path, .. } => {
                if self.source_dirs.is_empty() || !inside_any(Path::new(path), &self.source_dirs) {
                    return Err(FieldError::new(
                        format!("{field}.path"),
                        format!("{path} is outside CAIRN_SOURCE_DIRS ({})", listed(&self.source_dirs)),
                    ));
                }
            }
            Source::Command { argv, .. } => {
                let program = argv.first().cloned().unwrap_or_default();
                argv[0] = self.resolve_command(&format!("{field}.argv[0]"), &program)?.display().to_string();
            }
            Source::Postgres {
                url,
                password_env,
                password_secret,
                ..
            }
            | Source::Mysql {
                url,
                password_env,
                password_secret,
            } => self.check_database(field, url, password_env, password_secret)?,
            Source::S3 { .. } | Source::Config {} => {}
        }
        Ok(())
    }

    /// A command's program: a name looked up in `CAIRN_COMMANDS_DIR`, or an absolute path
    /// that resolves (links and `..` resolved) to an executable file inside it.
    ///
    /// # Errors
    /// Says only that the program is not an allowed command: nothing about files outside.
    pub fn resolve_command(&self, field: &str, program: &str) -> Result<PathBuf, FieldError> {
        let Some(dir) = &self.commands_dir else {
            return Err(FieldError::new(field, "command sources are refused: CAIRN_COMMANDS_DIR is not set"));
        };
        let refused = || {
            FieldError::new(
                field,
                format!(
                    "'{program}' is not an allowed command (executables in CAIRN_COMMANDS_DIR {})",
                    dir.display()
                ),
            )
        };
        let candidate = if program.starts_with('/') {
            PathBuf::from(program)
        } else {
            dir.join(program)
        };
        if program.is_empty() || (!program.starts_with('/') && program.contains('/')) {
            return Err(refused());
        }
        let real = std::fs::canonicalize(&candidate).map_err(|_| refused())?;
        let root = std::fs::canonicalize(dir).map_err(|_| refused())?;
        let executable = std::fs::metadata(&real).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        });
        if !real.starts_with(&root) || !executable {
            return Err(refused());
        }
        Ok(real)
    }

    /// A restore or clone target.
    ///
    /// # Errors
    /// A directory outside `CAIRN_RESTORE_DIRS` or inside the hooks or commands directory;
    /// a database or secret that breaks its rule.
    pub fn check_target(&self, field: &str, target: &RestoreTarget) -> Result<(), FieldError> {
        match target {
            RestoreTarget::Directory { path, .. } => self.check_restore_dir(&format!("{field}.path"), path),
            RestoreTarget::Postgres {
                url,
                password_env,
                password_secret,
            }
            | RestoreTarget::Mysql {
                url,
                password_env,
                password_secret,
            } => self.check_database(field, url, password_env, password_secret),
            RestoreTarget::S3 { .. } => Ok(()),
        }
    }

    fn check_restore_dir(&self, field: &str, path: &str) -> Result<(), FieldError> {
        let p = Path::new(path);
        if self.restore_dirs.is_empty() || !inside_any(p, &self.restore_dirs) {
            return Err(FieldError::new(
                field,
                format!("{path} is outside CAIRN_RESTORE_DIRS ({})", listed(&self.restore_dirs)),
            ));
        }
        for (dir, var) in [(&self.hooks_dir, "CAIRN_HOOKS_DIR"), (&self.commands_dir, "CAIRN_COMMANDS_DIR")] {
            if let Some(d) = dir {
                if inside_any(p, std::slice::from_ref(d)) {
                    return Err(FieldError::new(
                        field,
                        format!("{path} is inside {var}; restores never write there"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A database URL's host against `CAIRN_DATABASE_HOSTS`, its parameters, and the
    /// variable its password comes from.
    fn check_database(&self, field: &str, url: &str, env: &Option<String>, secret: &Option<String>) -> Result<(), FieldError> {
        if let Some(var) = env {
            check_secret_var(&format!("{field}.passwordEnv"), var)?;
        }
        if let Some(name) = secret {
            check_secret_name(&format!("{field}.passwordSecret"), name)?;
        }
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        for param in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
            let name = param.split('=').next().unwrap_or("");
            if !ALLOWED_PARAMETERS.contains(&name) {
                return Err(FieldError::new(
                    format!("{field}.url"),
                    format!(
                        "parameter '{name}' is not allowed; a URL carries host, port, database, user and {}",
                        ALLOWED_PARAMETERS.join(", ")
                    ),
                ));
            }
        }
        let hostport = authority.split('/').next().unwrap_or("").rsplit('@').next().unwrap_or("");
        if self.database_hosts.is_empty() || self.database_hosts.iter().any(|allowed| host_matches(allowed, hostport)) {
            return Ok(());
        }
        Err(FieldError::new(
            format!("{field}.url"),
            format!("host {hostport} is not in CAIRN_DATABASE_HOSTS ({})", self.database_hosts.join(",")),
        ))
    }

    /// A restore request: every target, and where the decryption identity comes from.
    ///
    /// # Errors
    /// The first field that breaks a rule.
    pub fn check_restore(&self, request: &RestoreRequest) -> Result<(), FieldError> {
        if let Some(t) = &request.target {
            self.check_target("target", t)?;
        }
        for (i, item) in request.items.iter().flatten().enumerate() {
            if let Some(t) = &item.target {
                self.check_target(&format!("items[{i}].target"), t)?;
            }
        }
        match &request.decryption {
            Some(Decryption {
                identity_env: Some(var), ..
            }) => check_secret_var("decryption.identityEnv", var),
            Some(Decryption {
                identity_secret: Some(name),
                ..
            }) => check_secret_name("decryption.identitySecret", name),
            Some(Decryption {
                identity_file: Some(file), ..
            }) => {
                let dirs: Vec<PathBuf> = self.secrets_dir.iter().cloned().collect();
                if dirs.is_empty() || !inside_any(Path::new(file), &dirs) {
                    let dir = self.secrets_dir.as_ref().map_or("unset".into(), |d| d.display().to_string());
                    return Err(FieldError::new(
                        "decryption.identityFile",
                        format!("{file} is outside CAIRN_SECRETS_DIR ({dir})"),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A destination's custom endpoint against `CAIRN_ALLOWED_ENDPOINTS`.
    ///
    /// # Errors
    /// An endpoint that is not listed.
    pub fn check_destination(&self, spec: &DestinationSpec) -> Result<(), FieldError> {
        let Some(endpoint) = &spec.endpoint else { return Ok(()) };
        let wanted = endpoint.trim_end_matches('/');
        if self.allowed_endpoints.iter().any(|e| e.trim_end_matches('/') == wanted) {
            return Ok(());
        }
        let allowed = if self.allowed_endpoints.is_empty() {
            "unset: AWS S3 only".to_owned()
        } else {
            self.allowed_endpoints.join(",")
        };
        Err(FieldError::new(
            "endpoint",
            format!("{endpoint} is not in CAIRN_ALLOWED_ENDPOINTS ({allowed})"),
        ))
    }

    /// A job may ask for the Fargate runner only where the operator deployed its task.
    ///
    /// # Errors
    /// `runner` names the missing configuration.
    pub fn check_runner(&self, runner: RunnerKind) -> Result<(), FieldError> {
        if runner == RunnerKind::Fargate && !self.fargate_runner {
            return Err(FieldError::new(
                "runner",
                "this deployment has no Fargate task: deploy template.yaml with VpcSubnets and RunnerImageUri (CAIRN_FARGATE_CLUSTER, CAIRN_FARGATE_TASK_DEFINITION and CAIRN_FARGATE_SUBNETS), or use \"lambda\"",
            ));
        }
        Ok(())
    }

    /// The policy as `cairn dev` prints it.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let one = |d: &Option<PathBuf>| d.as_ref().map_or("unset".into(), |d| d.display().to_string());
        vec![
            ("CAIRN_COMMANDS_DIR", one(&self.commands_dir)),
            ("CAIRN_SOURCE_DIRS", listed(&self.source_dirs)),
            ("CAIRN_RESTORE_DIRS", listed(&self.restore_dirs)),
            ("CAIRN_SECRETS_DIR", one(&self.secrets_dir)),
            (
                "CAIRN_DATABASE_HOSTS",
                if self.database_hosts.is_empty() {
                    "any".into()
                } else {
                    self.database_hosts.join(",")
                },
            ),
            (
                "CAIRN_ALLOWED_ENDPOINTS",
                if self.allowed_endpoints.is_empty() {
                    "AWS S3 only".into()
                } else {
                    self.allowed_endpoints.join(",")
                },
            ),
            ("CAIRN_FARGATE_CLUSTER", if self.fargate_runner { "set" } else { "unset" }.into()),
        ]
    }
}

/// The Secrets Manager secrets a job's items name.
pub fn secrets_of_items(items: &[Item]) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        if let Source::Postgres {
            password_secret: Some(s), ..
        }
        | Source::Mysql {
            password_secret: Some(s), ..
        } = &item.source
        {
            out.push(s.clone());
        }
        if let Some(t) = &item.target {
            out.extend(secret_of_target(t));
        }
    }
    out
}

/// The Secrets Manager secrets a restore names.
pub fn secrets_of_restore(request: &RestoreRequest) -> Vec<String> {
    let mut out: Vec<String> = request.target.iter().filter_map(secret_of_target).collect();
    out.extend(
        request
            .items
            .iter()
            .flatten()
            .filter_map(|i| i.target.as_ref().and_then(secret_of_target)),
    );
    out.extend(request.decryption.as_ref().and_then(|d| d.identity_secret.clone()));
    out
}

fn secret_of_target(t: &RestoreTarget) -> Option<String> {
    match t {
        RestoreTarget::Postgres { password_secret, .. } | RestoreTarget::Mysql { password_secret, .. } => password_secret.clone(),
        _ => None,
    }
}

/// `host`, `host:port` or `*.suffix` (any host under the suffix, any port).
fn host_matches(allowed: &str, hostport: &str) -> bool {
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
    match allowed.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None if allowed.contains(':') => allowed == hostport,
        None => allowed == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(root: &Path) -> Policy {
        Policy {
            commands_dir: Some(root.join("commands")),
            source_dirs: vec![root.join("data")],
            restore_dirs: vec![root.join("restore")],
            hooks_dir: Some(root.join("restore/hooks")),
            secrets_dir: Some(root.join("secrets")),
            database_hosts: vec!["db.internal:5432".into(), "*.rds.amazonaws.com".into()],
            allowed_endpoints: vec!["https://minio.internal:9000".into()],
            fargate_runner: false,
        }
    }

    fn setup() -> (tempfile::TempDir, Policy) {
        let dir = tempfile::tempdir().unwrap();
        for d in ["commands", "data/app", "restore/hooks", "secrets", "elsewhere"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let tool = dir.path().join("commands/dump.sh");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/bin/sh", dir.path().join("commands/sh")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join("data/escape")).unwrap();
        let p = policy(dir.path());
        (dir, p)
    }

    #[test]
    fn commands_resolve_inside_the_commands_dir_only() {
        let (dir, p) = setup();
        let by_name = p.resolve_command("f", "dump.sh").unwrap();
        assert_eq!(by_name, std::fs::canonicalize(dir.path().join("commands/dump.sh")).unwrap());
        for bad in ["/bin/sh", "sh", "../commands/dump.sh", "sub/dump.sh", "", "/etc/passwd"] {
            let e = p.resolve_command("f", bad).unwrap_err();
            assert!(e.reason.contains("not an allowed command"), "{bad}: {}", e.reason);
        }
        let unset = Policy::default().resolve_command("f", "dump.sh").unwrap_err();
        assert!(unset.reason.contains("CAIRN_COMMANDS_DIR is not set"), "{}", unset.reason);
    }

    #[test]
    fn directories_must_resolve_inside_the_allowed_ones() {
        let (dir, p) = setup();
        let inside = Path::new(&dir.path().join("data/app")).to_owned();
        assert!(inside_any(&inside, &p.source_dirs));
        assert!(!inside_any(&dir.path().join("data/../elsewhere"), &p.source_dirs));
        assert!(
            !inside_any(&dir.path().join("data/escape"), &p.source_dirs),
            "a link leading outside"
        );
        assert!(!inside_any(Path::new("/etc"), &p.source_dirs));
        assert!(
            inside_any(&dir.path().join("data/not-yet/deeper"), &p.source_dirs),
            "a new path under an allowed one"
        );
    }

    #[test]
    fn restores_never_write_into_the_hooks_dir() {
        let (dir, p) = setup();
        let hooks = dir.path().join("restore/hooks/x").display().to_string();
        let e = p.check_restore_dir("target.path", &hooks).unwrap_err();
        assert!(e.reason.contains("CAIRN_HOOKS_DIR"), "{}", e.reason);
        assert!(p
            .check_restore_dir("target.path", &dir.path().join("restore/new").display().to_string())
            .is_ok());
        let outside = p.check_restore_dir("target.path", "/etc/cron.d").unwrap_err();
        assert!(outside.reason.contains("outside CAIRN_RESTORE_DIRS"), "{}", outside.reason);
    }

    #[test]
    fn secrets_come_only_from_cairn_secret_variables() {
        assert!(check_secret_var("f", "CAIRN_SECRET_DB").is_ok());
        for bad in ["AWS_SECRET_ACCESS_KEY", "CAIRN_SECRET_", "PGPASSWORD", "CAIRN_SECRET_a"] {
            assert!(check_secret_var("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn database_hosts_and_parameters_are_limited() {
        let (_dir, p) = setup();
        assert!(p.check_database("s", "postgres://u@db.internal:5432/app", &None, &None).is_ok());
        assert!(p
            .check_database("s", "postgres://u@x.rds.amazonaws.com/app?sslmode=require", &None, &None)
            .is_ok());
        assert!(p
            .check_database("s", "postgres://u@attacker:5432/app", &None, &None)
            .unwrap_err()
            .reason
            .contains("CAIRN_DATABASE_HOSTS"));
        let passfile = p
            .check_database("s", "postgres://u@db.internal:5432/app?passfile=/etc/x", &None, &None)
            .unwrap_err();
        assert!(passfile.reason.contains("'passfile' is not allowed"), "{}", passfile.reason);
        let stolen = p
            .check_database(
                "s",
                "postgres://u@db.internal:5432/app",
                &Some("AWS_SECRET_ACCESS_KEY".into()),
                &None,
            )
            .unwrap_err();
        assert_eq!(stolen.field, "s.passwordEnv");
    }

    #[test]
    fn secrets_manager_secrets_are_named_under_cairn() {
        assert!(check_secret_name("f", "cairn/prod-db").is_ok());
        assert!(check_secret_name("f", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cairn/prod-db-AbCdEf").is_ok());
        for bad in [
            "prod-db",
            "cairn/",
            "arn:aws:secretsmanager:eu-west-1:1:secret:other/x",
            "cairn/a b",
            "../cairn/x",
        ] {
            assert!(check_secret_name("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_must_be_listed() {
        let (_dir, p) = setup();
        let spec = |endpoint: Option<&str>| DestinationSpec {
            name: "d".into(),
            bucket: "b".into(),
            prefix: String::new(),
            endpoint: endpoint.map(str::to_owned),
            region: None,
            storage_class: None,
            repository: None,
        };
        assert!(p.check_destination(&spec(None)).is_ok());
        assert!(p.check_destination(&spec(Some("https://minio.internal:9000/"))).is_ok());
        let e = p.check_destination(&spec(Some("http://attacker.example"))).unwrap_err();
        assert!(e.reason.contains("CAIRN_ALLOWED_ENDPOINTS"), "{}", e.reason);
    }
}
