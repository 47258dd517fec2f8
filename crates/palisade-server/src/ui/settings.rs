//! The configuration page: profiles, scopes, attachments, rules, templates and notification
//! channels, with links to their forms for editors and admins ([`super::configure`]), and the
//! instance's API keys (admins only).

use axum::extract::{Query, State};
use maud::{Markup, html};
use palisade_model::tenancy::Action;

use super::configure::keys_page;
use super::forms::{Problems, Values};
use super::layout::{self, Section};
use super::posture::DoneParam;
use super::session::Session;
use super::{UiError, encode};
use crate::routes::v3::{ATTACHMENT, PROFILE, RULE, SCOPE};
use crate::service::documents;
use crate::service::governance::TEMPLATE;
use crate::state::AppState;

fn text<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// A "New …" link above a section, for roles that may write configuration.
fn new_link(session: &Session, href: &str, label: &str) -> Markup {
    html! {
        @if session.can(Action::WriteConfig) {
            p.actions { a.button href=(href) { (label) } }
        }
    }
}

/// An "Edit" link in a row, for roles that may write configuration.
fn edit_link(session: &Session, href: String, name: &str) -> Markup {
    html! {
        @if session.can(Action::WriteConfig) {
            a href=(href) aria-label=(format!("Edit {name}")) { "Edit" }
        }
    }
}

/// The severities a channel alerts on, as words.
fn severities(channel: &serde_json::Value) -> String {
    let wanted: Vec<&str> = ["critical", "high", "medium", "low"]
        .into_iter()
        .filter(|severity| channel["severity"][*severity] == true)
        .collect();
    if wanted.is_empty() {
        "none".to_owned()
    } else {
        wanted.join(", ")
    }
}

