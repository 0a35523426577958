//! `metav1.Time` and `metav1.MicroTime` as kube-apiserver decodes them: Go's `time.Parse` with the
//! RFC 3339 layouts, accepting what it accepts and failing with its error text (kube returns that
//! text verbatim), then written back in UTC the way kube marshals them.

use alloc::format;
use alloc::string::String;
use core::fmt::Write as _;
use serde_json::Value;

use crate::UnixTime;

/// Which of the two metav1 time types a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `metav1.Time`: layout `time.RFC3339`, marshalled with whole seconds.
    Seconds,
    /// `metav1.MicroTime`: layout `2006-01-02T15:04:05.000000Z07:00`, exactly six fraction digits.
    Micros,
}

impl Precision {
    fn layout(self) -> &'static str {
        match self {
            Self::Seconds => "2006-01-02T15:04:05Z07:00",
            Self::Micros => "2006-01-02T15:04:05.000000Z07:00",
        }
    }

    fn chunks(self) -> &'static [(&'static str, Std)] {
        match self {
            Self::Seconds => &[
                ("", Std::LongYear),
                ("-", Std::ZeroMonth),
                ("-", Std::ZeroDay),
                ("T", Std::Hour),
                (":", Std::ZeroMinute),
                (":", Std::ZeroSecond),
                ("", Std::ColonTz),
            ],
            Self::Micros => &[
                ("", Std::LongYear),
                ("-", Std::ZeroMonth),
                ("-", Std::ZeroDay),
                ("T", Std::Hour),
                (":", Std::ZeroMinute),
                (":", Std::ZeroSecond),
                ("", Std::Micros),
                ("", Std::ColonTz),
            ],
        }
    }
}

/// The layout elements of the two layouts (Go's `std*` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongYear,
    ZeroMonth,
    ZeroDay,
    Hour,
    ZeroMinute,
    ZeroSecond,
    Micros,
    ColonTz,
}

impl Std {
    fn text(self) -> &'static str {
        match self {
            Self::LongYear => "2006",
            Self::ZeroMonth => "01",
            Self::ZeroDay => "02",
            Self::Hour => "15",
            Self::ZeroMinute => "04",
            Self::ZeroSecond => "05",
            Self::Micros => ".000000",
            Self::ColonTz => "Z07:00",
        }
    }
}

/// An instant in UTC: seconds since the Unix epoch (negative before 1970) and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

/// Seconds from 1970 to Go's zero `time.Time` (0001-01-01T00:00:00Z), which marshals as `null`.
const GO_ZERO_SECS: i64 = -62_135_596_800;

