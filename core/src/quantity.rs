//! `resource.Quantity` as apimachinery parses, adds, compares and prints it: the arithmetic of
//! quota usage, pod overhead and resource lists. Values are kept exactly in nano-units (kube
//! rounds anything finer up to 1n), so sums and comparisons are exact; the printed form is
//! apimachinery's canonical one (`500m`, `252Mi`, `1`, `2e3`).

use alloc::string::String;
use core::cmp::Ordering;
use core::fmt::Write as _;
use serde_json::Value;

/// Nano-units in one unit.
const NANO: i128 = 1_000_000_000;

/// How a quantity prints (kept from the first operand, as apimachinery does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `k`, `M`, `m`, ... (and no suffix).
    #[default]
    DecimalSi,
    /// `Ki`, `Mi`, ...
    BinarySi,
    /// `e3`, `E6`.
    DecimalExponent,
}

/// A quantity: an exact value in nano-units and the format it prints in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// The message apimachinery gives for text that is not a quantity.
pub const PARSE_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

impl Quantity {
    /// A whole number of units, printed in decimal SI (`resource.NewQuantity(n, DecimalSI)`).
    pub fn from_units(n: i64) -> Self {
        Self {
            nanos: i128::from(n) * NANO,
            format: Format::DecimalSi,
        }
    }

    /// The zero quantity.
    pub fn zero() -> Self {
        Self::default()
    }

    /// Parses `text` as `resource.ParseQuantity` does: a signed decimal with an optional binary
    /// SI, decimal SI or exponent suffix; precision finer than 1n rounds up. `None` when it is
    /// not a quantity (or beyond ±10^29).
    pub fn parse(text: &str) -> Option<Self> {
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..)?),
            Some(b'+') => (false, text.get(1..)?),
            _ => (false, text),
        };
        let split = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, suffix) = body.split_at(split);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return None;
        }
        let (format, binary_pow, exp10): (Format, u32, i32) = match suffix {
            "Ki" => (Format::BinarySi, 1, 0),
            "Mi" => (Format::BinarySi, 2, 0),
            "Gi" => (Format::BinarySi, 3, 0),
            "Ti" => (Format::BinarySi, 4, 0),
            "Pi" => (Format::BinarySi, 5, 0),
            "Ei" => (Format::BinarySi, 6, 0),
            "n" => (Format::DecimalSi, 0, -9),
            "u" => (Format::DecimalSi, 0, -6),
            "m" => (Format::DecimalSi, 0, -3),
            "" => (Format::DecimalSi, 0, 0),
            "k" => (Format::DecimalSi, 0, 3),
            "M" => (Format::DecimalSi, 0, 6),
            "G" => (Format::DecimalSi, 0, 9),
            "T" => (Format::DecimalSi, 0, 12),
            "P" => (Format::DecimalSi, 0, 15),
            "E" => (Format::DecimalSi, 0, 18),
            s if s.starts_with(['e', 'E']) => {
                let exp = s.get(1..)?;
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let e: i32 = exp.parse().ok()?;
                (Format::DecimalExponent, 0, e)
            }
            _ => return None,
        };
        // Digits as one integer with the decimal point moved to the end.
        let int_part = int_part.trim_start_matches('0');
        if int_part.len() > 30 {
            return None;
        }
        let frac_kept = frac_part.get(..frac_part.len().min(30)).unwrap_or("");
        let dropped_nonzero = frac_part.bytes().skip(30).any(|b| b != b'0');
        let mut mantissa: i128 = 0;
        for b in int_part.bytes().chain(frac_kept.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        for _ in 0..binary_pow {
            mantissa = mantissa.checked_mul(1024)?;
        }
        // value = mantissa × 10^(exp10 - frac digits); in nano-units × 10^9.
        let shift = exp10
            .checked_add(9)?
            .checked_sub(i32::try_from(frac_kept.len()).ok()?)?;
        let nanos = if shift >= 0 {
            if shift > 38 {
                if mantissa == 0 {
                    0
                } else {
                    return None;
                }
            } else {
                mantissa.checked_mul(pow10(shift.unsigned_abs()))?
            }
        } else {
            let div = pow10(shift.unsigned_abs().min(38));
            let q = mantissa / div;
            // Round up (away from zero) what is finer than 1n, as apimachinery does.
            if mantissa % div != 0 || dropped_nonzero {
                q + 1
            } else {
                q
            }
        };
        if nanos > NANO * 100_000_000_000_000_000_000 {
            return None;
        }
        Some(Self {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    /// A quantity from JSON: a string, or a number (apimachinery accepts both).
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Self::parse(s.trim()),
            Value::Number(n) => Self::parse(&alloc::format!("{n}")),
            _ => None,
        }
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// `q.Add(y)`: the sum, in this quantity's format (the other's when this one is zero).
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        let format = if self.nanos == 0 {
            other.format
        } else {
            self.format
        };
        Self {
            nanos: self.nanos.saturating_add(other.nanos),
            format,
        }
    }

    /// `q.Sub(y)`, in this quantity's format (the other's when this one is zero).
    #[must_use]
    pub fn minus(self, other: Self) -> Self {
        let format = if self.nanos == 0 {
            other.format
        } else {
            self.format
        };
        Self {
            nanos: self.nanos.saturating_sub(other.nanos),
            format,
        }
    }

    /// Thousandths of a unit, rounded up (`MilliValue`), clamped to `i64`.
    pub fn milli_value(&self) -> i64 {
        let milli =
            self.nanos.div_euclid(1_000_000) + i128::from(self.nanos.rem_euclid(1_000_000) != 0);
        i64::try_from(milli).unwrap_or(if milli < 0 { i64::MIN } else { i64::MAX })
    }

    /// Whole units, rounded up (`Value`), clamped to `i64`.
    pub fn value(&self) -> i64 {
        let units = self.nanos.div_euclid(NANO) + i128::from(self.nanos.rem_euclid(NANO) != 0);
        i64::try_from(units).unwrap_or(if units < 0 { i64::MIN } else { i64::MAX })
    }

    /// The canonical text, as apimachinery's `Quantity.String()` writes it.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return String::from("0");
        }
        let mut format = self.format;
        if format == Format::BinarySi && (self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0)
        {
            // Small or fractional binary quantities print as decimal, losing nothing.
            format = Format::DecimalSi;
        }
        let mut out = String::new();
        if format == Format::BinarySi {
            let (mut amount, mut times) = (self.nanos / NANO, 0u32);
            while amount.abs() >= 1024 && amount % 1024 == 0 && times < 6 {
                amount /= 1024;
                times += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                .get(times as usize)
                .copied()
                .unwrap_or("");
            let _ = write!(out, "{amount}{suffix}");
            return out;
        }
        // Mantissa × 10^exponent with the exponent a multiple of 3.
        let (mut amount, mut exponent) = (self.nanos, -9i32);
        while amount.abs() >= 10 && amount % 10 == 0 {
            amount /= 10;
            exponent += 1;
        }
        match exponent.rem_euclid(3) {
            1 => {
                amount *= 10;
                exponent -= 1;
            }
            2 => {
                amount *= 100;
                exponent -= 2;
            }
            _ => {}
        }
        let _ = write!(out, "{amount}");
        if format == Format::DecimalExponent {
            if exponent != 0 {
                let _ = write!(out, "e{exponent}");
            }
            return out;
        }
        let suffix = match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        };
        out.push_str(suffix);
        out
    }
}

