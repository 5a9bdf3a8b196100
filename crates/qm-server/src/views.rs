//! HTML building blocks: the page layout, navigation, messages and tables shared by the web pages.

use crate::auth::Principal;
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Whether the person is staff of the armory (any role beyond drawing weapons): they see the
/// books, the log and the safety pages; an officer who only draws (`member`) sees what they hold.
pub fn staff(p: &Principal) -> bool {
    p.roles.iter().any(|r| *r != qm_core::Role::Member)
}

/// Whether the menu shows a page to this person: what their roles can use (issue 18).
fn shown(p: &Principal, href: &str) -> bool {
    use qm_core::permissions::Op;
    let may = |op: Op| crate::web::may(p, op);
    match href {
        "/" | "/custody" | "/directives" => true,
        "/counter" => may(Op::Issue) || may(Op::Return),
        _ => staff(p),
    }
}

/// A whole page: header with navigation and the signed-in person, then `body`.
pub fn page(title: &str, p: Option<&Principal>, active: &str, body: Markup) -> Markup {
    let nav = [
        ("/", "Dashboard"),
        ("/counter", "Counter"),
        ("/stock", "Stock"),
        ("/items", "Items"),
        ("/custody", "Custody"),
        ("/people", "People"),
        ("/transfers", "Transfers"),
        ("/counts", "Counts"),
        ("/incidents", "Incidents"),
        ("/directives", "Directives"),
        ("/access", "Access"),
        ("/notifications", "Notifications"),
        ("/log", "Log"),
        ("/labels", "Labels"),
        ("/magazines", "Magazines"),
        ("/lots", "Lots"),
        ("/conditions", "Conditions"),
        ("/dsmt", "Daily summary"),
        ("/qd", "QD calculator"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Quartermaster" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Quartermaster" }
                    @if let Some(p) = p {
                        nav {
                            @for (href, label) in nav.into_iter().filter(|(h, _)| shown(p, h)) {
                                @if label == active { a.active href=(href) aria-current="page" { (label) (badge(label)) } } @else { a href=(href) { (label) (badge(label)) } }
                            }
                        }
                        div.who {
                            span { (p.name) " · " (p.badge) " · unit " (p.unit) }
                            form method="post" action="/signout" {
                                input type="hidden" name="csrf" value=(p.csrf());
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    // Directives in force over the person's unit, filled live by the page's script.
                    @if p.is_some() { div #directive-banner.noprint hidden role="status" {} }
                    h1 { (title) } (body)
                }
            }
        }
    }
}

/// The incidents link's badge: filled by the page's script from `/api/incidents/summary` (the
/// incidents not yet acknowledged in the person's subtree), every 30 s.
fn badge(label: &str) -> Markup {
    html! { @if label == "Incidents" { " " span #incident-badge.badge hidden title="incidents not yet acknowledged" {} } }
}

pub fn ok(message: &str) -> Markup {
    html! { div.msg.ok role="status" { (message) } }
}

pub fn err(message: &str) -> Markup {
    html! { div.msg.err role="alert" { (message) } }
}

pub fn csrf(p: &Principal) -> Markup {
    html! { input type="hidden" name="csrf" value=(p.csrf()); }
}

/// An SVG document inlined in HTML (the XML declaration dropped).
pub fn svg(document: &str) -> Markup {
    let start = document.find("<svg").unwrap_or(0);
    PreEscaped(document[start..].to_string())
}