/// Go's `time.Parse(layout, value)`: the instant, or Go's `*time.ParseError` text.
pub fn parse(value: &str, precision: Precision) -> Result<Instant, String> {
    let err = |elem_layout: &str, elem_value: &[u8]| {
        let mut text = String::from("parsing time ");
        text.push_str(&quote(value.as_bytes()));
        text.push_str(" as ");
        text.push_str(&quote(precision.layout().as_bytes()));
        text.push_str(": cannot parse ");
        text.push_str(&quote(elem_value));
        text.push_str(" as ");
        text.push_str(&quote(elem_layout.as_bytes()));
        text
    };
    let message = |tail: &str| {
        let mut text = String::from("parsing time ");
        text.push_str(&quote(value.as_bytes()));
        text.push_str(tail);
        text
    };
    let mut rest = value.as_bytes();
    let (mut year, mut month, mut day, mut hour, mut minute, mut second) = (0i64, 1, 1, 0, 0, 0);
    let mut nanos = 0u32;
    let mut offset = 0i64;
    for &(prefix, std) in precision.chunks() {
        // Go's `skip`: the literal prefix must match byte by byte.
        for &want in prefix.as_bytes() {
            match rest.split_first() {
                Some((&got, tail)) if got == want => rest = tail,
                _ => return Err(err(prefix, rest)),
            }
        }
        let hold = rest;
        let mut range = "";
        let ok = match std {
            Std::LongYear => match rest.get(..4) {
                Some(digits) if digits.first().is_some_and(u8::is_ascii_digit) => {
                    rest = rest.get(4..).unwrap_or_default();
                    atoi(digits).map(|y| year = y).is_some()
                }
                _ => false,
            },
            Std::ZeroMonth => getnum(&mut rest, true)
                .map(|m| {
                    month = m;
                    if !(1..=12).contains(&m) {
                        range = "month";
                    }
                })
                .is_some(),
            Std::ZeroDay => getnum(&mut rest, true).map(|d| day = d).is_some(),
            Std::Hour => getnum(&mut rest, false)
                .map(|h| {
                    hour = h;
                    if h >= 24 {
                        range = "hour";
                    }
                })
                .is_some(),
            Std::ZeroMinute => getnum(&mut rest, true)
                .map(|m| {
                    minute = m;
                    if m >= 60 {
                        range = "minute";
                    }
                })
                .is_some(),
            Std::ZeroSecond => match getnum(&mut rest, true) {
                None => false,
                Some(s) if s >= 60 => {
                    range = "second";
                    true
                }
                Some(s) => {
                    second = s;
                    // A fraction the layout does not name is still read (Time only; the
                    // MicroTime layout names its own).
                    let fraction = matches!(rest.first(), Some(b'.' | b','))
                        && rest.get(1).is_some_and(u8::is_ascii_digit);
                    if fraction && precision == Precision::Seconds {
                        let n = 2 + rest
                            .get(2..)
                            .unwrap_or_default()
                            .iter()
                            .take_while(|b| b.is_ascii_digit())
                            .count();
                        let (frac, tail) = rest.split_at(n.min(rest.len()));
                        rest = tail;
                        match nanoseconds(frac) {
                            Ok(n) => nanos = n,
                            Err(r) => range = r,
                        }
                    }
                    true
                }
            },
            Std::Micros => {
                if rest.len() < 7 {
                    false
                } else {
                    let (frac, tail) = rest.split_at(7);
                    rest = tail;
                    match nanoseconds(frac) {
                        Ok(n) => {
                            nanos = n;
                            true
                        }
                        Err("") => false,
                        Err(r) => {
                            range = r;
                            true
                        }
                    }
                }
            }
            Std::ColonTz => {
                if rest.first() == Some(&b'Z') {
                    rest = rest.get(1..).unwrap_or_default();
                    true
                } else if rest.len() < 6 || rest.get(3) != Some(&b':') {
                    false
                } else {
                    let (zone, tail) = rest.split_at(6);
                    rest = tail;
                    let field = |from: usize| {
                        getnum(&mut zone.get(from..from + 2).unwrap_or_default(), true)
                    };
                    match (field(1), field(4)) {
                        (Some(h), Some(m)) => {
                            if h > 24 {
                                range = "time zone offset hour";
                            }
                            if m > 60 {
                                range = "time zone offset minute";
                            }
                            offset = (h * 60 + m) * 60;
                            match zone.first() {
                                Some(b'+') => true,
                                Some(b'-') => {
                                    offset = -offset;
                                    true
                                }
                                _ => false,
                            }
                        }
                        _ => false,
                    }
                }
            }
        };
        if !range.is_empty() {
            let mut tail = String::from(": ");
            tail.push_str(range);
            tail.push_str(" out of range");
            return Err(message(&tail));
        }
        if !ok {
            return Err(err(std.text(), hold));
        }
    }
    if !rest.is_empty() {
        let mut tail = String::from(": extra text: ");
        tail.push_str(&quote(rest));
        return Err(message(&tail));
    }
    if day < 1 || day > days_in(month, year) {
        return Err(message(": day out of range"));
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Ok(Instant { secs, nanos })
}

/// The JSON text kube writes for `instant` (`null` for Go's zero time).
pub fn format(instant: Instant, precision: Precision) -> Option<String> {
    if instant.secs == GO_ZERO_SECS && instant.nanos == 0 {
        return None;
    }
    let days = instant.secs.div_euclid(86_400);
    let rem = instant.secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let mut out = String::with_capacity(27);
    if y < 0 {
        let _ = write!(out, "-{:04}", -y);
    } else {
        let _ = write!(out, "{y:04}");
    }
    let _ = write!(
        out,
        "-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    if precision == Precision::Micros {
        let _ = write!(out, ".{:06}", instant.nanos / 1_000);
    }
    out.push('Z');
    Some(out)
}

/// Decodes one JSON value of a time field as kube's `UnmarshalJSON` does and returns the value
/// kube would store (`null` stays `null`), or the decoding error's text.
pub fn decode(value: &Value, precision: Precision) -> Result<Value, String> {
    let text = match value {
        Value::Null => return Ok(Value::Null),
        Value::String(text) => text,
        other => {
            let kind = match other {
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::Array(_) => "array",
                _ => "object",
            };
            let mut text = String::from("json: cannot unmarshal ");
            text.push_str(kind);
            text.push_str(" into Go value of type string");
            return Err(text);
        }
    };
    let instant = parse(text, precision)?;
    Ok(format(instant, precision).map_or(Value::Null, Value::from))
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`); advances `rest` on success.
fn getnum(rest: &mut &[u8], fixed: bool) -> Option<i64> {
    let first = rest.first().filter(|b| b.is_ascii_digit())?;
    match rest.get(1).filter(|b| b.is_ascii_digit()) {
        Some(second) => {
            let n = i64::from(first - b'0') * 10 + i64::from(second - b'0');
            *rest = rest.get(2..).unwrap_or_default();
            Some(n)
        }
        None if fixed => None,
        None => {
            *rest = rest.get(1..).unwrap_or_default();
            Some(i64::from(first - b'0'))
        }
    }
}

/// Go's `atoi`: an optional sign, then only digits (none at all reads as 0).
fn atoi(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let mut n: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(if negative { -n } else { n })
}

/// Go's `parseNanoseconds` of `.` or `,` and digits: the nanoseconds, `Err("")` for a malformed
/// fraction, `Err("fractional second")` for a negative one.
fn nanoseconds(frac: &[u8]) -> Result<u32, &'static str> {
    if !matches!(frac.first(), Some(b'.' | b',')) {
        return Err("");
    }
    let digits = frac.get(1..frac.len().min(10)).unwrap_or_default();
    let n = atoi(digits).ok_or("")?;
    if n < 0 {
        return Err("fractional second");
    }
    let mut n = n;
    for _ in digits.len()..9 {
        n = n.saturating_mul(10);
    }
    u32::try_from(n).map_err(|_| "")
}

/// Go's `quote` in package time: printable ASCII as is (`"` and `\` escaped), every other byte
/// as `\xNN`.
fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7f => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Decodes every time field of `obj` in place (the form kube stores), or returns the first
/// field's decoding error, as kube's typed decoder stops at the first.
pub(crate) fn normalize(
    resource: crate::resource::ResourceId,
    obj: &mut Value,
) -> Result<(), String> {
    let mut first: Option<String> = None;
    crate::protobuf::visit_times(resource, obj, &mut |precision, value| {
        if first.is_some() {
            return;
        }
        match decode(value, precision) {
            Ok(normal) => *value = normal,
            Err(e) => first = Some(e),
        }
    });
    first.map_or(Ok(()), Err)
}

/// Test helper: the normalised text of a time, or the error.
#[cfg(test)]
fn roundtrip(text: &str, precision: Precision) -> Result<String, String> {
    parse(text, precision).map(|t| format(t, precision).unwrap_or_else(|| "null".into()))
}

/// `duration.HumanDuration` from k8s.io/apimachinery: the AGE format of `kubectl get`.
///
/// Up to 2 s in the future still reads `0s` (clock skew); further is `<invalid>`.
pub fn human_duration(nanos: i128) -> String {
    // Go's `int(d.Seconds())` truncates toward zero.
    let seconds = nanos / 1_000_000_000;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{dy}d")
        };
    }
    format!("{years}y")
}

