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

/// Compact JSON bytes of a tree. Serializing a `Value` cannot fail; an empty vector would only
/// come from an allocator failure, which aborts anyway.
pub fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The string at `pointer` (RFC 6901) or `""`.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The array at `pointer`, or an empty slice.
pub fn array_at<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
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
}
