//! Control libraries: `/v3/control_libraries[/{control_library_id}]`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use palisade_model::error::ErrorCode;
use serde_json::{Map, Value, json};

use super::{
    AccountParam, CONTROL_LIBRARY, RULE, account_of, stamp_created, stamp_updated,
    strip_server_fields,
};
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents::{self, BodyErrors, PageParams, body_object, new_id, page, pairs};
use crate::state::AppState;

const LIBRARY_FIELDS: &[&str] = &[
    "control_library_name",
    "control_library_description",
    "control_library_type",
    "control_library_version",
    "controls",
];
const LIBRARY_OPTIONAL: &[&str] = &[
    "version_group_label",
    "latest",
    "hierarchy_enabled",
    "controls_count",
    "control_parents_count",
    "id",
    "account_id",
    "created_on",
    "created_by",
    "updated_on",
    "updated_by",
];
const CONTROL_REQUIRED: &[&str] = &[
    "control_name",
    "control_description",
    "control_category",
    "control_requirement",
    "control_specifications",
];
const CONTROL_OPTIONAL: &[&str] = &[
    "control_id",
    "control_parent",
    "control_severity",
    "control_tags",
    "control_docs",
    "status",
];
const SPECIFICATION_FIELDS: &[&str] = &[
    "id",
    "control_specification_id",
    "control_specification_description",
    "description",
    "component_id",
    "component_name",
    "component_type",
    "environment",
    "responsibility",
    "assessments",
    "assessments_count",
];
const ASSESSMENT_FIELDS: &[&str] = &[
    "assessment_id",
    "assessment_type",
    "assessment_method",
    "assessment_description",
    "parameter_count",
    "parameters",
];

