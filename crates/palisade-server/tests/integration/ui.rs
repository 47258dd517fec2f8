//! The web dashboard (issue 10), in-process: sign-in and its cookie, CSRF, role limits, the pages
//! over seeded posture and findings data, isolation between instances, and page times over a
//! report with 100,000 evaluations.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Utc;
use serde_json::{Value, json};

use crate::common::{Answer, TestServer};

/// A signed-in browser: its session cookie.
pub struct Browser {
    pub cookie: String,
}

fn set_cookies(answer: &Answer) -> Vec<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_owned)
        .collect()
}

fn cookie_value(set_cookie: &[String], name: &str) -> Option<String> {
    set_cookie
        .iter()
        .filter_map(|header| header.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.to_owned())
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field")
        .to_owned()
}

pub async fn request(
    server: &TestServer,
    method: Method,
    path: &str,
    host: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Answer {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    let request = match form {
        Some(form) => builder
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned())),
        None => builder.body(Body::empty()),
    }
    .expect("request");
    server.send(request).await
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{name}={}",
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs in with `key` (host `host`) and returns the answer to the form's POST.
async fn try_sign_in(server: &TestServer, key: &str, host: &str) -> Answer {
    let form = request(server, Method::GET, "/ui/sign-in", host, None, None).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    let token = cookie_value(&set_cookies(&form), "palisade_sign_in").expect("sign-in cookie");
    assert_eq!(csrf_of(&form.text), token);
    request(
        server,
        Method::POST,
        "/ui/sign-in",
        host,
        Some(&format!("palisade_sign_in={token}")),
        Some(&form_encode(&[
            ("key", key),
            ("csrf", &token),
            ("next", "/ui/"),
        ])),
    )
    .await
}

pub async fn sign_in(server: &TestServer, key: &str) -> Browser {
    let answer = try_sign_in(server, key, "localhost:8080").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    let session = cookie_value(&set_cookies(&answer), "palisade_session").expect("session");
    Browser {
        cookie: format!("palisade_session={session}"),
    }
}

impl Browser {
    pub async fn get(&self, server: &TestServer, path: &str) -> Answer {
        request(
            server,
            Method::GET,
            path,
            "localhost",
            Some(&self.cookie),
            None,
        )
        .await
    }

    pub async fn post(&self, server: &TestServer, path: &str, pairs: &[(&str, &str)]) -> Answer {
        request(
            server,
            Method::POST,
            path,
            "localhost",
            Some(&self.cookie),
            Some(&form_encode(pairs)),
        )
        .await
    }
}

async fn create(server: &TestServer, path: &str, body: Value) -> Value {
    let answer = server
        .call(
            Method::POST,
            &format!("/instances/{}/v3/{path}", server.instance_id),
            Some(&server.admin_key),
            Some(body),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{path}: {}",
        answer.text
    );
    answer.body
}

/// What [`seed`] made.
pub struct Seeded {
    pub attachment_id: String,
    pub report_id: String,
    pub control_id: String,
    pub rule_id: String,
}

/// Seeds an attachment "Nightly AWS" over two buckets (one unversioned), a manual assessment,
/// and scans it; the threshold of 0 failing controls raises a posture finding.
pub async fn seed(server: &TestServer) -> Seeded {
    let rule = create(server, "rules", json!({
        "description": "S3 buckets keep versions", "target": {"service_name": "s3", "resource_kind": "bucket"},
        "required_config": {"property": "versioning.status", "operator": "string_equals", "value": "Enabled"},
    }))
    .await;
    let rule_id = rule["id"].as_str().expect("rule id").to_owned();
    let library = create(server, "control_libraries", json!({
        "control_library_name": "ui lib", "control_library_description": "", "control_library_type": "custom", "control_library_version": "1",
        "controls": [{"control_name": "CP-9", "control_description": "System backup", "control_category": "Contingency planning", "control_requirement": true,
            "control_specifications": [{"component_id": "s3", "assessments": [
                {"assessment_id": rule_id},
                {"assessment_id": "manual-backup-review", "assessment_type": "manual", "assessment_description": "Backups are restored once a quarter"},
            ]}]}],
    }))
    .await;
    let control_id = library["controls"][0]["control_id"]
        .as_str()
        .expect("control id")
        .to_owned();
    let profile = create(
        server,
        "profiles",
        json!({
            "profile_name": "ui profile", "profile_version": "1", "default_parameters": [],
            "controls": [{"control_library_id": library["id"], "control_id": control_id}],
        }),
    )
    .await;
    let scope = create(
        server,
        "scopes",
        json!({"name": "all aws", "environment": "aws", "properties": []}),
    )
    .await;
    let attachments = create(server, &format!("profiles/{}/attachments", profile["id"].as_str().unwrap_or_default()), json!({"attachments": [{
        "name": "Nightly AWS", "description": "", "scope": [{"id": scope["id"]}], "schedule": "daily", "status": "enabled",
        "notifications": {"enabled": true, "controls": {"threshold_limit": 0, "failed_control_ids": []}}, "attachment_parameters": [],
    }]}))
    .await;
    let attachment_id = attachments["attachments"][0]["id"]
        .as_str()
        .expect("attachment id")
        .to_owned();
    let pushed = server
        .call(Method::POST, &format!("/instances/{}/v1/inventory", server.instance_id), Some(&server.admin_key), Some(json!({"resources": [
            {"id": "bucket-good", "name": "logs", "environment": "aws", "service_name": "s3", "resource_kind": "bucket", "config": {"versioning": {"status": "Enabled"}}},
            {"id": "bucket-bad", "name": "customer-exports", "environment": "aws", "service_name": "s3", "resource_kind": "bucket", "config": {"versioning": {"status": "Suspended"}}},
        ]})))
        .await;
    assert_eq!(pushed.body["stored"], 2, "{}", pushed.text);
    let scan = palisade_server::service::scans::run_scan(
        &server.state,
        &server.instance_id,
        &attachment_id,
        "ondemand",
        Utc::now(),
    )
    .await
    .expect("scan");
    Seeded {
        attachment_id,
        report_id: scan["report_id"].as_str().expect("report id").to_owned(),
        control_id,
        rule_id,
    }
}

