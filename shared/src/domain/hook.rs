//! Hooks: the operator's commands run before and after every task, with JetBackup's
//! positions, types and positional arguments.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::validate::{check_name, FieldError};

/// Before or after the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookPosition {
    Pre,
    Post,
}

/// Which task a hook runs around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookType {
    Backup,
    BackupItem,
    Clone,
    CloneItem,
    Restore,
    Download,
}

impl HookType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::BackupItem => "backup_item",
            Self::Clone => "clone",
            Self::CloneItem => "clone_item",
            Self::Restore => "restore",
            Self::Download => "download",
        }
    }
}

/// What a failing hook does to its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// A pre hook that fails fails the task (or item).
    Fail,
    /// Log a warning and go on.
    Continue,
}

/// Default hook time limit.
pub const DEFAULT_HOOK_TIMEOUT: u64 = 300;

/// What a client sends to create or replace a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookSpec {
    pub name: String,
    pub position: HookPosition,
    #[serde(rename = "type")]
    pub hook_type: HookType,
    /// An absolute path to an executable, or an interpreter and a script:
    /// `/usr/bin/php /opt/hooks/pre-backup.php`.
    pub script: String,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub on_error: Option<OnError>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only these jobs (ids); absent: every job.
    #[serde(default)]
    pub jobs: Option<Vec<String>>,
    /// Hand the runner's AWS credentials to the hook (off by default).
    #[serde(default)]
    pub pass_aws_credentials: bool,
}

fn yes() -> bool {
    true
}

