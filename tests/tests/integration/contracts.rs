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
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
        assert_eq!(
            f["Properties"]["CodeUri"].as_str().unwrap(),
            format!("./functions/{}", function.name())
        );
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
    let globals = &doc["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["Architectures"][0], "arm64");
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
