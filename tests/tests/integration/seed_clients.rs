//! The seed's clients, as published in `../shared/seeds/dbackup-webhook-api.txt`, run
//! against Cairn with only the URL, key and ids substituted.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{project_root, seed_document, TestApp};

/// DBackup's published document, or `None` (the test skips) where it is not available.
fn seed(test: &str) -> Option<String> {
    seed_document("dbackup-webhook-api.txt", test)
}

/// The script's own placeholders: URL, key and `your-job-id`.
fn substitute(text: &str, app: &TestApp, job: &str) -> String {
    text.replace("https://your-instance.com", &app.base_url)
        .replace("dbackup_your_api_key", &app.admin_key)
        .replace("your-job-id", job)
}

/// The Quick Start commands also write the ids as JOB_ID and EXECUTION_ID.
fn substitute_ids(text: &str, app: &TestApp, job: &str, execution: Option<&str>) -> String {
    substitute(text, app, job)
        .replace("JOB_ID", job)
        .replace("EXECUTION_ID", execution.unwrap_or("EXECUTION_ID"))
}

/// The curl commands of "Quick Start" and "Finding the Job ID": each is a `curl` line
/// continued by one `-H` line.
fn quick_start_commands(seed: &str) -> Vec<String> {
    let lines: Vec<&str> = seed.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("curl ") && line.ends_with('\\') {
            let header = lines[i + 1];
            // The seed's page runs the next heading into the closing quote ("...key"Response:).
            let end = header
                .find("\"")
                .and_then(|first| header[first + 1..].find('"').map(|j| first + 1 + j + 1))
                .expect("closing quote");
            out.push(format!("{}\n{}", line, &header[..end]));
        }
    }
    out
}

/// Runs a script; answers its exit code and standard output (curl's progress meter on
/// stderr stays out of the JSON).
fn bash(script: &str) -> (i32, String) {
    let out = Command::new("bash").arg("-c").arg(script).output().expect("bash");
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn the_quick_start_curl_commands_work_verbatim() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "Daily config backup", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let Some(seed) = seed("the_quick_start_curl_commands_work_verbatim") else {
        return;
    };
    let commands = quick_start_commands(&seed);
    assert_eq!(commands.len(), 4, "{commands:#?}");
    assert!(commands[0].contains("-X POST") && commands[0].contains("/run"));

    let (code, out) = bash(&substitute_ids(&commands[0], &app, &job, None));
    assert_eq!(code, 0, "{out}");
    let run: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}"));
    assert_eq!(run["success"], true);
    let execution = run["executionId"].as_str().unwrap().to_owned();
    assert_eq!(run.as_object().unwrap().len(), 2, "exactly success and executionId: {run}");

    let (code, out) = bash(&substitute_ids(&commands[1], &app, &job, Some(&execution)));
    assert_eq!(code, 0);
    let poll: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(poll["success"], true);
    for field in [
        "id",
        "jobId",
        "jobName",
        "type",
        "status",
        "progress",
        "stage",
        "startedAt",
        "endedAt",
        "duration",
        "size",
        "path",
        "error",
    ] {
        assert!(poll["data"].get(field).is_some(), "missing {field}: {poll}");
    }
    assert_eq!(poll["data"]["jobName"], "Daily config backup");
    assert_eq!(poll["data"]["type"], "Backup");
    app.wait_for_end(&execution, Duration::from_secs(30)).await;

    let (_, out) = bash(&substitute_ids(&commands[2], &app, &job, Some(&execution)));
    let with_logs: Value = serde_json::from_str(&out).unwrap();
    let logs = with_logs["data"]["logs"].as_array().unwrap();
    assert!(!logs.is_empty());
    for l in logs {
        assert!(l["timestamp"].is_string() && l["stage"].is_string() && l["message"].is_string());
        assert!(matches!(l["level"].as_str(), Some("info" | "warning" | "error")));
    }

    let (_, out) = bash(&substitute_ids(&commands[3], &app, &job, None));
    let jobs: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(jobs["data"][0]["id"], job.as_str());
}

#[tokio::test]
async fn the_seed_bash_script_exits_0_after_a_real_backup() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.txt"), "important\n".repeat(10_000)).unwrap();
    let job = app
        .create_job(json!({"name": "Daily files", "items": [{"name": "files", "source": {"kind": "directory", "path": dir.path()}}]}))
        .await;
    let Some(seed) = seed("the_seed_bash_script_exits_0_after_a_real_backup") else {
        return;
    };
    let start = seed.find("#!/bin/bash\nset -euo pipefail\nAPI_KEY").expect("the bash script");
    let end = start + seed[start..].find("\ndone").expect("its end") + "\ndone".len();
    let script = substitute(&seed[start..end], &app, &job);
    let (code, out) = bash(&script);
    assert_eq!(code, 0, "{out}\n{}", app.server_log());
    assert!(out.contains("Backup completed successfully!"), "{out}");
}