/// `GET /ui/configuration`.
pub async fn configuration(
    State(state): State<AppState>,
    session: Session,
    Query(done): Query<DoneParam>,
) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let profiles = documents::all(&state, instance_id, PROFILE).await?;
    let scopes = documents::all(&state, instance_id, SCOPE).await?;
    let attachments = documents::all(&state, instance_id, ATTACHMENT).await?;
    let rules = documents::all(&state, instance_id, RULE).await?;
    let templates = documents::all(&state, instance_id, TEMPLATE).await?;
    let channels = state.store.list_channels(instance_id, instance_id).await?;
    let profile_name = |id: &str| {
        profiles
            .iter()
            .find(|profile| profile.id == id)
            .map_or(id.to_owned(), |profile| {
                format!(
                    "{} {}",
                    text(&profile.body, "profile_name"),
                    text(&profile.body, "profile_version")
                )
            })
    };
    let body = html! {
        h1 { "Configuration" }
        (layout::flash(done.done.as_deref()))
        p.hint {
            @if session.can(Action::WriteConfig) {
                "Create and change configuration here, or with the API (" a href="/openapi.json" { "OpenAPI document" } ") and the "
                code { "palisade" } " command: both check it the same way."
            } @else {
                "Your key's role (" (session.key.role) ") can read the configuration but not change it."
            }
            @if session.can(Action::ManageKeys) { " " a href="/ui/configuration/keys" { "API keys" } "." }
        }
        nav aria-label="Sections" {
            ul.legend {
                li { a href="#profiles" { "Profiles (" (profiles.len()) ")" } }
                li { a href="#scopes" { "Scopes (" (scopes.len()) ")" } }
                li { a href="#attachments" { "Attachments (" (attachments.len()) ")" } }
                li { a href="#rules" { "Rules (" (rules.len()) ")" } }
                li { a href="#templates" { "Templates (" (templates.len()) ")" } }
                li { a href="#channels" { "Notification channels (" (channels.len()) ")" } }
            }
        }
        section aria-labelledby="profiles" {
            h2 #profiles { "Profiles" }
            (new_link(&session, "/ui/configuration/profiles/new", "New profile"))
            div.table-wrap { table.responsive {
                thead { tr { th { "Name" } th { "Version" } th { "Type" } th.num { "Controls" } th { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for profile in &profiles {
                        tr {
                            td data-label="Name" { (text(&profile.body, "profile_name")) br; code.hint { (profile.id) } }
                            td data-label="Version" { (text(&profile.body, "profile_version")) }
                            td data-label="Type" { (text(&profile.body, "profile_type")) }
                            td.num data-label="Controls" { (profile.body["controls"].as_array().map_or(0, Vec::len)) }
                            td {
                                @if text(&profile.body, "profile_type") != "predefined" {
                                    (edit_link(&session, format!("/ui/configuration/profiles/{}", encode(&profile.id)), text(&profile.body, "profile_name")))
                                }
                            }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="scopes" {
            h2 #scopes { "Scopes" }
            (new_link(&session, "/ui/configuration/scopes/new", "New scope"))
            @if scopes.is_empty() { p.muted { "No scopes." } } @else {
                div.table-wrap { table.responsive {
                    thead { tr { th { "Name" } th { "Environment" } th { "Description" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for scope in &scopes {
                            tr {
                                td data-label="Name" { (text(&scope.body, "name")) br; code.hint { (scope.id) } }
                                td data-label="Environment" { (text(&scope.body, "environment")) }
                                td data-label="Description" { (text(&scope.body, "description")) }
                                td { (edit_link(&session, format!("/ui/configuration/scopes/{}", encode(&scope.id)), text(&scope.body, "name"))) }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="attachments" {
            h2 #attachments { "Attachments" }
            (new_link(&session, "/ui/configuration/attachments/new", "New attachment"))
            @if attachments.is_empty() { p.muted { "No attachments." } } @else {
                div.table-wrap { table.responsive {
                    thead { tr { th { "Name" } th { "Profile" } th { "Schedule" } th { "Status" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for attachment in &attachments {
                            tr {
                                td data-label="Name" { a href=(format!("/ui/posture/attachments/{}", encode(&attachment.id))) { (text(&attachment.body, "name")) } }
                                td data-label="Profile" { (profile_name(text(&attachment.body, "profile_id"))) }
                                td data-label="Schedule" { (text(&attachment.body, "schedule")) }
                                td data-label="Status" { (layout::badge(text(&attachment.body, "status"))) }
                                td { (edit_link(&session, format!("/ui/configuration/attachments/{}", encode(&attachment.id)), text(&attachment.body, "name"))) }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="rules" {
            h2 #rules { "Rules" }
            (new_link(&session, "/ui/configuration/rules/new", "New rule"))
            @if rules.is_empty() { p.muted { "No custom rules (built-in profiles use Palisade's own)." } } @else {
                div.table-wrap { table.responsive {
                    thead { tr { th { "Description" } th { "Target" } th { "Type" } th { "Version" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for rule in &rules {
                            tr {
                                td data-label="Description" { (text(&rule.body, "description")) br; code.hint { (rule.id) } }
                                td data-label="Target" { (text(&rule.body["target"], "service_name")) " / " (text(&rule.body["target"], "resource_kind")) }
                                td data-label="Type" { (text(&rule.body, "type")) }
                                td data-label="Version" { (text(&rule.body, "version")) }
                                td {
                                    @if text(&rule.body, "type") != "system_defined" {
                                        (edit_link(&session, format!("/ui/configuration/rules/{}", encode(&rule.id)), &rule.id))
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="templates" {
            h2 #templates { "Templates" }
            (new_link(&session, "/ui/configuration/templates/new", "New template"))
            @if templates.is_empty() { p.muted { "No templates: provisioning requests are checked as sent." } } @else {
                div.table-wrap { table.responsive {
                    thead { tr { th { "Name" } th { "Target" } th.num { "Defaults" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for template in &templates {
                            tr {
                                td data-label="Name" { (text(&template.body, "name")) br; code.hint { (template.id) } }
                                td data-label="Target" { (text(&template.body["target"], "service_name")) " / " (text(&template.body["target"], "resource_kind")) }
                                td.num data-label="Defaults" { (template.body["customized_defaults"].as_array().map_or(0, Vec::len)) }
                                td { (edit_link(&session, format!("/ui/configuration/templates/{}", encode(&template.id)), text(&template.body, "name"))) }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="channels" {
            h2 #channels { "Notification channels" }
            (new_link(&session, "/ui/configuration/channels/new", "New channel"))
            @if channels.is_empty() { p.muted { "No channels." } } @else {
                div.table-wrap { table.responsive {
                    thead { tr { th { "Name" } th { "Type" } th { "Severities" } th { "Enabled" } th { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for channel in &channels {
                            tr {
                                td data-label="Name" { (text(&channel.body, "name")) br; code.hint { (channel.id) } }
                                td data-label="Type" { (text(&channel.body, "type")) }
                                td data-label="Severities" { (severities(&channel.body)) }
                                td data-label="Enabled" { (channel.body["enabled"].as_bool().map_or("—", |enabled| if enabled { "yes" } else { "no" })) }
                                td { (edit_link(&session, format!("/ui/configuration/channels/{}", encode(&channel.id)), text(&channel.body, "name"))) }
                            }
                        }
                    }
                } }
            }
        }
    };
    Ok(layout::page(
        "Configuration",
        &session,
        Section::Configuration,
        body,
    ))
}

/// `GET /ui/configuration/keys`: the instance's keys and the form to create one, for admins.
pub async fn keys(
    State(state): State<AppState>,
    session: Session,
    Query(done): Query<DoneParam>,
) -> Result<Markup, UiError> {
    session.require(Action::ManageKeys)?;
    let mut values = Values::default();
    values.set("role", "viewer");
    keys_page(
        &state,
        &session,
        &values,
        &Problems::default(),
        None,
        done.done.as_deref(),
    )
    .await
}
