//! Times for people: in the user's time zone (`TZ`, else the system's
//! `/etc/localtime`; UTC when neither is known), to the minute.
//!
//! Message times show the date only when it is not today ("09:41", or
//! "2026-12-01 23:04"); dates such as a certificate's end always carry the
//! date and the zone ("2027-12-01 09:00 KST"), since they are read later
//! and elsewhere. Times stay in seconds since the Unix epoch everywhere
//! else: this is only how they are shown.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// A zone and the day it is now there, to write times in.
#[derive(Clone, Debug)]
pub struct LocalTime {
    zone: TimeZone,
    today: Date,
}

impl LocalTime {
    /// The user's zone, now.
    pub fn system() -> Self {
        Self::new(TimeZone::system(), baro_node::clock::unix_now())
    }

    /// `zone`, with `now` (Unix seconds) for "today".
    pub fn new(zone: TimeZone, now: u64) -> Self {
        let today = instant(now).to_zoned(zone.clone()).date();
        LocalTime { zone, today }
    }

    /// A message's time: "09:41" today, else "2026-12-01 23:04".
    pub fn short(&self, secs: u64) -> String {
        let zoned = instant(secs).to_zoned(self.zone.clone());
        if zoned.date() == self.today {
            zoned.strftime("%H:%M").to_string()
        } else {
            zoned.strftime("%Y-%m-%d %H:%M").to_string()
        }
    }

    /// A date to keep: "2027-12-01 09:00 KST" (the zone's abbreviation, or
    /// its offset when it has none).
    pub fn full(&self, secs: u64) -> String {
        let zoned = instant(secs).to_zoned(self.zone.clone());
        let abbreviation = zoned.strftime("%Z").to_string();
        // Zones without a name of their own abbreviate as "+09" or "-03".
        if abbreviation.starts_with(['+', '-']) {
            zoned.strftime("%Y-%m-%d %H:%M UTC%:z").to_string()
        } else {
            format!("{} {abbreviation}", zoned.strftime("%Y-%m-%d %H:%M"))
        }
    }
}

/// [`LocalTime::full`] in the user's zone.
pub fn date(secs: u64) -> String {
    LocalTime::system().full(secs)
}

/// Seconds past anything a timestamp holds are shown as its last instant.
fn instant(secs: u64) -> Timestamp {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| Timestamp::from_second(secs).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01 23:04:00 UTC, which is 2026-12-02 08:04 in Seoul.
    const LATE_EVENING_UTC: u64 = 1_796_166_240;

    fn seoul(now: u64) -> LocalTime {
        LocalTime::new(TimeZone::posix("KST-9").expect("POSIX zone"), now)
    }

    #[test]
    fn a_message_of_today_shows_the_local_time_only() {
        let time = seoul(LATE_EVENING_UTC + 3600);
        assert_eq!(time.short(LATE_EVENING_UTC), "08:04");
    }

    #[test]
    fn a_message_of_another_local_day_shows_its_date() {
        // In UTC both instants are on 2026-12-01; in Seoul the message is of
        // the 2nd and "now" of the 3rd.
        let time = seoul(LATE_EVENING_UTC + 86_400);
        assert_eq!(time.short(LATE_EVENING_UTC), "2026-12-02 08:04");
    }

    #[test]
    fn a_date_to_keep_names_its_zone() {
        let time = seoul(0);
        assert_eq!(time.full(LATE_EVENING_UTC), "2026-12-02 08:04 KST");
        let utc = LocalTime::new(TimeZone::UTC, 0);
        assert_eq!(utc.full(LATE_EVENING_UTC), "2026-12-01 23:04 UTC");
    }

    #[test]
    fn a_zone_without_an_abbreviation_shows_its_offset() {
        let time = LocalTime::new(TimeZone::fixed(jiff::tz::offset(-3)), 0);
        assert_eq!(time.full(LATE_EVENING_UTC), "2026-12-01 20:04 UTC-03:00");
    }

    #[test]
    fn a_time_past_the_calendar_does_not_panic() {
        assert!(!seoul(0).full(u64::MAX).is_empty());
    }
}
