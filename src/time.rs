//! Wall-clock time as RFC 3339 text, without a date crate.
//!
//! Only UTC is written. [`parse_rfc3339`] requires an offset: an expiry read
//! wrongly by hours is worse than an error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-28T08:54:11.123Z` (milliseconds, UTC), for message timestamps.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let millis = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .subsec_millis();
    let whole = format_rfc3339(t);
    format!("{}.{millis:03}Z", whole.trim_end_matches('Z'))
}

/// Parses an RFC 3339 time such as `2026-11-28T12:00:00Z` or
/// `2026-11-28T13:00:00.25+01:00`. The offset is required: a time without one
/// is ambiguous, and an expiry read wrongly by hours is worse than an error.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || !text.is_ascii() {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = &b[range];
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| b[at] != c) || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);

    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        // Digits past nanoseconds are dropped.
        nanos = fraction[..len.min(9)]
            .iter()
            .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
            * 10u32.pow(9 - len.min(9) as u32);
        rest = &fraction[len..];
    }
    let offset_seconds = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [h1, h2, m1, m2];
            if !digits.iter().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (hours, minutes) = (
                i64::from((h1 - b'0') * 10 + (h2 - b'0')),
                i64::from((m1 - b'0') * 10 + (m2 - b'0')),
            );
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };

    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        // 60 is a leap second; counting it as the next minute's first is close enough.
        && second <= 60;
    if !valid {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    let whole = Duration::from_secs(seconds.unsigned_abs());
    let at = if seconds >= 0 {
        UNIX_EPOCH.checked_add(whole)?
    } else {
        UNIX_EPOCH.checked_sub(whole)?
    };
    at.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// `2026-11-28T12:00:00Z`, whole seconds, UTC.
pub fn format_rfc3339(time: SystemTime) -> String {
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => -(before.duration().as_secs_f64().ceil() as i64),
    };
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = (month_from_march + 2) % 12 + 1;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn formats_known_instants_with_milliseconds() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_856_051_123);
        assert_eq!(rfc3339_utc(t), "2026-11-28T08:54:11.123Z");
        assert_eq!(parse_rfc3339(&rfc3339_utc(t)), Some(t));
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_utc(leap), "2000-02-29T00:00:00.000Z");
    }

    // --- RFC 3339 ------------------------------------------------------------

    #[test]
    fn rfc3339_parses_utc_offsets_and_fractions() {
        let noon = UNIX_EPOCH + Duration::from_secs(1_795_867_200);
        assert_eq!(parse_rfc3339("2026-11-28T12:00:00Z"), Some(noon));
        assert_eq!(parse_rfc3339("2026-11-28t12:00:00z"), Some(noon));
        assert_eq!(parse_rfc3339("2026-11-28 12:00:00Z"), Some(noon));
        assert_eq!(parse_rfc3339("2026-11-28T13:30:00+01:30"), Some(noon));
        assert_eq!(parse_rfc3339("2026-11-28T07:00:00-05:00"), Some(noon));
        assert_eq!(
            parse_rfc3339("2026-11-28T12:00:00.25Z"),
            Some(noon + Duration::from_millis(250))
        );
        assert_eq!(
            parse_rfc3339("2026-11-28T12:00:00.1234567891Z"),
            Some(noon + Duration::from_nanos(123_456_789))
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_rfc3339("1969-12-31T23:59:59Z"),
            Some(UNIX_EPOCH - Duration::from_secs(1))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_164_800))
        );
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
    }

    #[test]
    fn rfc3339_rejects_malformed_times() {
        for text in [
            "",
            "2026-11-28",
            "2026-11-28T12:00:00",
            "2026-11-28T12:00:00+0100",
            "2026-11-28T12:00:00.Z",
            "2026-11-28X12:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T12:60:00Z",
            "2026-11-28T12:00:61Z",
            "2026-11-28T12:00:00+24:00",
            "2026-1a-28T12:00:00Z",
            "+026-11-28T12:00:00Z",
            "2026-11-28T12:00:00Zjunk",
            "2026-11-28T12:00:00é",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text:?}");
        }
    }

    #[test]
    fn rfc3339_formats_what_it_parses() {
        for text in [
            "2026-11-28T12:00:00Z",
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "1969-12-31T23:59:59Z",
            "2100-03-01T00:00:00Z",
        ] {
            assert_eq!(format_rfc3339(at(text)), text);
        }
    }
}