/// A stored hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    pub id: String,
    pub name: String,
    pub position: HookPosition,
    #[serde(rename = "type")]
    pub hook_type: HookType,
    pub script: String,
    pub timeout: u64,
    pub on_error: OnError,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<String>>,
    #[serde(default)]
    pub pass_aws_credentials: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl Hook {
    pub fn from_spec(id: String, spec: HookSpec, now: &str) -> Self {
        let on_error = spec.on_error.unwrap_or(match spec.position {
            HookPosition::Pre => OnError::Fail,
            HookPosition::Post => OnError::Continue,
        });
        Self {
            id,
            name: spec.name,
            position: spec.position,
            hook_type: spec.hook_type,
            script: spec.script.trim().to_owned(),
            timeout: spec.timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT),
            on_error,
            enabled: spec.enabled,
            jobs: spec.jobs,
            pass_aws_credentials: spec.pass_aws_credentials,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// Whether the hook applies to `job_id`.
    pub fn applies_to(&self, job_id: &str) -> bool {
        self.jobs.as_ref().is_none_or(|jobs| jobs.iter().any(|j| j == job_id))
    }
}

/// Where hooks may live, and which interpreters may run a script.
#[derive(Debug, Clone)]
pub struct HookRules {
    pub hooks_dir: PathBuf,
    /// Interpreters allowed outside the hooks directory (absolute paths).
    pub interpreters: Vec<PathBuf>,
}

/// A script resolved to what will be executed: program and its leading arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedScript {
    pub program: PathBuf,
    pub args: Vec<PathBuf>,
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

impl HookRules {
    /// Checks a script line: one absolute path to an executable inside the hooks
    /// directory, or an interpreter (inside the hooks directory or on the allowed list)
    /// followed by a script inside the hooks directory. Symlinks and `..` are resolved
    /// before the check, so neither can lead outside.
    ///
    /// # Errors
    /// A [`FieldError`] on `script` that says why.
    pub fn resolve(&self, script: &str) -> Result<ResolvedScript, FieldError> {
        let err = |reason: String| FieldError::new("script", reason);
        let parts: Vec<&str> = script.split_whitespace().collect();
        if parts.is_empty() || parts.len() > 2 {
            return Err(err(
                "give an absolute path to an executable, or an interpreter followed by a script".into(),
            ));
        }
        let root = std::fs::canonicalize(&self.hooks_dir)
            .map_err(|e| err(format!("the hooks directory {} is not available: {e}", self.hooks_dir.display())))?;
        // One answer for a file outside, missing or unreadable alike: a refusal must not
        // tell a key which files exist outside the hooks directory.
        let not_allowed = |p: &str| {
            err(format!(
                "'{p}' is not an allowed hook script (executables inside CAIRN_HOOKS_DIR {})",
                root.display()
            ))
        };
        let inside = |p: &str, what: &str| -> Result<PathBuf, FieldError> {
            if !p.starts_with('/') {
                return Err(err(format!("{what} '{p}' must be an absolute path")));
            }
            match std::fs::canonicalize(p) {
                Ok(real) if real.starts_with(&root) => Ok(real),
                _ => Err(not_allowed(p)),
            }
        };
        let meta = |p: &Path| std::fs::metadata(p).map_err(|e| err(format!("'{}': {e}", p.display())));
        if parts.len() == 1 {
            let program = inside(parts[0], "script")?;
            if !is_executable(&meta(&program)?) {
                return Err(err(format!("script '{}' is not an executable file", parts[0])));
            }
            return Ok(ResolvedScript { program, args: vec![] });
        }
        let (interp, file) = (parts[0], parts[1]);
        if !interp.starts_with('/') {
            return Err(err(format!("interpreter '{interp}' must be an absolute path")));
        }
        let refused_interpreter = || {
            let allowed: Vec<String> = self.interpreters.iter().map(|p| p.display().to_string()).collect();
            err(format!(
                "interpreter '{interp}' is neither inside the hooks directory nor an allowed interpreter (CAIRN_HOOK_INTERPRETERS: {})",
                allowed.join(", ")
            ))
        };
        let interp_real = std::fs::canonicalize(interp).map_err(|_| refused_interpreter())?;
        let allowed = interp_real.starts_with(&root)
            || self
                .interpreters
                .iter()
                .any(|a| a == Path::new(interp) || std::fs::canonicalize(a).is_ok_and(|r| r == interp_real));
        if !allowed {
            return Err(refused_interpreter());
        }
        if !is_executable(&meta(&interp_real)?) {
            return Err(err(format!("interpreter '{interp}' is not executable")));
        }
        let script_path = inside(file, "script")?;
        if !meta(&script_path)?.is_file() {
            return Err(err(format!("script '{file}' is not a regular file")));
        }
        Ok(ResolvedScript {
            program: interp_real,
            args: vec![script_path],
        })
    }
}

impl HookSpec {
    /// # Errors
    /// The first invalid field.
    pub fn validate(&self, rules: &HookRules) -> Result<ResolvedScript, FieldError> {
        check_name("name", &self.name)?;
        if let Some(t) = self.timeout {
            if !(1..=3600).contains(&t) {
                return Err(FieldError::new("timeout", "must be between 1 and 3600 seconds"));
            }
        }
        if let Some(jobs) = &self.jobs {
            if jobs.is_empty() {
                return Err(FieldError::new("jobs", "omit it for every job, or list at least one job id"));
            }
        }
        rules.resolve(&self.script)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn setup() -> (tempfile::TempDir, HookRules) {
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("hooks");
        std::fs::create_dir(&hooks).unwrap();
        std::fs::write(hooks.join("ok.sh"), "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(hooks.join("ok.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(hooks.join("plain.php"), "<?php ?>").unwrap();
        std::fs::write(dir.path().join("outside.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(dir.path().join("outside.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.sh"), hooks.join("sneaky.sh")).unwrap();
        let rules = HookRules {
            hooks_dir: hooks,
            interpreters: vec![PathBuf::from("/bin/sh")],
        };
        (dir, rules)
    }

    #[test]
    fn an_executable_inside_the_hooks_dir_is_accepted() {
        let (_d, rules) = setup();
        let s = format!("{}/ok.sh", rules.hooks_dir.display());
        assert!(rules.resolve(&s).unwrap().args.is_empty());
    }

    #[test]
    fn an_allowed_interpreter_with_a_script_inside_is_accepted() {
        let (_d, rules) = setup();
        let r = rules.resolve(&format!("/bin/sh {}/plain.php", rules.hooks_dir.display())).unwrap();
        assert_eq!(r.args.len(), 1);
    }

    #[test]
    fn outside_relative_dotdot_symlinked_and_non_executable_scripts_are_refused() {
        let (d, rules) = setup();
        let h = rules.hooks_dir.display().to_string();
        for (script, why) in [
            (format!("{}/outside.sh", d.path().display()), "not an allowed hook script"),
            ("hooks/ok.sh".to_owned(), "absolute path"),
            (format!("{h}/../outside.sh"), "not an allowed hook script"),
            (format!("{h}/sneaky.sh"), "not an allowed hook script"),
            (format!("{h}/plain.php"), "not an executable"),
            (format!("/usr/bin/env {h}/ok.sh"), "neither inside"),
            (format!("{h}/missing.sh"), "not an allowed hook script"),
            (format!("/bin/sh {h}/ok.sh extra"), "interpreter followed by a script"),
        ] {
            let e = rules.resolve(&script).unwrap_err();
            assert_eq!(e.field, "script");
            assert!(e.reason.contains(why), "{script}: {}", e.reason);
        }
    }
}
