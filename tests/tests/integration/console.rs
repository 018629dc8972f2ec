//! The web console in a real browser: Debian's headless Chromium driven through
//! chromedriver (both installed by scripts/install-test-deps.sh) against `cairn serve`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{free_port, TestApp};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a port of its own, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session, or `None` (with one line saying why) where Chromium is not
/// installed: `bash scripts/install-test-deps.sh` installs it.
async fn browser() -> Option<(Driver, Client)> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        eprintln!("skipped: {CHROMIUM} and {CHROMEDRIVER} are not installed (run scripts/install-test-deps.sh)");
        return None;
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().expect("profile dir");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    // The flags keep Chromium off the (closed) network and out of the sandbox it cannot
    // have as root.
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ];
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args.push(format!("--user-data-dir={}", driver._profile.path().display()));
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({"binary": CHROMIUM, "args": args}));
    // Both ring and aws-lc-rs are linked (reqwest, the AWS SDK): pick one for fantoccini.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut builder = ClientBuilder::rustls().expect("TLS for the WebDriver client");
        match builder.capabilities(caps.clone()).connect(&driver.url).await {
            Ok(client) => return Some((driver, client)),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no browser session from chromedriver: {e}"),
        }
    }
}

/// Where the tests leave their screenshots.
fn screenshot_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir.join(name)
}

async fn sign_in(client: &Client, app: &TestApp, key: &str) {
    client.goto(&app.url("/")).await.expect("open the console");
    client
        .find(Locator::Css("#key"))
        .await
        .expect("key field")
        .send_keys(key)
        .await
        .expect("type the key");
    client
        .find(Locator::Css("#key-form button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
}

#[tokio::test]
async fn the_console_runs_a_job_and_shows_it_reach_success() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "console demo", "items": [{"name": "settings", "source": {"kind": "config"}}]}))
        .await;
    let Some((_driver, client)) = browser().await else { return };
    sign_in(&client, &app, &app.admin_key).await;

    let run = client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(&format!("button[data-run='{job}']")))
        .await
        .expect("the job's Run button");
    run.click().await.expect("click Run");
    let done = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#executions tr[data-status='Success']"))
        .await
        .expect("the execution reaches Success in the page");
    let pct = done.find(Locator::Css(".pct")).await.expect("percent").text().await.expect("text");
    assert_eq!(pct, "100%");
    let id = done.attr("data-id").await.expect("attr").expect("execution id");
    assert_eq!(app.execution(&id).await["status"], "Success");

    // The ready-to-copy curl commands carry the job's id.
    let buttons = client.find_all(Locator::Css("#jobs button.ghost")).await.expect("buttons");
    buttons[0].click().await.expect("API trigger");
    let curl = client
        .find(Locator::Css("#curl-run"))
        .await
        .expect("curl")
        .text()
        .await
        .expect("text");
    assert!(
        curl.contains(&format!("/api/jobs/{job}/run")) && curl.contains("Bearer $CAIRN_KEY"),
        "{curl}"
    );

    // No part of the key is on the page.
    let page = client.find(Locator::Css("body")).await.expect("body").text().await.expect("text");
    assert!(
        !page.contains(&app.admin_key["cairn_".len().."cairn_".len() + 8]),
        "the key shows on the page"
    );

    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_path("console-success.png");
    std::fs::write(&path, &png).expect("save screenshot");
    eprintln!("screenshot: {}", path.display());
    assert!(png.starts_with(b"\x89PNG"));
    client.close().await.expect("close");
}

#[tokio::test]
async fn a_wrong_key_shows_the_401_message() {
    let app = TestApp::spawn().await;
    let Some((_driver, client)) = browser().await else { return };
    sign_in(&client, &app, "cairn_not_a_real_key").await;
    let message = client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#sign-in-error:not([hidden])"))
        .await
        .expect("the sign-in error");
    let text = message.text().await.expect("text");
    assert!(text.contains("401") && text.contains("Invalid API key"), "{text}");
    assert!(!client
        .find(Locator::Css("#jobs-card"))
        .await
        .expect("jobs card")
        .is_displayed()
        .await
        .expect("displayed"));
    client.close().await.expect("close");
}

#[tokio::test]
async fn a_key_without_jobs_read_is_told_what_the_jobs_list_needs() {
    let app = TestApp::spawn().await;
    let key = app
        .cli(&["keys", "create", "--name", "poller", "--permissions", "history:read"])
        .expect("key");
    let Some((_driver, client)) = browser().await else { return };
    sign_in(&client, &app, key["key"].as_str().unwrap()).await;
    let notice = client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#jobs-error:not([hidden])"))
        .await
        .expect("the jobs notice");
    let text = notice.text().await.expect("text");
    assert!(
        text.contains("no jobs:read permission") && text.contains("the list of jobs needs it"),
        "{text}"
    );
    // What the key may see is still shown.
    assert!(client
        .find(Locator::Css("#executions"))
        .await
        .expect("table")
        .is_displayed()
        .await
        .expect("shown"));
    client.close().await.expect("close");
}

#[tokio::test]
async fn console_files_carry_a_strict_content_security_policy() {
    let app = TestApp::spawn().await;
    for path in ["/", "/console", "/console/console.js", "/console/console.css"] {
        let r = app.http.get(app.url(path)).send().await.expect("get");
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str().expect("header").to_owned();
        assert!(
            csp.starts_with("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    let page = app.http.get(app.url("/")).send().await.expect("get").text().await.expect("body");
    assert!(page.contains("<title>Cairn</title>"));
    // The API is where it was: unknown paths still answer JSON 404s.
    let (status, body) = app.get("/nowhere").await;
    assert_eq!(status, 404, "{body}");
}
