//! The Kubernetes API subset: one request in, one response (or a watch) out.

pub mod discovery;
pub mod openapi;
pub mod table;
