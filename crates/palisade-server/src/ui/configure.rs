//! Configuration forms: create and edit scopes, profiles, attachments, rules, templates and
//! notification channels (editors and admins), and create and revoke API keys (admins).
//!
//! Each form posts to a handler that turns its fields into the API's JSON body and calls the
//! function the API route calls (`routes::v3::scopes::create`, `…::attachments::replace`,
//! `routes::notifications::create_channel`, `routes::keys::create` …): the same validation, the
//! same stored shape, the same audit fields. Mistakes come back as the API's JSON pointers and
//! are shown next to their fields ([`super::forms`]). Edits of rules and templates carry the
//! version they were read at, like the API's `If-Match`, so a concurrent change is not
//! overwritten silently.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use palisade_model::error::ErrorCode;
use palisade_model::tenancy::{Action, Role};
use palisade_store::Document;
use serde_json::{Map, Value, json};

use super::forms::{Detail, FieldMap, FormView, Problems, Values, again};
use super::layout::{self, Section};
use super::session::Session;
use super::{UiError, encode};
use crate::error::{ApiError, ApiResult};
use crate::routes::keys::CreateKeyRequest;
use crate::routes::v3::attachments::SCHEDULES;
use crate::routes::v3::scopes::{ENVIRONMENTS, SCOPE_TYPES};
use crate::routes::v3::{ATTACHMENT, CONTROL_LIBRARY, PROFILE, RULE, SCOPE};
use crate::service::documents;
use crate::service::governance::TEMPLATE;
use crate::service::notifications::{CHANNEL_TYPES, ChannelRequest};
use crate::state::AppState;

/// A submitted form, as decoded name–value pairs (names may repeat).
type Submitted = Form<Vec<(String, String)>>;

fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(value, label)| ((*value).to_owned(), (*label).to_owned()))
        .collect()
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// After a successful change: back to the configuration page, at the changed section, with a
/// notice.
fn done(message: &str, section: &str) -> Response {
    let location = format!("/ui/configuration?done={}#{section}", encode(message));
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// Checks role and CSRF token of a posted form and returns its values.
fn accept(session: &Session, action: Action, Form(pairs): Submitted) -> Result<Values, UiError> {
    session.require(action)?;
    let values = Values::new(pairs);
    session.check_csrf(values.get("csrf"))?;
    Ok(values)
}

/// The frame of every form page: breadcrumb, title, problem summary, the form with its CSRF
/// token, and the buttons.
struct FormPage<'a> {
    session: &'a Session,
    title: &'a str,
    action: &'a str,
    submit: &'a str,
    labels: &'a [(&'a str, &'a str)],
}

impl FormPage<'_> {
    fn render(&self, view: &FormView<'_>, intro: Markup, fields: Markup) -> Markup {
        let body = html! {
            p { a href="/ui/configuration" { "Configuration" } " › " (self.title) }
            h1 { (self.title) }
            (view.summary(self.labels))
            (intro)
            form.stack.config method="post" action=(self.action) {
                input type="hidden" name="csrf" value=(self.session.csrf());
                (fields)
                p.hint { span.required aria-hidden="true" { "*" } " required" }
                div.actions {
                    button type="submit" { (self.submit) }
                    " "
                    a href="/ui/configuration" { "Cancel" }
                }
            }
        };
        layout::page(self.title, self.session, Section::Configuration, body)
    }
}

/// Shows the outcome of a form: `ok` on success, the form again with the API's problems placed
/// on its fields, or an error page for errors that are not about the input.
fn outcome<T>(
    result: ApiResult<T>,
    map: &FieldMap,
    ok: impl FnOnce(T) -> Response,
    page: impl FnOnce(&Problems) -> Markup,
) -> Result<Response, UiError> {
    match result {
        Ok(value) => Ok(ok(value)),
        Err(error) => {
            let problems = Problems::from_error(error, map)?;
            Ok(again(&problems, page(&problems)))
        }
    }
}

/// Sends a converted form (its body, and the problems converting it found) to its service
/// function, unless there were problems, and shows the outcome as [`outcome`] does.
async fn submit<T, F: Future<Output = ApiResult<T>>>(
    (body, problems): (Value, Problems),
    call: impl FnOnce(Value) -> F,
    map: &FieldMap,
    ok: impl FnOnce(T) -> Response,
    page: impl FnOnce(&Problems) -> Markup,
) -> Result<Response, UiError> {
    if !problems.is_empty() {
        return Ok(again(&problems, page(&problems)));
    }
    outcome(call(body).await, map, ok, page)
}

