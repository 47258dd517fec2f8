//! The page frame (head, navigation, sign-out) and small shared pieces: badges, score meters,
//! times, pagers.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use palisade_model::tenancy::Action;

use super::session::Session;

/// The dashboard's sections, for the navigation's `aria-current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Posture,
    Findings,
    Configuration,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Palisade" }
            link rel="stylesheet" href="/ui/assets/style.css";
            script src="/ui/assets/app.js" defer {}
        }
    }
}

/// A page for a signed-in person.
pub fn page(title: &str, session: &Session, section: Section, body: Markup) -> Markup {
    let links = [
        (Section::Overview, "/ui/", "Overview"),
        (Section::Posture, "/ui/posture", "Posture"),
        (Section::Findings, "/ui/findings", "Findings"),
        (Section::Configuration, "/ui/configuration", "Configuration"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "Palisade" }
                    nav aria-label="Main" {
                        ul {
                            @for (link_section, href, label) in links {
                                li {
                                    @if link_section == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form.sign-out method="post" action="/ui/sign-out" {
                        input type="hidden" name="csrf" value=(session.csrf());
                        span.who {
                            (session.key.name) " · " (session.key.role)
                            " · instance " code { (session.instance_id()) }
                        }
                        button type="submit" { "Sign out" }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A page without navigation (sign-in, errors before a session exists).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/ui/" { "Palisade" } }
                main #main { (body) }
            }
        }
    }
}

/// A status word as a coloured badge (the colour is decoration: the word carries the meaning).
pub fn badge(status: &str) -> Markup {
    let class = match status.to_ascii_lowercase().as_str() {
        "pass" | "compliant" | "resolved" | "low" => "badge good",
        "failure" | "not_compliant" | "critical" | "high" | "open" => "badge bad",
        "error" | "unable_to_perform" | "medium" | "acknowledged" => "badge warn",
        _ => "badge",
    };
    html! { span class=(class) { (status.replace('_', " ")) } }
}

/// A compliance score as a meter with its number.
pub fn score(percent: Option<f64>) -> Markup {
    match percent {
        Some(percent) => html! {
            span.score {
                meter min="0" max="100" low="60" high="90" optimum="100" value=(format!("{percent:.0}")) {}
                " " strong { (format!("{percent:.1} %")) }
            }
        },
        None => html! { span.muted { "no evaluations" } },
    }
}

/// A time in UTC, machine-readable too.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) }
    }
}

/// A time given as RFC 3339 text (shown as is when it does not parse).
pub fn time_text(text: &str) -> Markup {
    match DateTime::parse_from_rfc3339(text) {
        Ok(at) => time(at.with_timezone(&Utc)),
        Err(_) => html! { (text) },
    }
}

/// A notice after an action (`?done=…`).
pub fn flash(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.flash role="status" { (message) }
        }
    }
}

/// The role note shown where a viewer would otherwise see action forms.
pub fn read_only_note(session: &Session, action: Action) -> Markup {
    html! {
        @if !session.can(action) {
            p.hint { "Your key's role (" (session.key.role) ") can read this page but not change it." }
        }
    }
}
