//! A JSON LIST sent in pieces is, byte for byte, the body sent whole, and its announced length is
//! that body's.

use serde_json::json;

use super::tests::*;
use super::{ApiRequest, Method, Outcome};
use crate::Config;

/// The LIST at `path` as core captured it.
fn captured(
    s: &mut crate::cluster::Cluster,
    path: &str,
) -> alloc::boxed::Box<super::render::ListRender> {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(Method::Get, path);
    req.authorization = Some(&auth);
    match s.handle_request(T0, &req) {
        Outcome::List(list) => list,
        other => panic!("{path}: not a captured LIST: {:?}", other.into_response()),
    }
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
            let mut chunks = captured(&mut s, path).json_chunks().expect("a JSON LIST");
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
    // Another format is not cut in pieces.
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(Method::Get, "/api/v1/namespaces/default/configmaps");
    req.authorization = Some(&auth);
    req.accept = Some("application/json;as=Table;v=v1;g=meta.k8s.io");
    let Outcome::List(table) = s.handle_request(T0, &req) else {
        panic!("a captured LIST");
    };
    assert!(table.json_chunks().is_err());
}
