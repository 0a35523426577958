//! Bounded JSON intake: size and nesting are checked on the raw bytes before any parser runs, so
//! no input can exhaust the stack or the heap.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use crate::Error;

/// Checks that `bytes` nests arrays/objects at most `max_depth` deep, ignoring brackets inside
/// strings. Linear, no allocation; malformed input is left for the parser to reject.
pub fn check_depth(bytes: &[u8], max_depth: usize) -> Result<(), Error> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Error::BadRequest(alloc::format!(
                        "the request body nests deeper than the limit of {max_depth} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses a request body into a tree after the size and depth checks.
pub fn parse_body(bytes: &[u8], max_bytes: usize, max_depth: usize) -> Result<Value, Error> {
    if bytes.len() > max_bytes {
        return Err(Error::TooLarge(alloc::format!(
            "the request body is {} bytes, above the limit of {max_bytes}",
            bytes.len()
        )));
    }
    check_depth(bytes, max_depth)?;
    serde_json::from_slice(bytes).map_err(|e| {
        Error::BadRequest(alloc::format!(
            "error decoding the request body as JSON: {e}"
        ))
    })
}

/// Paths of the keys that appear twice in one object of `bytes` (valid JSON, depth already
/// bounded by [`check_depth`]; anything else ends the scan early), worded like kube's strict
/// decoder (`metadata.labels.a`, `spec.containers[0].name`); at most `max`. A tree keeps only
/// the last value of a repeated key, so this reads the raw bytes. Linear; one key set per open
/// object.
pub fn duplicate_keys(bytes: &[u8], max: usize) -> Vec<String> {
    let mut scan = DupScan {
        bytes,
        at: 0,
        found: Vec::new(),
        max,
    };
    let mut path = String::new();
    let _ = scan.value(&mut path);
    scan.found
}

struct DupScan<'a> {
    bytes: &'a [u8],
    at: usize,
    found: Vec<String>,
    max: usize,
}

impl<'a> DupScan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// The raw inside of the string starting at `at` (which is a quote).
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.at + 1;
        let mut end = start;
        loop {
            match self.bytes.get(end)? {
                b'\\' => end += 2,
                b'"' => break,
                _ => end += 1,
            }
        }
        self.at = end + 1;
        self.bytes.get(start..end)
    }

    fn value(&mut self, path: &mut String) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut seen: alloc::collections::BTreeSet<alloc::borrow::Cow<'a, str>> =
                    alloc::collections::BTreeSet::new();
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b'}' => {
                            self.at += 1;
                            return Some(());
                        }
                        b',' => {
                            self.at += 1;
                            self.skip_ws();
                        }
                        _ => {}
                    }
                    let raw = self.string()?;
                    let key: alloc::borrow::Cow<'a, str> = if raw.contains(&b'\\') {
                        let mut quoted = Vec::with_capacity(raw.len() + 2);
                        quoted.push(b'"');
                        quoted.extend_from_slice(raw);
                        quoted.push(b'"');
                        alloc::borrow::Cow::Owned(serde_json::from_slice(&quoted).ok()?)
                    } else {
                        alloc::borrow::Cow::Borrowed(core::str::from_utf8(raw).ok()?)
                    };
                    self.skip_ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.at += 1;
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&key);
                    if !seen.insert(key) && self.found.len() < self.max {
                        self.found.push(path.clone());
                    }
                    self.value(path)?;
                    path.truncate(len);
                }
            }
            b'[' => {
                self.at += 1;
                let mut index = 0usize;
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        b',' => self.at += 1,
                        _ => {}
                    }
                    let len = path.len();
                    let _ = core::fmt::Write::write_fmt(path, format_args!("[{index}]"));
                    self.value(path)?;
                    path.truncate(len);
                    index += 1;
                }
            }
            b'"' => self.string().map(|_| ()),
            _ => {
                let start = self.at;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
                ) {
                    self.at += 1;
                }
                // A `}` or `]` where a value belongs (a YAML flow body is scanned too, and its
                // `'}'` reads as one) ends the scan: the loops above would call back here
                // without ever moving.
                (self.at > start).then_some(())
            }
        }
    }
}

