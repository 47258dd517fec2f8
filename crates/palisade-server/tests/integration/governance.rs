//! Configuration governance (issue 6): v1 rules, templates and attachments, admission decisions
//! and their log, and the Kubernetes admission webhooks fed with real `AdmissionReview`
//! documents from `testdata/admission`. The decision scenario runs on SQLite and PostgreSQL.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::{Answer, TestServer, assert_error_shape};

const ACCOUNT: &str = "acct-1";

fn bucket_rule(name: &str, action: &str, enabled: Option<bool>) -> Value {
    let mut rule = json!({
        "account_id": ACCOUNT,
        "name": name,
        "description": format!("{name}: buckets are encrypted"),
        "target": {"service_name": "cloud-object-storage", "resource_kind": "bucket"},
        "required_config": {"description": "encrypted", "and": [
            {"property": "encryption.enabled", "operator": "is_true"}]},
        "enforcement_actions": [{"action": action}],
    });
    if let Some(enabled) = enabled {
        rule["enabled"] = json!(enabled);
    }
    rule
}

fn bucket(resource_group: &str, config: Value) -> Value {
    json!({"id": format!("bucket-{resource_group}"), "service_name": "cloud-object-storage",
           "resource_kind": "bucket", "account_id": ACCOUNT, "resource_group": resource_group,
           "config": config})
}

impl TestServer {
    fn path(&self, rest: &str) -> String {
        format!("/instances/{}{rest}", self.instance_id)
    }

    async fn admin(&self, method: Method, rest: &str, body: Option<Value>) -> Answer {
        self.call(method, &self.path(rest), Some(&self.admin_key), body)
            .await
    }