/// Validates a library body and returns it normalised to the response shape (ids assigned,
/// counts computed, assessments' parameters filled from the rules they name).
///
/// IBM's control prototype has no `control_id`, so on a replace a control keeps the id of the
/// previous control with the same name: profiles that reference it stay valid.
async fn normalise(
    state: &AppState,
    instance_id: &str,
    request: &Map<String, Value>,
    previous: Option<&Value>,
) -> ApiResult<Map<String, Value>> {
    let previous_ids: std::collections::HashMap<&str, &Value> = previous
        .and_then(|library| library["controls"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|control| Some((control["control_name"].as_str()?, &control["control_id"])))
        .collect();
    let mut errors = BodyErrors::default();
    errors.check_keys(request, "", LIBRARY_FIELDS, LIBRARY_OPTIONAL);
    for key in ["control_library_name", "control_library_version"] {
        errors.check_string(request, "", key, true);
    }
    errors.check_string(request, "", "control_library_description", false);
    errors.check_enum(request, "", "control_library_type", &["custom"]);
    let rules: std::collections::HashMap<String, Value> = documents::all(state, instance_id, RULE)
        .await?
        .into_iter()
        .map(|document| (document.id, document.body))
        .collect();
    let mut controls = Vec::new();
    let mut parents = std::collections::BTreeSet::new();
    for (control_pointer, control) in errors.objects(request, "", "controls") {
        errors.check_keys(
            control,
            &control_pointer,
            CONTROL_REQUIRED,
            CONTROL_OPTIONAL,
        );
        for key in ["control_name", "control_description", "control_category"] {
            errors.check_string(control, &control_pointer, key, key == "control_name");
        }
        errors.check_bool(control, &control_pointer, "control_requirement");
        let mut specifications = Vec::new();
        for (specification_pointer, specification) in
            errors.objects(control, &control_pointer, "control_specifications")
        {
            errors.check_keys(
                specification,
                &specification_pointer,
                &[],
                SPECIFICATION_FIELDS,
            );
            let mut assessments = Vec::new();
            for (assessment_pointer, assessment) in
                errors.objects(specification, &specification_pointer, "assessments")
            {
                errors.check_keys(
                    assessment,
                    &assessment_pointer,
                    &["assessment_id"],
                    ASSESSMENT_FIELDS,
                );
                let assessment_id = assessment
                    .get("assessment_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let method = assessment
                    .get("assessment_method")
                    .and_then(Value::as_str)
                    .unwrap_or("ibm-cloud-rule");
                let manual = method == "manual"
                    || assessment.get("assessment_type").and_then(Value::as_str) == Some("manual");
                if !manual && !assessment_id.is_empty() && !rules.contains_key(assessment_id) {
                    errors.push(
                        ErrorCode::InvalidField,
                        &format!("{assessment_pointer}/assessment_id"),
                        format!("no rule `{assessment_id}` in this instance"),
                    );
                }
                let parameters = rules
                    .get(assessment_id)
                    .and_then(|rule| rule["import"]["parameters"].as_array())
                    .map(|parameters| {
                        parameters
                            .iter()
                            .map(|parameter| {
                                json!({
                                    "assessment_type": "automated",
                                    "assessment_id": assessment_id,
                                    "parameter_name": parameter["name"],
                                    "parameter_display_name": parameter.get("display_name").cloned().unwrap_or(Value::Null),
                                    "parameter_type": parameter["type"],
                                })
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                assessments.push(json!({
                    "assessment_id": assessment_id,
                    "assessment_type": if manual { "manual" } else { "automated" },
                    "assessment_method": method,
                    "assessment_description": assessment.get("assessment_description").cloned().unwrap_or_else(|| rules.get(assessment_id).map_or(Value::Null, |rule| rule["description"].clone())),
                    "parameter_count": parameters.len(),
                    "parameters": parameters,
                }));
            }
            let field = |names: &[&str]| {
                names.iter().find_map(|name| {
                    specification
                        .get(*name)
                        .filter(|value| !value.is_null())
                        .cloned()
                })
            };
            specifications.push(json!({
                "id": field(&["control_specification_id", "id"]).unwrap_or_else(|| json!(new_id())),
                "description": field(&["control_specification_description", "description"]).unwrap_or(json!("")),
                "component_id": field(&["component_id"]).unwrap_or(json!("")),
                "component_name": field(&["component_name", "component_id"]).unwrap_or(json!("")),
                "component_type": field(&["component_type"]).unwrap_or(json!("service")),
                "environment": field(&["environment"]).unwrap_or(json!("")),
                "responsibility": field(&["responsibility"]).unwrap_or(json!("user")),
                "assessments_count": assessments.len(),
                "assessments": assessments,
            }));
        }
        let parent = control
            .get("control_parent")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !parent.is_empty() {
            parents.insert(parent.clone());
        }
        let mut output = Map::new();
        let previous_id = control
            .get("control_name")
            .and_then(Value::as_str)
            .and_then(|name| previous_ids.get(name))
            .map(|id| (*id).clone());
        let control_id = control
            .get("control_id")
            .filter(|id| id.is_string())
            .cloned()
            .or(previous_id)
            .unwrap_or_else(|| json!(new_id()));
        output.insert("control_id".into(), control_id);
        for key in [
            "control_name",
            "control_description",
            "control_category",
            "control_requirement",
            "control_severity",
            "control_docs",
        ] {
            if let Some(value) = control.get(key) {
                output.insert(key.into(), value.clone());
            }
        }
        output.insert("control_parent".into(), json!(parent));
        output.insert(
            "control_tags".into(),
            control.get("control_tags").cloned().unwrap_or(json!([])),
        );
        output.insert(
            "status".into(),
            control.get("status").cloned().unwrap_or(json!("enabled")),
        );
        output.insert(
            "control_specifications".into(),
            Value::Array(specifications),
        );
        controls.push(Value::Object(output));
    }
    errors.finish(())?;
    let mut library = Map::new();
    for key in [
        "control_library_name",
        "control_library_description",
        "control_library_type",
        "control_library_version",
        "version_group_label",
    ] {
        if let Some(value) = request.get(key) {
            library.insert(key.into(), value.clone());
        }
    }
    library
        .entry("version_group_label")
        .or_insert_with(|| json!(new_id()));
    library.insert(
        "latest".into(),
        request.get("latest").cloned().unwrap_or(json!(true)),
    );
    library.insert("hierarchy_enabled".into(), json!(!parents.is_empty()));
    library.insert("controls_count".into(), json!(controls.len()));
    library.insert("control_parents_count".into(), json!(parents.len()));
    library.insert("controls".into(), Value::Array(controls));
    Ok(library)
}

/// Creates a custom control library.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/control_libraries", tag = "v3 control libraries", security(("bearer" = [])),
    params(("instance_id" = String, Path), AccountParam), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn create_control_library(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    Query(account): Query<AccountParam>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let request = body_object(body)?;
    let mut library = normalise(&state, auth.instance_id(), &request, None).await?;
    let id = new_id();
    library.insert("id".into(), json!(id));
    library.insert(
        "account_id".into(),
        json!(account_of(
            account.account_id.as_deref(),
            auth.instance_id()
        )),
    );
    stamp_created(&mut library, &auth.key);
    let body = Value::Object(library);
    documents::insert(&state, auth.instance_id(), CONTROL_LIBRARY, &id, &body).await?;
    Ok((StatusCode::CREATED, ApiJson(body)))
}

/// Lists control libraries.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/control_libraries", tag = "v3 control libraries", security(("bearer" = [])),
    params(("instance_id" = String, Path), PageParams, ("control_library_type" = Option<String>, Query)),
    responses((status = 200, body = serde_json::Value)))]
pub async fn list_control_libraries(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
    Query(params): Query<PageParams>,
    Query(filter): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let documents = documents::all(&state, auth.instance_id(), CONTROL_LIBRARY).await?;
    let wanted_type = filter.get("control_library_type").cloned();
    let items = pairs(documents, |body| {
        wanted_type
            .as_deref()
            .is_none_or(|wanted| body["control_library_type"] == wanted)
    });
    Ok(ApiJson(page(
        &format!("/instances/{instance_id}/v3/control_libraries"),
        "control_libraries",
        &params,
        items,
    )?))
}

/// Returns one control library.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/control_libraries/{control_library_id}", tag = "v3 control libraries", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("control_library_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_control_library(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, library_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(
        documents::get(&state, auth.instance_id(), CONTROL_LIBRARY, &library_id)
            .await?
            .body,
    ))
}

/// Replaces a custom control library.
#[utoipa::path(put, path = "/instances/{instance_id}/v3/control_libraries/{control_library_id}", tag = "v3 control libraries", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("control_library_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn replace_custom_control_library(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, library_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    let previous = documents::get(&state, auth.instance_id(), CONTROL_LIBRARY, &library_id).await?;
    refuse_predefined(&previous.body, "changed")?;
    let mut request = body_object(body)?;
    strip_server_fields(&mut request);
    let mut library = normalise(&state, auth.instance_id(), &request, Some(&previous.body)).await?;
    stamp_updated(&mut library, &previous.body, &auth.key);
    let body = Value::Object(library);
    documents::replace(
        &state,
        auth.instance_id(),
        CONTROL_LIBRARY,
        &library_id,
        &body,
        Some(previous.version),
    )
    .await?;
    Ok(ApiJson(body))
}

/// Deletes a custom control library that no profile uses.
#[utoipa::path(delete, path = "/instances/{instance_id}/v3/control_libraries/{control_library_id}", tag = "v3 control libraries", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("control_library_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn delete_custom_control_library(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, library_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let previous = documents::get(&state, auth.instance_id(), CONTROL_LIBRARY, &library_id).await?;
    refuse_predefined(&previous.body, "deleted")?;
    let profiles = documents::all(&state, auth.instance_id(), super::PROFILE).await?;
    if let Some(user) = profiles.iter().find(|profile| {
        profile.body["controls"].as_array().is_some_and(|controls| {
            controls
                .iter()
                .any(|control| control["control_library_id"] == library_id.as_str())
        })
    }) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "profile `{}` uses this control library; change it first",
                user.id
            ),
        ));
    }
    documents::delete(&state, auth.instance_id(), CONTROL_LIBRARY, &library_id).await?;
    Ok(ApiJson(previous.body))
}

fn refuse_predefined(library: &Value, verb: &str) -> ApiResult<()> {
    if library["control_library_type"] == "predefined" {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("a predefined control library cannot be {verb}"),
        ));
    }
    Ok(())
}
