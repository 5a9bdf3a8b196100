//! The site's time zone, from the tz database bundled into the binary (`jiff`, no system files):
//! every time shown to people carries its zone, and refusals get the offset in force (`Ctx::zone`).

use crate::{AppError, Result};
use qm_core::zone::LocalZone;
use qm_core::State;
use time::{OffsetDateTime, UtcOffset};

/// A site's zone: a tz database zone such as `Europe/Paris`, UTC until one is set.
#[derive(Clone, Debug)]
pub struct SiteZone {
    tz: jiff::tz::TimeZone,
    pub name: String,
}

impl SiteZone {
    pub fn utc() -> SiteZone {
        SiteZone { tz: jiff::tz::TimeZone::UTC, name: "UTC".into() }
    }

    /// The zone named `name`, or a usage error naming it.
    pub fn get(name: &str) -> Result<SiteZone> {
        if !qm_core::zone::valid_zone_name(name) {
            return Err(AppError::Usage(format!("{name:?} is not a time zone name such as Europe/Paris or UTC")));
        }
        jiff::tz::TimeZone::get(name)
            .map(|tz| SiteZone { tz, name: name.to_string() })
            .map_err(|_| AppError::Usage(format!("{name:?} is not a time zone of the tz database (such as Europe/Paris or UTC)")))
    }

    /// The site's zone as its books say (UTC when none was set, or a name this build does not know).
    pub fn of(state: &State) -> SiteZone {
        state.time_zone.as_deref().and_then(|z| SiteZone::get(z).ok()).unwrap_or_else(SiteZone::utc)
    }

    /// The offset in force at `t`, and its abbreviation.
    pub fn at(&self, t: OffsetDateTime) -> LocalZone {
        let ts = jiff::Timestamp::from_second(t.unix_timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let info = self.tz.to_offset_info(ts);
        let offset = UtcOffset::from_whole_seconds(info.offset().seconds()).unwrap_or(UtcOffset::UTC);
        let abbreviation = match info.abbreviation() {
            "" => format!("{:+03}{:02}", offset.whole_hours(), offset.minutes_past_hour().abs()),
            a => a.to_string(),
        };
        LocalZone { offset, abbreviation }
    }

    /// `2026-11-23 07:02 CET`.
    pub fn show(&self, t: OffsetDateTime) -> String {
        self.at(t).show(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_database_knows_summer_and_winter_time() {
        let paris = SiteZone::get("Europe/Paris").unwrap();
        let winter = time::macros::datetime!(2026-01-15 06:00 UTC);
        let summer = time::macros::datetime!(2026-07-15 06:00 UTC);
        assert_eq!(paris.show(winter), "2026-01-15 07:00 CET");
        assert_eq!(paris.show(summer), "2026-07-15 08:00 CEST");
        assert_eq!(SiteZone::utc().show(winter), "2026-01-15 06:00 UTC");
        assert!(SiteZone::get("Mars/Olympus_Mons").unwrap_err().to_string().contains("Mars/Olympus_Mons"));
        assert!(SiteZone::get("../../etc/passwd").is_err());
    }
}
