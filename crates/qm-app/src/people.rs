//! The staff of a unit as the people page, `GET /api/people` and `qm person list` show them: roles,
//! qualifications and when each expires, whether the person is suspended, what they hold and the
//! keys among it (docs/permissions.md, "People").

use qm_core::*;
use serde::Serialize;
use time::Date;

#[derive(Clone, Debug, Serialize)]
pub struct PersonView {
    pub badge: String,
    pub name: String,
    pub unit: String,
    pub roles: Vec<String>,
    pub qualifications: Vec<QualificationView>,
    /// "since DATE by BADGE: reason", while suspended.
    pub suspended: Option<String>,
    /// How many serials and lots they hold now.
    pub holds: usize,
    /// The keys among what they hold, with the place each opens.
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct QualificationView {
    pub qualification: String,
    pub expires: Date,
    pub expired: bool,
}

/// One person's view on `today`.
pub fn view(state: &State, badge: &Badge, p: &qm_core::state::Person, today: Date) -> PersonView {
    let (serials, lots) = state.custody(badge);
    let keys = serials
        .iter()
        .filter_map(|(s, si)| qm_core::access::key_opens(state, &si.item_type).map(|place| format!("{s} (opens {place})")))
        .collect();
    PersonView {
        badge: badge.to_string(),
        name: p.name.clone(),
        unit: p.unit.to_string(),
        roles: p.roles.iter().map(|r| r.to_string()).collect(),
        qualifications: p
            .qualifications
            .iter()
            .map(|(q, d)| QualificationView { qualification: q.clone(), expires: *d, expired: *d < today })
            .collect(),
        suspended: p.suspended.as_ref().map(|s| format!("since {} by {}: {}", s.since.date(), s.by, s.reason)),
        holds: serials.len() + lots.len(),
        keys,
    }
}

/// The people of `unit`'s subtree (all of them for `None`), by unit then badge.
pub fn list(state: &State, within: Option<&UnitId>, today: Date) -> Vec<PersonView> {
    let mut out: Vec<PersonView> = state
        .people
        .iter()
        .filter(|(_, p)| within.is_none_or(|u| state.unit_within(&p.unit, u)))
        .map(|(b, p)| view(state, b, p, today))
        .collect();
    out.sort_by(|a, b| a.unit.cmp(&b.unit).then_with(|| a.badge.cmp(&b.badge)));
    out
}
