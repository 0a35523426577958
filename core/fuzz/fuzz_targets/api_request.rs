//! `Cluster::handle_request` with arbitrary method, path, query, content type, accept and body,
//! up to four requests in a row against a server holding a few objects, then (when the first
//! byte's high bit is set) the controllers' timeout pass: bodies of every served type in JSON, YAML and protobuf, every patch format,
//! selectors, continue tokens, resource versions, dryRun and fieldValidation.
//!
//! Input: requests separated by `FE FE FE`; each is `control FF path FF query FF content-type FF
//! accept FF body`, where `control` is [method, auth, flags].
//!
//! Invariants: no panic, no unbounded allocation (libFuzzer's malloc limit), and a refused
//! request (4xx/5xx) leaves the store's revision and object count as they were.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nautilus_core::api::{ApiRequest, Method};

const METHODS: [Method; 8] = [
    Method::Get,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Head,
    Method::Options,
    Method::Other,
];

/// The `metadata.continue` of a JSON list response, if any.
fn continue_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(v.get("metadata")?.get("continue")?.as_str()?.to_owned())
}

fuzz_target!(|data: &[u8]| {
    let mut s = common::populated_server();
    let admin = format!("Bearer {}", common::ADMIN);
    let relay = format!("Bearer {}", common::RELAY);
    let mut last_continue: Option<String> = None;
    // The controllers' pass (a third of an iteration's time) only when the input asks for it.
    let run_controllers = data.first().is_some_and(|b| b & 0x80 != 0);
    for call in data.split(|b| *b == 0xFE).filter(|c| !c.is_empty()).take(4) {
        let parts = common::fields(call, 6);
        let control = common::field(&parts, 0);
        let byte = |i: usize| control.get(i).copied().unwrap_or(0);
        let method = METHODS[usize::from(byte(0)) % METHODS.len()];
        let flags = byte(2);
        let path = common::text(&parts, 1);
        let mut query = common::text(&parts, 2);
        if flags & 1 != 0 {
            if let Some(token) = &last_continue {
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str("continue=");
                query.push_str(token);
            }
        }
        let content_type = common::text(&parts, 3);
        let accept = common::text(&parts, 4);
        let body = common::field(&parts, 5);
        let mut req = ApiRequest::new(method, &path);
        req.query = &query;
        req.content_type = (flags & 2 == 0).then_some(content_type.as_str());
        req.accept = (flags & 4 == 0).then_some(accept.as_str());
        req.authorization = match byte(1) % 4 {
            0 => Some(admin.as_str()),
            1 => None,
            2 => Some("Bearer not-a-token"),
            _ => Some(relay.as_str()),
        };
        req.body = body;
        let (revision, count) = (s.store().revision(), s.store().len());
        let Some(response) = s.handle_request(common::NOW, &req).into_response() else {
            continue;
        };
        if response.status >= 400 {
            assert_eq!(
                (s.store().revision(), s.store().len()),
                (revision, count),
                "a refused request ({}) changed the store: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
        last_continue = continue_of(&response.body).or(last_continue);
    }
    if run_controllers {
        s.handle_timeout(common::NOW.plus_secs(3600));
    }
});