/// The first posture finding's dashboard path.
async fn posture_finding(server: &TestServer) -> (Value, String) {
    let findings = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/v1/findings?provider_id=posture",
                server.instance_id
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    let finding = findings.body["findings"][0].clone();
    assert!(finding.is_object(), "{}", findings.text);
    let path = format!(
        "/ui/findings/{}/{}/{}",
        finding["account_id"].as_str().unwrap_or_default(),
        finding["provider_id"].as_str().unwrap_or_default(),
        finding["id"].as_str().unwrap_or_default()
    );
    (finding, path)
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_session_cookie_without_the_key() {
    let server = TestServer::sqlite().await;
    let answer = try_sign_in(&server, &server.admin_key, "localhost:8080").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert_eq!(answer.headers["location"], "/ui/");
    let cookies = set_cookies(&answer);
    let session = cookies
        .iter()
        .find(|cookie| cookie.starts_with("palisade_session="))
        .expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(session.contains(flag), "{session}");
    }
    assert!(
        !session.contains("Secure"),
        "plain http on loopback: {session}"
    );
    let secret = server.admin_key.rsplit('_').next().unwrap_or_default();
    assert!(
        !session.contains(&server.admin_key) && !session.contains(secret),
        "the key never reaches the cookie"
    );

    // Anywhere but loopback (or behind TLS), the cookie is Secure.
    let remote = try_sign_in(&server, &server.admin_key, "palisade.example.com").await;
    assert_eq!(remote.status, StatusCode::SEE_OTHER);
    assert!(
        set_cookies(&remote)
            .iter()
            .all(|cookie| cookie.contains("; Secure")),
        "{:?}",
        set_cookies(&remote)
    );

    // A wrong key is refused on the form, in HTML.
    let wrong = try_sign_in(
        &server,
        "pal_0123456789abcdef0123456789abcdef_nope",
        "localhost",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.text.contains("That key is not valid"),
        "{}",
        wrong.text
    );
    assert!(
        wrong.headers["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );

    // A sign-in posted without the form's token (from another site) is refused.
    let forged = request(
        &server,
        Method::POST,
        "/ui/sign-in",
        "localhost",
        Some("palisade_sign_in=aaaa"),
        Some(&form_encode(&[
            ("key", &server.admin_key),
            ("csrf", "bbbb"),
        ])),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(cookie_value(&set_cookies(&forged), "palisade_session").is_none());
}

/// The overview lists collectors with their status and last heartbeat (issue 5).
#[tokio::test]
async fn overview_shows_collector_status_issue_5() {
    let server = TestServer::sqlite().await;
    let browser = sign_in(&server, &server.admin_key).await;
    let empty = browser.get(&server, "/ui/").await;
    assert!(empty.text.contains("No collectors yet"), "{}", empty.text);

    let base = format!("/instances/{}/v1/collectors", server.instance_id);
    let mut created = Vec::new();
    for body in [
        json!({"name": "edge <dc-1>", "targets": [{"kind": "host"}]}),
        json!({"name": "spare"}),
    ] {
        let answer = server
            .call(Method::POST, &base, Some(&server.admin_key), Some(body))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        created.push(answer.body);
    }
    let edge = &created[0];
    let registered = server
        .call(
            Method::POST,
            "/v1/collectors/register",
            None,
            Some(json!({"registration_code": edge["registration_code"]})),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    let agent_key = registered.body["api_key"].as_str().expect("key");
    let beat = server
        .call(
            Method::POST,
            &format!("{base}/{}/heartbeat", edge["id"].as_str().expect("id")),
            Some(agent_key),
            Some(json!({"version": "9.9.9", "host_name": "edge-host",
                "last_job": {"status": "succeeded", "resources": 42}})),
        )
        .await;
    assert_eq!(beat.status, StatusCode::OK, "{}", beat.text);

    let overview = browser.get(&server, "/ui/").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.text);
    for expected in [
        "edge &lt;dc-1&gt;",
        "(edge-host)",
        "status-active",
        "succeeded, 42 resources",
        "spare",
        "status-pending",
        beat.body["last_heartbeat_at"].as_str().expect("time"),
    ] {
        assert!(
            overview.text.contains(expected),
            "overview lacks {expected}: {}",
            overview.text
        );
    }
    assert!(!overview.text.contains("No collectors yet"));
    assert!(
        !overview
            .text
            .contains(edge["registration_code"].as_str().expect("code")),
        "no registration code on the page"
    );
}

#[tokio::test]
async fn pages_need_a_session_and_sign_out_ends_it() {
    let server = TestServer::sqlite().await;
    let root = request(&server, Method::GET, "/", "localhost", None, None).await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.headers["location"], "/ui/");
    let anonymous = request(
        &server,
        Method::GET,
        "/ui/findings",
        "localhost",
        None,
        None,
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.headers["location"],
        "/ui/sign-in?next=%2Fui%2Ffindings"
    );
    let forged = request(
        &server,
        Method::GET,
        "/ui/",
        "localhost",
        Some("palisade_session=made-up"),
        None,
    )
    .await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);

    let browser = sign_in(&server, &server.admin_key).await;
    let overview = browser.get(&server, "/ui/").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.text);
    assert!(overview.text.contains("No attachments yet"));
    let policy = overview.headers["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(overview.headers["cache-control"], "no-store");

    // Sign-out needs the session's token.
    let refused = browser
        .post(&server, "/ui/sign-out", &[("csrf", "wrong")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let csrf = csrf_of(&overview.text);
    let out = browser
        .post(&server, "/ui/sign-out", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        set_cookies(&out)
            .iter()
            .any(|cookie| cookie.starts_with("palisade_session=;") && cookie.contains("Max-Age=0"))
    );
    assert_eq!(
        browser.get(&server, "/ui/").await.status,
        StatusCode::SEE_OTHER
    );
    assert!(server.state.ui_sessions.is_empty());

    // Keys that cannot read (collector, ingest) cannot sign in.
    let (_, collector) = server.key_with_role("collector").await;
    let answer = try_sign_in(&server, &collector, "localhost").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.text.contains("cannot read the dashboard"));

    // An unknown dashboard page is an HTML 404.
    let browser = sign_in(&server, &server.admin_key).await;
    let missing = browser.get(&server, "/ui/nothing-here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("<html"), "{}", missing.text);
}

#[tokio::test]
async fn pages_show_the_seeded_posture_and_findings() {
    let server = TestServer::sqlite().await;
    let seeded = seed(&server).await;
    let browser = sign_in(&server, &server.admin_key).await;

    let overview = browser.get(&server, "/ui/").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.text);
    for expected in [
        "Nightly AWS",
        "CP-9",
        "customer-exports",
        "<svg",
        "<strong>2</strong> resources",
    ] {
        assert!(
            overview.text.contains(expected),
            "overview lacks {expected}"
        );
    }

    let posture = browser.get(&server, "/ui/posture").await;
    assert!(posture.text.contains("Nightly AWS") && posture.text.contains("Scan now"));

    let report = browser
        .get(
            &server,
            &format!("/ui/posture/reports/{}", seeded.report_id),
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    for expected in [
        "CP-9",
        "50.0 %",
        "download?format=pdf",
        "download?format=oscal",
        "first report",
    ] {
        assert!(report.text.contains(expected), "report lacks {expected}");
    }

    let control = browser
        .get(
            &server,
            &format!(
                "/ui/posture/reports/{}/controls/{}",
                seeded.report_id, seeded.control_id
            ),
        )
        .await;
    assert_eq!(control.status, StatusCode::OK, "{}", control.text);
    assert!(control.text.contains("S3 buckets keep versions"));
    assert!(control.text.contains("Backups are restored once a quarter"));
    assert!(control.text.contains("Not attested"), "{}", control.text);

    let failing = browser
        .get(
            &server,
            &format!(
                "/ui/posture/reports/{}/evaluations?rule={}&status=failure",
                seeded.report_id, seeded.rule_id
            ),
        )
        .await;
    assert_eq!(failing.status, StatusCode::OK, "{}", failing.text);
    assert!(failing.text.contains("customer-exports"));
    assert!(failing.text.contains("Suspended") && failing.text.contains("Enabled"));
    assert!(!failing.text.contains("bucket-good"));
    assert!(failing.text.contains("1 evaluations match"));

    let csv = browser
        .get(
            &server,
            &format!(
                "/ui/posture/reports/{}/download?format=csv",
                seeded.report_id
            ),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/csv")
    );
    assert!(csv.text.contains("bucket-bad"));
    let pdf = browser
        .get(
            &server,
            &format!(
                "/ui/posture/reports/{}/download?format=pdf",
                seeded.report_id
            ),
        )
        .await;
    assert_eq!(pdf.headers["content-type"], "application/pdf");

    // Attesting the manual assessment from its form.
    let csrf = csrf_of(&control.text);
    let attested = browser
        .post(
            &server,
            &format!(
                "/ui/posture/attachments/{}/attestations/manual-backup-review",
                seeded.attachment_id
            ),
            &[
                ("csrf", &csrf),
                ("status", "pass"),
                ("note", "restore drill on 2026-01-10"),
                ("evidence", "https://wiki.example/drill\n"),
                ("control_id", &seeded.control_id),
                ("report_id", &seeded.report_id),
            ],
        )
        .await;
    assert_eq!(attested.status, StatusCode::SEE_OTHER, "{}", attested.text);
    let listed = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/v1/attachments/{}/attestations",
                server.instance_id, seeded.attachment_id
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(listed.body[0]["status"], "pass", "{}", listed.text);
    assert_eq!(listed.body[0]["evidence"][0], "https://wiki.example/drill");

    // Findings: listed with filters, and one acknowledged from its page.
    let list = browser
        .get(&server, "/ui/findings?provider=posture&status=open")
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(list.text.contains("1 findings match"), "{}", list.text);
    let none = browser
        .get(&server, "/ui/findings?severity=low&provider=posture")
        .await;
    assert!(none.text.contains("0 findings match"), "{}", none.text);
    let bad = browser.get(&server, "/ui/findings?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("`since` is not a date"));

    let (_, path) = posture_finding(&server).await;
    let page = browser.get(&server, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Acknowledge") && page.text.contains("Evidence"));
    let wrong = browser
        .post(
            &server,
            &format!("{path}/status"),
            &[("csrf", "forged"), ("status", "acknowledged")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "CSRF");
    let csrf = csrf_of(&page.text);
    let done = browser
        .post(
            &server,
            &format!("{path}/status"),
            &[("csrf", &csrf), ("status", "acknowledged")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let (finding, _) = posture_finding(&server).await;
    assert_eq!(finding["status"], "acknowledged");
    let suppress_without_reason = browser
        .post(
            &server,
            &format!("{path}/status"),
            &[("csrf", &csrf), ("status", "suppressed")],
        )
        .await;
    assert_eq!(suppress_without_reason.status, StatusCode::BAD_REQUEST);
    assert!(suppress_without_reason.text.contains("needs a reason"));

    let configuration = browser.get(&server, "/ui/configuration").await;
    assert!(configuration.text.contains("ui profile") && configuration.text.contains("all aws"));
    let keys = browser.get(&server, "/ui/configuration/keys").await;
    assert_eq!(keys.status, StatusCode::OK);
}

#[tokio::test]
async fn viewers_read_but_cannot_act() {
    let server = TestServer::sqlite().await;
    let seeded = seed(&server).await;
    let (_, viewer_key) = server.key_with_role("viewer").await;
    let viewer = sign_in(&server, &viewer_key).await;
    let (_, path) = posture_finding(&server).await;
    let page = viewer.get(&server, &path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.text.contains("Acknowledge"),
        "no action buttons for viewers"
    );
    assert!(page.text.contains("can read this page but not change it"));
    let csrf = csrf_of(&page.text); // the sign-out form's token: a valid token of this session
    let refused = viewer
        .post(
            &server,
            &format!("{path}/status"),
            &[("csrf", &csrf), ("status", "acknowledged")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let (finding, _) = posture_finding(&server).await;
    assert_eq!(finding["status"], "open");

    let posture = viewer.get(&server, "/ui/posture").await;
    assert!(!posture.text.contains("Scan now"));
    let scan = viewer
        .post(
            &server,
            &format!("/ui/posture/attachments/{}/scan", seeded.attachment_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(scan.status, StatusCode::FORBIDDEN);
    let keys = viewer.get(&server, "/ui/configuration/keys").await;
    assert_eq!(keys.status, StatusCode::FORBIDDEN);
    let configuration = viewer.get(&server, "/ui/configuration").await;
    assert!(!configuration.text.contains("/ui/configuration/keys"));

    // Revoking the key ends its session at once.
    let (viewer_id, viewer_key2) = server.key_with_role("viewer").await;
    let revoked = sign_in(&server, &viewer_key2).await;
    let answer = server
        .call(
            Method::DELETE,
            &format!("/instances/{}/v1/keys/{viewer_id}", server.instance_id),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert!(answer.status.is_success(), "{}", answer.text);
    assert_eq!(
        revoked.get(&server, "/ui/").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_session_never_reaches_another_instance() {
    let server = TestServer::sqlite().await;
    let seeded = seed(&server).await;
    let (_, path) = posture_finding(&server).await;
    let (_, other_admin) = server.second_instance().await;
    let other = sign_in(&server, &other_admin).await;
    let overview = other.get(&server, "/ui/").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(!overview.text.contains("Nightly AWS"));
    for page in [
        format!("/ui/posture/reports/{}", seeded.report_id),
        format!("/ui/posture/attachments/{}", seeded.attachment_id),
        format!(
            "/ui/posture/reports/{}/download?format=csv",
            seeded.report_id
        ),
        path.clone(),
    ] {
        let answer = other.get(&server, &page).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{page}: {}",
            answer.text
        );
    }
    let findings = other.get(&server, "/ui/findings").await;
    assert!(findings.text.contains("0 findings match"));
    let csrf = csrf_of(&overview.text);
    let acted = other
        .post(
            &server,
            &format!("{path}/status"),
            &[("csrf", &csrf), ("status", "resolved")],
        )
        .await;
    assert_eq!(acted.status, StatusCode::NOT_FOUND);
    let (finding, _) = posture_finding(&server).await;
    assert_eq!(finding["status"], "open");
}

/// Issue 10: pages read evaluations a page at a time, so a report with 100,000 evaluations
/// renders as fast as a small one.
#[tokio::test]
async fn report_pages_stay_fast_with_100000_evaluations_issue_10() {
    let server = TestServer::sqlite().await;
    let seeded = seed(&server).await;
    let rows: Vec<palisade_store::EvaluationRow> = (0..100_000)
        .map(|index| {
            let resource_id = format!("bulk-{index:06}");
            palisade_store::EvaluationRow {
                rule_id: seeded.rule_id.clone(),
                resource_id: resource_id.clone(),
                status: if index % 3 == 0 { "failure" } else { "pass" }.to_owned(),
                body: json!({"rule_id": seeded.rule_id, "resource_id": resource_id,
                    "status": if index % 3 == 0 { "failure" } else { "pass" },
                    "details": [{"property": "versioning.status", "operator": "string_equals", "expected_value": "Enabled", "found_value": "Suspended", "reason": "differs"}]}),
            }
        })
        .collect();
    for chunk in rows.chunks(10_000) {
        server
            .state
            .store
            .insert_evaluations(&server.instance_id, &seeded.report_id, chunk)
            .await
            .expect("insert");
    }
    let browser = sign_in(&server, &server.admin_key).await;
    for path in [
        format!("/ui/posture/reports/{}", seeded.report_id),
        format!(
            "/ui/posture/reports/{}/evaluations?status=failure",
            seeded.report_id
        ),
        format!(
            "/ui/posture/reports/{}/evaluations?rule={}&status=failure&start={}",
            seeded.report_id,
            seeded.rule_id,
            percent_encoding::utf8_percent_encode(
                &format!("{}\nbulk-050000", seeded.rule_id),
                percent_encoding::NON_ALPHANUMERIC
            )
        ),
        "/ui/".to_owned(),
    ] {
        // The first request warms the connection pool and caches; the second is measured.
        browser.get(&server, &path).await;
        let started = std::time::Instant::now();
        let answer = browser.get(&server, &path).await;
        let elapsed = started.elapsed();
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
        // Printed, not asserted: timings on a shared machine are noise for a test (the figures
        // for release builds are in BENCHMARKS.md).
        println!("{path}: {elapsed:?}");
        if path.contains("evaluations") {
            assert!(answer.text.contains("Next page"), "paged: {path}");
        }
    }
}
