//! The CLI as people use it: `jobs run --wait` follows a run to its end and exits by its
//! status, `executions logs --follow` streams until the end, lists are aligned tables.

use serde_json::json;

use crate::helpers::TestApp;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn jobs_run_wait_follows_the_run_and_exits_by_its_status() {
    let app = TestApp::spawn().await;
    let ok = app
        .create_job(json!({"name": "cli fine", "items": [{"name": "c", "source": {"kind": "config"}}]}))
        .await;
    let bad = app
        .create_job(json!({"name": "cli broken", "items": [{"name": "f", "source": {"kind": "command", "argv": ["false"]}}]}))
        .await;

    let out = app.cli_text(&["jobs", "run", &ok, "--wait"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.contains(": Success in "), "{stdout}");
    // The runner ran in this process; its metrics line is for CloudWatch, not the user.
    assert!(!stdout.contains("\"_aws\""), "{stdout}");
    // Not a terminal: progress comes as plain lines on stderr, no escape codes.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("queued execution") && !stderr.contains('\u{1b}'), "{stderr}");
    let id = last.split(':').next().unwrap();
    assert_eq!(app.execution(id).await["status"], "Success");

    let out = app.cli_text(&["jobs", "run", &bad, "--wait"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    assert!(stdout.lines().last().unwrap_or_default().contains(": Failed in "), "{stdout}");
}

#[tokio::test]
async fn logs_follow_streams_until_the_execution_ends() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "cli logs", "items": [{"name": "s", "source": {"kind": "command", "argv": ["bash", "-c", "sleep 2; echo done"]}}]}))
        .await;
    let id = app.run_job(&job).await;
    let out = app.cli_text(&["executions", "logs", &id, "--follow"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let end = app.execution(&id).await;
    assert_eq!(end["status"], "Success", "{end:#}");
    // Every entry the execution has, in order, and the command returned only after the end.
    let logged = end["logs"].as_array().unwrap();
    assert_eq!(stdout.lines().count(), logged.len(), "{stdout}");
    for (line, entry) in stdout.lines().zip(logged) {
        assert!(line.ends_with(entry["message"].as_str().unwrap()), "{line} / {entry}");
    }
}

#[tokio::test]
async fn lists_are_aligned_tables_with_local_times() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "table demo", "items": [{"name": "c", "source": {"kind": "config"}}]}))
        .await;
    let id = app.run_job(&job).await;
    app.wait_for_end(&id, std::time::Duration::from_secs(30)).await;

    let out = app.cli_text(&["jobs", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines[0];
    for column in ["ID", "NAME", "STATE", "ITEMS", "LAST RUN", "NEXT RUN"] {
        assert!(header.contains(column), "{stdout}");
    }
    let row = lines.iter().find(|l| l.contains(&job)).expect("the job's row");
    assert_eq!(row.find("table demo"), header.find("NAME"), "NAME column not aligned:\n{stdout}");
    assert!(
        row.contains("Success") && (row.contains(" ago)") || row.contains("(just now)")),
        "{stdout}"
    );
    assert!(header.starts_with("ID"), "{stdout}");

    let out = app.cli_text(&["executions", "list"]);
    let stdout = text(&out.stdout);
    let header = stdout.lines().next().unwrap();
    assert!(
        header.contains("TYPE") && header.contains("STATUS") && header.contains("QUEUED"),
        "{stdout}"
    );
    assert!(stdout.contains("Backup"), "{stdout}");

    let out = app.cli_text(&["executions", "show", &id]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("id ") && stdout.contains("status") && !stdout.contains('{'),
        "{stdout}"
    );
}

#[tokio::test]
async fn jobs_run_wait_performs_its_own_execution_and_leaves_the_rest_queued() {
    let mut app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "cli own", "items": [{"name": "c", "source": {"kind": "config"}}]}))
        .await;
    // No server: nothing else runs what is queued.
    app.kill_server();
    let queued = app.cli(&["jobs", "run", &job]).unwrap()["executionId"].as_str().unwrap().to_owned();

    let out = app.cli_text(&["jobs", "run", &job, "--wait"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    let waited = stdout.lines().last().unwrap_or_default().split(':').next().unwrap().to_owned();
    assert_ne!(waited, queued);

    let shown = app.cli(&["executions", "show", &queued]).unwrap();
    assert_eq!(shown["status"], "Pending", "the CLI took work that was not its own: {shown}");
    let shown = app.cli(&["executions", "show", &waited]).unwrap();
    assert_eq!(shown["status"], "Success", "{shown}");
}
