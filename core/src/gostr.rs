//! Go's string quoting (`strconv.Quote`, what `%q` prints) and `encoding/json` strings and
//! unstructured values, for messages and annotations that must read as kube-apiserver's do. One
//! implementation for every place that quotes.

use alloc::string::{String, ToString};
use core::fmt::Write as _;
use serde_json::Value;

/// Go's `strconv.Quote` (what `%q` prints).
pub(crate) fn go_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// [`go_quote`] into a new string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len().saturating_add(2));
    go_quote(s, &mut out);
    out
}

/// Go's `unicode.IsPrint`, closely enough for names and labels: not a control, format or
/// private-use character, and no space other than U+0020.
pub(crate) fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let u = c as u32;
    !(c.is_control()
        || c.is_whitespace()
        || matches!(u, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E)
        || matches!(u, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F)
        || matches!(u, 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xF0000..)
        || matches!(u, 0x110BD | 0x1D173..=0x1D17A | 0xE0001..=0xE007F))
}

/// A JSON string as Go's encoder writes it (HTML characters and U+2028/2029 escaped).
pub(crate) fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value as Go's `json.Marshal` writes an unstructured one: object keys sorted, strings as
/// [`go_json_string`].
pub(crate) fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => go_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                go_json(item, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Go's `%#v` of a `[]string`, as kube's field errors show `spec.clusterIPs`.
pub(crate) fn go_strings(items: &[&str]) -> String {
    let quoted: alloc::vec::Vec<String> = items.iter().map(|s| quote(s)).collect();
    alloc::format!("[]string{{{}}}", quoted.join(", "))
}
