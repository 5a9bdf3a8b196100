//! Local time for people: the UTC offset in force at a site and its abbreviation, so every time a
//! refusal shows carries its zone. The zone's rules (tz database) stay at the edge: `qm-app` works
//! out the offset for the moment a command is made and hands it over in the `Ctx`.

use time::{OffsetDateTime, UtcOffset};

/// The offset in force at a site at one moment, and what people call it ("CET", "UTC", "+0530").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalZone {
    pub offset: UtcOffset,
    pub abbreviation: String,
}

impl Default for LocalZone {
    fn default() -> LocalZone {
        LocalZone::utc()
    }
}

impl LocalZone {
    pub fn utc() -> LocalZone {
        LocalZone { offset: UtcOffset::UTC, abbreviation: "UTC".into() }
    }

    /// `2026-11-23 07:02 CET`: the short form of a time at the counter, in this zone.
    pub fn show(&self, t: OffsetDateTime) -> String {
        let l = t.to_offset(self.offset);
        format!("{:04}-{:02}-{:02} {:02}:{:02} {}", l.year(), u8::from(l.month()), l.day(), l.hour(), l.minute(), self.abbreviation)
    }
}

/// Whether `name` looks like a tz database zone name (`Europe/Paris`, `UTC`, `America/Argentina/Salta`):
/// the core checks the shape; the edge checks that the zone exists.
pub fn valid_zone_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split('/').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_carry_their_zone() {
        let t = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(6);
        assert_eq!(LocalZone::utc().show(t), "1970-01-01 06:00 UTC");
        let cet = LocalZone { offset: UtcOffset::from_hms(1, 0, 0).unwrap(), abbreviation: "CET".into() };
        assert_eq!(cet.show(t), "1970-01-01 07:00 CET");
        assert!(valid_zone_name("Europe/Paris") && valid_zone_name("UTC") && valid_zone_name("Etc/GMT+5"));
        assert!(!valid_zone_name("") && !valid_zone_name("Europe//Paris") && !valid_zone_name("../etc/passwd") && !valid_zone_name("A B"));
    }
}
