//! A JSON or Table LIST sent in pieces is, byte for byte, the body sent whole, and a JSON
//! LIST's announced length is that body's.

use serde_json::json;

use super::tests::*;
use super::{ApiRequest, Method, Outcome};
use crate::Config;

/// kubectl's Table.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// The LIST at `path` as core captured it, asked for in `accept` (none: JSON).
fn captured_as(
    s: &mut crate::cluster::Cluster,
    path: &str,
    accept: Option<&str>,
) -> alloc::boxed::Box<super::render::ListRender> {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(Method::Get, path);
    req.authorization = Some(&auth);
    req.accept = accept;
    match s.handle_request(T0, &req) {
        Outcome::List(list) => list,
        other => panic!("{path}: not a captured LIST: {:?}", other.into_response()),
    }
}

fn captured(
    s: &mut crate::cluster::Cluster,
    path: &str,
) -> alloc::boxed::Box<super::render::ListRender> {
    captured_as(s, path, None)
}

#[test]
fn a_list_in_pieces_is_the_list_whole() {
    let mut s = server(Config::default());
    for i in 0..300 {
        let map = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": alloc::format!("cm-{i:03}")},
            "data": {"payload": "x".repeat(i % 50)}});
        assert_eq!(
            call(
                &mut s,
                Method::Post,
                "/api/v1/namespaces/default/configmaps",
                Some(map)
            )
            .status,
            201
        );
    }
    for path in [
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps?limit=120",
        "/api/v1/namespaces/empty/configmaps",
    ] {
        let whole = captured(&mut s, path).render().body;
        for piece in [1usize, 700, 1 << 20] {
            let mut chunks = captured(&mut s, path).chunks().expect("a JSON LIST");
            let announced = chunks.body_len();
            let mut joined = alloc::vec::Vec::new();
            let mut pieces = 0;
            while let Some(chunk) = chunks.next_chunk(piece) {
                joined.extend_from_slice(&chunk);
                pieces += 1;
            }
            assert!(
                joined == whole,
                "{path} in pieces of {piece} differs from the whole body"
            );
            assert_eq!(announced, Some(whole.len()), "{path}: the announced length");
            assert!(chunks.next_chunk(piece).is_none());
            if piece == 1 && path == "/api/v1/namespaces/default/configmaps" {
                assert!(pieces > 300, "{path}: {pieces} pieces of at least 1 byte");
            }
        }
    }
    // A Table too, its length not announced (it is known only once encoded).
    for path in [
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps?limit=120",
        "/api/v1/namespaces/empty/configmaps",
    ] {
        let whole = captured_as(&mut s, path, Some(TABLE)).render();
        assert!(whole.body.starts_with(br#"{"kind":"Table""#), "{path}");
        for piece in [1usize, 700, 1 << 20] {
            let mut chunks = captured_as(&mut s, path, Some(TABLE))
                .chunks()
                .expect("a Table");
            assert_eq!(chunks.content_type(), whole.content_type, "{path}");
            assert_eq!(chunks.body_len(), None, "{path}");
            let mut joined = alloc::vec::Vec::new();
            while let Some(chunk) = chunks.next_chunk(piece) {
                joined.extend_from_slice(&chunk);
            }
            assert!(
                joined == whole.body,
                "{path}: the Table in pieces of {piece} differs from the whole body"
            );
        }
    }
    // A metadata-only LIST is not cut in pieces.
    let metadata = captured_as(
        &mut s,
        "/api/v1/namespaces/default/configmaps",
        Some("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
    );
    assert!(metadata.chunks().is_err());
}
