//! CronJob schedules as kube-controller-manager reads them (robfig/cron v3 `ParseStandard`):
//! five fields (minute, hour, day of month, month, day of week, with `*`, `?`, ranges, steps,
//! lists and month/day names), the descriptors `@yearly` ... `@hourly` and `@every <duration>`,
//! and a `TZ=` or `CRON_TZ=` prefix. Parse errors carry robfig's wording, which kube's validation
//! puts in its `Invalid value` message. Times are computed in the schedule's IANA time zone
//! (bundled database); a schedule without one runs in UTC, the enclave's only zone.

use crate::gostr::quote as go_quote;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::UnixTime;

/// Bit 63 of a field: the expression contained `*` or `?` (changes day-of-month/day-of-week
/// matching, as in cron).
const STAR: u64 = 1 << 63;

/// Most years searched for the next activation (robfig gives up after five).
const YEAR_LIMIT: i16 = 5;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    zone: TimeZone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every`: a fixed delay in whole seconds (at least one).
    Every(u64),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Go's `time.LoadLocation`: `""` and `UTC` are UTC, `Local` is the process's zone (UTC here),
/// anything else must name a zone of the IANA database.
pub fn load_zone(name: &str) -> Result<TimeZone, String> {
    match name {
        "" | "UTC" | "Local" => Ok(TimeZone::UTC),
        _ => jiff::tz::db()
            .get(name)
            .map_err(|_| format!("unknown time zone {name}")),
    }
}

/// `cron.ParseStandard`, in the zone `TZ=`/`CRON_TZ=` names, else in `default_zone`.
pub fn parse(spec: &str, default_zone: &TimeZone) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut zone = default_zone.clone();
    let mut rest = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        // robfig slices up to the first space; without one Go's slice panics, which the
        // apiserver's recovery turns into an error: refuse it here.
        let (head, tail) = spec
            .split_once(' ')
            .ok_or_else(|| format!("provided bad location {spec}: no schedule after it"))?;
        let name = head.split_once('=').map_or("", |(_, n)| n);
        zone = load_zone(name).map_err(|e| format!("provided bad location {name}: {e}"))?;
        rest = tail.trim();
    }
    if rest.starts_with('@') {
        return descriptor(rest).map(|kind| Schedule { kind, zone });
    }
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let field = |i: usize, b: &Bounds| get_field(fields.get(i).copied().unwrap_or(""), b);
    let kind = Kind::Spec {
        minute: field(0, &MINUTES)?,
        hour: field(1, &HOURS)?,
        dom: field(2, &DOM)?,
        month: field(3, &MONTHS)?,
        dow: field(4, &DOW)?,
    };
    Ok(Schedule { kind, zone })
}

fn bits(min: u32, max: u32, step: u32) -> u64 {
    let mut out = 0u64;
    let mut i = min;
    while i <= max && i < 63 {
        out |= 1 << i;
        match i.checked_add(step.max(1)) {
            Some(next) => i = next,
            None => break,
        }
    }
    out
}

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

fn descriptor(text: &str) -> Result<Kind, String> {
    let spec = |minute, hour, dom, month, dow| {
        Ok(Kind::Spec {
            minute,
            hour,
            dom,
            month,
            dow,
        })
    };
    match text {
        "@yearly" | "@annually" => spec(1, 1, 1 << 1, 1 << 1, all(&DOW)),
        "@monthly" => spec(1, 1, 1 << 1, all(&MONTHS), all(&DOW)),
        "@weekly" => spec(1, 1, all(&DOM), all(&MONTHS), 1),
        "@daily" | "@midnight" => spec(1, 1, all(&DOM), all(&MONTHS), all(&DOW)),
        "@hourly" => spec(1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
        _ => match text.strip_prefix("@every ") {
            Some(duration) => {
                let nanos = parse_go_duration(duration).map_err(|e| {
                    format!(
                        "failed to parse duration {text}: time: {e} {}",
                        go_quote(duration)
                    )
                })?;
                // `Every` rounds below a second up to one and drops sub-second parts.
                let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(0).max(1);
                Ok(Kind::Every(secs))
            }
            None => Err(format!("unrecognized descriptor: {text}")),
        },
    }
}

/// Go's `time.ParseDuration`, in nanoseconds; errors say `invalid duration` or `unknown unit`
/// (the caller adds the quoted input, as Go does).
fn parse_go_duration(text: &str) -> Result<i128, String> {
    let invalid = || String::from("invalid duration");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or("")),
        Some(b'+') => (false, text.get(1..).unwrap_or("")),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        if number.is_empty() || number == "." {
            return Err(invalid());
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(String::from("missing unit in duration")),
            other => return Err(format!("unknown unit {} in duration", go_quote(other))),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
        let mut place = scale;
        for d in frac.bytes() {
            place /= 10;
            value = value
                .checked_add(i128::from(d - b'0') * place)
                .ok_or_else(invalid)?;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i128::from(i64::MAX) {
            return Err(invalid());
        }
        rest = tail;
    }
    Ok(if negative { -total } else { total })
}

/// A comma-separated list of ranges.
fn get_field(field: &str, b: &Bounds) -> Result<u64, String> {
    let mut out = 0;
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        out |= get_range(expr, b)?;
    }
    Ok(out)
}

/// `number | number "-" number [ "/" number ]`, or `*`/`?` with an optional step.
fn get_range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step
        .first()
        .copied()
        .unwrap_or("")
        .split('-')
        .collect();
    let single = low_high.len() == 1;
    let first = low_high.first().copied().unwrap_or("");
    let (start, mut end, mut extra) = if first == "*" || first == "?" {
        (b.min, b.max, STAR)
    } else {
        let start = parse_int_or_name(first, b)?;
        let end = match low_high.len() {
            1 => start,
            2 => parse_int_or_name(low_high.get(1).copied().unwrap_or(""), b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end, 0)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step.get(1).copied().unwrap_or(""))?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_ascii_lowercase();
    if let Some((_, n)) = b.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*n);
    }
    must_parse_int(expr)
}

/// `strconv.Atoi` with robfig's wording.
fn must_parse_int(expr: &str) -> Result<u32, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    let syntax = || {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            go_quote(expr)
        )
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    if expr.starts_with('-') && digits.bytes().any(|b| b != b'0') {
        return Err(format!("negative number (-{digits}) not allowed: {expr}"));
    }
    // Values this large are out of every field's range anyway.
    Ok(digits.parse::<u32>().unwrap_or(u32::MAX))
}

impl Schedule {
    /// The zone the schedule's fields are read in.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The first activation strictly after `t`, or `None` when there is none within five years
    /// (robfig returns the zero time then).
    pub fn next(&self, t: UnixTime) -> Option<UnixTime> {
        let secs = i64::try_from(t.secs()).ok()?;
        match self.kind {
            Kind::Every(delay) => Some(UnixTime::from_secs(t.secs().checked_add(delay)?)),
            Kind::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
            } => {
                let now = jiff::Timestamp::from_second(secs).ok()?;
                let local = self.zone.to_datetime(now);
                // Seconds are always 0: the next whole minute after `t`.
                let start = local
                    .with()
                    .second(0)
                    .subsec_nanosecond(0)
                    .build()
                    .ok()?
                    .checked_add(jiff::Span::new().minutes(1))
                    .ok()?;
                let found = next_civil(start, minute, hour, dom, month, dow)?;
                let ts = self.zone.to_ambiguous_zoned(found).compatible().ok()?;
                let out = u64::try_from(ts.timestamp().as_second()).ok()?;
                if out <= t.secs() {
                    // A repeated local hour: move past it.
                    return self.next(UnixTime::from_secs(t.secs().checked_add(60)?));
                }
                Some(UnixTime::from_secs(out))
            }
        }
    }
}

/// Whether day-of-month and day-of-week match (both when either field has a star, else either).
fn day_matches(dt: &DateTime, dom: u64, dow: u64) -> bool {
    let dom_match = dom & (1 << dt.day()) != 0;
    let weekday = u32::try_from(dt.weekday().to_sunday_zero_offset()).unwrap_or(0);
    let dow_match = dow & (1 << weekday) != 0;
    if dom & STAR != 0 || dow & STAR != 0 {
        dom_match && dow_match
    } else {
        dom_match || dow_match
    }
}

/// The first civil minute at or after `start` whose fields all match.
fn next_civil(
    start: DateTime,
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
) -> Option<DateTime> {
    let limit = start.year().checked_add(YEAR_LIMIT)?;
    let mut t = start;
    let day_start = |t: DateTime| t.with().hour(0).minute(0).build().ok();
    'wrap: loop {
        if t.year() > limit {
            return None;
        }
        while month & (1 << t.month()) == 0 {
            let first = t.with().day(1).hour(0).minute(0).build().ok()?;
            t = first.checked_add(jiff::Span::new().months(1)).ok()?;
            if t.month() == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(&t, dom, dow) {
            t = day_start(t)?.checked_add(jiff::Span::new().days(1)).ok()?;
            if t.day() == 1 {
                continue 'wrap;
            }
        }
        while hour & (1 << t.hour()) == 0 {
            t = t
                .with()
                .minute(0)
                .build()
                .ok()?
                .checked_add(jiff::Span::new().hours(1))
                .ok()?;
            if t.hour() == 0 {
                continue 'wrap;
            }
        }
        while minute & (1 << t.minute()) == 0 {
            t = t.checked_add(jiff::Span::new().minutes(1)).ok()?;
            if t.minute() == 0 {
                continue 'wrap;
            }
        }
        return Some(t);
    }
}

/// Whether `text` would be taken for a time-zone prefix (kube refuses `TZ` anywhere in a new
/// schedule).
pub fn mentions_tz(text: &str) -> bool {
    text.contains("TZ")
}

/// Go's `time.Time.Format(time.RFC1123Z)` in UTC, for the `MissSchedule` event.
pub fn rfc1123z(t: UnixTime) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(i64::try_from(t.secs()).unwrap_or(0)) else {
        return t.rfc3339();
    };
    let dt = TimeZone::UTC.to_datetime(ts);
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS_SHORT: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = DAYS
        .get(usize::try_from(dt.weekday().to_sunday_zero_offset()).unwrap_or(0))
        .copied()
        .unwrap_or("Sun");
    let month = MONTHS_SHORT
        .get(usize::try_from(dt.month() - 1).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{day}, {:02} {month} {} {:02}:{:02}:{:02} +0000",
        dt.day(),
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// The RFC 3339 rendering of `t` in `zone` (the `batch.kubernetes.io/cronjob-scheduled-timestamp`
/// annotation), `Z` for UTC as Go writes it.
pub fn rfc3339_in(t: UnixTime, zone: &TimeZone) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(i64::try_from(t.secs()).unwrap_or(0)) else {
        return t.rfc3339();
    };
    let offset = zone.to_offset(ts).seconds();
    if offset == 0 {
        return t.rfc3339();
    }
    let dt = zone.to_datetime(ts);
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        abs / 3600,
        (abs % 3600) / 60
    )
}

impl core::fmt::Display for Schedule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&format!("{:?}", self.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> UnixTime {
        UnixTime::parse_rfc3339(text).unwrap()
    }

    fn next(spec: &str, from: &str) -> String {
        parse(spec, &TimeZone::UTC)
            .unwrap()
            .next(at(from))
            .unwrap()
            .rfc3339()
    }

    #[test]
    fn parses_standard_specs_and_descriptors() {
        assert_eq!(
            next("*/1 * * * ?", "2024-03-01T10:00:30Z"),
            "2024-03-01T10:01:00Z"
        );
        assert_eq!(
            next("*/1 * * * ?", "2024-03-01T10:01:00Z"),
            "2024-03-01T10:02:00Z"
        );
        assert_eq!(
            next("0 0 * * *", "2024-02-28T10:00:00Z"),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            next("@hourly", "2024-03-01T10:59:59Z"),
            "2024-03-01T11:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2024-03-01T00:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2024-03-01T00:00:00Z"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            next("30 2 * jan-mar mon", "2024-03-01T00:00:00Z"),
            "2024-03-04T02:30:00Z"
        );
        // Day of month OR day of week when neither is a star.
        assert_eq!(
            next("0 0 15 * mon", "2024-03-01T00:00:00Z"),
            "2024-03-04T00:00:00Z"
        );
        assert_eq!(
            next("@every 90s", "2024-03-01T00:00:00Z"),
            "2024-03-01T00:01:30Z"
        );
        // February 30th never comes.
        assert!(
            parse("0 0 30 2 *", &TimeZone::UTC)
                .unwrap()
                .next(at("2024-01-01T00:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn time_zones_shift_the_schedule() {
        let s = parse("TZ=America/New_York 0 9 * * *", &TimeZone::UTC).unwrap();
        // 09:00 EST is 14:00 UTC in winter, 13:00 UTC in summer.
        assert_eq!(
            s.next(at("2024-01-10T00:00:00Z")).unwrap().rfc3339(),
            "2024-01-10T14:00:00Z"
        );
        assert_eq!(
            s.next(at("2024-07-10T00:00:00Z")).unwrap().rfc3339(),
            "2024-07-10T13:00:00Z"
        );
        let tokyo = load_zone("Asia/Tokyo").unwrap();
        let s = parse("0 0 * * *", &tokyo).unwrap();
        assert_eq!(
            s.next(at("2024-01-10T00:00:00Z")).unwrap().rfc3339(),
            "2024-01-10T15:00:00Z"
        );
        assert_eq!(
            rfc3339_in(at("2024-01-10T15:00:00Z"), &tokyo),
            "2024-01-11T00:00:00+09:00"
        );
        assert_eq!(
            load_zone("Mars/Olympus").unwrap_err(),
            "unknown time zone Mars/Olympus"
        );
    }

    #[test]
    fn errors_are_robfigs() {
        let err = |spec: &str| parse(spec, &TimeZone::UTC).unwrap_err();
        assert_eq!(err(""), "empty spec string");
        assert_eq!(err("* * *"), "expected exactly 5 fields, found 3: [* * *]");
        assert_eq!(
            err("60 * * * *"),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            err("* * 0 * *"),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            err("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "step of range should be a positive number: */0"
        );
        assert_eq!(
            err("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(err("1-2-3 * * * *"), "too many hyphens: 1-2-3");
        assert_eq!(err("@sometimes"), "unrecognized descriptor: @sometimes");
        assert_eq!(
            err("TZ=Nowhere/Land * * * * *"),
            "provided bad location Nowhere/Land: unknown time zone Nowhere/Land"
        );
        assert_eq!(
            err("@every 5x"),
            "failed to parse duration @every 5x: time: unknown unit \"x\" in duration \"5x\""
        );
    }

    #[test]
    fn rfc1123z_is_gos() {
        assert_eq!(
            rfc1123z(at("2024-03-04T02:30:00Z")),
            "Mon, 04 Mar 2024 02:30:00 +0000"
        );
    }
}
