//! The documents that must stay true: openapi.yaml against the route table and the live
//! API, template.yaml's routes and tables against the code.

use std::collections::BTreeSet;

use cairn_shared::adapters::tables::definitions;
use cairn_shared::http::routes::{Function, ROUTES};
use serde_yaml_ng::Value as Yaml;

use crate::helpers::{project_root, TestApp};

fn load(name: &str) -> Yaml {
    let text = std::fs::read_to_string(project_root().join(name)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn untag(v: &Yaml) -> &Yaml {
    match v {
        Yaml::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn routes() -> BTreeSet<(String, String)> {
    ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect()
}

#[test]
fn openapi_documents_exactly_the_routes_the_code_serves() {
    let doc = load("openapi.yaml");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_mapping().unwrap() {
        for (method, _) in ops.as_mapping().unwrap() {
            documented.insert((method.as_str().unwrap().to_uppercase(), path.as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(documented, routes());
}

#[test]
fn template_routes_each_path_to_the_function_the_code_expects() {
    let doc = load("template.yaml");
    let resources = doc["Resources"].as_mapping().unwrap();
    let mut seen = BTreeSet::new();
    for (function, name) in [
        (Function::Run, "RunFunction"),
        (Function::Poll, "PollFunction"),
        (Function::List, "ListFunction"),
        (Function::Manage, "ManageFunction"),
    ] {
        let f = &resources[name];
        if function == Function::Manage {
            // The runner's image, entered through the manage bootstrap.
            assert_eq!(f["Properties"]["ImageConfig"]["EntryPoint"][0].as_str(), Some("/opt/cairn/manage"));
        } else {
            assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
            assert_eq!(
                f["Properties"]["CodeUri"].as_str().unwrap(),
                format!("./functions/{}", function.name())
            );
        }
        for (_, event) in f["Properties"]["Events"].as_mapping().unwrap() {
            let p = &event["Properties"];
            let (method, path) = (p["Method"].as_str().unwrap().to_owned(), p["Path"].as_str().unwrap().to_owned());
            if path == "$default" {
                assert_eq!(function, Function::List, "the $default route goes to list");
                continue;
            }
            let route = ROUTES
                .iter()
                .find(|r| r.method == method && r.path == path)
                .unwrap_or_else(|| panic!("{method} {path} is not served"));
            assert_eq!(route.function, function, "{method} {path}");
            seen.insert((method, path));
        }
    }
    assert_eq!(seen, routes(), "every route is in template.yaml");
    assert_eq!(doc["Globals"]["Function"]["Architectures"][0], "arm64");
    for name in ["RunFunction", "PollFunction", "ListFunction"] {
        let p = &resources[name]["Properties"];
        assert_eq!(
            (&p["Runtime"], &p["Handler"]),
            (&Yaml::from("provided.al2023"), &Yaml::from("bootstrap")),
            "{name}"
        );
    }
}

#[test]
fn template_tables_match_the_definitions_cairn_init_uses() {
    let doc = load("template.yaml");
    let resources = doc["Resources"].as_mapping().unwrap();
    let mut found = 0;
    for (_, r) in resources {
        if r["Type"] != "AWS::DynamoDB::Table" {
            continue;
        }
        let p = &r["Properties"];
        let name = untag(&p["TableName"]).as_str().unwrap().to_owned();
        let suffix = name.trim_start_matches("${TablePrefix}-");
        let def = definitions()
            .into_iter()
            .find(|d| d.suffix == suffix)
            .unwrap_or_else(|| panic!("table {name} is not defined in the code"));
        found += 1;
        let key = |schema: &Yaml, kind: &str| {
            schema
                .as_sequence()
                .unwrap()
                .iter()
                .find(|k| k["KeyType"] == kind)
                .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
        };
        assert_eq!(key(&p["KeySchema"], "HASH").as_deref(), Some(def.hash_key), "{name}");
        assert_eq!(key(&p["KeySchema"], "RANGE").as_deref(), def.range_key, "{name}");
        let indexes: Vec<(String, Option<String>, Option<String>)> = p["GlobalSecondaryIndexes"]
            .as_sequence()
            .map(|s| {
                s.iter()
                    .map(|i| {
                        (
                            i["IndexName"].as_str().unwrap().to_owned(),
                            key(&i["KeySchema"], "HASH"),
                            key(&i["KeySchema"], "RANGE"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let want: Vec<(String, Option<String>, Option<String>)> = def
            .indexes
            .iter()
            .map(|i| (i.name.to_owned(), Some(i.hash_key.to_owned()), i.range_key.map(str::to_owned)))
            .collect();
        assert_eq!(indexes, want, "{name}");
        let ttl = p["TimeToLiveSpecification"]["AttributeName"].as_str();
        assert_eq!(ttl, def.ttl_attribute, "{name}");
    }
    assert_eq!(found, definitions().len());
}

/// Every documented operation, called on the live API with an unknown id and no body,
/// answers JSON with one of the statuses the document lists for it.
#[tokio::test]
async fn the_live_api_answers_only_documented_statuses() {
    let app = TestApp::spawn().await;
    let doc = load("openapi.yaml");
    for (path, ops) in doc["paths"].as_mapping().unwrap() {
        for (method, op) in ops.as_mapping().unwrap() {
            let concrete = path.as_str().unwrap().replace("{id}", "unknown-id");
            let m = reqwest::Method::from_bytes(method.as_str().unwrap().to_uppercase().as_bytes()).unwrap();
            let method = method.as_str().unwrap();
            for authorised in [true, false] {
                let mut req = app.http.request(m.clone(), app.url(&concrete));
                if authorised {
                    req = req.bearer_auth(&app.admin_key);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16().to_string();
                let body: serde_json::Value = resp.json().await.unwrap_or_else(|_| panic!("{method} {concrete}: not JSON"));
                assert!(body.get("success").is_some(), "{method} {concrete}: {body}");
                let documented: Vec<String> = op["responses"]
                    .as_mapping()
                    .unwrap()
                    .keys()
                    .map(|k| k.as_str().unwrap().to_owned())
                    .collect();
                assert!(
                    documented.contains(&status),
                    "{method} {concrete} answered {status}, documented {documented:?}: {body}"
                );
            }
        }
    }
}

/// The runner image installs exactly the programs the engine runs (and tar, for hooks),
/// and its build proves each is there.
#[test]
fn the_runner_image_holds_the_programs_the_sources_and_targets_call() {
    let dockerfile = std::fs::read_to_string(project_root().join("functions/runner/Dockerfile")).unwrap();
    let listed: BTreeSet<&str> = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("# tools: "))
        .expect("a '# tools: ...' line")
        .split_whitespace()
        .collect();
    let mut called: BTreeSet<&str> = cairn_shared::engine::tools::ALL.iter().copied().collect();
    called.insert("tar");
    assert_eq!(listed, called, "functions/runner/Dockerfile's tools against engine::tools::ALL");
    let checked: BTreeSet<&str> = dockerfile
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1] == "--version")
        .map(|w| w[0])
        .collect();
    assert_eq!(checked, called, "each tool is run once at build time (`TOOL --version`)");
    // The template's runner and manage functions are built from that Dockerfile.
    let doc = load("template.yaml");
    for function in ["RunnerFunction", "ManageFunction"] {
        let f = &doc["Resources"][function];
        assert_eq!(untag(&f["Properties"]["PackageType"]).as_str(), Some("Image"), "{function}");
        assert_eq!(f["Metadata"]["Dockerfile"].as_str(), Some("Dockerfile"), "{function}");
        assert_eq!(f["Metadata"]["DockerContext"].as_str(), Some("./functions/runner"), "{function}");
    }
}
