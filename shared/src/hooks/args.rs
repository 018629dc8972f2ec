//! The hooks' arguments: the seed's positional tables, and the same values by name.

use serde_json::{json, Map, Value};

use crate::domain::{Hook, HookPosition, HookType, Job};

/// One invocation's data: the positional arguments and the same values by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCall {
    pub hook_type: HookType,
    pub position: HookPosition,
    pub args: Vec<String>,
    /// `(name, value)`: exported as `CAIRN_<NAME>` and as camelCase keys in the JSON.
    pub named: Vec<(&'static str, String)>,
}

fn job_fields(job: &Job) -> [(&'static str, String); 5] {
    [
        ("JOB_ID", job.id.clone()),
        ("JOB_NAME", job.name.clone()),
        ("JOB_TYPE", job.job_type.code().to_string()),
        ("JOB_CONTAINS", job.contains().to_string()),
        ("JOB_STRUCTURE", job.structure().to_string()),
    ]
}

fn call(hook_type: HookType, position: HookPosition, named: Vec<(&'static str, String)>) -> HookCall {
    HookCall {
        hook_type,
        position,
        args: named.iter().map(|(_, v)| v.clone()).collect(),
        named,
    }
}

impl HookCall {
    /// Backup, pre: `$1` job id, `$2` name, `$3` type, `$4` contains, `$5` structure,
    /// `$6` destinations, `$7` start (epoch), `$8` log id.
    pub fn backup_pre(job: &Job, start: i64, log_id: &str) -> Self {
        let mut named: Vec<_> = job_fields(job).into();
        named.extend([
            ("DESTINATIONS", job.destinations.join(",")),
            ("START", start.to_string()),
            ("LOG_ID", log_id.to_owned()),
        ]);
        call(HookType::Backup, HookPosition::Pre, named)
    }

    /// Backup, post: as pre, then `$8` end, `$9` status, `$10` log id.
    pub fn backup_post(job: &Job, start: i64, end: i64, status: u32, log_id: &str) -> Self {
        let mut named: Vec<_> = job_fields(job).into();
        named.extend([
            ("DESTINATIONS", job.destinations.join(",")),
            ("START", start.to_string()),
            ("END", end.to_string()),
            ("STATUS", status.to_string()),
            ("LOG_ID", log_id.to_owned()),
        ]);
        call(HookType::Backup, HookPosition::Post, named)
    }

    /// Backup item (and clone item), pre: `$1` job id, `$2` item id, `$3` item name, `$4` log id.
    pub fn item_pre(hook_type: HookType, job_id: &str, item_id: &str, item_name: &str, log_id: &str) -> Self {
        call(
            hook_type,
            HookPosition::Pre,
            vec![
                ("JOB_ID", job_id.to_owned()),
                ("ITEM_ID", item_id.to_owned()),
                ("ITEM_NAME", item_name.to_owned()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Backup item (and clone item), post: `$4` status, `$5` log id.
    pub fn item_post(hook_type: HookType, job_id: &str, item_id: &str, item_name: &str, status: u32, log_id: &str) -> Self {
        call(
            hook_type,
            HookPosition::Post,
            vec![
                ("JOB_ID", job_id.to_owned()),
                ("ITEM_ID", item_id.to_owned()),
                ("ITEM_NAME", item_name.to_owned()),
                ("STATUS", status.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Clone, pre: `$1` id, `$2` name, `$3` type, `$4` contains, `$5` destinations, `$6` start, `$7` log id.
    pub fn clone_pre(job: &Job, start: i64, log_id: &str) -> Self {
        let [id, name, ty, contains, _] = job_fields(job);
        call(
            HookType::Clone,
            HookPosition::Pre,
            vec![
                id,
                name,
                ty,
                contains,
                ("DESTINATIONS", job.destinations.join(",")),
                ("START", start.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Clone, post: `$6` start, `$7` end, `$8` status, `$9` log id.
    pub fn clone_post(job: &Job, start: i64, end: i64, status: u32, log_id: &str) -> Self {
        let [id, name, ty, contains, _] = job_fields(job);
        call(
            HookType::Clone,
            HookPosition::Post,
            vec![
                id,
                name,
                ty,
                contains,
                ("DESTINATIONS", job.destinations.join(",")),
                ("START", start.to_string()),
                ("END", end.to_string()),
                ("STATUS", status.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Restore, pre: `$1` backup type, `$2` contains, `$3` account (item) id, `$4` account
    /// name, `$5` items, `$6` start, `$7` log id.
    pub fn restore_pre(job: &Job, item_id: &str, item_name: &str, items: &[String], start: i64, log_id: &str) -> Self {
        call(
            HookType::Restore,
            HookPosition::Pre,
            vec![
                ("JOB_TYPE", job.job_type.code().to_string()),
                ("JOB_CONTAINS", job.contains().to_string()),
                ("ITEM_ID", item_id.to_owned()),
                ("ITEM_NAME", item_name.to_owned()),
                ("ITEMS", items.join(",")),
                ("START", start.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Restore, post: `$6` start, `$7` end, `$8` status, `$9` log id.
    #[allow(clippy::too_many_arguments)]
    pub fn restore_post(
        job: &Job,
        item_id: &str,
        item_name: &str,
        items: &[String],
        start: i64,
        end: i64,
        status: u32,
        log_id: &str,
    ) -> Self {
        call(
            HookType::Restore,
            HookPosition::Post,
            vec![
                ("JOB_TYPE", job.job_type.code().to_string()),
                ("JOB_CONTAINS", job.contains().to_string()),
                ("ITEM_ID", item_id.to_owned()),
                ("ITEM_NAME", item_name.to_owned()),
                ("ITEMS", items.join(",")),
                ("START", start.to_string()),
                ("END", end.to_string()),
                ("STATUS", status.to_string()),
                ("LOG_ID", log_id.to_owned()),
            ],
        )
    }

    /// Download, pre and post: `$1` account (item) id, `$2` log id.
    pub fn download(position: HookPosition, item_id: &str, log_id: &str) -> Self {
        call(
            HookType::Download,
            position,
            vec![("ITEM_ID", item_id.to_owned()), ("LOG_ID", log_id.to_owned())],
        )
    }

    /// The JSON document written to the hook's stdin.
    pub fn to_json(&self, hook: &Hook) -> Value {
        let mut fields = Map::new();
        for (name, value) in &self.named {
            let camel: String = name
                .to_lowercase()
                .split('_')
                .enumerate()
                .map(|(i, w)| if i == 0 { w.to_owned() } else { w[..1].to_uppercase() + &w[1..] })
                .collect();
            fields.insert(camel, Value::String(value.clone()));
        }
        json!({
            "hook": {"id": hook.id, "name": hook.name},
            "type": self.hook_type.as_str(),
            "position": match self.position { HookPosition::Pre => "pre", HookPosition::Post => "post" },
            "args": self.args,
            "context": fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{HookPosition, HookType, Job, JobSpec};

    fn job() -> Job {
        let spec: JobSpec = serde_json::from_slice(
            br#"{"name":"Nightly app","items":[{"name":"uploads","source":{"kind":"directory","path":"/srv"}},{"name":"db","source":{"kind":"postgres","url":"postgres://u@h/d"}}],"destinations":["d1","d2"]}"#,
        )
        .unwrap();
        Job::from_spec("job-1".into(), spec, "t")
    }

    #[test]
    fn backup_arguments_follow_the_seed_positions() {
        let j = job();
        let pre = HookCall::backup_pre(&j, 1000, "exec-1");
        assert_eq!(pre.args, ["job-1", "Nightly app", "1", "3", "6", "d1,d2", "1000", "exec-1"]);
        let post = HookCall::backup_post(&j, 1000, 1060, 100, "exec-1");
        assert_eq!(
            post.args,
            ["job-1", "Nightly app", "1", "3", "6", "d1,d2", "1000", "1060", "100", "exec-1"]
        );
    }

    #[test]
    fn item_clone_restore_and_download_arguments_have_the_seed_counts() {
        let j = job();
        assert_eq!(
            HookCall::item_pre(HookType::BackupItem, "job-1", "i1", "db", "exec-1/db").args,
            ["job-1", "i1", "db", "exec-1/db"]
        );
        assert_eq!(
            HookCall::item_post(HookType::CloneItem, "job-1", "i1", "db", 102, "l").args,
            ["job-1", "i1", "db", "102", "l"]
        );
        assert_eq!(
            HookCall::clone_pre(&j, 5, "l").args,
            ["job-1", "Nightly app", "1", "3", "d1,d2", "5", "l"]
        );
        assert_eq!(HookCall::clone_post(&j, 5, 9, 101, "l").args.len(), 9);
        let items = vec!["uploads".to_owned(), "db".to_owned()];
        assert_eq!(
            HookCall::restore_pre(&j, "", "", &items, 5, "l").args,
            ["1", "3", "", "", "uploads,db", "5", "l"]
        );
        assert_eq!(HookCall::restore_post(&j, "", "", &items, 5, 9, 100, "l").args[7], "100");
        assert_eq!(HookCall::download(HookPosition::Post, "i", "l").args, ["i", "l"]);
    }

    #[test]
    fn the_json_document_carries_args_and_named_values() {
        let j = job();
        let hook = crate::domain::Hook::from_spec(
            "h".into(),
            crate::domain::HookSpec {
                name: "n".into(),
                position: HookPosition::Pre,
                hook_type: HookType::Backup,
                script: "/x".into(),
                timeout: None,
                on_error: None,
                enabled: true,
                jobs: None,
                pass_aws_credentials: false,
            },
            "t",
        );
        let v = HookCall::backup_pre(&j, 7, "e").to_json(&hook);
        assert_eq!(v["context"]["jobId"], "job-1");
        assert_eq!(v["context"]["logId"], "e");
        assert_eq!(v["args"][6], "7");
        assert_eq!(v["type"], "backup");
    }
}