    /// Creates rules in one bulk call and returns their ids.
    async fn create_rules(&self, rules: Vec<Value>) -> Vec<String> {
        let entries: Vec<Value> = rules
            .into_iter()
            .map(|rule| json!({"rule": rule}))
            .collect();
        let answer = self
            .admin(
                Method::POST,
                "/config/v1/rules",
                Some(json!({"rules": entries})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .map(|entry| entry["rule"]["rule_id"].as_str().expect("id").to_owned())
            .collect()
    }

    async fn attach(&self, parent: &str, id: &str, included: Value, excluded: Value) -> String {
        let answer = self
            .admin(
                Method::POST,
                &format!("/config/v1/{parent}/{id}/attachments"),
                Some(
                    json!({"attachments": [{"account_id": ACCOUNT, "included_scope": included,
                                             "excluded_scopes": excluded}]}),
                ),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body["attachments"][0]["attachment_id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    async fn decide(&self, resource: Value) -> Value {
        let answer = self
            .admin(
                Method::POST,
                "/v1/admission",
                Some(json!({"operation": "create", "resource": resource})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.body
    }
}

fn violated(decision: &Value) -> Vec<(String, String)> {
    decision["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|violation| {
            (
                violation["rule_id"].as_str().unwrap_or_default().to_owned(),
                violation["action"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn account_scope() -> Value {
    json!({"scope_id": ACCOUNT, "scope_type": "account"})
}

async fn decisions_follow_attachments_scopes_and_templates(server: TestServer) {
    let ids = server
        .create_rules(vec![
            bucket_rule("deny-unencrypted", "disallow", None),
            bucket_rule("audit-unencrypted", "audit_log", None),
            bucket_rule("disabled", "disallow", Some(false)),
            bucket_rule("not-attached", "disallow", None),
            json!({"account_id": ACCOUNT, "name": "vm-rule", "description": "other target",
                   "target": {"service_name": "is", "resource_kind": "instance"},
                   "required_config": {"property": "x", "operator": "is_true"},
                   "enforcement_actions": [{"action": "disallow"}]}),
        ])
        .await;
    let [deny, audit, disabled, _unattached, vm_rule] = ids.as_slice() else {
        panic!("five rules: {ids:?}");
    };
    let sandbox = json!([{"scope_id": "rg-sandbox", "scope_type": "account.resource_group"}]);
    server.attach("rules", deny, account_scope(), sandbox).await;
    server
        .attach("rules", audit, account_scope(), json!([]))
        .await;
    server
        .attach("rules", disabled, account_scope(), json!([]))
        .await;
    server
        .attach("rules", vm_rule, account_scope(), json!([]))
        .await;

    // Unencrypted in production: denied by the disallow rule, audited by the other; the
    // disabled and unattached rules and the rule on instances say nothing.
    let decision = server
        .decide(bucket("rg-prod", json!({"encryption": {"enabled": false}})))
        .await;
    assert_eq!(decision["allowed"], false, "{decision}");
    assert_eq!(
        violated(&decision),
        [
            (deny.clone(), "disallow".to_owned()),
            (audit.clone(), "audit_log".to_owned())
        ]
    );
    let mut evaluated: Vec<&str> = decision["rules_evaluated"]
        .as_array()
        .expect("evaluated")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    evaluated.sort_unstable();
    let mut expected = vec![deny.as_str(), audit.as_str()];
    expected.sort_unstable();
    assert_eq!(evaluated, expected);
    let denied_id = decision["decision_id"].as_str().expect("id").to_owned();

    // The sandbox resource group is excluded from the disallow rule: allowed, but audited.
    let decision = server
        .decide(bucket(
            "rg-sandbox",
            json!({"encryption": {"enabled": false}}),
        ))
        .await;
    assert_eq!(decision["allowed"], true);
    assert_eq!(
        violated(&decision),
        [(audit.clone(), "audit_log".to_owned())]
    );

    // Another account: no rule is attached there.
    let mut elsewhere = bucket("rg-prod", json!({}));
    elsewhere["account_id"] = json!("acct-2");
    let decision = server.decide(elsewhere).await;
    assert_eq!(
        (
            decision["allowed"].clone(),
            decision["rules_evaluated"].clone()
        ),
        (json!(true), json!([]))
    );

    // A template attached to the account fills the unset property, so the rules pass.
    let template = json!({"account_id": ACCOUNT, "name": "encrypt", "description": "encrypt by default",
        "target": {"service_name": "cloud-object-storage", "resource_kind": "bucket"},
        "customized_defaults": [{"property": "encryption.enabled", "value": true},
                                {"property": "storage_class", "value": "smart"}]});
    let answer = server
        .admin(
            Method::POST,
            "/config/v1/templates",
            Some(json!({"templates": [{"template": template}]})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let template_id = answer.body["templates"][0]["template"]["template_id"]
        .as_str()
        .expect("id")
        .to_owned();
    server
        .attach("templates", &template_id, account_scope(), json!([]))
        .await;
    let decision = server
        .decide(bucket("rg-prod", json!({"storage_class": "standard"})))
        .await;
    assert_eq!(decision["allowed"], true, "{decision}");
    assert_eq!(
        decision["patch"],
        json!([{"op": "add", "path": "/config/encryption", "value": {"enabled": true}}])
    );
    assert_eq!(decision["resource"]["config"]["storage_class"], "standard");
    // A value the request sets is never overwritten: explicit `false` is still denied.
    let decision = server
        .decide(bucket("rg-prod", json!({"encryption": {"enabled": false}})))
        .await;
    assert_eq!(decision["allowed"], false);

    // A second template defaulting one of the same properties for the same scope is refused;
    // at the resource-group level it is accepted and, being more specific, wins there.
    let other = json!({"account_id": ACCOUNT, "name": "other", "description": "cold storage",
        "target": {"service_name": "cloud-object-storage", "resource_kind": "bucket"},
        "customized_defaults": [{"property": "storage_class", "value": "cold"}]});
    let answer = server
        .admin(
            Method::POST,
            "/config/v1/templates",
            Some(json!({"templates": [{"template": other}]})),
        )
        .await;
    let other_id = answer.body["templates"][0]["template"]["template_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let clash = server
        .admin(
            Method::POST,
            &format!("/config/v1/templates/{other_id}/attachments"),
            Some(json!({"attachments": [{"account_id": ACCOUNT, "included_scope": account_scope()}]})),
        )
        .await;
    assert_eq!(assert_error_shape(&clash, StatusCode::CONFLICT), "conflict");
    assert!(clash.text.contains("storage_class"), "{}", clash.text);
    assert!(clash.text.contains(&template_id), "{}", clash.text);
    server
        .attach(
            "templates",
            &other_id,
            json!({"scope_id": "rg-cold", "scope_type": "account.resource_group"}),
            json!([]),
        )
        .await;
    let decision = server.decide(bucket("rg-cold", json!({}))).await;
    assert_eq!(decision["resource"]["config"]["storage_class"], "cold");
    assert_eq!(
        decision["templates_applied"],
        json!([other_id, template_id])
    );

    // Changing a rule invalidates the cached policy at once: disable the disallow rule.
    let fetched = server
        .admin(Method::GET, &format!("/config/v1/rules/{deny}"), None)
        .await;
    let etag = fetched.headers["etag"].to_str().expect("etag").to_owned();
    let mut body = fetched.body.clone();
    body["enabled"] = json!(false);
    let request = Request::builder()
        .method(Method::PUT)
        .uri(server.path(&format!("/config/v1/rules/{deny}")))
        .header("authorization", format!("Bearer {}", server.admin_key))
        .header("content-type", "application/json")
        .header("if-match", etag)
        .body(Body::from(body.to_string()))
        .expect("request");
    let answer = server.send(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["enabled"], false);
    let decision = server
        .decide(bucket("rg-prod", json!({"encryption": {"enabled": false}})))
        .await;
    assert_eq!(decision["allowed"], true);

    // The decision log: filtered by outcome and by rule, newest first, one by id.
    let log = server
        .admin(Method::GET, "/v1/admission/decisions?allowed=false", None)
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    let denied: Vec<&str> = log.body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter_map(|decision| decision["decision_id"].as_str())
        .collect();
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[1], denied_id);
    let by_rule = server
        .admin(
            Method::GET,
            &format!("/v1/admission/decisions?rule_id={audit}&page_size=2"),
            None,
        )
        .await;
    assert_eq!(by_rule.body["decisions"].as_array().map(Vec::len), Some(2));
    assert!(
        !by_rule.body["next_page_token"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    let one = server
        .admin(
            Method::GET,
            &format!("/v1/admission/decisions/{denied_id}"),
            None,
        )
        .await;
    assert_eq!(one.body["resource"]["id"], "bucket-rg-prod");
    assert_eq!(one.body["source"], "api");
    assert_eq!(one.body["violations"][0]["rule_id"], deny.as_str());
    let bad = server
        .admin(Method::GET, "/v1/admission/decisions?since=yesterday", None)
        .await;
    assert_eq!(
        assert_error_shape(&bad, StatusCode::BAD_REQUEST),
        "invalid_parameter"
    );
}

#[tokio::test]
async fn decisions_follow_attachments_scopes_and_templates_on_sqlite() {
    decisions_follow_attachments_scopes_and_templates(TestServer::sqlite().await).await;
}

#[tokio::test]
async fn decisions_follow_attachments_scopes_and_templates_on_postgres() {
    let Some(server) =
        TestServer::postgres("decisions_follow_attachments_scopes_and_templates_on_postgres").await
    else {
        return;
    };
    decisions_follow_attachments_scopes_and_templates(server).await;
}

#[tokio::test]
async fn bad_rules_and_requests_name_their_fields() {
    let server = TestServer::sqlite().await;
    let answer = server
        .admin(
            Method::POST,
            "/config/v1/rules",
            Some(json!({"rules": [
                {"request_id": "ok", "rule": bucket_rule("fine", "disallow", None)},
                {"request_id": "bad", "rule": {"name": "", "description": "d",
                    "target": {"service_name": "s", "resource_kind": "k"},
                    "required_config": {"property": "p", "operator": "no_such_operator"},
                    "enforcement_actions": [{"action": "block"}], "colour": "red"}}]})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::MULTI_STATUS, "{}", answer.text);
    let bad = &answer.body["rules"][1];
    assert_eq!(bad["status_code"], 400);
    let targets: Vec<&str> = bad["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|error| error["target"]["name"].as_str())
        .collect();
    for expected in [
        "/rules/1/rule/name",
        "/rules/1/rule/colour",
        "/rules/1/rule/enforcement_actions/0/action",
        "/rules/1/rule/required_config/operator",
    ] {
        assert!(targets.contains(&expected), "{expected} in {targets:?}");
    }
    assert_eq!(answer.body["rules"][0]["status_code"], 201);

    let answer = server
        .admin(
            Method::POST,
            "/v1/admission",
            Some(json!({"operation": "delete", "resource": {"service_name": "s"}})),
        )
        .await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::BAD_REQUEST),
        "invalid_field"
    );
    assert!(answer.text.contains("/operation"), "{}", answer.text);
    assert!(answer.text.contains("/resource"), "{}", answer.text);

    let rule_id = answer_rule_id(&server).await;
    let answer = server
        .admin(
            Method::POST,
            &format!("/config/v1/rules/{rule_id}/attachments"),
            Some(json!({"attachments": [{"account_id": ACCOUNT,
                "included_scope": {"scope_id": "x", "scope_type": "galaxy"}}]})),
        )
        .await;
    assert_error_shape(&answer, StatusCode::BAD_REQUEST);
    assert!(
        answer
            .text
            .contains("/attachments/0/included_scope/scope_type"),
        "{}",
        answer.text
    );
    // No If-Match: 428; a stale one: 412.
    let no_etag = server
        .admin(
            Method::PUT,
            &format!("/config/v1/rules/{rule_id}"),
            Some(bucket_rule("x", "disallow", None)),
        )
        .await;
    assert_eq!(
        assert_error_shape(&no_etag, StatusCode::PRECONDITION_REQUIRED),
        "precondition_required"
    );
}

async fn answer_rule_id(server: &TestServer) -> String {
    server
        .create_rules(vec![bucket_rule("one", "disallow", None)])
        .await
        .remove(0)
}

fn review(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/admission")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read testdata")).expect("JSON")
}

#[tokio::test]
async fn kubernetes_webhooks_answer_admission_reviews() {
    let server = TestServer::sqlite().await;
    let kubernetes_rule = |name: &str, action: &str, property: &str| {
        json!({"account_id": "prod-cluster", "name": name, "description": name,
               "target": {"service_name": "kubernetes", "resource_kind": "workload"},
               "required_config": {"all": {"target": {"ref": "pod_spec.containers"},
                   "required_config": {"or": [
                       {"property": format!("securityContext.{property}"), "operator": "is_empty"},
                       {"property": format!("securityContext.{property}"), "operator": "is_false"}]}}},
               "enforcement_actions": [{"action": action}]})
    };
    let ids = server
        .create_rules(vec![
            kubernetes_rule("no-privileged", "disallow", "privileged"),
            kubernetes_rule("no-escalation", "audit_log", "allowPrivilegeEscalation"),
        ])
        .await;
    let cluster = json!({"scope_id": "prod-cluster", "scope_type": "account"});
    let sandbox = json!([{"scope_id": "sandbox", "scope_type": "account.resource_group"}]);
    for id in &ids {
        server
            .attach("rules", id, cluster.clone(), sandbox.clone())
            .await;
    }
    let validate = "/v1/admission/kubernetes/validate?cluster=prod-cluster";

    let answer = server
        .admin(
            Method::POST,
            validate,
            Some(review("deployment-create-privileged.json")),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer.body["kind"], "AdmissionReview");
    let response = &answer.body["response"];
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().expect("message");
    assert!(
        message.contains(&ids[0]) && message.contains("no-privileged"),
        "{message}"
    );
    let warnings = response["warnings"].as_array().expect("warnings");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|warning| warning.contains("audit_log"))
    );

    let answer = server
        .admin(
            Method::POST,
            validate,
            Some(review("deployment-create-compliant.json")),
        )
        .await;
    assert_eq!(answer.body["response"]["allowed"], true, "{}", answer.text);
    assert!(answer.body["response"].get("warnings").is_none());

    // The sandbox namespace is excluded: a privileged debug pod is let through.
    let answer = server
        .admin(
            Method::POST,
            validate,
            Some(review("pod-update-sandbox.json")),
        )
        .await;
    assert_eq!(answer.body["response"]["allowed"], true, "{}", answer.text);
    // DELETE is not judged.
    let answer = server
        .admin(
            Method::POST,
            validate,
            Some(review("configmap-delete.json")),
        )
        .await;
    assert_eq!(
        answer.body["response"],
        json!({"uid": "e1c2d3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "allowed": true})
    );

    // The decisions are logged with source `kubernetes`, namespace as resource group.
    let log = server
        .admin(
            Method::GET,
            "/v1/admission/decisions?source=kubernetes&allowed=false",
            None,
        )
        .await;
    let decisions = log.body["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["resource"]["resource_group"], "shop");
    assert_eq!(decisions[0]["resource"]["account_id"], "prod-cluster");

    // The mutating webhook: a template on the cluster defaults the pod's service account token
    // and seccomp profile; the patch lands in the Deployment's pod template.
    let template = json!({"account_id": "prod-cluster", "name": "pod defaults", "description": "d",
        "target": {"service_name": "kubernetes", "resource_kind": "workload"},
        "customized_defaults": [
            {"property": "pod_spec.automountServiceAccountToken", "value": false},
            {"property": "pod_spec.securityContext.seccompProfile.type", "value": "RuntimeDefault"},
            {"property": "metadata.labels.owner", "value": "platform"}]});
    let answer = server
        .admin(
            Method::POST,
            "/config/v1/templates",
            Some(json!({"templates": [{"template": template}]})),
        )
        .await;
    let template_id = answer.body["templates"][0]["template"]["template_id"]
        .as_str()
        .expect("id")
        .to_owned();
    server
        .attach("templates", &template_id, cluster.clone(), json!([]))
        .await;
    let answer = server
        .admin(
            Method::POST,
            "/v1/admission/kubernetes/mutate?cluster=prod-cluster",
            Some(review("deployment-create-privileged.json")),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let response = &answer.body["response"];
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let patch: Value = serde_json::from_slice(
        &STANDARD
            .decode(response["patch"].as_str().expect("patch"))
            .expect("base64"),
    )
    .expect("JSON");
    assert_eq!(
        patch,
        json!([
            {"op": "add", "path": "/spec/template/spec/automountServiceAccountToken", "value": false},
            {"op": "add", "path": "/spec/template/spec/securityContext",
             "value": {"seccompProfile": {"type": "RuntimeDefault"}}},
            {"op": "add", "path": "/metadata/labels/owner", "value": "platform"}
        ])
    );
    // Mutation does not decide, so it is not logged.
    let log = server
        .admin(
            Method::GET,
            "/v1/admission/decisions?source=kubernetes",
            None,
        )
        .await;
    assert_eq!(log.body["decisions"].as_array().map(Vec::len), Some(3));

    let broken = server
        .admin(
            Method::POST,
            validate,
            Some(
                json!({"kind": "AdmissionReview", "request": {"uid": "u", "operation": "CREATE",
                "object": {"kind": "Pod", "metadata": {}}}}),
            ),
        )
        .await;
    assert_error_shape(&broken, StatusCode::BAD_REQUEST);
    assert!(
        broken.text.contains("/request/object/metadata/name"),
        "{}",
        broken.text
    );
}