/// Compact JSON bytes of a tree. Serializing a `Value` cannot fail; an empty vector would only
/// come from an allocator failure, which aborts anyway.
pub fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Appends the compact JSON of a tree to `out` (serde_json's writer API needs std; its bytes go
/// through one scratch vector).
pub fn write_to(value: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(&to_vec(value));
}

/// The value at `pointer` (RFC 6901), as `Value::pointer` finds it, without its allocation per
/// token (it unescapes every token into a new string): printers and controllers look up several
/// pointers per object, thousands of objects per LIST. A token with an escape (`~0`, `~1`) takes
/// `Value::pointer`'s own path.
pub fn at<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    let rest = pointer.strip_prefix('/')?;
    if rest.contains('~') {
        return value.pointer(pointer);
    }
    rest.split('/')
        .try_fold(value, |target, token| match target {
            Value::Object(map) => map.get(token),
            Value::Array(list) => array_index(token).and_then(|i| list.get(i)),
            _ => None,
        })
}

/// An array index token as RFC 6901 (and serde_json) read it: digits, no leading zero or sign.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// The string at `pointer` (RFC 6901) or `""`.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    at(value, pointer).and_then(Value::as_str).unwrap_or("")
}

/// The array at `pointer`, or an empty slice.
pub fn array_at<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    at(value, pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Owned copy of the string at `pointer`, or an empty string.
pub fn string_at(value: &Value, pointer: &str) -> String {
    String::from(str_at(value, pointer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_find_what_serde_json_finds() {
        let doc = serde_json::json!({"a": {"b": [10, {"c": "x"}], "": 1, "d/e": 2, "f~g": 3},
            "0": "zero", "list": [1, 2, 3]});
        for pointer in [
            "",
            "/",
            "/a",
            "/a/b",
            "/a/b/0",
            "/a/b/1/c",
            "/a/b/01",
            "/a/b/+1",
            "/a/b/2",
            "/a/b/-1",
            "/a/",
            "/a/d~1e",
            "/a/f~0g",
            "/a/d/e",
            "/0",
            "/list/1",
            "/list/1/x",
            "a",
            "/missing/x",
            "/a/b/1/c/d",
        ] {
            assert_eq!(at(&doc, pointer), doc.pointer(pointer), "{pointer:?}");
        }
    }

    #[test]
    fn depth_is_bounded_before_parsing() {
        let deep: Vec<u8> = core::iter::repeat_n(b'[', 10_000)
            .chain(core::iter::repeat_n(b']', 10_000))
            .collect();
        assert!(matches!(
            parse_body(&deep, 1 << 20, 64),
            Err(Error::BadRequest(_))
        ));
        assert!(parse_body(br#"{"a":"[[[[[[[[[[[[[[[[[[["}"#, 100, 2).is_ok());
        assert!(matches!(parse_body(b"{}", 1, 64), Err(Error::TooLarge(_))));
        assert!(matches!(
            parse_body(b"{\"a\":", 100, 64),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn repeated_keys_are_named_by_path() {
        let body = br#"{"metadata":{"name":"a","labels":{"x":"1","x":"2"},"name":"b"},
            "spec":{"containers":[{"name":"c"},{"name":"d","image":"i","name":"e"}]},"k":[1,"}",{"\u0061":1,"a":2}]}"#;
        assert_eq!(
            duplicate_keys(body, 10),
            [
                "metadata.labels.x",
                "metadata.name",
                "spec.containers[1].name",
                "k[2].a"
            ]
        );
        assert_eq!(duplicate_keys(body, 1).len(), 1);
        assert!(duplicate_keys(br#"{"a":{"b":1},"c":{"b":2}}"#, 10).is_empty());
    }

    /// A byte no JSON value starts with (a YAML flow body's `'}'`, a stray `}` in a sequence)
    /// ends the scan instead of looping on it forever (found by the `body_decode` fuzz target).
    #[test]
    fn a_byte_that_starts_no_value_ends_the_scan() {
        assert!(duplicate_keys(b"['}']", 10).is_empty());
        assert!(duplicate_keys(b"[1, # }\n 2]", 10).is_empty());
        assert!(duplicate_keys(b"{\"a\": [}], \"a\": 1}", 10).is_empty());
        assert_eq!(duplicate_keys(br#"{"a": 1, "a": ['}']}"#, 10), ["a"]);
    }
}
