//! Policy: what a unit requires, and the effective policy of a unit as the strictest over its ancestors.

use crate::model::Role;
use crate::quantity::Quantity;
use serde::{Deserialize, Serialize};

/// Local hours within which issues are allowed, as minutes after midnight (from < until).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueHours {
    pub from_min: u16,
    pub until_min: u16,
}

impl IssueHours {
    pub fn contains(&self, minute_of_day: u16) -> bool {
        (self.from_min..self.until_min).contains(&minute_of_day)
    }
}

impl std::fmt::Display for IssueHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}-{:02}:{:02}", self.from_min / 60, self.from_min % 60, self.until_min / 60, self.until_min % 60)
    }
}

/// What one unit sets for its subtree. A `false` or `None` means "this unit adds nothing",
/// never "relax": the effective policy takes the strictest value along the path from the root,
/// so a lower unit can tighten but never loosen what a higher one set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRules {
    /// Any movement of explosives (items with NEQ, or kind explosive/component) needs a witness.
    #[serde(default)]
    pub two_person_explosives: bool,
    /// Every movement needs a witness (a raised posture).
    #[serde(default)]
    pub two_person_all_movements: bool,
    /// Approving a discrepancy needs a witness.
    #[serde(default)]
    pub two_person_count_resolution: bool,
    /// The counter may not be the keeper of a location in the counted subtree.
    #[serde(default)]
    pub counter_not_keeper: bool,
    /// The counter may not be the person who did the previous count of that location.
    #[serde(default)]
    pub counter_not_previous: bool,
    /// A cap on the quantity of ammunition one issue may carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_issue_quantity: Option<Quantity>,
    /// Counts must be blind (a directive's `blind-counts`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blind_counts_only: bool,
    /// Transfers out need a witness with this role (a directive's transfer freeze).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_approver: Option<Role>,
    /// No issue outside these local hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_hours: Option<IssueHours>,
    /// Nobody alone inside an armory, depot or magazine: a second roster member follows the first
    /// within `partner_within_min`, and the last two leave together (docs/access.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub two_person_entry: bool,
    /// Minutes within which the second person must follow (default
    /// [`crate::access::PARTNER_WITHIN_MIN_DEFAULT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_within_min: Option<u16>,
    /// No entry outside these local hours, whatever the roster says (a directive's `entry-hours`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_hours: Option<IssueHours>,
    /// The longest anyone may stay inside, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_inside_min: Option<u32>,
    /// Every armory, depot and magazine of the unit's subtree has a full count at least this often
    /// (days): the count schedule the counts page and the dashboard keep (docs/counts.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_count_every_days: Option<u16>,
}

/// The tighter of two optional limits: the smaller.
fn least<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Both windows apply: their intersection (empty when they do not meet: nothing at all).
fn within(a: Option<IssueHours>, b: Option<IssueHours>) -> Option<IssueHours> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let from_min = a.from_min.max(b.from_min);
            Some(IssueHours { from_min, until_min: a.until_min.min(b.until_min).max(from_min) })
        }
        (a, b) => a.or(b),
    }
}

impl PolicyRules {
    /// Defaults the whole organization starts from (DESIGN.md: explosives and count resolutions need two people).
    pub fn baseline() -> PolicyRules {
        PolicyRules { two_person_explosives: true, two_person_count_resolution: true, ..PolicyRules::default() }
    }

    /// The stricter of two policies, field by field.
    pub fn tighten(&self, other: &PolicyRules) -> PolicyRules {
        PolicyRules {
            two_person_explosives: self.two_person_explosives || other.two_person_explosives,
            two_person_all_movements: self.two_person_all_movements || other.two_person_all_movements,
            two_person_count_resolution: self.two_person_count_resolution || other.two_person_count_resolution,
            counter_not_keeper: self.counter_not_keeper || other.counter_not_keeper,
            counter_not_previous: self.counter_not_previous || other.counter_not_previous,
            max_issue_quantity: least(self.max_issue_quantity, other.max_issue_quantity),
            blind_counts_only: self.blind_counts_only || other.blind_counts_only,
            // The first freeze (the higher unit's) names the approver.
            transfer_approver: self.transfer_approver.or(other.transfer_approver),
            issue_hours: within(self.issue_hours, other.issue_hours),
            two_person_entry: self.two_person_entry || other.two_person_entry,
            partner_within_min: least(self.partner_within_min, other.partner_within_min),
            entry_hours: within(self.entry_hours, other.entry_hours),
            max_inside_min: least(self.max_inside_min, other.max_inside_min),
            full_count_every_days: least(self.full_count_every_days, other.full_count_every_days),
        }
    }
}

/// The policy in force at one unit: the baseline tightened by every unit's rules from the root down.
/// Rules read only this, so directives (later) can tighten it without changing any rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EffectivePolicy(pub PolicyRules);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tighten_never_relaxes() {
        let parent = PolicyRules { counter_not_keeper: true, max_issue_quantity: Some(Quantity::units(60)), ..PolicyRules::default() };
        let child = PolicyRules { max_issue_quantity: Some(Quantity::units(90)), two_person_all_movements: true, ..PolicyRules::default() };
        let eff = PolicyRules::baseline().tighten(&parent).tighten(&child);
        assert!(eff.counter_not_keeper && eff.two_person_all_movements && eff.two_person_explosives);
        assert_eq!(eff.max_issue_quantity, Some(Quantity::units(60)));
    }
}
