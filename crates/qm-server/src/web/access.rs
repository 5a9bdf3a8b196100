//! Access pages (docs/access.md): the armories, depots and magazines with who is inside now; one
//! place with who is inside, its roster (grant and revoke) and the day's door log; and the door
//! terminal a tablet at the door shows (badge and PIN, granted or refused and why).

use crate::api::access::{day_bounds, hours_of, terminal};
use crate::auth::now;
use crate::edge::*;
use crate::error::ApiError;
use crate::scope::sees;
use crate::views::{self, page};
use crate::web::*;
use axum::extract::{Path, Query};
use axum::response::IntoResponse;
use axum::Form;
use maud::{html, Markup};
use qm_app::access::{self as acc, PlaceView};
use qm_core::*;
use serde::Deserialize;

fn inside_cell(v: &PlaceView) -> Markup {
    html! {
        @if v.inside.is_empty() { span.hint { "nobody" } }
        @for i in &v.inside {
            div.(if i.after_hours { "bad" } else { "" }) {
                strong { (i.badge) } " " (i.name) " since " (i.since) @if i.after_hours { " — after hours" }
            }
        }
    }
}

pub(crate) async fn access_page(Visitor { st, p, .. }: Visitor) -> WebResult {
    let pp = p.clone();
    let places = st
        .site
        .call(move |site| {
            let s = site.state();
            acc::places(site, Some(&|u: &UnitId| sees(s, &pp, Some(u))), now())
        })
        .await?;
    let body = html! {
        p.lead { "Who is inside each armory, depot and magazine now. Open a place for its roster and the day's door log." }
        table #places {
            thead { tr { th { "Place" } th { "Kind" } th { "Unit" } th { "Inside now" } th { "Rule" } th.n { "Roster" } th { "Last door event" } } }
            tbody { @for v in &places { tr.(if v.alone { "alone" } else { "" }) {
                td { a href=(format!("/access/{}", v.location)) { strong { (v.location) } } " " (v.name) }
                td { (v.kind) } td { (v.unit) } td { (inside_cell(v)) }
                td { @if v.two_person { "two-person entry" } @if v.alone { span.bad { " — ONE PERSON ALONE" } } }
                td.n { (v.roster) } td { (v.last_event_at.as_deref().unwrap_or("-")) @if v.count_due.is_some() { br; span.bad { "count due" } } }
            } } }
        }
    };
    Ok(page("Access", Some(&p), "Access", body).into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct PlaceQ {
    pub(crate) date: Option<String>,
}

pub(crate) async fn place_page(Visitor { st, p, .. }: Visitor, Path(location): Path<String>, Query(q): Query<PlaceQ>) -> WebResult {
    let l = id(LocationId::parse(&location))?;
    let (pp, ll) = (p.clone(), l.clone());
    let read = st
        .site
        .call(move |site| -> Result<_, ApiError> {
            let s = site.state();
            let loc = s.locations.get(&ll).ok_or_else(|| ApiError::not_found("location", ll.as_str()))?;
            if !sees(s, &pp, Some(&loc.unit)) {
                return Ok(None);
            }
            let place = acc::places(site, None, now()).into_iter().find(|v| v.location == ll.as_str());
            let roster = acc::roster(site, &ll)?;
            let (from, until) = day_bounds(site, q.date.as_deref())?;
            let log = acc::log(site, Some(&ll), from, until, 500)?;
            let grants = pp.roles.iter().any(|r| qm_core::permissions::role_allows(*r, qm_core::permissions::Op::Roster));
            let terminal = grants || loc.keeper.as_ref() == Some(&pp.badge);
            let day = from.to_offset(qm_app::zone::SiteZone::of(s).at(from).offset).date().to_string();
            Ok(Some((place, roster, log, grants, terminal, day)))
        })
        .await??;
    let Some((place, roster, log, grants, terminal, day)) = read else {
        return Err(WebError(deny_read(&st, &p, &format!("location {location}")).await));
    };
    let Some(place) = place else { return Err(WebError(ApiError::usage(format!("{location} is not an armory, depot or magazine")))) };
    let body = html! {
        (flash(&st, &p))
        p.lead {
            (place.name) " · " (place.kind) " of unit " (place.unit)
            @if place.two_person { " · two-person entry" }
        }
        @if terminal {
            form.inline #make-terminal method="post" action=(format!("/access/{}/terminal", place.location)) {
                (views::csrf(&p))
                button #open-terminal type="submit" title="This browser then shows the door terminal only; sign in again to leave it." { "Make this browser the door terminal" }
            }
        }
        @if let Some(c) = &place.count_due { p.msg.err #count-due { "Due: " (c) ". " a href="/counts" { "Start the count" } } }
        h2 { "Inside now" }
        div #inside.card { (inside_cell(&place)) @if place.alone { p.bad { "One person alone under a two-person rule." } } }
        h2 { "Roster" }
        @if roster.is_empty() { p.hint #no-roster { "Nobody is on the roster: nobody may enter." } } @else {
            table #roster {
                thead { tr { th { "Badge" } th { "Name" } th { "Role" } th { "Hours" } th { "Granted" } th { "Reason" } @if grants { th { "" } } } }
                tbody { @for r in &roster { tr {
                    td { (r.badge) } td { (r.name) } td { (r.role) } td { (r.hours) } td { (r.granted_at) " by " (r.granted_by) } td { (r.reason) }
                    @if grants { td { form.inline method="post" action=(format!("/access/{}/revoke/{}", place.location, r.badge)) {
                        (views::csrf(&p)) input name="reason" placeholder="reason" required autocomplete="off"; button.small type="submit" { "Revoke" } } } }
                } } }
            }
        }
        @if grants {
            details.card #grant {
                summary { "Put someone on the roster" }
                form method="post" action=(format!("/access/{}/grant", place.location)) {
                    (views::csrf(&p))
                    label { "Badge" input #grant-badge name="badge" required autocomplete="off"; }
                    label { "Role they enter in" select name="role" { @for r in Role::ALL { option value=(r.as_str()) { (r.as_str().replace('_', " ")) } } } }
                    label { "Hours (site's time zone)" input #grant-hours name="hours" value="mon-fri 07:00-19:00" required autocomplete="off"; }
                    label { "Exceptions, one per line (2026-12-25=closed)" textarea name="except" rows="2" {} }
                    label { "Reason" input #grant-reason name="reason" required autocomplete="off"; }
                    button #grant-button type="submit" { "Grant" }
                }
            }
        }
        h2 { "Door log of " (day) }
        form.filters method="get" action=(format!("/access/{}", place.location)) {
            label { "Day" input type="date" name="date" value=(day); } button type="submit" { "Show" }
        }
        @if log.is_empty() { p.hint #no-door-events { "No door events that day." } } @else {
            table #door-log {
                thead { tr { th { "Time" } th { "What" } th { "Who" } th { "Door" } th { "Why" } } }
                tbody { @for r in &log { tr.(format!("door-{}", r.kind)) {
                    td { (r.at) } td { (r.kind.replace('_', " ")) @for f in &r.findings { " " span.bad { "(" (f) ")" } } }
                    td { @match (&r.badge, &r.card) { (Some(b), _) => { (b) " " (r.name.as_deref().unwrap_or("")) }, (None, Some(c)) => { "unknown card " (c) }, _ => { "-" } } }
                    td { (r.door) } td { (r.reason) }
                } } }
            }
        }
    };
    Ok(page(&format!("Access · {location}"), Some(&p), "Access", body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct GrantForm {
    pub(crate) csrf: String,
    pub(crate) badge: String,
    pub(crate) role: String,
    pub(crate) hours: String,
    pub(crate) except: Option<String>,
    pub(crate) reason: String,
}

pub(crate) async fn grant_form(Visitor { st, p, ip }: Visitor, Path(location): Path<String>, Form(f): Form<GrantForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let to = format!("/access/{location}");
    let command = || -> Result<Command, ApiError> {
        Ok(Command::GrantAccess {
            location: id(LocationId::parse(&location))?,
            badge: id(Badge::parse(&f.badge))?,
            role: id(Role::parse(&f.role))?,
            hours: hours_of(&f.hours, &lines(f.except.as_deref().unwrap_or("")))?,
            reason: f.reason.clone(),
        })
    };
    let r = match command() {
        Ok(c) => perform(&st, &p, &ip, None, None, c).await.map(|_| format!("Badge {} is on the roster of {location}.", f.badge.trim())),
        Err(e) => Err(e),
    };
    Ok(redirect_with(&st, &p, &to, r))
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    pub(crate) csrf: String,
    pub(crate) reason: String,
}

pub(crate) async fn revoke_form(
    Visitor { st, p, ip }: Visitor,
    Path((location, badge)): Path<(String, String)>,
    Form(f): Form<RevokeForm>,
) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let c = Command::RevokeAccess { location: id(LocationId::parse(&location))?, badge: id(Badge::parse(&badge))?, reason: f.reason };
    let r = perform(&st, &p, &ip, None, None, c).await.map(|_| format!("Badge {badge} is off the roster of {location}."));
    Ok(redirect_with(&st, &p, &format!("/access/{location}"), r))
}

/// The door terminal: large, keyboard only (a badge reader types like a keyboard), the last answer
/// on top, cleared by the page's script after a few seconds.
fn terminal_page(p: &Principal, location: &str, answer: Option<&qm_app::access::TerminalAnswer>) -> Markup {
    let body = html! {
        div #door-terminal.terminal data-location=(location) {
            @if let Some(a) = answer {
                div #door-answer.answer.(if a.granted { "granted" } else { "refused" }) role="status" { (a.message) }
            }
            form #door-form method="post" action=(format!("/door/{location}")) autocomplete="off" {
                (views::csrf(p))
                label { "Badge" input #door-badge name="badge" autofocus required autocomplete="off"; }
                label { "PIN" input #door-pin type="password" name="pin" required inputmode="numeric" autocomplete="off"; }
                div.buttons {
                    button #door-enter type="submit" name="exit" value="" { "Enter" }
                    button #door-leave type="submit" name="exit" value="1" accesskey="l" { "Leave" }
                }
            }
            p.hint { "Badge, then PIN, then Enter to go in; the Leave button (Alt+L) to record leaving." }
        }
    };
    // No menu: a terminal's session reaches this page only.
    page(&format!("Door · {location}"), None, "", body)
}

pub(crate) async fn door_page(Visitor { p, .. }: Visitor, Path(location): Path<String>) -> WebResult {
    Ok(terminal_page(&p, &location, None).into_response())
}

#[derive(Deserialize)]
pub(crate) struct DoorForm {
    pub(crate) csrf: String,
    pub(crate) badge: String,
    pub(crate) pin: String,
    pub(crate) exit: Option<String>,
}

pub(crate) async fn door_post(Visitor { st, p, .. }: Visitor, Path(location): Path<String>, Form(f): Form<DoorForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let exit = f.exit.as_deref().is_some_and(|e| !e.is_empty());
    let answer = terminal(&st, &p, &location, &f.badge, f.pin, exit).await?;
    Ok(terminal_page(&p, &location, Some(&answer)).into_response())
}

/// Makes this browser the door terminal of a place: a new session that reaches that terminal only
/// replaces the officer's own here (docs/access.md).
pub(crate) async fn make_terminal(Visitor { st, p, .. }: Visitor, Path(location): Path<String>, Form(f): Form<CsrfForm>) -> WebResult {
    check_csrf(&p, &f.csrf)?;
    let l = id(LocationId::parse(&location))?;
    let (pp, ll) = (p.clone(), l.clone());
    let allowed = st
        .site
        .call(move |site| {
            let s = site.state();
            s.locations.get(&ll).is_some_and(|x| {
                qm_core::access::controlled(x.kind) && crate::api::access::runs_terminal(s, &pp, &x.unit, x.keeper.as_ref())
            })
        })
        .await?;
    let Some(old) = p.session_id().filter(|_| allowed) else {
        let why = format!("badge {} may not make a door terminal of {location}", p.badge);
        crate::auth::record_denial(&st, p.badge.as_str(), "door_terminal", &why).await;
        return Err(WebError(ApiError::forbidden("permission.role", format!("refused: {why} (rule permission.role)"))));
    };
    let password = st.auth.password_of(old).unwrap_or_default();
    let (sid, _) = st.auth.create_door(p.badge.clone(), password, l.as_str());
    st.auth.remove(old);
    Ok(([(axum::http::header::SET_COOKIE, st.auth.cookie(&sid))], axum::response::Redirect::to(&format!("/door/{l}"))).into_response())
}

pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/access", get(access_page))
        .route("/access/{location}", get(place_page))
        .route("/access/{location}/grant", post(grant_form))
        .route("/access/{location}/revoke/{badge}", post(revoke_form))
        .route("/access/{location}/terminal", post(make_terminal))
        .route("/door/{location}", get(door_page).post(door_post))
}
