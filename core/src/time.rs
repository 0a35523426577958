//! Wall-clock time as passed in by the runtime; core never reads a clock.

use alloc::string::String;
use core::fmt::Write as _;

/// Nanoseconds since the Unix epoch, as given by the runtime for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    pub nanos: u64,
}

impl UnixTime {
    /// A time from whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            nanos: secs.saturating_mul(1_000_000_000),
        }
    }

    /// A time from milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self {
            nanos: ms.saturating_mul(1_000_000),
        }
    }

    /// Whole seconds since the epoch.
    pub const fn secs(self) -> u64 {
        self.nanos / 1_000_000_000
    }

    /// This time plus `secs` seconds, saturating.
    pub const fn plus_secs(self, secs: u64) -> Self {
        Self {
            nanos: self
                .nanos
                .saturating_add(secs.saturating_mul(1_000_000_000)),
        }
    }

    /// RFC 3339 in UTC with second precision, as Kubernetes writes `metav1.Time`.
    pub fn rfc3339(self) -> String {
        let mut out = String::with_capacity(20);
        let (y, mo, d, h, mi, s) = civil(self.secs());
        let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
        out
    }

    /// RFC 3339 with microseconds, as Kubernetes writes `metav1.MicroTime` (leases, events).
    pub fn rfc3339_micros(self) -> String {
        let mut out = String::with_capacity(27);
        let (y, mo, d, h, mi, s) = civil(self.secs());
        let micros = (self.nanos % 1_000_000_000) / 1_000;
        let _ = write!(
            out,
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z"
        );
        out
    }

    /// An HTTP date (RFC 9110 IMF-fixdate), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    pub fn http_date(self) -> String {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let secs = self.secs();
        let (y, mo, d, h, mi, s) = civil(secs);
        let weekday = DAYS.get((secs / 86_400 % 7) as usize).unwrap_or(&"Thu");
        let month = MONTHS.get(mo.saturating_sub(1) as usize).unwrap_or(&"Jan");
        let mut out = String::with_capacity(29);
        let _ = write!(
            out,
            "{weekday}, {d:02} {month} {y:04} {h:02}:{mi:02}:{s:02} GMT"
        );
        out
    }

    /// The same date and time of day one year later, as Go's `AddDate(1, 0, 0)` (29 February
    /// becomes 1 March).
    pub fn plus_one_year(self) -> Self {
        let secs = self.secs();
        let (y, mo, d, ..) = civil(secs);
        let Ok(year) = i64::try_from(y) else {
            return self;
        };
        let days = days_from_civil(year.saturating_add(1), mo, d);
        let Ok(days) = u64::try_from(days) else {
            return self;
        };
        Self {
            nanos: days
                .saturating_mul(86_400)
                .saturating_add(secs % 86_400)
                .saturating_mul(1_000_000_000)
                .saturating_add(self.nanos % 1_000_000_000),
        }
    }

    /// Parses the RFC 3339 forms Kubernetes emits (`Z` or numeric offset, optional fraction).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() < 20 {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<u64> {
            let part = text.get(from..to)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        if b.get(4) != Some(&b'-')
            || b.get(7) != Some(&b'-')
            || !matches!(b.get(10), Some(b'T' | b't'))
        {
            return None;
        }
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut idx = 19;
        let mut nanos = 0u64;
        if b.get(idx) == Some(&b'.') {
            idx += 1;
            let start = idx;
            while b.get(idx).is_some_and(u8::is_ascii_digit) {
                idx += 1;
            }
            let digits = text.get(start..idx)?;
            if digits.is_empty() {
                return None;
            }
            let mut scale = 1_000_000_000u64;
            for c in digits.bytes().take(9) {
                scale /= 10;
                nanos += u64::from(c - b'0') * scale;
            }
        }
        let offset_secs: i64 = match b.get(idx) {
            Some(b'Z' | b'z') if idx + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if idx + 6 == b.len() => {
                let oh = i64::try_from(num(idx + 1, idx + 3)?).ok()?;
                let om = i64::try_from(num(idx + 4, idx + 6)?).ok()?;
                let v = oh * 3600 + om * 60;
                if *sign == b'+' { v } else { -v }
            }
            _ => return None,
        };
        let days = days_from_civil(i64::try_from(year).ok()?, month, day);
        let secs =
            days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()? - offset_secs;
        let secs = u64::try_from(secs).ok()?;
        Some(Self {
            nanos: secs.checked_mul(1_000_000_000)?.checked_add(nanos)?,
        })
    }
}

fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 (UTC) of a protobuf `Timestamp` at any instant from year 1 to 9999, as Go formats
/// `metav1.Time` (`micro` false: whole seconds) and `metav1.MicroTime` (microseconds); `None`
/// outside that range.
pub fn rfc3339_signed(seconds: i64, nanos: u32, micro: bool) -> Option<String> {
    // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    if !(-62_135_596_800..=253_402_300_799).contains(&seconds) {
        return None;
    }
    let days = seconds.div_euclid(86_400);
    let rem = u64::try_from(seconds.rem_euclid(86_400)).ok()?;
    let shifted = u64::try_from(days.checked_add(719_468)?).ok()?;
    let (y, mo, d, h, mi, s) = civil_days(shifted, rem);
    let mut out = String::with_capacity(27);
    if micro {
        let _ = write!(
            out,
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z",
            nanos / 1_000
        );
    } else {
        let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
    }
    Some(out)
}

fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    civil_days(secs / 86_400 + 719_468, secs % 86_400)
}

/// Civil date of `z` days since 0000-03-01 and `rem` seconds into that day.
fn civil_days(z: u64, rem: u64) -> (u64, u64, u64, u64, u64, u64) {
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_timestamps_reach_year_one() {
        assert_eq!(
            rfc3339_signed(-62_135_596_798, 0, true).as_deref(),
            Some("0001-01-01T00:00:02.000000Z")
        );
        assert_eq!(
            rfc3339_signed(-1, 500_000_000, false).as_deref(),
            Some("1969-12-31T23:59:59Z")
        );
        assert_eq!(
            rfc3339_signed(784_111_777, 123_456_789, true).as_deref(),
            Some("1994-11-06T08:49:37.123456Z")
        );
        assert!(rfc3339_signed(-62_135_596_801, 0, false).is_none());
    }

    #[test]
    fn http_dates_and_years() {
        let t = UnixTime::from_secs(784_111_777);
        assert_eq!(t.http_date(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            UnixTime::from_secs(0).http_date(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            t.plus_one_year().http_date(),
            "Mon, 06 Nov 1995 08:49:37 GMT"
        );
        let leap = UnixTime::parse_rfc3339("2024-02-29T12:00:00Z").unwrap();
        assert_eq!(leap.plus_one_year().rfc3339(), "2025-03-01T12:00:00Z");
    }

    #[test]
    fn formats_and_parses_round_trip() {
        let t = UnixTime::from_secs(1_731_627_989);
        assert_eq!(t.rfc3339(), "2024-11-14T23:46:29Z");
        assert_eq!(UnixTime::parse_rfc3339("2024-11-14T23:46:29Z"), Some(t));
        assert_eq!(
            UnixTime::parse_rfc3339("2024-11-15T00:46:29+01:00"),
            Some(t)
        );
        assert_eq!(UnixTime::from_secs(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            UnixTime {
                nanos: 1_500_000_000
            }
            .rfc3339_micros(),
            "1970-01-01T00:00:01.500000Z"
        );
        assert!(UnixTime::parse_rfc3339("2024-13-14T23:46:29Z").is_none());
        assert!(UnixTime::parse_rfc3339("garbage").is_none());
    }
}