/// The version a form was read at (hidden field `revision`), checked like `If-Match`.
fn expect_revision(values: &Values, what: &'static str) -> impl FnOnce(i64) -> ApiResult<i64> {
    let revision = values.get("revision").parse::<i64>().ok();
    move |current| match revision {
        Some(revision) if revision == current => Ok(current),
        _ => Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            format!(
                "the {what} changed since this form was opened; open it again to see the new version"
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes

const SCOPE_FIELDS: &FieldMap = &[
    ("/name", "name", Detail::Plain),
    ("/description", "description", Detail::Plain),
    ("/environment", "environment", Detail::Plain),
    ("/properties", "scope_type", Detail::Plain),
];
const SCOPE_LABELS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("description", "Description"),
    ("environment", "Environment"),
    ("scope_type", "Covers"),
    ("scope_id", "Account or resource group id"),
    ("regions", "Regions"),
];

fn scope_page(
    session: &Session,
    editing: Option<&Document>,
    values: &Values,
    problems: &Problems,
) -> Markup {
    let view = FormView { values, problems };
    let (title, action) = match editing {
        Some(scope) => (
            format!("Edit scope {}", text(&scope.body, "name")),
            format!("/ui/configuration/scopes/{}", encode(&scope.id)),
        ),
        None => (
            "New scope".to_owned(),
            "/ui/configuration/scopes".to_owned(),
        ),
    };
    let mut covers = vec![(
        String::new(),
        "Every resource of the environment".to_owned(),
    )];
    covers.extend(
        SCOPE_TYPES
            .iter()
            .map(|kind| ((*kind).to_owned(), kind.replace('.', " › "))),
    );
    let fields = html! {
        (view.input("name", "Name", "text", None, true))
        (view.textarea("description", "Description", 2, None, false))
        @match editing {
            None => {
                fieldset {
                    legend { "What the scope covers" }
                    (view.select("environment", "Environment", &ENVIRONMENTS.iter().map(|name| ((*name).to_owned(), (*name).to_owned())).collect::<Vec<_>>(), None))
                    (view.select("scope_type", "Covers", &covers, Some("An account or resource group also needs its id below.")))
                    (view.input("scope_id", "Account or resource group id", "text", None, false))
                    (view.input("regions", "Regions", "text", Some("Optional, comma-separated (eu-west-1, us-east-1); empty: every region."), false))
                }
            },
            Some(scope) => {
                dl.facts {
                    dt { "Environment" } dd { (text(&scope.body, "environment")) }
                    dt { "Properties" } dd {
                        @for property in scope.body["properties"].as_array().into_iter().flatten() {
                            code { (text(property, "name")) "=" (property["value"].to_string()) } " "
                        }
                    }
                }
                p.hint { "What a scope covers cannot change (reports refer to it); create another scope instead." }
            },
        }
    };
    FormPage {
        session,
        title: &title,
        action: &action,
        submit: if editing.is_some() {
            "Save scope"
        } else {
            "Create scope"
        },
        labels: SCOPE_LABELS,
    }
    .render(&view, html! {}, fields)
}

fn scope_body(values: &Values) -> Value {
    let mut properties = Vec::new();
    if !values.get("scope_type").is_empty() {
        properties.push(json!({"name": "scope_type", "value": values.get("scope_type")}));
    }
    if !values.get("scope_id").is_empty() {
        properties.push(json!({"name": "scope_id", "value": values.get("scope_id")}));
    }
    let regions = values.list("regions");
    if !regions.is_empty() {
        properties.push(json!({"name": "regions", "value": regions}));
    }
    json!({
        "name": values.get("name"),
        "description": values.get("description"),
        "environment": values.get("environment"),
        "properties": properties,
    })
}

/// `GET /ui/configuration/scopes/new`.
pub async fn new_scope(session: Session) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let mut values = Values::default();
    values.set("environment", "aws");
    Ok(scope_page(&session, None, &values, &Problems::default()))
}

/// `POST /ui/configuration/scopes`.
pub async fn create_scope(
    State(state): State<AppState>,
    session: Session,
    form: Submitted,
) -> Result<Response, UiError> {
    let values = accept(&session, Action::WriteConfig, form)?;
    let result = crate::routes::v3::scopes::create(&state, &session.key, scope_body(&values)).await;
    outcome(
        result,
        SCOPE_FIELDS,
        |_| done("Scope created.", "scopes"),
        |problems| scope_page(&session, None, &values, problems),
    )
}

/// `GET /ui/configuration/scopes/{id}`.
pub async fn edit_scope(
    State(state): State<AppState>,
    session: Session,
    Path(scope_id): Path<String>,
) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let scope = documents::get(&state, session.instance_id(), SCOPE, &scope_id).await?;
    let mut values = Values::default();
    values.set("name", text(&scope.body, "name"));
    values.set("description", text(&scope.body, "description"));
    Ok(scope_page(
        &session,
        Some(&scope),
        &values,
        &Problems::default(),
    ))
}

/// `POST /ui/configuration/scopes/{id}`.
pub async fn update_scope(
    State(state): State<AppState>,
    session: Session,
    Path(scope_id): Path<String>,
    form: Submitted,
) -> Result<Response, UiError> {
    let values = accept(&session, Action::WriteConfig, form)?;
    let scope = documents::get(&state, session.instance_id(), SCOPE, &scope_id).await?;
    let body = json!({"name": values.get("name"), "description": values.get("description")});
    let result = crate::routes::v3::scopes::update(&state, &session.key, &scope_id, body).await;
    outcome(
        result,
        SCOPE_FIELDS,
        |_| done("Scope saved.", "scopes"),
        |problems| scope_page(&session, Some(&scope), &values, problems),
    )
}

// ---------------------------------------------------------------------------------------------
// Profiles

const PROFILE_FIELDS: &FieldMap = &[
    ("/profile_name", "profile_name", Detail::Plain),
    ("/profile_version", "profile_version", Detail::Plain),
    ("/profile_description", "profile_description", Detail::Plain),
    ("/controls", "controls", Detail::Plain),
];
const PROFILE_LABELS: &[(&str, &str)] = &[
    ("profile_name", "Name"),
    ("profile_version", "Version"),
    ("profile_description", "Description"),
    ("controls", "Controls"),
];

/// The value of a control's checkbox: its library id and control id, separated by a space
/// (neither contains one).
fn control_value(library_id: &str, control_id: &str) -> String {
    format!("{library_id} {control_id}")
}