#[tokio::test]
async fn the_seed_bash_script_exits_1_with_the_error_when_the_backup_fails() {
    let app = TestApp::spawn().await;
    // Inside CAIRN_SOURCE_DIRS, so the job is accepted, but gone by the time it runs.
    let gone = std::env::temp_dir().join(format!("cairn-test-gone-{}", uuid::Uuid::new_v4().simple()));
    let gone = gone.display().to_string();
    let job = app
        .create_job(json!({"name": "Broken", "items": [{"name": "gone", "source": {"kind": "directory", "path": gone}}]}))
        .await;
    let Some(seed) = seed("the_seed_bash_script_exits_1_with_the_error_when_the_backup_fails") else {
        return;
    };
    let start = seed.find("#!/bin/bash\nset -euo pipefail\nAPI_KEY").unwrap();
    let end = start + seed[start..].find("\ndone").unwrap() + "\ndone".len();
    let (code, out) = bash(&substitute(&seed[start..end], &app, &job));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Backup failed: item 'gone' failed") && out.contains(&gone), "{out}");
}

/// The seed's playbook with its indentation restored: the published page flattened it,
/// and YAML needs it. Only whitespace is added; every line is the seed's.
fn reindent_playbook(flat: &str) -> String {
    let mut out = String::new();
    let mut section = "";
    for line in flat.lines() {
        let key = line.split(':').next().unwrap_or("");
        let indent = match key {
            "- name" if line.contains("Trigger DBackup job") => 0,
            "hosts" | "vars" | "tasks" => {
                section = key;
                2
            }
            "- name" => 4,
            "dbackup_url" | "dbackup_api_key" | "job_id" if section == "vars" => 4,
            "ansible.builtin.uri" | "ansible.builtin.fail" | "register" | "until" | "retries" | "delay" | "when" => 6,
            "url" | "method" | "headers" | "status_code" | "msg" => 8,
            "Authorization" => 10,
            other => panic!("unexpected playbook line {other:?}"),
        };
        out.push_str(&" ".repeat(indent));
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn the_seed_ansible_playbook_runs_unchanged_and_succeeds() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "Daily MySQL Backup", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let Some(seed) = seed("the_seed_ansible_playbook_runs_unchanged_and_succeeds") else {
        return;
    };
    let start = seed.find("- name: Trigger DBackup job").expect("the playbook");
    let end = start + seed[start..].find("'Failed'CI/CD").expect("its end") + "'Failed'".len();
    let playbook = reindent_playbook(&substitute(&seed[start..end], &app, &job));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("playbook.yml");
    std::fs::write(&path, playbook).unwrap();
    let ansible = project_root().join(".tools/ansible/bin/ansible-playbook");
    assert!(ansible.exists(), "scripts/install-test-deps.sh installs ansible-core");
    let out = Command::new(ansible)
        .arg(&path)
        .args(["-i", "localhost,", "-c", "local"])
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
        .env("ANSIBLE_HOME", dir.path())
        // Modules run with the venv's own Python, whatever interpreters the machine has.
        .env("ANSIBLE_PYTHON_INTERPRETER", project_root().join(".tools/ansible/bin/python"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("failed=0"), "{text}");
    assert!(text.contains("skipping: [localhost]"), "the failure check is skipped: {text}");
}

#[tokio::test]
async fn the_seed_github_actions_steps_succeed_as_a_shell_script() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "Post-Deploy Backup", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let Some(seed) = seed("the_seed_github_actions_steps_succeed_as_a_shell_script") else {
        return;
    };
    let steps_at = seed.find("steps:\n- name: Trigger backup").expect("the workflow steps");
    let steps = &seed[steps_at..];
    let block = |after: &str, until: &str| {
        let s = steps.find(after).unwrap() + after.len();
        steps[s..s + steps[s..].find(until).unwrap()].to_owned()
    };
    let trigger = block("id: trigger\nrun: |\n", "- name: Wait for backup");
    let wait = block("- name: Wait for backup\nrun: |\n", "Docker Compose Healthcheck");
    let wait = wait.trim_end_matches("exit 1").to_owned() + "exit 1\n";
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("github_output");
    // GitHub Actions' expressions, as the runner expands them: secrets from the
    // environment, the trigger step's output from $GITHUB_OUTPUT.
    let expand = |s: &str| {
        s.replace("${{ secrets.DBACKUP_URL }}", "${DBACKUP_URL}")
            .replace("${{ secrets.DBACKUP_JOB_ID }}", "${DBACKUP_JOB_ID}")
            .replace("${{ secrets.DBACKUP_API_KEY }}", "${DBACKUP_API_KEY}")
            .replace("${{ steps.trigger.outputs.execution_id }}", "${STEPS_TRIGGER_OUTPUTS_EXECUTION_ID}")
    };
    let script = format!(
        "set -e\nexport GITHUB_OUTPUT={out}\n( {trigger} )\nexport STEPS_TRIGGER_OUTPUTS_EXECUTION_ID=$(sed -n 's/^execution_id=//p' {out})\n( {wait} )\n",
        out = output.display(),
        trigger = expand(&trigger),
        wait = expand(&wait)
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("DBACKUP_URL", &app.base_url)
        .env("DBACKUP_JOB_ID", &job)
        .env("DBACKUP_API_KEY", &app.admin_key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script}\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Status=Success"), "{text}");
    let _ = Duration::from_secs(0);
}
