//! Configuration, read-only: profiles, scopes, attachments, rules, notification channels, and
//! the instance's API keys (admins only). Changes go through the API or the CLI.

use axum::extract::State;
use maud::{Markup, html};
use palisade_model::tenancy::Action;

use super::layout::{self, Section};
use super::session::Session;
use super::{UiError, encode};
use crate::routes::v3::{ATTACHMENT, PROFILE, RULE, SCOPE};
use crate::service::documents;
use crate::state::AppState;

fn text<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// `GET /ui/configuration`.
pub async fn configuration(
    State(state): State<AppState>,
    session: Session,
) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let profiles = documents::all(&state, instance_id, PROFILE).await?;
    let scopes = documents::all(&state, instance_id, SCOPE).await?;
    let attachments = documents::all(&state, instance_id, ATTACHMENT).await?;
    let rules = documents::all(&state, instance_id, RULE).await?;
    let channels = state.store.list_channels(instance_id, instance_id).await?;
    let body = html! {
        h1 { "Configuration" }
        p.hint {
            "Read-only here: create and change configuration with the API (" a href="/openapi.json" { "OpenAPI document" } ") or the "
            code { "palisade" } " command."
            @if session.can(Action::ManageKeys) { " " a href="/ui/configuration/keys" { "API keys" } "." }
        }
        nav aria-label="Sections" {
            ul.legend {
                li { a href="#profiles" { "Profiles (" (profiles.len()) ")" } }
                li { a href="#scopes" { "Scopes (" (scopes.len()) ")" } }
                li { a href="#attachments" { "Attachments (" (attachments.len()) ")" } }
                li { a href="#rules" { "Rules (" (rules.len()) ")" } }
                li { a href="#channels" { "Notification channels (" (channels.len()) ")" } }
            }
        }
        section aria-labelledby="profiles" {
            h2 #profiles { "Profiles" }
            div.table-wrap { table.responsive {
                thead { tr { th { "Name" } th { "Version" } th { "Type" } th.num { "Controls" } } }
                tbody {
                    @for profile in &profiles {
                        tr {
                            td data-label="Name" { (text(&profile.body, "profile_name")) br; code.hint { (profile.id) } }
                            td data-label="Version" { (text(&profile.body, "profile_version")) }
                            td data-label="Type" { (text(&profile.body, "profile_type")) }
                            td.num data-label="Controls" { (profile.body["controls"].as_array().map_or(0, Vec::len)) }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="scopes" {
            h2 #scopes { "Scopes" }
            @if scopes.is_empty() { p.muted { "No scopes." } } @else {
                div.table-wrap { table.responsive {
                    thead { tr { th { "Name" } th { "Environment" } th { "Description" } } }
                    tbody {
                        @for scope in &scopes {
                            tr {
                                td data-label="Name" { (text(&scope.body, "name")) br; code.hint { (scope.id) } }
                                td data-label="Environment" { (text(&scope.body, "environment")) }
                                td data-label="Description" { (text(&scope.body, "description")) }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="attachments" {
            h2 #attachments { "Attachments" }
            @if attachments.is_empty() { p.muted { "No attachments." } } @else {
                div.table-wrap { table.responsive {
                    thead { tr { th { "Name" } th { "Profile" } th { "Schedule" } th { "Status" } } }
                    tbody {
                        @for attachment in &attachments {
                            tr {
                                td data-label="Name" { a href=(format!("/ui/posture/attachments/{}", encode(&attachment.id))) { (text(&attachment.body, "name")) } }
                                td data-label="Profile" { code { (text(&attachment.body, "profile_id")) } }
                                td data-label="Schedule" { (text(&attachment.body, "schedule")) }
                                td data-label="Status" { (layout::badge(text(&attachment.body, "status"))) }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="rules" {
            h2 #rules { "Rules" }
            @if rules.is_empty() { p.muted { "No custom rules (built-in profiles use Palisade's own)." } } @else {
                div.table-wrap { table.responsive {
                    thead { tr { th { "Description" } th { "Target" } th { "Type" } th { "Version" } } }
                    tbody {
                        @for rule in &rules {
                            tr {
                                td data-label="Description" { (text(&rule.body, "description")) br; code.hint { (rule.id) } }
                                td data-label="Target" { (text(&rule.body["target"], "service_name")) " / " (text(&rule.body["target"], "resource_kind")) }
                                td data-label="Type" { (text(&rule.body, "type")) }
                                td data-label="Version" { (text(&rule.body, "version")) }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="channels" {
            h2 #channels { "Notification channels" }
            @if channels.is_empty() { p.muted { "No channels." } } @else {
                div.table-wrap { table.responsive {
                    thead { tr { th { "Name" } th { "Type" } th { "Severities" } th { "Enabled" } } }
                    tbody {
                        @for channel in &channels {
                            tr {
                                td data-label="Name" { (text(&channel.body, "name")) br; code.hint { (channel.id) } }
                                td data-label="Type" { (text(&channel.body, "type")) }
                                td data-label="Severities" { (channel.body["severity"].to_string()) }
                                td data-label="Enabled" { (channel.body["enabled"].as_bool().map_or("—", |enabled| if enabled { "yes" } else { "no" })) }
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

/// `GET /ui/configuration/keys`: the instance's keys, for admins.
pub async fn keys(State(state): State<AppState>, session: Session) -> Result<Markup, UiError> {
    session.require(Action::ManageKeys)?;
    let keys = state.store.list_keys(session.instance_id()).await?;
    let body = html! {
        p { a href="/ui/configuration" { "Configuration" } " › keys" }
        h1 { "API keys" }
        p.hint { "Create and revoke keys with the API (" code { "POST /instances/{id}/v1/keys" } "); a key's secret is shown once, at creation." }
        div.table-wrap { table.responsive {
            thead { tr { th { "Name" } th { "Role" } th { "Created" } th { "State" } } }
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
                    }
                }
            }
        } }
    };
    Ok(layout::page(
        "API keys",
        &session,
        Section::Configuration,
        body,
    ))
}