async fn profile_page(
    state: &AppState,
    session: &Session,
    editing: Option<&Document>,
    values: &Values,
    problems: &Problems,
) -> Result<Markup, UiError> {
    let libraries = documents::all(state, session.instance_id(), CONTROL_LIBRARY).await?;
    let view = FormView { values, problems };
    let (title, action) = match editing {
        Some(profile) => (
            format!("Edit profile {}", text(&profile.body, "profile_name")),
            format!("/ui/configuration/profiles/{}", encode(&profile.id)),
        ),
        None => (
            "New profile".to_owned(),
            "/ui/configuration/profiles".to_owned(),
        ),
    };
    let control_problems = problems.of("controls");
    let fields = html! {
        (view.input("profile_name", "Name", "text", None, true))
        (view.input("profile_version", "Version", "text", Some("For example 1.0.0."), true))
        (view.textarea("profile_description", "Description", 2, None, false))
        fieldset.field id="controls" aria-invalid=[(!control_problems.is_empty()).then_some("true")]
            aria-describedby=(if control_problems.is_empty() { "controls-hint" } else { "controls-hint controls-error" }) {
            legend { "Controls" }
            span.hint id="controls-hint" { "The controls the profile checks, from the instance's control libraries. Open a library to choose among its controls." }
            @if !control_problems.is_empty() {
                span.field-error id="controls-error" {
                    @for (index, problem) in control_problems.iter().enumerate() {
                        @if index > 0 { br; }
                        (problem)
                    }
                }
            }
            @for library in &libraries {
                @let controls = library.body["controls"].as_array().map_or(&[][..], Vec::as_slice);
                @let chosen = controls.iter().filter(|control| values.has("control", &control_value(&library.id, text(control, "control_id")))).count();
                details open[chosen > 0] {
                    summary {
                        (text(&library.body, "control_library_name")) " " (text(&library.body, "control_library_version"))
                        " (" (chosen) " of " (controls.len()) " chosen)"
                    }
                    div.choices {
                        @for control in controls {
                            @let value = control_value(&library.id, text(control, "control_id"));
                            @let id = format!("control-{}-{}", library.id, text(control, "control_id"));
                            div.check {
                                input type="checkbox" id=(id) name="control" value=(value) checked[values.has("control", &value)];
                                label for=(id) {
                                    strong { (text(control, "control_name")) } " "
                                    span.hint { (text(control, "control_description")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(FormPage {
        session,
        title: &title,
        action: &action,
        submit: if editing.is_some() {
            "Save profile"
        } else {
            "Create profile"
        },
        labels: PROFILE_LABELS,
    }
    .render(&view, html! {}, fields))
}

fn profile_controls(values: &Values) -> Vec<Value> {
    values
        .all("control")
        .into_iter()
        .filter_map(|value| value.split_once(' '))
        .map(|(library_id, control_id)| {
            json!({"control_library_id": library_id, "control_id": control_id})
        })
        .collect()
}

/// `GET /ui/configuration/profiles/new`.
pub async fn new_profile(
    State(state): State<AppState>,
    session: Session,
) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let mut values = Values::default();
    values.set("profile_version", "1.0.0");
    profile_page(&state, &session, None, &values, &Problems::default()).await
}

/// `POST /ui/configuration/profiles`.
pub async fn create_profile(
    State(state): State<AppState>,
    session: Session,
    form: Submitted,
) -> Result<Response, UiError> {
    let values = accept(&session, Action::WriteConfig, form)?;
    let body = json!({
        "profile_name": values.get("profile_name"),
        "profile_version": values.get("profile_version"),
        "profile_description": values.get("profile_description"),
        "controls": profile_controls(&values),
        "default_parameters": [],
    });
    match crate::routes::v3::profiles::create(&state, &session.key, None, body).await {
        Ok(_) => Ok(done("Profile created.", "profiles")),
        Err(error) => {
            let problems = Problems::from_error(error, PROFILE_FIELDS)?;
            let page = profile_page(&state, &session, None, &values, &problems).await?;
            Ok(again(&problems, page))
        }
    }
}

async fn custom_profile(state: &AppState, session: &Session, id: &str) -> ApiResult<Document> {
    let profile = documents::get(state, session.instance_id(), PROFILE, id).await?;
    if profile.body["profile_type"] == "predefined" {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a predefined profile cannot be changed; create a custom profile with its controls",
        ));
    }
    Ok(profile)
}

/// `GET /ui/configuration/profiles/{id}`.
pub async fn edit_profile(
    State(state): State<AppState>,
    session: Session,
    Path(profile_id): Path<String>,
) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let profile = custom_profile(&state, &session, &profile_id).await?;
    let mut values = Values::default();
    for field in ["profile_name", "profile_version", "profile_description"] {
        values.set(field, text(&profile.body, field));
    }
    for control in profile.body["controls"].as_array().into_iter().flatten() {
        values.push(
            "control",
            control_value(
                text(control, "control_library_id"),
                text(control, "control_id"),
            ),
        );
    }
    profile_page(
        &state,
        &session,
        Some(&profile),
        &values,
        &Problems::default(),
    )
    .await
}

/// `POST /ui/configuration/profiles/{id}`.
pub async fn update_profile(
    State(state): State<AppState>,
    session: Session,
    Path(profile_id): Path<String>,
    form: Submitted,
) -> Result<Response, UiError> {
    let values = accept(&session, Action::WriteConfig, form)?;
    let profile = custom_profile(&state, &session, &profile_id).await?;
    let body = json!({
        "profile_name": values.get("profile_name"),
        "profile_version": values.get("profile_version"),
        "profile_description": values.get("profile_description"),
        "controls": profile_controls(&values),
        "default_parameters": profile.body["default_parameters"].as_array().cloned().unwrap_or_default(),
    });
    match crate::routes::v3::profiles::replace(&state, &session.key, &profile_id, body).await {
        Ok(_) => Ok(done("Profile saved.", "profiles")),
        Err(error) => {
            let problems = Problems::from_error(error, PROFILE_FIELDS)?;
            let page = profile_page(&state, &session, Some(&profile), &values, &problems).await?;
            Ok(again(&problems, page))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Attachments

const ATTACHMENT_FIELDS: &FieldMap = &[
    ("/attachments/0/name", "name", Detail::Plain),
    ("/attachments/0/description", "description", Detail::Plain),
    ("/attachments/0/scope", "scope", Detail::Plain),
    ("/attachments/0/schedule", "schedule", Detail::Plain),
    ("/attachments/0/status", "status", Detail::Plain),
    (
        "/attachments/0/notifications",
        "threshold_limit",
        Detail::Plain,
    ),
    ("/name", "name", Detail::Plain),
    ("/description", "description", Detail::Plain),
    ("/scope", "scope", Detail::Plain),
    ("/schedule", "schedule", Detail::Plain),
    ("/status", "status", Detail::Plain),
    ("/notifications", "threshold_limit", Detail::Plain),
];
const ATTACHMENT_LABELS: &[(&str, &str)] = &[
    ("profile_id", "Profile"),
    ("name", "Name"),
    ("description", "Description"),
    ("scope", "Scopes"),
    ("schedule", "Schedule"),
    ("status", "Status"),
    ("threshold_limit", "Failing controls allowed"),
];

async fn attachment_page(
    state: &AppState,
    session: &Session,
    editing: Option<&Document>,
    values: &Values,
    problems: &Problems,
) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let scopes = documents::all(state, instance_id, SCOPE).await?;
    let profiles = documents::all(state, instance_id, PROFILE).await?;
    let view = FormView { values, problems };
    let (title, action) = match editing {
        Some(attachment) => (
            format!("Edit attachment {}", text(&attachment.body, "name")),
            format!("/ui/configuration/attachments/{}", encode(&attachment.id)),
        ),
        None => (
            "New attachment".to_owned(),
            "/ui/configuration/attachments".to_owned(),
        ),
    };
    let profile_options: Vec<(String, String)> = profiles
        .iter()
        .map(|profile| {
            (
                profile.id.clone(),
                format!(
                    "{} {}",
                    text(&profile.body, "profile_name"),
                    text(&profile.body, "profile_version")
                ),
            )
        })
        .collect();
    let scope_options: Vec<(String, String)> = scopes
        .iter()
        .map(|scope| {
            (
                scope.id.clone(),
                format!(
                    "{} ({})",
                    text(&scope.body, "name"),
                    text(&scope.body, "environment")
                ),
            )
        })
        .collect();
    let schedules: Vec<(String, String)> = SCHEDULES
        .iter()
        .map(|schedule| ((*schedule).to_owned(), schedule.replace('_', " ")))
        .collect();
    let intro = html! {
        @if scopes.is_empty() {
            p.flash.error { "There is no scope yet: " a href="/ui/configuration/scopes/new" { "create a scope" } " first." }
        }
    };
    let fields = html! {
        @match editing {
            None => (view.select("profile_id", "Profile", &profile_options, Some("The controls to check."))),
            Some(attachment) => {
                dl.facts { dt { "Profile" } dd {
                    (profile_options.iter().find(|(id, _)| id == text(&attachment.body, "profile_id")).map_or(text(&attachment.body, "profile_id"), |(_, name)| name.as_str()))
                } }
            },
        }
        (view.input("name", "Name", "text", None, true))
        (view.textarea("description", "Description", 2, None, false))
        (view.checkboxes("scope", "Scopes", &scope_options, Some("The resources to check: up to 8 scopes.")))
        (view.select("schedule", "Schedule", &schedules, None))
        (view.select("status", "Status", &options(&[("enabled", "enabled: scanned on schedule"), ("disabled", "disabled: scanned only on demand")]), None))
        fieldset {
            legend { "Notifications" }
            (view.checkbox("notify", "Raise a finding when a scan fails too many controls", None))
            (view.input("threshold_limit", "Failing controls allowed", "number", Some("A scan failing more controls than this raises a posture finding."), false))
        }
    };
    Ok(FormPage {
        session,
        title: &title,
        action: &action,
        submit: if editing.is_some() {
            "Save attachment"
        } else {
            "Create attachment"
        },
        labels: ATTACHMENT_LABELS,
    }
    .render(&view, intro, fields))
}

/// The attachment's fields from the form over `base` (the stored attachment being edited, or
/// an empty one); a field that does not convert is recorded in `problems`.
fn attachment_fields(values: &Values, base: &Value, problems: &mut Problems) -> Map<String, Value> {
    let mut attachment = base.as_object().cloned().unwrap_or_default();
    for field in ["name", "description", "schedule", "status"] {
        attachment.insert(field.into(), json!(values.get(field)));
    }
    let scopes: Vec<Value> = values
        .all("scope")
        .into_iter()
        .map(|id| json!({"id": id}))
        .collect();
    attachment.insert("scope".into(), Value::Array(scopes));
    let threshold = match values.get("threshold_limit") {
        "" => 15,
        typed => typed.parse::<u64>().unwrap_or_else(|_| {
            problems.add(Some("threshold_limit"), "must be a whole number, 0 or more");
            0
        }),
    };
    let failed_control_ids = base["notifications"]["controls"]["failed_control_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    attachment.insert(
        "notifications".into(),
        json!({
            "enabled": values.checked("notify"),
            "controls": {"threshold_limit": threshold, "failed_control_ids": failed_control_ids},
        }),
    );
    attachment
        .entry("attachment_parameters")
        .or_insert_with(|| json!([]));
    attachment
}

/// A profile's default parameters as an attachment's parameters (the values to scan with).
fn parameters_of(profile: &Value) -> Vec<Value> {
    profile["default_parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|parameter| {
            let mut item = Map::new();
            for (from, to) in [
                ("assessment_type", "assessment_type"),
                ("assessment_id", "assessment_id"),
                ("parameter_name", "parameter_name"),
                ("parameter_display_name", "parameter_display_name"),
                ("parameter_type", "parameter_type"),
                ("parameter_default_value", "parameter_value"),
            ] {
                if let Some(value) = parameter.get(from).filter(|value| !value.is_null()) {
                    item.insert(to.into(), value.clone());
                }
            }
            Value::Object(item)
        })
        .collect()
}

/// `GET /ui/configuration/attachments/new`.
pub async fn new_attachment(
    State(state): State<AppState>,
    session: Session,
) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let mut values = Values::default();
    values.set("schedule", "daily");
    values.set("status", "enabled");
    values.set("threshold_limit", "15");
    attachment_page(&state, &session, None, &values, &Problems::default()).await
}

/// `POST /ui/configuration/attachments`.
pub async fn create_attachment(
    State(state): State<AppState>,
    session: Session,
    form: Submitted,
) -> Result<Response, UiError> {
    let values = accept(&session, Action::WriteConfig, form)?;
    let mut problems = Problems::default();
    let profile_id = values.get("profile_id");
    let profile = match documents::get(&state, session.instance_id(), PROFILE, profile_id).await {
        Ok(profile) => Some(profile),
        Err(error) if error.code() == ErrorCode::NotFound => {
            problems.add(Some("profile_id"), "choose one of the instance's profiles");
            None
        }
        Err(error) => return Err(error.into()),
    };
    let mut attachment = attachment_fields(&values, &json!({}), &mut problems);
    if let Some(profile) = &profile {
        attachment.insert(
            "attachment_parameters".into(),
            Value::Array(parameters_of(&profile.body)),
        );
    }
    if !problems.is_empty() {
        let page = attachment_page(&state, &session, None, &values, &problems).await?;
        return Ok(again(&problems, page));
    }
    let body = json!({"attachments": [attachment]});
    match crate::routes::v3::attachments::create(&state, &session.key, profile_id, None, body).await
    {
        Ok(_) => Ok(done("Attachment created.", "attachments")),
        Err(error) => {
            let problems = Problems::from_error(error, ATTACHMENT_FIELDS)?;
            let page = attachment_page(&state, &session, None, &values, &problems).await?;
            Ok(again(&problems, page))
        }
    }
}

/// `GET /ui/configuration/attachments/{id}`.
pub async fn edit_attachment(
    State(state): State<AppState>,
    session: Session,
    Path(attachment_id): Path<String>,
) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let attachment =
        documents::get(&state, session.instance_id(), ATTACHMENT, &attachment_id).await?;
    let body = &attachment.body;
    let mut values = Values::default();
    for field in ["name", "description", "schedule", "status"] {
        values.set(field, text(body, field));
    }
    for scope in body["scope"].as_array().into_iter().flatten() {
        values.push("scope", text(scope, "id"));
    }
    if body["notifications"]["enabled"] == true {
        values.set("notify", "on");
    }
    values.set(
        "threshold_limit",
        body["notifications"]["controls"]["threshold_limit"].to_string(),
    );
    attachment_page(
        &state,
        &session,
        Some(&attachment),
        &values,
        &Problems::default(),
    )
    .await
}

/// `POST /ui/configuration/attachments/{id}`.
pub async fn update_attachment(
    State(state): State<AppState>,
    session: Session,
    Path(attachment_id): Path<String>,
    form: Submitted,
) -> Result<Response, UiError> {
    let values = accept(&session, Action::WriteConfig, form)?;
    let stored = documents::get(&state, session.instance_id(), ATTACHMENT, &attachment_id).await?;
    let mut problems = Problems::default();
    let attachment = attachment_fields(&values, &stored.body, &mut problems);
    if !problems.is_empty() {
        let page = attachment_page(&state, &session, Some(&stored), &values, &problems).await?;
        return Ok(again(&problems, page));
    }
    let result = crate::routes::v3::attachments::replace(
        &state,
        &session.key,
        text(&stored.body, "profile_id"),
        &attachment_id,
        Value::Object(attachment),
    )
    .await;
    match result {
        Ok(_) => Ok(done("Attachment saved.", "attachments")),
        Err(error) => {
            let problems = Problems::from_error(error, ATTACHMENT_FIELDS)?;
            let page = attachment_page(&state, &session, Some(&stored), &values, &problems).await?;
            Ok(again(&problems, page))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rules

const RULE_FIELDS: &FieldMap = &[
    ("/description", "description", Detail::Plain),
    ("/version", "version", Detail::Plain),
    ("/target/service_name", "service_name", Detail::Plain),
    ("/target/resource_kind", "resource_kind", Detail::Plain),
    (
        "/target/additional_target_attributes",
        "target_attributes",
        Detail::Line,
    ),
    ("/target", "service_name", Detail::Pointer),
    ("/required_config", "required_config", Detail::Pointer),
    ("/labels", "labels", Detail::Plain),
];
const RULE_LABELS: &[(&str, &str)] = &[
    ("description", "Description"),
    ("version", "Version"),
    ("service_name", "Service"),
    ("resource_kind", "Resource kind"),
    ("target_attributes", "Target attributes"),
    ("required_config", "Required configuration"),
    ("labels", "Labels"),
];

fn rule_page(
    session: &Session,
    editing: Option<&Document>,
    values: &Values,
    problems: &Problems,
) -> Markup {
    let view = FormView { values, problems };
    let (title, action) = match editing {
        Some(rule) => (
            format!("Edit rule {}", rule.id),
            format!("/ui/configuration/rules/{}", encode(&rule.id)),
        ),
        None => ("New rule".to_owned(), "/ui/configuration/rules".to_owned()),
    };
    let fields = html! {
        @if editing.is_some() {
            input type="hidden" name="revision" value=(values.get("revision"));
        }
        (view.input("description", "Description", "text", Some("What the rule checks, in a sentence."), true))
        (view.input("version", "Version", "text", None, false))
        fieldset {
            legend { "Target: the resources the rule checks" }
            (view.input("service_name", "Service", "text", Some("As in the inventory: s3, ec2, cloud-object-storage …"), true))
            (view.input("resource_kind", "Resource kind", "text", Some("bucket, instance …"), true))
            (view.textarea("target_attributes", "Target attributes", 2, Some("Optional, one per line: name operator value (for example: region string_equals eu-west-1)."), false))
        }
        (view.textarea("required_config", "Required configuration", 8, Some("JSON, as in the API: {\"property\": …, \"operator\": …, \"value\": …}, or {\"and\": [...]} / {\"or\": [...]}."), true))
        (view.input("labels", "Labels", "text", Some("Optional, comma-separated."), false))
    };
    FormPage {
        session,
        title: &title,
        action: &action,
        submit: if editing.is_some() {
            "Save rule"
        } else {
            "Create rule"
        },
        labels: RULE_LABELS,
    }
    .render(&view, html! {}, fields)
}

/// The lines of a one-item-per-line field (tidied by [`Values::tidy_lines`]), with their index.
fn lines(values: &Values, name: &str) -> Vec<(usize, String)> {
    values
        .raw(name)
        .lines()
        .map(str::to_owned)
        .enumerate()
        .collect()
}

/// The rule's JSON body from the form, and the fields that do not convert.
fn rule_body(values: &Values) -> (Value, Problems) {
    let mut problems = Problems::default();
    let mut attributes = Vec::new();
    for (index, line) in lines(values, "target_attributes") {
        let words: Vec<&str> = line.splitn(3, char::is_whitespace).collect();
        match words.as_slice() {
            [name, value] => attributes.push(json!({"name": name, "value": value.trim()})),
            [name, operator, value] => {
                attributes.push(json!({"name": name, "operator": operator, "value": value.trim()}))
            }
            _ => problems.add(
                Some("target_attributes"),
                format!("line {}: write `name operator value`", index + 1),
            ),
        }
    }
    let required_config = match serde_json::from_str::<Value>(values.raw("required_config")) {
        Ok(value) => value,
        Err(error) => {
            problems.add(
                Some("required_config"),
                format!(
                    "is not JSON (line {}, column {}: {error})",
                    error.line(),
                    error.column()
                ),
            );
            Value::Null
        }
    };
    let mut target = json!({
        "service_name": values.get("service_name"),
        "resource_kind": values.get("resource_kind"),
    });
    if !attributes.is_empty() {
        target["additional_target_attributes"] = Value::Array(attributes);
    }
    let mut rule = json!({
        "description": values.get("description"),
        "target": target,
        "required_config": required_config,
        "labels": values.list("labels"),
    });
    if !values.get("version").is_empty() {
        rule["version"] = json!(values.get("version"));
    }
    (rule, problems)
}

/// `GET /ui/configuration/rules/new`.
pub async fn new_rule(session: Session) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let mut values = Values::default();
    values.set("version", "1.0.0");
    values.set(
        "required_config",
        "{\n  \"property\": \"\",\n  \"operator\": \"is_true\"\n}",
    );
    Ok(rule_page(&session, None, &values, &Problems::default()))
}

/// `POST /ui/configuration/rules`.
pub async fn create_rule(
    State(state): State<AppState>,
    session: Session,
    form: Submitted,
) -> Result<Response, UiError> {
    let mut values = accept(&session, Action::WriteConfig, form)?;
    values.tidy_lines("target_attributes");
    submit(
        rule_body(&values),
        |body| crate::routes::v3::rules::create(&state, &session.key, body),
        RULE_FIELDS,
        |_| done("Rule created.", "rules"),
        |problems| rule_page(&session, None, &values, problems),
    )
    .await
}

/// `GET /ui/configuration/rules/{id}`.
pub async fn edit_rule(
    State(state): State<AppState>,
    session: Session,
    Path(rule_id): Path<String>,
) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let rule = documents::get(&state, session.instance_id(), RULE, &rule_id).await?;
    let body = &rule.body;
    let mut values = Values::default();
    values.set("revision", rule.version.to_string());
    for field in ["description", "version"] {
        values.set(field, text(body, field));
    }
    values.set("service_name", text(&body["target"], "service_name"));
    values.set("resource_kind", text(&body["target"], "resource_kind"));
    let attributes: Vec<String> = body["target"]["additional_target_attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|attribute| {
            let value = match &attribute["value"] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            match attribute["operator"].as_str() {
                Some(operator) => format!("{} {operator} {value}", text(attribute, "name")),
                None => format!("{} {value}", text(attribute, "name")),
            }
        })
        .collect();
    values.set("target_attributes", attributes.join("\n"));
    values.set(
        "required_config",
        serde_json::to_string_pretty(&body["required_config"]).unwrap_or_default(),
    );
    let labels: Vec<&str> = body["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    values.set("labels", labels.join(", "));
    Ok(rule_page(
        &session,
        Some(&rule),
        &values,
        &Problems::default(),
    ))
}

/// `POST /ui/configuration/rules/{id}`.
pub async fn update_rule(
    State(state): State<AppState>,
    session: Session,
    Path(rule_id): Path<String>,
    form: Submitted,
) -> Result<Response, UiError> {
    let mut values = accept(&session, Action::WriteConfig, form)?;
    values.tidy_lines("target_attributes");
    let rule = documents::get(&state, session.instance_id(), RULE, &rule_id).await?;
    let expected = expect_revision(&values, "rule");
    submit(
        rule_body(&values),
        |body| crate::routes::v3::rules::replace(&state, &session.key, &rule_id, expected, body),
        RULE_FIELDS,
        |_| done("Rule saved.", "rules"),
        |problems| rule_page(&session, Some(&rule), &values, problems),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Templates (configuration governance)

const TEMPLATE_FIELDS: &FieldMap = &[
    ("/template/name", "name", Detail::Plain),
    ("/template/description", "description", Detail::Plain),
    (
        "/template/target/service_name",
        "service_name",
        Detail::Plain,
    ),
    (
        "/template/target/resource_kind",
        "resource_kind",
        Detail::Plain,
    ),
    ("/template/target", "service_name", Detail::Pointer),
    ("/template/customized_defaults", "defaults", Detail::Line),
    ("/name", "name", Detail::Plain),
    ("/description", "description", Detail::Plain),
    ("/target/service_name", "service_name", Detail::Plain),
    ("/target/resource_kind", "resource_kind", Detail::Plain),
    ("/target", "service_name", Detail::Pointer),
    ("/customized_defaults", "defaults", Detail::Line),
];
const TEMPLATE_LABELS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("description", "Description"),
    ("service_name", "Service"),
    ("resource_kind", "Resource kind"),
    ("defaults", "Defaults"),
];

fn template_page(
    session: &Session,
    editing: Option<&Document>,
    values: &Values,
    problems: &Problems,
) -> Markup {
    let view = FormView { values, problems };
    let (title, action) = match editing {
        Some(template) => (
            format!("Edit template {}", text(&template.body, "name")),
            format!("/ui/configuration/templates/{}", encode(&template.id)),
        ),
        None => (
            "New template".to_owned(),
            "/ui/configuration/templates".to_owned(),
        ),
    };
    let intro = html! {
        p.hint { "A template fills in properties a provisioning request leaves unset, for the scopes it is attached to (attach templates with the configuration governance API)." }
    };
    let fields = html! {
        @if editing.is_some() {
            input type="hidden" name="revision" value=(values.get("revision"));
        }
        (view.input("name", "Name", "text", None, true))
        (view.textarea("description", "Description", 2, None, false))
        fieldset {
            legend { "Target: the resources it fills in" }
            (view.input("service_name", "Service", "text", None, true))
            (view.input("resource_kind", "Resource kind", "text", None, true))
        }
        (view.textarea("defaults", "Defaults", 5, Some("One per line: property = value. A value that reads as JSON (true, 30, [\"a\"]) is taken as such, anything else as text."), true))
    };
    FormPage {
        session,
        title: &title,
        action: &action,
        submit: if editing.is_some() {
            "Save template"
        } else {
            "Create template"
        },
        labels: TEMPLATE_LABELS,
    }
    .render(&view, intro, fields)
}

/// The template's JSON body from the form, and the fields that do not convert.
fn template_body(values: &Values) -> (Value, Problems) {
    let mut problems = Problems::default();
    let mut defaults = Vec::new();
    for (index, line) in lines(values, "defaults") {
        match line.split_once('=') {
            Some((property, value)) => {
                let value = value.trim();
                let value = serde_json::from_str::<Value>(value).unwrap_or_else(|_| json!(value));
                defaults.push(json!({"property": property.trim(), "value": value}));
            }
            None => problems.add(
                Some("defaults"),
                format!("line {}: write `property = value`", index + 1),
            ),
        }
    }
    let template = json!({
        "name": values.get("name"),
        "description": values.get("description"),
        "target": {"service_name": values.get("service_name"), "resource_kind": values.get("resource_kind")},
        "customized_defaults": defaults,
    });
    (template, problems)
}

/// `GET /ui/configuration/templates/new`.
pub async fn new_template(session: Session) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    Ok(template_page(
        &session,
        None,
        &Values::default(),
        &Problems::default(),
    ))
}

/// `POST /ui/configuration/templates`.
pub async fn create_template(
    State(state): State<AppState>,
    session: Session,
    form: Submitted,
) -> Result<Response, UiError> {
    let mut values = accept(&session, Action::WriteConfig, form)?;
    values.tidy_lines("defaults");
    submit(
        template_body(&values),
        |body| crate::routes::config_v1::templates::create_template(&state, &session.key, body),
        TEMPLATE_FIELDS,
        |_| done("Template created.", "templates"),
        |problems| template_page(&session, None, &values, problems),
    )
    .await
}

/// `GET /ui/configuration/templates/{id}`.
pub async fn edit_template(
    State(state): State<AppState>,
    session: Session,
    Path(template_id): Path<String>,
) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let template = documents::get(&state, session.instance_id(), TEMPLATE, &template_id).await?;
    let body = &template.body;
    let mut values = Values::default();
    values.set("revision", template.version.to_string());
    values.set("name", text(body, "name"));
    values.set("description", text(body, "description"));
    values.set("service_name", text(&body["target"], "service_name"));
    values.set("resource_kind", text(&body["target"], "resource_kind"));
    let defaults: Vec<String> = body["customized_defaults"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|default| {
            let value = match &default["value"] {
                // Text that would read as JSON keeps its quotes, so it stays text.
                Value::String(text) if serde_json::from_str::<Value>(text).is_err() => text.clone(),
                other => other.to_string(),
            };
            format!("{} = {value}", text(default, "property"))
        })
        .collect();
    values.set("defaults", defaults.join("\n"));
    Ok(template_page(
        &session,
        Some(&template),
        &values,
        &Problems::default(),
    ))
}

/// `POST /ui/configuration/templates/{id}`.
pub async fn update_template(
    State(state): State<AppState>,
    session: Session,
    Path(template_id): Path<String>,
    form: Submitted,
) -> Result<Response, UiError> {
    let mut values = accept(&session, Action::WriteConfig, form)?;
    values.tidy_lines("defaults");
    let template = documents::get(&state, session.instance_id(), TEMPLATE, &template_id).await?;
    let expected = expect_revision(&values, "template");
    submit(
        template_body(&values),
        |body| {
            crate::routes::config_v1::templates::replace_template(
                &state,
                &session.key,
                &template_id,
                expected,
                body,
            )
        },
        TEMPLATE_FIELDS,
        |_| done("Template saved.", "templates"),
        |problems| template_page(&session, Some(&template), &values, problems),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Notification channels

const CHANNEL_FIELDS: &FieldMap = &[
    ("/name", "name", Detail::Plain),
    ("/type", "type", Detail::Plain),
    ("/endpoint", "endpoint", Detail::Plain),
    ("/description", "description", Detail::Plain),
    ("/severity", "severity", Detail::Plain),
];
const CHANNEL_LABELS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("type", "Type"),
    ("endpoint", "Endpoint"),
    ("description", "Description"),
    ("severity", "Severities"),
];
const SEVERITY_OPTIONS: &[(&str, &str)] = &[
    ("critical", "Critical"),
    ("high", "High"),
    ("medium", "Medium"),
    ("low", "Low"),
];

fn channel_page(
    session: &Session,
    editing: Option<&crate::service::notifications::Channel>,
    values: &Values,
    problems: &Problems,
) -> Markup {
    let view = FormView { values, problems };
    let (title, action) = match editing {
        Some(channel) => (
            format!("Edit channel {}", channel.name),
            format!("/ui/configuration/channels/{}", encode(&channel.channel_id)),
        ),
        None => (
            "New notification channel".to_owned(),
            "/ui/configuration/channels".to_owned(),
        ),
    };
    let types: Vec<(String, String)> = CHANNEL_TYPES
        .iter()
        .map(|kind| ((*kind).to_owned(), (*kind).to_owned()))
        .collect();
    let fields = html! {
        (view.input("name", "Name", "text", None, true))
        (view.select("type", "Type", &types, Some("Webhook: a signed JSON body (IBM's format); Slack: a Slack-style message; Email: through the server's SMTP relay.")))
        (view.input("endpoint", "Endpoint", "text", Some("An https:// URL, or an e-mail address for Email."), true))
        (view.textarea("description", "Description", 2, None, false))
        (view.checkboxes("severity", "Severities", &options(SEVERITY_OPTIONS), Some("Findings of these severities are sent.")))
        (view.checkbox("enabled", "Enabled: send findings through this channel", None))
    };
    FormPage {
        session,
        title: &title,
        action: &action,
        submit: if editing.is_some() {
            "Save channel"
        } else {
            "Create channel"
        },
        labels: CHANNEL_LABELS,
    }
    .render(&view, html! {}, fields)
}

fn channel_request(
    values: &Values,
    previous: Option<&crate::service::notifications::Channel>,
) -> ChannelRequest {
    ChannelRequest {
        name: values.get("name").to_owned(),
        channel_type: values.get("type").to_owned(),
        endpoint: values.get("endpoint").to_owned(),
        description: Some(values.get("description").to_owned()).filter(|text| !text.is_empty()),
        severity: Some(
            values
                .all("severity")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        enabled: Some(values.checked("enabled")),
        // Not on the form: kept as it is (every source for a new channel).
        alert_source: previous.map(|channel| channel.alert_source.clone()),
    }
}

async fn channel_of(
    state: &AppState,
    session: &Session,
    channel_id: &str,
) -> ApiResult<crate::service::notifications::Channel> {
    let stored = state
        .store
        .get_channel(session.instance_id(), session.instance_id(), channel_id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel", channel_id))?;
    crate::routes::notifications::stored_channel(stored)
}

/// `GET /ui/configuration/channels/new`.
pub async fn new_channel(session: Session) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let mut values = Values::default();
    values.set("type", "Webhook");
    for severity in ["critical", "high", "medium"] {
        values.push("severity", severity);
    }
    values.set("enabled", "on");
    Ok(channel_page(&session, None, &values, &Problems::default()))
}

/// `POST /ui/configuration/channels`.
pub async fn create_channel(
    State(state): State<AppState>,
    session: Session,
    form: Submitted,
) -> Result<Response, UiError> {
    let values = accept(&session, Action::WriteConfig, form)?;
    // Channels of the dashboard belong to the instance's own account.
    let result = crate::routes::notifications::create_channel(
        &state,
        &session.key,
        session.instance_id(),
        &channel_request(&values, None),
    )
    .await;
    outcome(
        result,
        CHANNEL_FIELDS,
        |_| done("Channel created.", "channels"),
        |problems| channel_page(&session, None, &values, problems),
    )
}

/// `GET /ui/configuration/channels/{id}`.
pub async fn edit_channel(
    State(state): State<AppState>,
    session: Session,
    Path(channel_id): Path<String>,
) -> Result<Markup, UiError> {
    session.require(Action::WriteConfig)?;
    let channel = channel_of(&state, &session, &channel_id).await?;
    let mut values = Values::default();
    values.set("name", channel.name.as_str());
    values.set("type", channel.channel_type.as_str());
    values.set("endpoint", channel.endpoint.as_str());
    values.set(
        "description",
        channel.description.clone().unwrap_or_default(),
    );
    for (wanted, severity) in [
        (channel.severity.critical, "critical"),
        (channel.severity.high, "high"),
        (channel.severity.medium, "medium"),
        (channel.severity.low, "low"),
    ] {
        if wanted {
            values.push("severity", severity);
        }
    }
    if channel.enabled {
        values.set("enabled", "on");
    }
    Ok(channel_page(
        &session,
        Some(&channel),
        &values,
        &Problems::default(),
    ))
}

/// `POST /ui/configuration/channels/{id}`.
pub async fn update_channel(
    State(state): State<AppState>,
    session: Session,
    Path(channel_id): Path<String>,
    form: Submitted,
) -> Result<Response, UiError> {
    let values = accept(&session, Action::WriteConfig, form)?;
    let channel = channel_of(&state, &session, &channel_id).await?;
    let result = crate::routes::notifications::update_channel(
        &state,
        &session.key,
        session.instance_id(),
        &channel_id,
        &channel_request(&values, Some(&channel)),
    )
    .await;
    outcome(
        result,
        CHANNEL_FIELDS,
        |_| done("Channel saved.", "channels"),
        |problems| channel_page(&session, Some(&channel), &values, problems),
    )
}

// ---------------------------------------------------------------------------------------------
// API keys (admins)

const KEY_FIELDS: &FieldMap = &[
    ("/name", "name", Detail::Plain),
    ("/role", "role", Detail::Plain),
];
const KEY_LABELS: &[(&str, &str)] = &[("name", "Name"), ("role", "Role")];

/// A key just created, shown once.
pub struct Created {
    pub name: String,
    pub role: Role,
    pub secret: String,
}

/// The keys page: the instance's keys with revoke buttons, the form to create one, and a key
/// just created with its secret.
pub async fn keys_page(
    state: &AppState,
    session: &Session,
    values: &Values,
    problems: &Problems,
    created: Option<&Created>,
    done: Option<&str>,
) -> Result<Markup, UiError> {
    let keys = state.store.list_keys(session.instance_id()).await?;
    let view = FormView { values, problems };
    let roles: Vec<(String, String)> = Role::ALL
        .iter()
        .map(|role| (role.as_str().to_owned(), role.as_str().to_owned()))
        .collect();
    let body = html! {
        p { a href="/ui/configuration" { "Configuration" } " › keys" }
        h1 { "API keys" }
        (layout::flash(done))
        @if let Some(created) = created {
            section.panel.created aria-labelledby="created-key" {
                h2 #created-key tabindex="-1" { "Key " (created.name) " created (" (created.role) ")" }
                p { strong { "Copy it now: it is shown only this once." } " Palisade keeps only a hash of it." }
                label for="created-secret" { "Secret" }
                input #created-secret type="text" readonly value=(created.secret) spellcheck="false" autocomplete="off";
            }
        }
        (view.summary(KEY_LABELS))
        section aria-labelledby="new-key" {
            h2 #new-key { "New key" }
            form.stack.config method="post" action="/ui/configuration/keys" {
                input type="hidden" name="csrf" value=(session.csrf());
                (view.input("name", "Name", "text", Some("What the key is for: ci, laptop-alice, collector-eu …"), true))
                (view.select("role", "Role", &roles, Some("admin: everything; editor: configuration and actions; viewer: read; collector and ingest: push data.")))
                div.actions { button type="submit" { "Create key" } }
            }
        }
        h2 { "Keys" }
        div.table-wrap { table.responsive {
            thead { tr { th { "Name" } th { "Role" } th { "Created" } th { "State" } th { span.visually-hidden { "Actions" } } } }
            tbody {
                @for key in &keys {
                    tr {
                        td data-label="Name" { (key.name) br; code.hint { (key.id) } }
                        td data-label="Role" { (key.role) @if key.operator { " (operator)" } }
                        td data-label="Created" { (layout::time(key.created_at)) }
                        td data-label="State" {
                            @match key.revoked_at {
                                Some(at) => { (layout::badge("revoked")) " " (layout::time(at)) },
                                None => (layout::badge("active")),
                            }
                        }
                        td {
                            @if key.revoked_at.is_none() {
                                form.inline method="post" action=(format!("/ui/configuration/keys/{}/revoke", encode(&key.id)))
                                    data-confirm=(format!("Revoke the key {}? It stops working at once.", key.name)) {
                                    input type="hidden" name="csrf" value=(session.csrf());
                                    button type="submit" aria-label=(format!("Revoke {}", key.name)) { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        } }
    };
    Ok(layout::page(
        "API keys",
        session,
        Section::Configuration,
        body,
    ))
}

/// `POST /ui/configuration/keys`: creates a key and shows its secret once (in the answer to the
/// post, never in a URL).
pub async fn create_key(
    State(state): State<AppState>,
    session: Session,
    form: Submitted,
) -> Result<Response, UiError> {
    let values = accept(&session, Action::ManageKeys, form)?;
    let role = match values.get("role").parse::<Role>() {
        Ok(role) => role,
        Err(message) => {
            let mut problems = Problems::default();
            problems.add(Some("role"), message);
            let page = keys_page(&state, &session, &values, &problems, None, None).await?;
            return Ok(again(&problems, page));
        }
    };
    let request = CreateKeyRequest {
        name: values.get("name").to_owned(),
        role,
    };
    match crate::routes::keys::create(&state, &session.key, request).await {
        Ok(created) => {
            let created = Created {
                name: created.key.name,
                role: created.key.role,
                secret: created.secret,
            };
            let page = keys_page(
                &state,
                &session,
                &Values::default(),
                &Problems::default(),
                Some(&created),
                None,
            )
            .await?;
            Ok((StatusCode::CREATED, page).into_response())
        }
        Err(error) => {
            let problems = Problems::from_error(error, KEY_FIELDS)?;
            let page = keys_page(&state, &session, &values, &problems, None, None).await?;
            Ok(again(&problems, page))
        }
    }
}

/// `POST /ui/configuration/keys/{id}/revoke`: revokes a key, which ends its sessions.
pub async fn revoke_key(
    State(state): State<AppState>,
    session: Session,
    Path(key_id): Path<String>,
    form: Submitted,
) -> Result<Response, UiError> {
    accept(&session, Action::ManageKeys, form)?;
    crate::routes::keys::revoke(&state, &session.key, &key_id).await?;
    let location = format!(
        "/ui/configuration/keys?done={}",
        encode("Key revoked; its sessions ended.")
    );
    Ok((StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response())
}