fn pow10(n: u32) -> i128 {
    let mut v: i128 = 1;
    for _ in 0..n {
        v = v.saturating_mul(10);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        Quantity::parse(text).unwrap().canonical()
    }

    #[test]
    fn parses_and_prints_as_apimachinery() {
        for (text, want) in [
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("252Mi", "252Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("512", "512"),
            ("1024", "1024"),
            ("1Ki", "1Ki"),
            ("0.5Ki", "512"),
            ("30Gi", "30Gi"),
            ("2e3", "2e3"),
            ("1E6", "1e6"),
            ("1.5k", "1500"),
            ("12k", "12k"),
            ("100M", "100M"),
            ("0", "0"),
            ("0Mi", "0"),
            ("-2", "-2"),
            ("+3", "3"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("1.0000000001", "1000000001n"),
            (".5", "500m"),
            ("5.", "5"),
        ] {
            assert_eq!(canon(text), want, "{text}");
        }
        for bad in ["", "m", "1x", "1.2.3", "Mi", "1e", "1e+", "--1", "1Mi2"] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_keeps_the_first_format() {
        let a = Quantity::parse("500m").unwrap();
        let b = Quantity::parse("1").unwrap();
        assert_eq!(a.plus(b).canonical(), "1500m");
        let mem = Quantity::parse("252Mi").unwrap();
        let more = Quantity::parse("4Mi").unwrap();
        assert_eq!(mem.plus(more).canonical(), "256Mi");
        assert_eq!(Quantity::zero().plus(mem).canonical(), "252Mi");
        assert_eq!(mem.minus(mem).canonical(), "0");
        assert!(Quantity::parse("600m").unwrap() > a);
        assert_eq!(Quantity::parse("1000m"), Quantity::parse("1"));
        assert_eq!(Quantity::parse("1500m").unwrap().milli_value(), 1500);
        assert_eq!(Quantity::parse("1500m").unwrap().value(), 2);
        assert_eq!(
            Quantity::from_json(&serde_json::json!(2))
                .unwrap()
                .canonical(),
            "2"
        );
    }
}
