//! Wall-clock time as RFC 3339 text, through jiff (already in the tree,
//! for env_logger's timestamps).
//!
//! Only UTC is written. [`parse_rfc3339`] requires an offset: an expiry read
//! wrongly by hours is worse than an error.

use std::time::SystemTime;

use jiff::{RoundMode, Timestamp, TimestampRound, Unit};

/// `t` cut down to a whole `unit` (towards the past), as a jiff timestamp;
/// the epoch for a time jiff cannot hold (past the year 9999).
fn cut_to(t: SystemTime, unit: Unit) -> Timestamp {
    let cut = TimestampRound::new().smallest(unit).mode(RoundMode::Floor);
    Timestamp::try_from(t)
        .and_then(|ts| ts.round(cut))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `2026-11-28T08:54:11.123Z` (milliseconds, UTC), for message timestamps.
pub fn rfc3339_utc(t: SystemTime) -> String {
    // Cut to whole milliseconds first: `{:.3}` alone would round.
    format!("{:.3}", cut_to(t, Unit::Millisecond))
}

/// Parses an RFC 3339 time such as `2026-11-28T12:00:00Z` or
/// `2026-11-28T13:00:00.25+01:00`. The offset is required: a time without one
/// is ambiguous, and an expiry read wrongly by hours is worse than an error.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    // jiff reads RFC 9557 / ISO 8601 too; only the RFC 3339 shape is taken
    // (an offset with its colon), and fractions past nanoseconds are cut.
    let b = text.as_bytes();
    let shape = b.len() >= 20
        && text.is_ascii()
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !shape {
        return None;
    }
    let rest = &text[19..];
    let (fraction, offset) = match rest.strip_prefix('.') {
        Some(after) => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            (&after[..digits.min(9)], &after[digits..])
        }
        None => ("", rest),
    };
    let o = offset.as_bytes();
    let offset_ok = matches!(offset, "Z" | "z")
        || (o.len() == 6
            && matches!(o[0], b'+' | b'-')
            && o[3] == b':'
            && offset[1..3].parse::<u8>().is_ok_and(|h| h < 24)
            && offset[4..6].parse::<u8>().is_ok_and(|m| m < 60));
    if !offset_ok {
        return None;
    }
    let text = if fraction.is_empty() {
        format!("{}{offset}", &text[..19])
    } else {
        format!("{}.{fraction}{offset}", &text[..19])
    };
    let ts: Timestamp = text.parse().ok()?;
    SystemTime::try_from(ts).ok()
}

/// `2026-11-28T12:00:00Z`, whole seconds, UTC.
pub fn format_rfc3339(time: SystemTime) -> String {
    cut_to(time, Unit::Second).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
        // Cut, not rounded, on both sides of the epoch.
        let late = UNIX_EPOCH + Duration::from_nanos(1_999_999_999);
        assert_eq!(rfc3339_utc(late), "1970-01-01T00:00:01.999Z");
        assert_eq!(format_rfc3339(late), "1970-01-01T00:00:01Z");
        let before = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(rfc3339_utc(before), "1969-12-31T23:59:58.500Z");
        assert_eq!(format_rfc3339(before), "1969-12-31T23:59:58Z");
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
