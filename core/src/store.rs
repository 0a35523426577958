//! The object store: compact JSON objects keyed by (resource, namespace, name), one global
//! revision, byte and object budgets.