/// `translateTimestampSince`: `<unknown>` for a missing or unparsable time, else its age at `now`.
pub fn age(timestamp: Option<&Value>, now: UnixTime) -> String {
    match timestamp
        .and_then(Value::as_str)
        .and_then(UnixTime::parse_rfc3339)
    {
        Some(t) => human_duration(i128::from(now.nanos) - i128::from(t.nanos)),
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC: &str = "\"2006-01-02T15:04:05Z07:00\"";

    const SEC: i128 = 1_000_000_000;
    const MIN: i128 = 60 * SEC;
    const HOUR: i128 = 60 * MIN;
    const DAY: i128 = 24 * HOUR;
    const MS: i128 = 1_000_000;

    // Cases from k8s.io/apimachinery/pkg/util/duration TestHumanDuration and
    // TestHumanDurationBoundaries.
    #[test]
    fn human_duration_matches_apimachinery() {
        let cases: &[(i128, &str)] = &[
            (SEC, "1s"),
            (70 * SEC, "70s"),
            (190 * SEC, "3m10s"),
            (70 * MIN, "70m"),
            (47 * HOUR, "47h"),
            (49 * HOUR, "2d1h"),
            ((8 * 24 + 2) * HOUR, "8d"),
            (367 * DAY, "367d"),
            ((365 * 2 * 24 + 25) * HOUR, "2y1d"),
            ((365 * 8 * 24 + 2) * HOUR, "8y"),
            (-2 * SEC, "<invalid>"),
            (-2 * SEC + 1, "0s"),
            (0, "0s"),
            (SEC - MS, "0s"),
            (2 * MIN - MS, "119s"),
            (2 * MIN, "2m"),
            (2 * MIN + SEC, "2m1s"),
            (10 * MIN - MS, "9m59s"),
            (10 * MIN, "10m"),
            (10 * MIN + SEC, "10m"),
            (3 * HOUR - MS, "179m"),
            (3 * HOUR, "3h"),
            (3 * HOUR + MIN, "3h1m"),
            (8 * HOUR - MS, "7h59m"),
            (8 * HOUR, "8h"),
            (8 * HOUR + 59 * MIN, "8h"),
            (2 * DAY - MS, "47h"),
            (2 * DAY, "2d"),
            (2 * DAY + HOUR, "2d1h"),
            (8 * DAY - MS, "7d23h"),
            (8 * DAY, "8d"),
            (8 * DAY + 23 * HOUR, "8d"),
            (2 * 365 * DAY - MS, "729d"),
            (2 * 365 * DAY, "2y"),
            (2 * 365 * DAY + 23 * HOUR + 59 * MIN, "2y"),
            (2 * 365 * DAY + DAY - MS, "2y"),
            (2 * 365 * DAY + DAY, "2y1d"),
            (3 * 365 * DAY, "3y"),
            (7 * 365 * DAY, "7y"),
            (8 * 365 * DAY - MS, "7y364d"),
            (8 * 365 * DAY, "8y"),
            (8 * 365 * DAY + 364 * DAY, "8y"),
            (9 * 365 * DAY, "9y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "{d}ns");
        }
    }

    #[test]
    fn accepts_what_go_accepts_and_writes_utc() {
        let s = Precision::Seconds;
        assert_eq!(
            roundtrip("2024-11-14T23:46:29Z", s).unwrap(),
            "2024-11-14T23:46:29Z"
        );
        assert_eq!(
            roundtrip("2024-11-15T00:46:29+01:00", s).unwrap(),
            "2024-11-14T23:46:29Z"
        );
        assert_eq!(
            roundtrip("2024-11-14T23:46:29.999999999Z", s).unwrap(),
            "2024-11-14T23:46:29Z"
        );
        // Go reads a comma fraction and a one-digit hour with this layout.
        assert_eq!(
            roundtrip("2024-11-14T3:46:29,5Z", s).unwrap(),
            "2024-11-14T03:46:29Z"
        );
        assert_eq!(
            roundtrip("1969-12-31T23:59:59Z", s).unwrap(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            roundtrip("2100-01-01T00:00:00Z", s).unwrap(),
            "2100-01-01T00:00:00Z"
        );
        assert_eq!(roundtrip("0001-01-01T00:00:00Z", s).unwrap(), "null");
        let m = Precision::Micros;
        assert_eq!(
            roundtrip("2024-01-02T03:04:05.123456Z", m).unwrap(),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            roundtrip("2024-01-02T04:04:05.000001+01:00", m).unwrap(),
            "2024-01-02T03:04:05.000001Z"
        );
    }

    #[test]
    fn refuses_with_go_s_words() {
        let s = Precision::Seconds;
        let cases: &[(&str, String)] = &[
            (
                "tomorrow",
                alloc::format!(
                    "parsing time \"tomorrow\" as {RFC}: cannot parse \"tomorrow\" as \"2006\""
                ),
            ),
            (
                "",
                alloc::format!("parsing time \"\" as {RFC}: cannot parse \"\" as \"2006\""),
            ),
            (
                "2024-1-02T00:00:00Z",
                alloc::format!(
                    "parsing time \"2024-1-02T00:00:00Z\" as {RFC}: cannot parse \"1-02T00:00:00Z\" as \"01\""
                ),
            ),
            (
                "2024/01/02T00:00:00Z",
                alloc::format!(
                    "parsing time \"2024/01/02T00:00:00Z\" as {RFC}: cannot parse \"/01/02T00:00:00Z\" as \"-\""
                ),
            ),
            (
                "2024-13-02T00:00:00Z",
                "parsing time \"2024-13-02T00:00:00Z\": month out of range".into(),
            ),
            (
                "2024-02-30T00:00:00Z",
                "parsing time \"2024-02-30T00:00:00Z\": day out of range".into(),
            ),
            (
                "2024-01-02T24:00:00Z",
                "parsing time \"2024-01-02T24:00:00Z\": hour out of range".into(),
            ),
            (
                "2024-01-02T00:00:60Z",
                "parsing time \"2024-01-02T00:00:60Z\": second out of range".into(),
            ),
            (
                "2024-01-02T00:00:00",
                alloc::format!(
                    "parsing time \"2024-01-02T00:00:00\" as {RFC}: cannot parse \"\" as \"Z07:00\""
                ),
            ),
            (
                "2024-01-02T00:00:00Zjunk",
                "parsing time \"2024-01-02T00:00:00Zjunk\": extra text: \"junk\"".into(),
            ),
            (
                "2024-01-02 00:00:00Z",
                alloc::format!(
                    "parsing time \"2024-01-02 00:00:00Z\" as {RFC}: cannot parse \" 00:00:00Z\" as \"T\""
                ),
            ),
            (
                "2024-01-02T00:00:00+25:00",
                "parsing time \"2024-01-02T00:00:00+25:00\": time zone offset hour out of range"
                    .into(),
            ),
            (
                "2024-01-02T00:00:00z",
                alloc::format!(
                    "parsing time \"2024-01-02T00:00:00z\" as {RFC}: cannot parse \"z\" as \"Z07:00\""
                ),
            ),
            (
                "é",
                alloc::format!(
                    "parsing time \"\\xc3\\xa9\" as {RFC}: cannot parse \"\\xc3\\xa9\" as \"2006\""
                ),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse(input, s).unwrap_err(), want, "{input}");
        }
        assert_eq!(
            parse("2024-01-02T03:04:05Z", Precision::Micros).unwrap_err(),
            "parsing time \"2024-01-02T03:04:05Z\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"Z\" as \".000000\""
        );
        assert_eq!(
            decode(&Value::from(5), s).unwrap_err(),
            "json: cannot unmarshal number into Go value of type string"
        );
        assert_eq!(decode(&Value::Null, s), Ok(Value::Null));
    }
}
